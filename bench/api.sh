#!/usr/bin/env bash
# Benchmark of the REST API over a day of a 10,000-vehicle fleet.
#
#   bench/api.sh
#
# Loads 10,000 vehicles and 10,000 meters with 24 h of readings, one per device
# per minute (28.8 million rows: 14.4 M meter, 14.4 M vehicle readings), through
# the real pipeline: the simulator's backfill into Kafka, the cold and the hot
# consumer into PostgreSQL; then VACUUM (ANALYZE), so pages are all-visible.
# Loading takes minutes, so the stack and its data live on in
# $EIE_STATE_DIR/bench-api (ports saved there too): a later run finds the data
# loaded (marker table and row counts) and goes straight to measuring.
# Everything a run starts (Kafka, PostgreSQL, consumers, API) is stopped by pid
# when it ends, on error or Ctrl-C too; the data stays.
#
# Then starts eie-api, and for each endpoint runs wrk with a random vehicle per
# request: a warm-up, then the measurement:
#   performance  GET /v1/analytics/performance/V<n>?from=..&to=..  over the
#                loaded time range (saved with the data), so a later run still
#                asks for full 24 h windows
#   state        GET /v1/vehicles/V<n>   (the latest state)
# and ends with
#   api: performance_rps=N performance_p99_ms=N state_rps=N state_p99_ms=N
# A run where any response was not 2xx, or any socket error or timeout
# occurred, says so before that line and exits with status 1.
#
# Settings (environment):
#   EIE_BENCH_VEHICLES=10000    vehicles, and as many meters
#   EIE_BENCH_HOURS=24          hours of readings
#   EIE_BENCH_API_DIR=DIR       stack and data (default $EIE_STATE_DIR/bench-api);
#                               delete it to reclaim the space (about 7 GB at
#                               full size) once no run uses it
#   EIE_BENCH_RELOAD=1          load afresh even if the data is there (needed
#                               too to replace data of another size)
#   EIE_BENCH_DURATION=30       seconds measured per endpoint
#   EIE_BENCH_WARMUP=5          seconds of warm-up per endpoint (0: none)
#   EIE_BENCH_CONNECTIONS=32    wrk connections
#   EIE_BENCH_THREADS=2         wrk threads
#   EIE_BENCH_ENDPOINTS="performance state"   which to measure; one left out
#                               shows as "-" in the summary
#   EIE_DB_POOL_SIZE            eie-api's PostgreSQL connections (its default: 4)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

vehicles=${EIE_BENCH_VEHICLES:-10000}
hours=${EIE_BENCH_HOURS:-24}
duration=${EIE_BENCH_DURATION:-30}
warmup=${EIE_BENCH_WARMUP:-5}
connections=${EIE_BENCH_CONNECTIONS:-32}
threads=${EIE_BENCH_THREADS:-2}
endpoints=${EIE_BENCH_ENDPOINTS:-performance state}
for setting in vehicles hours duration connections threads; do
  [[ ${!setting} =~ ^[1-9][0-9]*$ ]] || { eie_die "bench/api.sh: $setting must be a positive integer, not '${!setting}'"; exit 2; }
done
[[ $warmup =~ ^[0-9]+$ ]] || { eie_die "bench/api.sh: EIE_BENCH_WARMUP must be a whole number of seconds"; exit 2; }
for e in $endpoints; do
  [[ $e == performance || $e == state ]] || { eie_die "bench/api.sh: unknown endpoint '$e' in EIE_BENCH_ENDPOINTS (performance, state)"; exit 2; }
done
per_table=$((vehicles * hours * 60)) # readings per history table
lua=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/api.lua

