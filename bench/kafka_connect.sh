# shellcheck shell=bash
# Sourced by bench/ingest.sh when EIE_BENCH_CONNECT=1: the same readings stored
# by Kafka Connect with the Debezium JDBC sink, the usual way to move a topic
# into PostgreSQL, in the same runs as our cold sink and the COPY baseline.
#
# Connect reads JSON records that carry their schema (JsonConverter), made from
# the history the cold sink stored: a topic per stream, as many partitions as
# ours. A connector per stream (tasks.max EIE_BENCH_CONNECT_TASKS, 1) writes into
# connect_meter_history and connect_vehicle_history: the history's columns and
# primary keys, unpartitioned (no routing, which if anything favours Connect).
# The settings of a tuned deployment: batches of 10,000, the JDBC driver's
# reWriteBatchedInserts, offsets committed every second. Connect stores
# at-least-once; our sinks store exactly once.
#
# Settings (environment):
#   EIE_BENCH_CONNECT_MODE=insert   the sink's insert.mode: insert, or upsert
#                                   (INSERT .. ON CONFLICT on the primary key)
#   EIE_BENCH_CONNECT_TASKS=1       tasks per connector
#   EIE_BENCH_CONNECT_BATCH=10000   the sink's batch.size, and the worker's
#                                   max.poll.records
#
# Uses: BENCH_DIR, DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, BIN, total.
# Gives: connect_start, connect_produce, connect_drain RUN (prints the seconds),
# connect_check.

connect__pom() { printf '%s/bench/connect/pom.xml\n' "$EIE_REPO_ROOT"; }
connect__prop() { maven_pom_property "$(connect__pom)" "$1"; }

# The worker's classpath (Maven, as the broker's) and the connector's plugin
# archive, once per version, the archive into a temp dir renamed into place.
connect_fetch() {
  local version dbz dist tmp url
  version=$(connect__prop connect.version) dbz=$(connect__prop debezium.version)
  dist=$EIE_STATE_DIR/connect-dist/$version
  CONNECT_LIBS=$dist/libs
  CONNECT_PLUGINS=$dist/plugins-debezium-jdbc-$dbz
  maven_fetch_classpath "$(connect__pom)" "$CONNECT_LIBS" "connect-runtime-$version.jar" \
    "Kafka Connect $version" || exit 1
  if [[ ! -d $CONNECT_PLUGINS ]]; then
    url=https://repo1.maven.org/maven2/io/debezium/debezium-connector-jdbc/$dbz/debezium-connector-jdbc-$dbz-plugin.tar.gz
    eie_log "connect: fetching the Debezium JDBC sink $dbz (first time only)"
    tmp=$(mktemp -d "$dist/.fetch.XXXXXX")
    # Maven Central's checksum beside the archive: a truncated download fails here.
    if ! curl -fsSL -o "$tmp/plugin.tar.gz" "$url" || ! curl -fsSL -o "$tmp/plugin.sha1" "$url.sha1" ||
      [[ $(sha1sum <"$tmp/plugin.tar.gz" | cut -d' ' -f1) != "$(tr -d ' \n' <"$tmp/plugin.sha1")" ]] ||
      ! mkdir "$tmp/plugins" || ! tar -xzf "$tmp/plugin.tar.gz" -C "$tmp/plugins"; then
      rm -rf "$tmp"
      eie_die "connect: could not fetch $url"
      exit 1
    fi
    mv -T "$tmp/plugins" "$CONNECT_PLUGINS" 2>/dev/null || [[ -d $CONNECT_PLUGINS ]]
    rm -rf "$tmp"
  fi
}

connect__mode=${EIE_BENCH_CONNECT_MODE:-insert}
connect__tasks=${EIE_BENCH_CONNECT_TASKS:-1}
connect__batch=${EIE_BENCH_CONNECT_BATCH:-10000}
[[ $connect__mode =~ ^(insert|upsert)$ ]] ||
  bench_usage "EIE_BENCH_CONNECT_MODE must be insert or upsert, not '$connect__mode'"
[[ $connect__tasks =~ ^[1-9][0-9]*$ ]] ||
  bench_usage "EIE_BENCH_CONNECT_TASKS must be a positive integer, not '$connect__tasks'"
