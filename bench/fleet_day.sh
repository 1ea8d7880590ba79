# shellcheck shell=bash
# Sourced by bench/api.sh and bench/replay.sh: a day of a 10,000-vehicle fleet
# in a private Kafka + PostgreSQL whose data outlives the run.
#
# Loads 10,000 vehicles and 10,000 meters with 24 h of readings, one per device
# per minute (28.8 million rows: 14.4 M meter, 14.4 M vehicle readings; with
# banks of N chargers per meter, 10,000 / N meters and fewer meter rows), through
# the real pipeline: the simulator's backfill into Kafka, the cold and the hot
# consumer into PostgreSQL; then VACUUM (ANALYZE), so pages are all-visible.
# Loading takes minutes, so the stack and its data live on in
# $EIE_STATE_DIR/bench-api (ports saved there too): a later run finds the data
# loaded (marker table and row counts) and goes straight to measuring.
# Everything a run starts (Kafka, PostgreSQL, consumers, API) is stopped by pid
# when it ends, on error or Ctrl-C too; the data stays.
#
# Expects: vehicles, hours (set by the caller from the settings below).
# Leaves: the stack running, DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, BIN,
# LOG_DIR, RUN_DIR, pg_port, from, to, meters, and the function
# history_counts_ok WHAT (the history holds a reading per device
# and minute, else says so).
#
# Settings (environment):
#   EIE_BENCH_VEHICLES=10000    vehicles, and as many meters
#   EIE_BENCH_HOURS=24          hours of readings
#   EIE_BENCH_API_DIR=DIR       stack and data (default $EIE_STATE_DIR/bench-api);
#                               delete it to reclaim the space (about 7 GB at
#                               full size) once no run uses it
#   EIE_BENCH_RELOAD=1          load afresh even if the data is there (needed
#                               too to replace data of another size or depot)
#   EIE_SIM_CHARGERS_PER_METER=1  the depot (eie-simulate --chargers-per-meter):
#                               1, a charger and meter per vehicle; N, banks of N
#                               chargers sharing a meter (vehicles / N meters)

bench_depot "$vehicles"
meter_rows_want=$((meters * hours * 60)) vehicle_rows_want=$((vehicles * hours * 60))
readings_want=$((meter_rows_want + vehicle_rows_want))

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
flock -n 9 || { eie_die "another benchmark uses $API_DIR"; exit 1; }

# --- tools -------------------------------------------------------------------
eie_pkg_install
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
  for s in api bare consumer-hot consumer-cold replay; do
    eie_proc_stop "$RUN_DIR/$s.pid" || true
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
    eie_port_free "$@"
  fi
}