# --- the persistent folder, one run at a time --------------------------------
API_DIR=${EIE_BENCH_API_DIR:-$EIE_STATE_DIR/bench-api}
mkdir -p "$API_DIR"
# As root, PostgreSQL runs as `postgres` and must get in.
chmod 755 "$API_DIR"
API_DIR=$(cd "$API_DIR" && pwd)
LOAD_FILE=$API_DIR/load.env # vehicles, hours, from, to, stage (producing|produced|loaded)
PORTS_FILE=$API_DIR/ports.env
LOG_DIR=$API_DIR/logs
RUN_DIR=$API_DIR/run
# The services get the lock's descriptor closed (9>&-): one left running by a
# killed run must not hold the lock.
exec 9>"$API_DIR/lock"
flock -n 9 || { eie_die "another bench/api.sh uses $API_DIR"; exit 1; }

# --- tools -------------------------------------------------------------------
eie_install_packages
if ! command -v wrk >/dev/null; then
  if [[ ${EIE_SKIP_INSTALL:-0} != 1 ]] && eie_is_root && command -v apt-get >/dev/null; then
    eie_log "installing packages: wrk"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk
  else
    eie_die "wrk not found; install it (Debian: apt-get install wrk)"
    exit 1
  fi
fi
eie_build build >/dev/null
BIN=$EIE_REPO_ROOT/build/bin
mkdir -p "$LOG_DIR" "$RUN_DIR"

# --- stack -------------------------------------------------------------------
export EIE_PG_FAST=0 # fsync on, as in production
export EIE_KAFKA_HEAP_OPTS=${EIE_KAFKA_HEAP_OPTS:--Xmx1g -Xms1g}
export EIE_TOPIC_PREFIX=bench.
export DATABASE_URL KAFKA_BOOTSTRAP_SERVERS