[[ $connect__batch =~ ^[1-9][0-9]*$ ]] ||
  bench_usage "EIE_BENCH_CONNECT_BATCH must be a positive integer, not '$connect__batch'"
[[ ${EIE_BENCH_KAFKA_SECURE:-0} != 1 ]] || bench_usage "EIE_BENCH_CONNECT=1 runs on the plaintext broker only"

# The JSON topics and the target tables, then the worker (no connectors yet:
# each run adds its own, so that its group reads from the start).
connect_start() {
  connect_fetch
  local kind
  EIE_TOPIC_PREFIX=bench.connect. "$BIN/eie-admin" topics 2>>"$BENCH_DIR/admin.log"
  for kind in meter vehicle; do
    bench_psql -c "DROP TABLE IF EXISTS connect_${kind}_history" \
      -c "CREATE TABLE connect_${kind}_history (LIKE ${kind}_history INCLUDING ALL)"
  done
  CONNECT_DIR=$BENCH_DIR/connect
  CONNECT_PORT=$(eie_port_free)
  mkdir -p "$CONNECT_DIR"
  cat >"$CONNECT_DIR/worker.properties" <<EOF
bootstrap.servers=$KAFKA_BOOTSTRAP_SERVERS
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=true
offset.storage.file.filename=$CONNECT_DIR/offsets
# The sink writes what it holds when the worker commits: every second, not the
# default minute, so that the last batch of a run does not wait.
offset.flush.interval.ms=1000
plugin.path=$CONNECT_PLUGINS
listeners=http://127.0.0.1:$CONNECT_PORT
consumer.max.poll.records=$connect__batch
EOF
  cat >"$CONNECT_DIR/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$CONNECT_DIR/connect.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.hibernate=WARN
log4j.logger.org.reflections=ERROR
EOF
  eie_proc_start connect "$CONNECT_DIR/connect.pid" "$CONNECT_DIR/connect.out" \
    "$(kafka_java)" -Xms1g -Xmx1g -Duser.timezone=UTC \
    -Dlog4j.configuration="file:$CONNECT_DIR/log4j.properties" -cp "$CONNECT_LIBS/*" \
    org.apache.kafka.connect.cli.ConnectStandalone "$CONNECT_DIR/worker.properties"
  local i
  for ((i = 0; i < 120; i++)); do
    curl -fsS "http://127.0.0.1:$CONNECT_PORT/connector-plugins" 2>/dev/null |
      grep -q JdbcSinkConnector && return 0
    eie_proc_alive "$CONNECT_DIR/connect.pid" >/dev/null || break
    sleep 1
  done
  eie_show_tail "$CONNECT_DIR/connect.log"
  eie_die "connect: the worker did not come up with the JDBC sink (log: $CONNECT_DIR/connect.log)"
  exit 1
}

# The history's rows as JSON records with their schema (a Connect struct: text
# as string, timestamptz as Connect's Timestamp, the rest double; optional
# where the column is nullable, as charger_id), made by
# PostgreSQL itself and produced with kcat; once, after a cold drain, and not
# in a subshell (it sets CONNECT_RECORDS).
connect_produce() {
  local kind
  for kind in meter vehicle; do
    bench_psql -c "COPY (
      WITH schema AS (
        SELECT jsonb_build_object('type', 'struct', 'name', '${kind}_reading', 'optional', false,
                 'fields', jsonb_agg(jsonb_build_object('field', column_name, 'optional', is_nullable = 'YES') ||
                   CASE data_type
                     WHEN 'text' THEN '{\"type\": \"string\"}'
                     WHEN 'timestamp with time zone' THEN
                       '{\"type\": \"int64\", \"name\": \"org.apache.kafka.connect.data.Timestamp\", \"version\": 1}'
                     ELSE '{\"type\": \"double\"}' END::jsonb ORDER BY ordinal_position)) AS s
        FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '${kind}_history')
      SELECT jsonb_build_object('schema', schema.s, 'payload',
               to_jsonb(h) || jsonb_build_object('ts', (extract(epoch FROM h.ts) * 1000)::bigint))
      FROM ${kind}_history h, schema) TO STDOUT" |
      kcat -P -b "$KAFKA_BOOTSTRAP_SERVERS" -t "bench.connect.$kind-readings" \
        -X compression.codec=lz4 -X linger.ms=20 -X queue.buffering.max.messages=1000000
  done
  CONNECT_RECORDS=$(end_offsets bench.connect.meter-readings bench.connect.vehicle-readings)
  [[ $CONNECT_RECORDS == "$total" ]] ||
    { eie_die "connect: $CONNECT_RECORDS JSON records produced, expected $total"; exit 1; }
}

