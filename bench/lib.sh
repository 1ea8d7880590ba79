# shellcheck shell=bash
# Shared by the bench scripts: a private Kafka + PostgreSQL on free ports with
# production-like settings (fsync on), stopped on exit; and small helpers.
# shellcheck source=../deploy/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/deploy/lib.sh"

bench_setup() {
  eie_pkg_install
  kafka_fetch
  eie_build build >/dev/null
  BIN=$EIE_REPO_ROOT/build/bin
  BENCH_DIR=$(mktemp -d /tmp/eie-bench.XXXXXX)
  chmod 755 "$BENCH_DIR"
  trap bench_teardown EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local kport cport pport
  kport=$(eie_port_free)
  cport=$(eie_port_free "$kport")
  pport=$(eie_port_free "$kport" "$cport")
  export EIE_KAFKA_HEAP_OPTS=${EIE_KAFKA_HEAP_OPTS:--Xmx1g -Xms1g}
  export EIE_PG_FAST=0
  # EIE_BENCH_PG_TMPFS=1: PostgreSQL's data directory in memory (/dev/shm), a
  # stand-in for storage faster than this machine's disk (fsync stays on).
  BENCH_PG_DIR=$BENCH_DIR/pg
  if [[ ${EIE_BENCH_PG_TMPFS:-0} == 1 ]]; then
    BENCH_PG_TMPFS=$(mktemp -d /dev/shm/eie-bench-pg.XXXXXX)
    chmod 755 "$BENCH_PG_TMPFS"
    BENCH_PG_DIR=$BENCH_PG_TMPFS/pg
  fi
  # EIE_BENCH_KAFKA_SECURE=1: the broker in the secured profile
  # (deploy/lib/kafka_secure.sh: SASL_SSL, SCRAM-SHA-512, ACLs), each program
  # connecting as its own user (bench_kafka_as).
  BENCH_KAFKA_SECURE=${EIE_BENCH_KAFKA_SECURE:-0}
  if [[ $BENCH_KAFKA_SECURE == 1 ]]; then
    kafka_secure_prepare "$BENCH_DIR/kafka" >"$BENCH_DIR/secure.log" 2>&1 ||
      { eie_show_tail "$BENCH_DIR/secure.log"; eie_die "bench: cannot prepare the secured Kafka profile"; exit 1; }
  fi
  kafka_launch "$BENCH_DIR/kafka" "$kport" "$cport"
  pg_start "$BENCH_PG_DIR" "$pport"
  kafka_wait_ready "$BENCH_DIR/kafka" "$kport"
  export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$kport
  export DATABASE_URL=postgresql://eie@127.0.0.1:$pport/bench
  export EIE_TOPIC_PREFIX=bench.
  psql "postgresql://eie@127.0.0.1:$pport/postgres" -X -q -c "CREATE DATABASE bench" >/dev/null
  bench_kafka_as admin "$BIN/eie-admin" topics 2>"$BENCH_DIR/admin.log"
  if [[ $BENCH_KAFKA_SECURE == 1 ]]; then
    kafka_secure_grant "$BENCH_DIR/kafka" "$kport" "$EIE_TOPIC_PREFIX" >>"$BENCH_DIR/secure.log" 2>&1 ||
      { eie_show_tail "$BENCH_DIR/secure.log"; eie_die "bench: cannot grant the ACLs"; exit 1; }
  fi
  "$BIN/eie-admin" migrate 2>>"$BENCH_DIR/admin.log"
}

# bench_kafka_env USER: the environment (NAME=value lines, for env) that makes
# a program connect as USER of the secured profile (admin, eie-producer,
# eie-consumer, eie-api) when the bench runs it; nothing otherwise.
bench_kafka_env() {
  [[ ${BENCH_KAFKA_SECURE:-0} == 1 ]] || return 0
  printf 'EIE_KAFKA_PROPERTIES=%s\n' "$(kafka_secure_props "$BENCH_DIR/kafka" "$1")"
}

# bench_kafka_as USER COMMAND...: COMMAND as USER (bench_kafka_env), in the
# foreground. A program started with & whose pid is wanted in $! calls env
# itself with bench_kafka_env's lines: a function in the background is a
# subshell of its own (see drain in ingest.sh).
bench_kafka_as() {
  local user=$1 vars=()
  shift
  mapfile -t vars < <(bench_kafka_env "$user")
  env "${vars[@]}" "$@"
}

