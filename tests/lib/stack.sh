# shellcheck shell=bash
# A private Kafka + PostgreSQL stack for integration tests: its own temp dir,
# its own free ports, so it never collides with `deploy/local.sh up` or with
# another test run. Source it; requires the Kafka classpath (kafka_fetch).
#
#   stack_up     start both; exports KAFKA_BOOTSTRAP_SERVERS, EIE_TEST_PGHOST,
#                EIE_TEST_PGPORT, EIE_TEST_PGUSER, EIE_TEST_DIR (+ the paths
#                and ports below, so a test process can restart services)
#   stack_down   stop both by pid, remove the dir (kept if EIE_KEEP_TEST_DIR=1)
#                The stack also stops by itself once the shell that ran
#                stack_up exits, unless EIE_STACK_NO_WATCHDOG=1.
#   stack_pg_stop / stack_pg_start        PostgreSQL outage within a test
#   stack_kafka_stop / stack_kafka_start  Kafka outage within a test

STACK_LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/stack.sh"
# shellcheck source-path=SCRIPTDIR/../..
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/deploy/lib.sh"

stack_up() {
  local dir kport cport pport
  dir=$(mktemp -d /tmp/eie-test.XXXXXX) || return 1
  # mktemp makes it 0700; as root, PostgreSQL runs as `postgres` and must get in.
  chmod 755 "$dir"
  export EIE_TEST_DIR=$dir
  [[ ${EIE_STACK_NO_WATCHDOG:-0} == 1 ]] || stack__watchdog "$$" || return 1
  kport=$(eie_port_free) || return 1
  cport=$(eie_port_free "$kport") || return 1
  pport=$(eie_port_free "$kport" "$cport") || return 1

  export EIE_TEST_KAFKA_DIR=$dir/kafka EIE_TEST_KAFKA_PORT=$kport EIE_TEST_KAFKA_CONTROLLER_PORT=$cport
  export EIE_TEST_PGDATA=$dir/pg EIE_TEST_PGHOST=127.0.0.1 EIE_TEST_PGPORT=$pport EIE_TEST_PGUSER=eie
  export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$kport
  # Test data is throwaway: skip fsync (see pg__conf in deploy/lib/postgres.sh).
  export EIE_PG_FAST=1
  : "${EIE_KAFKA_HEAP_OPTS:=-Xmx512m -Xms256m}"
  export EIE_KAFKA_HEAP_OPTS

  # PostgreSQL initialises while the broker's JVM boots.
  kafka_launch "$EIE_TEST_KAFKA_DIR" "$kport" "$cport" || return 1
  pg_start "$EIE_TEST_PGDATA" "$pport" || return 1
  kafka_wait_ready "$EIE_TEST_KAFKA_DIR" "$kport" || return 1
  eie_log "stack: kafka $KAFKA_BOOTSTRAP_SERVERS, postgres 127.0.0.1:$pport, dir $dir"
}

# Traps do not run when the caller is SIGKILLed; this detached watcher then
# stops the stack, so a killed run does not leave a JVM and a postmaster behind.
stack__watchdog() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  EIE_STACK_WATCHDOG=1 eie_proc_start stack-watchdog "$EIE_TEST_DIR/watchdog.pid" "$EIE_TEST_DIR/watchdog.log" \
    bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
      source "$2" && EIE_TEST_DIR=$3 stack_down' stack-watchdog "$1" "$STACK_LIB" "$EIE_TEST_DIR"
}

# Safe to call twice and after a failed stack_up.
stack_down() {
  local dir=${EIE_TEST_DIR:-}
  [[ -n $dir && -d $dir ]] || return 0
  [[ ${EIE_STACK_WATCHDOG:-0} == 1 ]] || eie_proc_stop "$dir/watchdog.pid" 5 2>/dev/null
  kafka_stop "$dir/kafka" || true
  pg_stop "$dir/pg" || true
  if [[ ${EIE_KEEP_TEST_DIR:-0} == 1 ]]; then
    eie_log "stack: kept test dir $dir"
  else
    rm -rf "$dir"
  fi
  unset EIE_TEST_DIR
}

stack_pg_stop() { pg_stop "$EIE_TEST_PGDATA"; }
stack_pg_start() { EIE_PG_FAST=1 pg_start "$EIE_TEST_PGDATA" "$EIE_TEST_PGPORT"; }
stack_kafka_stop() { kafka_stop "$EIE_TEST_KAFKA_DIR"; }
stack_kafka_start() {
  kafka_start "$EIE_TEST_KAFKA_DIR" "$EIE_TEST_KAFKA_PORT" "$EIE_TEST_KAFKA_CONTROLLER_PORT"
}