connect__config() { # KIND NAME
  local pk=""
  [[ $connect__mode == upsert ]] && pk="\"primary.key.mode\": \"record_value\", \"primary.key.fields\": \"$1_id,ts\","
  cat <<EOF
{"name": "$2", "config": {
  "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
  "tasks.max": "$connect__tasks",
  "topics": "bench.connect.$1-readings",
  "connection.url": "jdbc:postgresql://${DATABASE_URL#postgresql://eie@}?reWriteBatchedInserts=true",
  "connection.username": "eie",
  "connection.password": "unused",
  "insert.mode": "$connect__mode", $pk
  "schema.evolution": "none",
  "batch.size": "$connect__batch",
  "collection.name.format": "connect_$1_history"}}
EOF
}

# The records both connectors of run RUN have committed (their groups' offsets).
connect__committed() {
  local kind sum=0 n
  for kind in meter vehicle; do
    n=$(curl -fsS "http://127.0.0.1:$CONNECT_PORT/connectors/bench-$kind-$1/offsets" 2>/dev/null |
      jq '[.offsets[].offset.kafka_offset] | add // 0') || n=0
    sum=$((sum + n))
  done
  echo "$sum"
}

# connect_drain RUN: into the emptied tables, from the connectors' creation to
# the last record's offset committed (the sink commits after its rows);
# prints the seconds, and the CPU use over them into $BENCH_DIR/connect.RUN.cpu.
connect_drain() {
  local run=$1 kind start end done
  bench_psql -c "TRUNCATE connect_meter_history, connect_vehicle_history" -c CHECKPOINT
  start=$(bench_now)
  bench_cpu_begin connect="$(cat "$CONNECT_DIR/connect.pid")"
  for kind in meter vehicle; do
    connect__config "$kind" "bench-$kind-$run" |
      curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @- \
        "http://127.0.0.1:$CONNECT_PORT/connectors" ||
      { eie_die "connect: could not create the connector bench-$kind-$run"; exit 1; }
  done
  while done=$(connect__committed "$run"); ((done < CONNECT_RECORDS)); do
    if curl -fsS "http://127.0.0.1:$CONNECT_PORT/connectors/bench-meter-$run/status" \
      "http://127.0.0.1:$CONNECT_PORT/connectors/bench-vehicle-$run/status" 2>/dev/null | grep -q FAILED; then
      eie_show_tail "$CONNECT_DIR/connect.log"
      eie_die "connect: a task failed (log: $CONNECT_DIR/connect.log)"
      exit 1
    fi
    sleep 0.2
  done
  end=$(bench_now)
  bench_cpu_end connect >"$BENCH_DIR/connect.$run.cpu"
  for kind in meter vehicle; do
    curl -fsS -o /dev/null -X DELETE "http://127.0.0.1:$CONNECT_PORT/connectors/bench-$kind-$run"
  done
  echo "$end - $start" | bc
}

# The last run stored every reading once, as the cold sink did: the same
# rows, the same times (a time zone gone wrong would move them all).
connect_check() {
  local same
  same=$(bench_psql -c "SELECT (SELECT count(*) FROM connect_meter_history c JOIN meter_history h USING (meter_id, ts)
                                 WHERE c.kwh_consumed_ac = h.kwh_consumed_ac AND c.voltage = h.voltage)
                             + (SELECT count(*) FROM connect_vehicle_history c JOIN vehicle_history h USING (vehicle_id, ts)
                                 WHERE c.soc = h.soc AND c.kwh_delivered_dc = h.kwh_delivered_dc
                                   AND c.battery_temp = h.battery_temp)")
  [[ $same == "$total" ]] ||
    { eie_die "connect: $same of $total rows stored by Connect match the cold sink's history"; exit 1; }
}
