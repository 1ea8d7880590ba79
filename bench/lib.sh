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
  kafka_launch "$BENCH_DIR/kafka" "$kport" "$cport"
  pg_start "$BENCH_DIR/pg" "$pport"
  kafka_wait_ready "$BENCH_DIR/kafka" "$kport"
  export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$kport
  export DATABASE_URL=postgresql://eie@127.0.0.1:$pport/bench
  export EIE_TOPIC_PREFIX=bench.
  psql "postgresql://eie@127.0.0.1:$pport/postgres" -X -q -c "CREATE DATABASE bench" >/dev/null
  "$BIN/eie-admin" topics 2>"$BENCH_DIR/admin.log"
  "$BIN/eie-admin" migrate 2>>"$BENCH_DIR/admin.log"
}

bench_teardown() {
  [[ -n ${BENCH_DIR:-} && -d $BENCH_DIR ]] || return 0
  kafka_stop "$BENCH_DIR/kafka" || true
  pg_stop "$BENCH_DIR/pg" || true
  if [[ ${EIE_KEEP_BENCH_DIR:-0} == 1 ]]; then
    eie_log "bench: kept $BENCH_DIR"
  else
    rm -rf "$BENCH_DIR"
  fi
}

bench_psql() { psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -At "$@"; }

# Seconds since the epoch, with milliseconds.
bench_now() { date +%s.%3N; }

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
    eie_die "EIE_SIM_CHARGERS_PER_METER must be a whole number from 1 to the $1 vehicles, not '$chargers_per_meter'"
    exit 2
  fi
  meters=$(( ($1 + chargers_per_meter - 1) / chargers_per_meter ))
}