# kcat's settings for the bench's broker: the admin's in the secured profile.
bench_kcat() {
  if [[ ${BENCH_KAFKA_SECURE:-0} == 1 ]]; then
    kcat -F "$(kafka_secure__dir "$BENCH_DIR/kafka")/admin.properties" "$@"
  else
    kcat "$@"
  fi
}

bench_teardown() {
  [[ -n ${BENCH_DIR:-} && -d $BENCH_DIR ]] || return 0
  # Kafka Connect (bench/kafka_connect.sh), a client of both: first.
  [[ -f $BENCH_DIR/connect/connect.pid ]] && { eie_proc_stop "$BENCH_DIR/connect/connect.pid" || true; }
  kafka_stop "$BENCH_DIR/kafka" || true
  pg_stop "$BENCH_PG_DIR" || true
  [[ -n ${BENCH_PG_TMPFS:-} ]] && rm -rf "$BENCH_PG_TMPFS"
  if [[ ${EIE_KEEP_BENCH_DIR:-0} == 1 ]]; then
    eie_log "bench: kept $BENCH_DIR"
  else
    rm -rf "$BENCH_DIR"
  fi
}

# bench_usage MESSAGE: a bad setting; exits with status 2 (eie_die returns 1,
# which set -e turns into the exit status before an "exit 2" after it runs).
bench_usage() {
  printf 'error: %s\n' "$*" >&2
  exit 2
}

bench_psql() { psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -At "$@"; }

# Seconds since the epoch, with milliseconds.
bench_now() { date +%s.%3N; }