# Both, PostgreSQL while the broker's JVM boots. Kafka runs on every run, not
# only to load: the API is also a producer (HTTP ingest) and is ready only with
# its broker, as deployed.
start_stack() {
  kafka_fetch
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
elif [[ $(load_get vehicles) != "$vehicles" || $(load_get hours) != "$hours" ||
        $(load_get chargers_per_meter) != "$chargers_per_meter" ]]; then
  # Not replaced unasked: loading the full size takes many minutes. Data loaded
  # before the depot was a setting has a meter per vehicle.
  loaded_depot=$(load_get chargers_per_meter)
  if [[ -z $loaded_depot && $chargers_per_meter == 1 && $(load_get vehicles) == "$vehicles" &&
        $(load_get hours) == "$hours" ]]; then
    eie_warn "data: loaded by an older simulator, whose reassignments left meters feeding two vehicles at once; EIE_BENCH_RELOAD=1 loads it afresh"
  else
    eie_die "$API_DIR holds $(load_get vehicles) vehicles over $(load_get hours) h with ${loaded_depot:-1} charger(s) per meter, not $vehicles over $hours h with $chargers_per_meter;
  replace it with EIE_BENCH_RELOAD=1, or use another folder with EIE_BENCH_API_DIR=DIR"
    exit 1
  fi
fi
if [[ -n $reason ]]; then
  [[ -z $stage ]] || eie_log "data: $reason: loading afresh"
  wipe
  stage=""
fi
start_stack

counts() { # prints "meter_rows vehicle_rows" of the loaded day (bench/api.sh adds backlogs before it)
  local day="ts >= '$(load_get from)' AND ts < '$(load_get to)'"
  bench_psql -F ' ' -c "SELECT (SELECT count(*) FROM meter_history WHERE $day), (SELECT count(*) FROM vehicle_history WHERE $day)"
}
# history_counts_ok WHAT: a reading per device and minute, or says what WHAT left.
history_counts_ok() {
  local meter_rows vehicle_rows
  read -r meter_rows vehicle_rows < <(counts)
  [[ $meter_rows == "$meter_rows_want" && $vehicle_rows == "$vehicle_rows_want" ]] && return 0
  eie_warn "$1: expected $meter_rows_want meter and $vehicle_rows_want vehicle rows, found $meter_rows and $vehicle_rows"
  return 1
}

if [[ $stage == loaded ]]; then
  marker=$(bench_psql -F ' ' -c "SELECT vehicles, hours, readings FROM bench_api_load" 2>/dev/null || true)
  if [[ $marker != "$vehicles $hours $readings_want" ]] || ! history_counts_ok data; then
    eie_warn "data: expected the load marker '$vehicles $hours $readings_want', found '$marker', and the rows above: loading afresh"
    wipe
    stage=""
    start_stack
  fi
fi

# --- loading -----------------------------------------------------------------

# Both consumers, each from where its group stopped.
COLD_GROUP=${EIE_TOPIC_PREFIX}cold HOT_GROUP=${EIE_TOPIC_PREFIX}hot
consumers_start() { # [STORE...]: both by default
  local s
  for s in ${*:-cold hot}; do
    : >"$LOG_DIR/consumer-$s.log"
    eie_proc_start "consumer-$s" "$RUN_DIR/consumer-$s.pid" "$LOG_DIR/consumer-$s.log" \
      "$BIN/eie-consumer" --store "$s" --no-migrate 9>&-
  done
}
consumers_stop() {
  local s
  for s in hot cold; do eie_proc_stop "$RUN_DIR/consumer-$s.pid"; done
}
stored_offsets() { # prints "cold hot": the messages each group has stored
  bench_psql -F ' ' -c "SELECT
    coalesce(sum(next_offset) FILTER (WHERE consumer_group = '$COLD_GROUP'), 0),
    coalesce(sum(next_offset) FILTER (WHERE consumer_group = '$HOT_GROUP'), 0) FROM sink_offsets"
}

# Until the offsets the consumers stored reach the number of messages
# produced; progress as they go. Dies when a consumer exits.
consumed_wait() {
  local readings assignments want_cold want_hot
  readings=$(end_offsets "${EIE_TOPIC_PREFIX}meter-readings" "${EIE_TOPIC_PREFIX}vehicle-readings")
  assignments=$(end_offsets "${EIE_TOPIC_PREFIX}vehicle-assignments")
  want_cold=$readings want_hot=$((readings + assignments))
  local tty=0 t0 now last=0 cold hot done0="" pct_cold pct_hot rate s
  [[ -t 2 ]] && tty=1
  t0=$(bench_now)
  while :; do
    read -r cold hot < <(stored_offsets)
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
      if ! eie_proc_alive "$RUN_DIR/consumer-$s.pid" >/dev/null; then
        ((tty)) && printf '\n' >&2
        eie_show_tail "$LOG_DIR/consumer-$s.log"
        eie_die "consume: the $s consumer exited (log: $LOG_DIR/consumer-$s.log)"
        return 1
      fi
    done
    sleep 1
  done
}
consume() {
  consumers_start
  consumed_wait || return 1
  consumers_stop
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
    load_put chargers_per_meter "$chargers_per_meter"
    load_put from "$from"
    load_put to "$to"
    load_put stage producing
    eie_log "produce: $vehicles vehicles and $meters meters ($chargers_per_meter charger(s) each), $from to $to: $readings_want readings and the assignments into Kafka"
    t0=$(bench_now)
    # A clean day (no repeated, late or invalid readings), so the history holds
    # exactly one reading per device and minute; vehicles move between meters at
    # the simulator's default rate.
    "$BIN/eie-simulate" --vehicles "$vehicles" --chargers-per-meter "$chargers_per_meter" \
      --from "$from" --to "$to" --interval-s 60 \
      --duplicate-rate 0 --out-of-order-rate 0 --late-rate 0 --invalid-rate 0
    t1=$(bench_now)
    eie_log "produce: done in $(echo "$t1 - $t0" | bc) s"
    load_put stage produced
  else
    eie_log "produce: already done; consuming what is left"
  fi
  consume
  history_counts_ok load || exit 1
  vacuum_all
  bench_psql <<SQL
CREATE TABLE IF NOT EXISTS bench_api_load (
    vehicles int NOT NULL, hours int NOT NULL, from_ts timestamptz NOT NULL,
    to_ts timestamptz NOT NULL, readings bigint NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now());
TRUNCATE bench_api_load;
INSERT INTO bench_api_load (vehicles, hours, from_ts, to_ts, readings)
VALUES ($vehicles, $hours, '$(load_get from)', '$(load_get to)', $readings_want);
SQL
  load_put stage loaded
  load_t1=$(bench_now)
  loaded_how="loaded in $(printf '%.0f' "$(echo "$load_t1 - $load_t0" | bc)") s"
else
  loaded_how="loaded earlier"
fi
from=$(load_get from)
to=$(load_get to)
echo "data: $vehicles vehicles, $meters meters ($chargers_per_meter charger(s) each), $readings_want readings from $from to $to ($loaded_how)"