# shellcheck disable=SC2317 # run by the EXIT trap
teardown() {
  local s
  for s in api consumer-hot consumer-cold; do
    eie_stop_pidfile "$RUN_DIR/$s.pid" || true
  done
  kafka_stop "$API_DIR/kafka" || true
  pg_stop "$API_DIR/pg" || true
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Ports are kept from run to run; one that another process took meanwhile is
# replaced (and saved).
pg_port="" kafka_port="" kafka_cport=""
if [[ -f $PORTS_FILE ]]; then
  read -r pg_port kafka_port kafka_cport <"$PORTS_FILE" || true
fi
save_ports() { printf '%s %s %s\n' "$pg_port" "$kafka_port" "$kafka_cport" >"$PORTS_FILE"; }
# fresh_port CURRENT [EXCLUDE...]: CURRENT if set and free, else a free one
fresh_port() {
  local current=$1
  shift
  if [[ $current =~ ^[0-9]+$ ]] && ! eie_port_listening "$current"; then
    echo "$current"
  else
    eie_free_port "$@"
  fi
}

# Both, PostgreSQL while the broker's JVM boots. Kafka runs on every run, not
# only to load: the API is also a producer (HTTP ingest) and is ready only with
# its broker, as deployed.
start_stack() {
  eie_fetch_kafka
  if ! pg_running "$API_DIR/pg" >/dev/null; then
    pg_port=$(fresh_port "$pg_port" "$kafka_port" "$kafka_cport")
  fi
  if ! kafka_running "$API_DIR/kafka" >/dev/null; then
    kafka_port=$(fresh_port "$kafka_port" "$pg_port")
    kafka_cport=$(fresh_port "$kafka_cport" "$pg_port" "$kafka_port")
  fi
  save_ports
  kafka_launch "$API_DIR/kafka" "$kafka_port" "$kafka_cport" 9>&-
  pg_start "$API_DIR/pg" "$pg_port" 9>&-
  pg_create_db "$pg_port" bench
  kafka_wait_ready "$API_DIR/kafka" "$kafka_port"
  DATABASE_URL=postgresql://eie@127.0.0.1:$pg_port/bench
  KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$kafka_port
  # Every run: picks up migrations added since the data was loaded.
  if ! "$BIN/eie-admin" topics 2>>"$LOG_DIR/admin.log" || ! "$BIN/eie-admin" migrate 2>>"$LOG_DIR/admin.log"; then
    eie_show_tail "$LOG_DIR/admin.log"
    eie_die "eie-admin failed (log: $LOG_DIR/admin.log)"
    return 1
  fi
}

# Deletes the stack's data (not the lock, the ports or the logs' folder).
wipe() {
  kafka_stop "$API_DIR/kafka" || true
  pg_stop "$API_DIR/pg" || true
  rm -rf "${API_DIR:?}/kafka" "${API_DIR:?}/pg" "$LOAD_FILE"
}

load_get() {
  [[ -f $LOAD_FILE ]] || return 0
  sed -n "s/^$1=//p" "$LOAD_FILE" | tail -n 1
}
load_put() { # KEY VALUE: sets one entry, atomically
  { grep -v "^$1=" "$LOAD_FILE" 2>/dev/null || true; printf '%s=%s\n' "$1" "$2"; } >"$LOAD_FILE.tmp"
  mv -f "$LOAD_FILE.tmp" "$LOAD_FILE"
}

# --- is the data there? --------------------------------------------------------
stage=$(load_get stage)
reason=""
if [[ ${EIE_BENCH_RELOAD:-0} == 1 ]]; then
  reason="EIE_BENCH_RELOAD=1"
elif [[ -z $stage ]]; then
  reason="nothing loaded yet"
elif [[ $stage == producing ]]; then
  reason="the previous load stopped while producing"
elif [[ $(load_get vehicles) != "$vehicles" || $(load_get hours) != "$hours" ]]; then
  # Not replaced unasked: loading the full size takes many minutes.
  eie_die "$API_DIR holds $(load_get vehicles) vehicles over $(load_get hours) h, not $vehicles over $hours h;
  replace it with EIE_BENCH_RELOAD=1, or use another folder with EIE_BENCH_API_DIR=DIR"
  exit 1
fi
if [[ -n $reason ]]; then
  [[ -z $stage ]] || eie_log "data: $reason: loading afresh"
  wipe
  stage=""
fi
start_stack

counts() { # prints "meter_rows vehicle_rows"
  bench_psql -F ' ' -c "SELECT (SELECT count(*) FROM meter_history), (SELECT count(*) FROM vehicle_history)"
}

if [[ $stage == loaded ]]; then
  marker=$(bench_psql -F ' ' -c "SELECT vehicles, hours, readings FROM bench_api_load" 2>/dev/null || true)
  read -r meter_rows vehicle_rows < <(counts)
  if [[ $marker != "$vehicles $hours $((2 * per_table))" || $meter_rows != "$per_table" || $vehicle_rows != "$per_table" ]]; then
    eie_warn "data: expected $per_table rows per history table and a load marker, found $meter_rows meter and $vehicle_rows vehicle rows, marker '$marker': loading afresh"
    wipe
    stage=""
    start_stack
  fi
fi

# --- loading -----------------------------------------------------------------
# end_offsets TOPIC...: the messages produced into the topics (the sum of their
# partitions' end offsets). Retried: a broker just started may not have taken
# the lead of its partitions yet.
end_offsets() {
  local t p n args=() out i
  for ((i = 0; i < 60; i++)); do
    args=()
    for t; do
      n=$(kcat -L -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$t" 2>/dev/null | grep -c '^ *partition ' || true)
      for ((p = 0; p < n; p++)); do args+=(-t "$t:$p:-1"); done
    done
    if ((${#args[@]} > 0)) && out=$(kcat -Q -b "$KAFKA_BOOTSTRAP_SERVERS" "${args[@]}" 2>/dev/null); then
      awk '$(NF - 1) == "offset" { s += $NF } END { print s + 0 }' <<<"$out"
      return 0
    fi
    sleep 1
  done
  eie_die "kafka: could not read the end offsets of $*"
}

# Both consumers at once, from where they stopped, until the offsets they stored
# reach the number of messages produced; progress as they go.
consume() {
  local readings assignments want_cold want_hot
  readings=$(end_offsets "${EIE_TOPIC_PREFIX}meter-readings" "${EIE_TOPIC_PREFIX}vehicle-readings")
  assignments=$(end_offsets "${EIE_TOPIC_PREFIX}vehicle-assignments")
  want_cold=$readings want_hot=$((readings + assignments))
  local cold_group=${EIE_TOPIC_PREFIX}cold hot_group=${EIE_TOPIC_PREFIX}hot s
  for s in cold hot; do
    eie_start_bg "consumer-$s" "$RUN_DIR/consumer-$s.pid" "$LOG_DIR/consumer-$s.log" \
      "$BIN/eie-consumer" --store "$s" --no-migrate 9>&-
  done
  local tty=0 t0 now last=0 cold hot done0="" pct_cold pct_hot rate
  [[ -t 2 ]] && tty=1
  t0=$(bench_now)
  while :; do
    read -r cold hot < <(bench_psql -F ' ' -c "SELECT
      coalesce(sum(next_offset) FILTER (WHERE consumer_group = '$cold_group'), 0),
      coalesce(sum(next_offset) FILTER (WHERE consumer_group = '$hot_group'), 0) FROM sink_offsets")
    [[ -n $done0 ]] || done0=$((cold + hot))
    now=$(bench_now)
    pct_cold=$((100 * cold / want_cold)) pct_hot=$((100 * hot / want_hot))
    rate=$(echo "($cold + $hot - $done0) / ($now - $t0 + 0.001)" | bc)
    if ((cold >= want_cold && hot >= want_hot)); then
      ((tty)) && printf '\r\033[K' >&2
      eie_log "consume: cold $cold/$want_cold, hot $hot/$want_hot messages stored in $(printf '%.0f' "$(echo "$now - $t0" | bc)") s"
      break
    fi
    if ((tty)); then
      printf '\rconsume: cold %d%% (%d/%d), hot %d%% (%d/%d), %d msg/s ' \
        "$pct_cold" "$cold" "$want_cold" "$pct_hot" "$hot" "$want_hot" "$rate" >&2
    elif (($(printf '%.0f' "$now") - last >= 10)); then
      last=$(printf '%.0f' "$now")
      eie_log "consume: cold $pct_cold% ($cold/$want_cold), hot $pct_hot% ($hot/$want_hot), $rate msg/s"
    fi
    for s in cold hot; do
      if ! eie_pidfile_alive "$RUN_DIR/consumer-$s.pid" >/dev/null; then
        ((tty)) && printf '\n' >&2
        eie_show_tail "$LOG_DIR/consumer-$s.log"
        eie_die "consume: the $s consumer exited (log: $LOG_DIR/consumer-$s.log)"
        return 1
      fi
    done
    sleep 1
  done
  for s in hot cold; do eie_stop_pidfile "$RUN_DIR/consumer-$s.pid"; done
}

# Every table the consumers wrote, one at a time for progress, so the
# history's pages are all-visible (index-only scans) and statistics fresh.
vacuum_all() {
  local rels=() i t0 t1
  mapfile -t rels < <(bench_psql -c "SELECT c.oid::regclass FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent IN ('meter_history'::regclass, 'vehicle_history'::regclass) ORDER BY 1")
  rels+=(meter_state vehicle_state vehicle_meter_assignment)
  for ((i = 0; i < ${#rels[@]}; i++)); do
    t0=$(bench_now)
    bench_psql -c "VACUUM (ANALYZE) ${rels[i]}"
    t1=$(bench_now)
    eie_log "vacuum: $((i + 1))/${#rels[@]} ${rels[i]} ($(echo "$t1 - $t0" | bc) s)"
  done
  # Statistics of the partitioned parents, which autovacuum never gathers.
  bench_psql -c "ANALYZE meter_history, vehicle_history" -c CHECKPOINT
}

if [[ $stage != loaded ]]; then
  load_t0=$(bench_now)
  if [[ $stage != produced ]]; then
    to=$(date -u +%Y-%m-%dT%H:%M:00Z)
    from=$(date -u -d "@$(($(date -d "$to" +%s) - hours * 3600))" +%Y-%m-%dT%H:%M:%SZ)
    : >"$LOAD_FILE"
    load_put vehicles "$vehicles"
    load_put hours "$hours"
    load_put from "$from"
    load_put to "$to"
    load_put stage producing
    eie_log "produce: $vehicles vehicles and $vehicles meters, $from to $to: $((2 * per_table)) readings and the assignments into Kafka"
    t0=$(bench_now)
    # A clean day (no repeated, late or invalid readings), so the history holds
    # exactly one reading per device and minute; vehicles move between meters at
    # the simulator's default rate.
    "$BIN/eie-simulate" --vehicles "$vehicles" --from "$from" --to "$to" --interval-s 60 \
      --duplicate-rate 0 --out-of-order-rate 0 --late-rate 0 --invalid-rate 0
    t1=$(bench_now)
    eie_log "produce: done in $(echo "$t1 - $t0" | bc) s"
    load_put stage produced
  else
    eie_log "produce: already done; consuming what is left"
  fi
  consume
  read -r meter_rows vehicle_rows < <(counts)
  if [[ $meter_rows != "$per_table" || $vehicle_rows != "$per_table" ]]; then
    eie_die "load: expected $per_table rows per history table, found $meter_rows meter and $vehicle_rows vehicle rows"
    exit 1
  fi
  vacuum_all
  bench_psql <<SQL
CREATE TABLE IF NOT EXISTS bench_api_load (
    vehicles int NOT NULL, hours int NOT NULL, from_ts timestamptz NOT NULL,
    to_ts timestamptz NOT NULL, readings bigint NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now());
TRUNCATE bench_api_load;
INSERT INTO bench_api_load (vehicles, hours, from_ts, to_ts, readings)
VALUES ($vehicles, $hours, '$(load_get from)', '$(load_get to)', $((2 * per_table)));
SQL
  load_put stage loaded
  load_t1=$(bench_now)
  loaded_how="loaded in $(printf '%.0f' "$(echo "$load_t1 - $load_t0" | bc)") s"
else
  loaded_how="loaded earlier"
fi
from=$(load_get from)
to=$(load_get to)
echo "data: $vehicles vehicles, $vehicles meters, $((2 * per_table)) readings from $from to $to ($loaded_how)"

# The history and state into the page cache, as they would be on a server that
# has been serving for a while (whatever the host did since the load).
t0=$(bench_now)
if blocks=$(bench_psql -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" \
  -c "SELECT coalesce(sum(pg_prewarm(c.oid, 'read')), 0) FROM pg_class c
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'i')" 2>"$LOG_DIR/prewarm.log"); then
  eie_log "prewarm: $((blocks * 8 / 1024)) MB read in $(echo "$(bench_now) - $t0" | bc) s"
else
  eie_warn "prewarm: skipped ($(tr '\n' ' ' <"$LOG_DIR/prewarm.log"))"
fi

# --- the API -------------------------------------------------------------------
api_port=$(eie_free_port "$pg_port")
eie_start_bg api "$RUN_DIR/api.pid" "$LOG_DIR/api.log" "$BIN/eie-api" --port "$api_port" 9>&-
base=http://127.0.0.1:$api_port
api_ready() { # PATH SECONDS: until PATH answers 2xx
  local t_end=$((SECONDS + $2))
  until curl -fsS -o /dev/null --max-time 2 "$base$1" 2>/dev/null; do
    if ((SECONDS >= t_end)) || ! eie_pidfile_alive "$RUN_DIR/api.pid" >/dev/null; then
      eie_show_tail "$LOG_DIR/api.log"
      eie_die "api: $base$1 did not answer 2xx: $(curl -sS --max-time 5 "$base$1" 2>&1 | head -c 300) (log: $LOG_DIR/api.log)"
      return 1
    fi
    sleep 0.2
  done
}
api_ready /healthz 60
api_ready /readyz 30
pool=${EIE_DB_POOL_SIZE:-$("$BIN/eie-api" --help | sed -n 's/.*--db-pool-size .*(default \([0-9]*\)).*/\1/p')}
echo "api: eie-api on $base, pool ${pool:-?} connections; wrk $threads threads, $connections connections, ${warmup} s warm-up and ${duration} s per endpoint"

declare -A prefix query
prefix[performance]=/v1/analytics/performance/
query[performance]="?from=$from&to=$to"
prefix[state]=/v1/vehicles/
query[state]=""

# One request first: an endpoint that does not answer 200 is not worth timing.
probe() {
  local name=$1 url code body
  url=$base${prefix[$name]}V1${query[$name]}
  body=$LOG_DIR/probe.$name.json
  code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 10 "$url") || code=000
  if [[ $code != 200 ]]; then
    eie_die "$name: GET ${url#"$base"} answered $code: $(head -c 300 "$body" 2>/dev/null)"
    return 1
  fi
  if [[ $name == performance ]]; then
    local n
    n=$(jq -r '"\(.metrics.meterReadings) \(.metrics.vehicleReadings)"' "$body")
    [[ $n == "$((hours * 60)) $((hours * 60))" ]] ||
      eie_warn "$name: V1 has $n meter and vehicle readings in the window, expected $((hours * 60)) each"
  fi
  eie_log "$name: GET ${url#"$base"} -> 200 $(jq -c . "$body" | head -c 200)"
}

# measure NAME: warm-up, then the measured run; sets R[field] from its result line
failed=0
measure() {
  local name=$1 out=$LOG_DIR/wrk.$1.txt line kv
  local args=(--latency -t "$threads" -c "$connections" --timeout 10s -s "$lua" "$base"
    -- "${prefix[$name]}" "$vehicles" "${query[$name]}")
  if ((warmup > 0)); then
    wrk -d "${warmup}s" "${args[@]}" >"$LOG_DIR/wrk.$name.warmup.txt"
  fi
  wrk -d "${duration}s" "${args[@]}" >"$out"
  line=$(grep '^wrk-result ' "$out") || { cat "$out" >&2; eie_die "$name: no result from wrk"; return 1; }
  declare -gA R=()
  for kv in ${line#wrk-result }; do R[${kv%%=*}]=${kv#*=}; done
  local errors=$((R[non2xx] + R[connect_errors] + R[read_errors] + R[write_errors] + R[timeouts]))
  printf '%s: %d requests in %.1f s = %.0f req/s; latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; ' \
    "$name" "${R[requests]}" "${R[duration_s]}" "${R[rps]}" "${R[p50_ms]}" "${R[p90_ms]}" "${R[p99_ms]}" "${R[max_ms]}"
  if ((errors == 0)); then
    echo "no errors"
  else
    echo "ERRORS: ${R[non2xx]} not 2xx, ${R[connect_errors]} connect, ${R[read_errors]} read, ${R[write_errors]} write, ${R[timeouts]} timeouts"
    failed=1
  fi
}

declare -A rps=([performance]=- [state]=-) p99=([performance]=- [state]=-)
for name in $endpoints; do
  probe "$name"
  measure "$name"
  rps[$name]=$(printf '%.0f' "${R[rps]}")
  p99[$name]=$(printf '%.2f' "${R[p99_ms]}")
done
if ((failed)); then
  echo "api: THE RUN HAD ERRORS (non-2xx responses or socket errors, above); wrk output in $LOG_DIR"
fi
echo "api: performance_rps=${rps[performance]} performance_p99_ms=${p99[performance]} state_rps=${rps[state]} state_p99_ms=${p99[state]}"
exit "$failed"