# end_offsets TOPIC...: the messages produced into the topics (the sum of their
# partitions' end offsets). Retried: a broker just started may not have taken
# the lead of its partitions yet.
end_offsets() {
  local t p n args=() out i
  for ((i = 0; i < 60; i++)); do
    args=()
    for t; do
      n=$(bench_kcat -L -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$t" 2>/dev/null | grep -c '^ *partition ' || true)
      for ((p = 0; p < n; p++)); do args+=(-t "$t:$p:-1"); done
    done
    if ((${#args[@]} > 0)) && out=$(bench_kcat -Q -b "$KAFKA_BOOTSTRAP_SERVERS" "${args[@]}" 2>/dev/null); then
      awk '$(NF - 1) == "offset" { s += $NF } END { print s + 0 }' <<<"$out"
      return 0
    fi
    sleep 1
  done
  eie_die "kafka: could not read the end offsets of $*"
}

# Peak resident set of a process, in MB.
bench_peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# The simulated depot, from the simulator's own setting EIE_SIM_CHARGERS_PER_METER
# (default 1: a charger and meter per vehicle; N: banks of N chargers behind one
# meter). Sets chargers_per_meter and meters (for VEHICLES), which the scripts
# need to count the meter readings; the simulator gets it as a flag. Exits 2 on a
# value the simulator would refuse.
bench_depot() { # VEHICLES
  chargers_per_meter=${EIE_SIM_CHARGERS_PER_METER:-1}
  if ! [[ $chargers_per_meter =~ ^[1-9][0-9]*$ ]] || ((chargers_per_meter > $1)); then
    bench_usage "EIE_SIM_CHARGERS_PER_METER must be a whole number from 1 to the $1 vehicles, not '$chargers_per_meter'"
  fi
  meters=$(( ($1 + chargers_per_meter - 1) / chargers_per_meter ))
}

# --- CPU use over a phase ------------------------------------------------------
# bench_cpu_begin NAME=PID...; ...; bench_cpu_end: prints the machine's busy and
# idle shares of all its cores over the phase (from /proc/stat: other work on a
# shared machine shows there too), and each process's CPU as a share of one core
# (from /proc/PID/stat), with PostgreSQL (the postmaster and its backends,
# exited ones included) and the Kafka broker of bench_setup added. One phase at
# a time.
declare -gA bench__cpu_pid=() bench__cpu_t0=()
bench__cpu_machine0=""
bench__cpu_wall0=""

# CPU ticks of a process (user + system); with its reaped children's too if $2.
bench__ticks() {
  local stat f
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  read -ra f <<<"${stat##*) }"
  if [[ ${2:-} == children ]]; then
    echo $((f[11] + f[12] + f[13] + f[14]))
  else
    echo $((f[11] + f[12]))
  fi
}

# PostgreSQL's ticks: the postmaster with its reaped backends, and the live ones.
bench__pg_ticks() {
  local pm=$1 sum child
  sum=$(bench__ticks "$pm" children)
  for child in $(cat "/proc/$pm/task/$pm/children" 2>/dev/null); do
    sum=$((sum + $(bench__ticks "$child")))
  done
  echo "$sum"
}

bench__name_ticks() { # NAME
  if [[ $1 == postgres ]]; then bench__pg_ticks "${bench__cpu_pid[$1]}"; else bench__ticks "${bench__cpu_pid[$1]}"; fi
}

# "busy total" jiffies of the whole machine.
bench__machine() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat; }

# PostgreSQL's processes and their ticks, "PID TICKS" per line.
bench__pg_processes() {
  local child
  for child in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
    echo "$child $(bench__ticks "$child")"
  done
}

bench_cpu_begin() {
  local kv name
  bench__cpu_pid=()
  bench__cpu_t0=()
  for kv in "$@"; do bench__cpu_pid[${kv%%=*}]=${kv#*=}; done
  [[ -s $BENCH_PG_DIR/postmaster.pid ]] && bench__cpu_pid[postgres]=$(head -n 1 "$BENCH_PG_DIR/postmaster.pid")
  [[ -s $BENCH_DIR/kafka/kafka.pid ]] && bench__cpu_pid[kafka]=$(cat "$BENCH_DIR/kafka/kafka.pid")
  for name in "${!bench__cpu_pid[@]}"; do bench__cpu_t0[$name]=$(bench__name_ticks "$name"); done
  [[ -n ${bench__cpu_pid[postgres]:-} ]] && bench__pg_processes "${bench__cpu_pid[postgres]}" >"$BENCH_DIR/cpu.pg0"
  bench__cpu_machine0=$(bench__machine)
  bench__cpu_wall0=$(bench_now)
}

# bench_cpu_end [NAMES]: the summary, the named processes first in that order.
bench_cpu_end() {
  local hz wall busy0 total0 busy1 total1 name order=() out
  hz=$(getconf CLK_TCK)
  wall=$(echo "$(bench_now) - $bench__cpu_wall0" | bc)
  read -r busy0 total0 <<<"$bench__cpu_machine0"
  read -r busy1 total1 <<<"$(bench__machine)"
  out=$(awk -v b=$((busy1 - busy0)) -v t=$((total1 - total0)) -v n="$(nproc)" \
    'BEGIN { printf "machine %.0f%% busy, %.0f%% idle of %d cores", 100 * b / t, 100 - 100 * b / t, n }')
  for name in ${1:-}; do [[ -n ${bench__cpu_pid[$name]:-} ]] && order+=("$name"); done
  for name in postgres kafka; do [[ -n ${bench__cpu_pid[$name]:-} && " ${order[*]} " != *" $name "* ]] && order+=("$name"); done
  for name in "${order[@]}"; do
    out+=$(awk -v d=$(($(bench__name_ticks "$name") - bench__cpu_t0[$name])) -v hz="$hz" -v w="$wall" -v n="$name" \
      'BEGIN { printf ", %s %.0f%%", n, 100 * d / hz / w }')
  done
  echo "cpu over ${wall} s: $out (processes: % of one core)"
  [[ -n ${bench__cpu_pid[postgres]:-} ]] || return 0
  # PostgreSQL's share by client (application_name) or by its own process kind.
  bench__pg_processes "${bench__cpu_pid[postgres]}" >"$BENCH_DIR/cpu.pg1"
  bench_psql -F ' ' -c "SELECT pid, coalesce(nullif(application_name, ''), backend_type) FROM pg_stat_activity" >"$BENCH_DIR/cpu.pgnames" 2>/dev/null || true
  awk -v hz="$hz" -v w="$wall" '
    FILENAME ~ /pgnames$/ { pid = $1; $1 = ""; name[pid] = substr($0, 2); next }
    FILENAME ~ /pg0$/ { t0[$1] = $2; next }
    { d = $2 - t0[$1]; n = ($1 in name) ? name[$1] : "other"; use[n] += d }
    END { for (n in use) if (use[n] > 0) printf "%.0f %s\n", 100 * use[n] / hz / w, n }' \
    "$BENCH_DIR/cpu.pgnames" "$BENCH_DIR/cpu.pg0" "$BENCH_DIR/cpu.pg1" | sort -rn |
    awk 'BEGIN { printf "  postgres by client:" } { n = $1; $1 = ""; printf "%s%s %d%%", (NR > 1 ? "," : ""), $0, n } END { print "" }'
}

# --- the COPY baseline: the history's rows loaded with plain COPY ------------
# bench_copy_export DIR FORMAT: the history's rows into DIR/meter.FORMAT and
# DIR/vehicle.FORMAT (text or binary), for bench_copy_history to load.
bench_copy_export() {
  local dir=$1 fmt=$2 opt=""
  [[ $fmt == binary ]] && opt="WITH (FORMAT binary)"
  bench_psql -c "\\copy (SELECT * FROM meter_history) TO '$dir/meter.$fmt' $opt" \
    -c "\\copy (SELECT * FROM vehicle_history) TO '$dir/vehicle.$fmt' $opt"
}

# bench_copy_history DIR FORMAT KEYS FROM TO ROWS: one COPY of the exported
# rows into fresh tables shaped like the history (day partitions from FROM's
# day to TO's), with its primary keys (KEYS=keys, as the consumers store) or
# without (nokeys, as a rebuild loads before building them). Prints the
# seconds; the CPU use over it goes to DIR/copy.FORMAT.cpu. Fails unless ROWS
# rows were stored; drops the tables after. Called as s=$(...): set -e does not
# reach inside, so each step checks itself and a failure exits the
# substitution, which ends the caller (rather than time a COPY that stored
# nothing).
bench_copy_history() {
  local dir=$1 fmt=$2 keys=$3 from=$4 to=$5 rows=$6 opt="" like="INCLUDING ALL"
  [[ $fmt == binary ]] && opt="WITH (FORMAT binary)"
  [[ $keys == nokeys ]] && like="INCLUDING ALL EXCLUDING INDEXES"
  # Day partitions as the history's (eie_ensure_day_partition's layout; the
  # function itself takes only the history's own tables).
  bench_psql <<SQL >/dev/null 2>"$dir/copy.$fmt.err" || { cat "$dir/copy.$fmt.err" >&2; eie_die "copy: cannot make the tables"; exit 1; }
SET client_min_messages = warning;
DROP TABLE IF EXISTS copy_meter_history, copy_vehicle_history;
CREATE TABLE copy_meter_history (LIKE meter_history $like) PARTITION BY RANGE (ts);
CREATE TABLE copy_vehicle_history (LIKE vehicle_history $like) PARTITION BY RANGE (ts);
DO \$\$
DECLARE d date; t text;
BEGIN
  FOR d IN SELECT generate_series(date '$(date -u -d "$from" +%F)', date '$(date -u -d "$to" +%F)', interval '1 day')::date LOOP
    FOREACH t IN ARRAY ARRAY['copy_meter_history', 'copy_vehicle_history'] LOOP
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', t || '_' || to_char(d, 'YYYYMMDD'),
                     t, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
    END LOOP;
  END LOOP;
END
\$\$;
CHECKPOINT;
SQL
  local t0 t1 stored
  t0=$(bench_now)
  bench_cpu_begin
  bench_psql -c "\\copy copy_meter_history FROM '$dir/meter.$fmt' $opt" \
    -c "\\copy copy_vehicle_history FROM '$dir/vehicle.$fmt' $opt" 2>"$dir/copy.$fmt.err" ||
    { cat "$dir/copy.$fmt.err" >&2; eie_die "copy ($fmt) failed"; exit 1; }
  t1=$(bench_now)
  bench_cpu_end >"$dir/copy.$fmt.cpu"
  stored=$(bench_psql -c "SELECT (SELECT count(*) FROM copy_meter_history) + (SELECT count(*) FROM copy_vehicle_history)")
  bench_psql -c "DROP TABLE copy_meter_history, copy_vehicle_history"
  if [[ $stored != "$rows" ]]; then
    eie_die "copy ($fmt): $stored rows stored, expected $rows"
    exit 1
  fi
  echo "$t1 - $t0" | bc
}

# bench_median N...: the median of the numbers given.
bench_median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
