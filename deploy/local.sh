#!/usr/bin/env bash
# Runs the whole engine on this machine, on loopback only.
#
#   deploy/local.sh up            install, build, start everything (idempotent)
#   deploy/local.sh up --secure   the same with the secured Kafka profile: SASL_SSL,
#                                 a SCRAM user per program, ACLs (on fresh data; the
#                                 data keeps its profile until down --purge)
#   deploy/local.sh down          stop everything, keep data
#   deploy/local.sh down --purge  stop everything, delete EIE_LOCAL_DIR (also: purge)
#   deploy/local.sh status        show what runs
#   deploy/local.sh logs [NAME]   last lines of every log, or follow one
#
# Ports: EIE_KAFKA_PORT (9092), EIE_KAFKA_CONTROLLER_PORT (9093),
#        EIE_PG_PORT (55432), EIE_API_PORT (3000), EIE_HOT_METRICS_PORT (9101),
#        EIE_COLD_METRICS_PORT (9102). EIE_SIM_VEHICLES (100).
# State: EIE_LOCAL_DIR ($EIE_STATE_DIR/local, .state/local) holds the data,
#        logs and pid files; the downloads stay in EIE_STATE_DIR (.state).
# PostgreSQL wants a password on every connection (scram-sha-256): made once
# into .state/local/pgpass, which the programs and psql read (PGPASSFILE).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_PORT=${EIE_KAFKA_PORT:-9092}
KAFKA_CPORT=${EIE_KAFKA_CONTROLLER_PORT:-9093}
PG_PORT=${EIE_PG_PORT:-55432}
API_PORT=${EIE_API_PORT:-3000}
HOT_METRICS_PORT=${EIE_HOT_METRICS_PORT:-9101}
COLD_METRICS_PORT=${EIE_COLD_METRICS_PORT:-9102}
SIM_VEHICLES=${EIE_SIM_VEHICLES:-100}

LOCAL=${EIE_LOCAL_DIR:-$EIE_STATE_DIR/local}
KAFKA_DIR=$LOCAL/kafka
PG_DIR=$LOCAL/pg
LOG_DIR=$LOCAL/logs
RUN_DIR=$LOCAL/run
# The API's key file (hashes only) and the developer's own key, made once by
# `up` (ensure_dev_key): the key is kept in a file of its own so that a local
# client can read it again; a real deployment keeps no such copy.
API_KEYS=$LOCAL/api-keys
DEV_KEY=$LOCAL/dev-api-key
# PostgreSQL's passwords, made once by `up` (ensure_pg_passwords): the
# superuser eie's and the roles' (eie-admin roles), in libpq's password file,
# which every program and psql read through PGPASSFILE; the URLs carry none.
PG_PASSFILE=$LOCAL/pgpass
BIN=$EIE_REPO_ROOT/build/bin

export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT
# Each program connects as its role of least privilege (eie-admin roles):
# migrations as the owner, the consumers as the writer, the API as the reader.
PG_SERVER=127.0.0.1:$PG_PORT
SUPER_URL=postgresql://eie@$PG_SERVER/energy_ingestion
export DATABASE_URL=postgresql://eie_owner@$PG_SERVER/energy_ingestion
WRITER_URL=postgresql://eie_writer@$PG_SERVER/energy_ingestion
READER_URL=postgresql://eie_reader@$PG_SERVER/energy_ingestion
export PGPASSFILE=$PG_PASSFILE
export EIE_TOPIC_PREFIX=${EIE_TOPIC_PREFIX:-eie.}
# A dev machine can spare more than the test default.
export EIE_KAFKA_HEAP_OPTS=${EIE_KAFKA_HEAP_OPTS:--Xmx1g -Xms512m}

# Services in start order; `down` walks it backwards.
SERVICES=(consumer-hot consumer-cold api simulator)

# The secured profile (deploy/lib/kafka_secure.sh) belongs to the broker's
# data: once made, every later `up` runs it, and each program connects as
# its own user.
kafka_secure() { [[ -d $KAFKA_DIR/secure ]]; }

# Kafka user of service or admin step $1 in the secured profile.
kafka_user() {
  case $1 in
    consumer-hot | consumer-cold) echo eie-consumer ;;
    api) echo eie-api ;;
    simulator) echo eie-producer ;;
    *) echo admin ;;
  esac
}

# Runs "$@" with EIE_KAFKA_PROPERTIES holding the credentials of $1's user
# (and whatever the caller set besides) in the secured profile.
with_kafka_user() {
  local who=$1 props
  shift
  if ! kafka_secure; then "$@"; return; fi
  props=$(kafka_secure_props "$KAFKA_DIR" "$(kafka_user "$who")") || return 1
  EIE_KAFKA_PROPERTIES=$props${EIE_KAFKA_PROPERTIES:+,$EIE_KAFKA_PROPERTIES} "$@"
}

# Sets CMD to the command line of service $1 (an array: paths may have spaces).
service_cmd() {
  case $1 in
    consumer-hot) CMD=("$BIN/eie-consumer" --store hot --metrics-port "$HOT_METRICS_PORT" -d "$WRITER_URL") ;;
    consumer-cold) CMD=("$BIN/eie-consumer" --store cold --metrics-port "$COLD_METRICS_PORT" -d "$WRITER_URL") ;;
    api) CMD=("$BIN/eie-api" --keys-file "$API_KEYS" -d "$READER_URL") ;;
    simulator) CMD=("$BIN/eie-simulate" --vehicles "$SIM_VEHICLES") ;;
    *) return 1 ;;
  esac
}

require_binaries() {
  local b
  for b in eie-admin eie-consumer eie-api eie-simulate; do
    [[ -x $BIN/$b ]] || { eie_die "missing $BIN/$b (the build did not produce it)"; return 1; }
  done
}

# A port held by something other than our component is a user-facing error.
require_port() {
  local port=$1 var=$2 what=$3
  if eie_port_listening "$port"; then
    eie_die "port $port ($what) is used by another process; pick another one with $var=PORT"
    return 1
  fi
}

start_kafka() {
  if kafka_running "$KAFKA_DIR" >/dev/null; then
    eie_log "kafka: already running (pid $(kafka_running "$KAFKA_DIR"))"
    return 0
  fi
  require_port "$KAFKA_PORT" EIE_KAFKA_PORT "Kafka" || return 1
  require_port "$KAFKA_CPORT" EIE_KAFKA_CONTROLLER_PORT "Kafka controller" || return 1
  kafka_start "$KAFKA_DIR" "$KAFKA_PORT" "$KAFKA_CPORT"
}

# Random passwords for eie (the superuser) and the three roles, made on the
# first `up` into the password file (mode 0600), kept for later ones.
ensure_pg_passwords() {
  [[ -s $PG_PASSFILE ]] && return 0
  if pg_passwords_required "$PG_DIR"; then
    eie_die "$PG_PASSFILE is gone but the server in $PG_DIR wants passwords: restore it, or start over with deploy/local.sh down --purge"
    return 1
  fi
  local role pw lines=""
  for role in eie eie_owner eie_writer eie_reader; do
    pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=') || return 1
    lines+="127.0.0.1:*:*:$role:$pw"$'\n'
  done
  (umask 077 && printf '%s' "$lines" >"$PG_PASSFILE") || return 1
  eie_log "made PostgreSQL passwords in $PG_PASSFILE"
}

# pg_password ROLE: the role's password from the password file.
pg_password() { awk -F: -v r="$1" '$4 == r { print $5 }' "$PG_PASSFILE"; }

# --secure: the profile is made before the broker's first start (its users
# are written when the storage is formatted), so data of the default
# profile cannot take it.
prepare_secure() {
  kafka_secure && return 0
  if [[ -f $KAFKA_DIR/data/meta.properties ]]; then
    eie_die "the Kafka data in $KAFKA_DIR was made without --secure; run 'deploy/local.sh down --purge' first, or use another EIE_LOCAL_DIR"
    return 1
  fi
  kafka_secure_prepare "$KAFKA_DIR"
}

# The ACLs, once per topic prefix and version of the grants (kafka-acls
# starts a JVM per call).
grant_secure() {
  kafka_secure || return 0
  local mark=$KAFKA_DIR/secure/granted
  [[ -f $mark && $(<"$mark") == "$EIE_TOPIC_PREFIX $KAFKA_SECURE_GRANTS" ]] && return 0
  kafka_secure_grant "$KAFKA_DIR" "$KAFKA_PORT" "$EIE_TOPIC_PREFIX" &&
    printf '%s\n' "$EIE_TOPIC_PREFIX $KAFKA_SECURE_GRANTS" >"$mark"
}

start_pg() {
  if ! pg_running "$PG_DIR" >/dev/null; then
    require_port "$PG_PORT" EIE_PG_PORT "PostgreSQL" || return 1
  fi
  ensure_pg_passwords || return 1
  pg_start "$PG_DIR" "$PG_PORT" || return 1
  pg_require_passwords "$PG_DIR" "$PG_PORT" "$(pg_password eie)" || return 1
  pg_create_db "$PG_PORT" energy_ingestion
}

start_service() {
  local name=$1 CMD=()
  service_cmd "$name" || return 1
  if [[ $name == api ]] && ! eie_proc_alive "$RUN_DIR/api.pid" >/dev/null; then
    require_port "$API_PORT" EIE_API_PORT "API" || return 1
  fi
  PORT=$API_PORT with_kafka_user "$name" eie_proc_start "$name" "$RUN_DIR/$name.pid" "$LOG_DIR/$name.log" "${CMD[@]}" ||
    return 1
}

wait_api() {
  local url=http://127.0.0.1:$API_PORT/healthz i
  for ((i = 0; i < 300; i++)); do
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    if ! eie_proc_alive "$RUN_DIR/api.pid" >/dev/null; then
      eie_show_tail "$LOG_DIR/api.log"
      eie_die "api exited (log: $LOG_DIR/api.log)"
      return 1
    fi
    sleep 0.2
  done
  eie_show_tail "$LOG_DIR/api.log"
  eie_die "api did not answer $url within 60s (log: $LOG_DIR/api.log)"
}

# A developer key of role admin (write routes need a key), made on the first
# `up` and kept for later ones.
ensure_dev_key() {
  [[ -s $DEV_KEY && -s $API_KEYS ]] && return 0
  local key
  rm -f "$DEV_KEY"
  "$BIN/eie-admin" keys revoke --keys-file "$API_KEYS" --name dev >/dev/null 2>&1 || true
  key=$("$BIN/eie-admin" keys create --keys-file "$API_KEYS" --name dev --role admin 2>>"$LOG_DIR/admin.log") ||
    { eie_die "eie-admin keys create failed (log: $LOG_DIR/admin.log)"; return 1; }
  (umask 077 && printf '%s\n' "$key" >"$DEV_KEY")
  eie_log "made a developer API key (role admin) in $DEV_KEY"
}

# The admin steps are idempotent, so `up` runs them every time. `roles`
# connects as the superuser and sets the roles' passwords from the file.
run_admin() {
  local log=$LOG_DIR/admin.log env=()
  printf '=== %s eie-admin %s\n' "$(date '+%F %T')" "$1" >>"$log"
  [[ $1 == roles ]] && env=(DATABASE_URL="$SUPER_URL" EIE_OWNER_PASSWORD="$(pg_password eie_owner)"
    EIE_WRITER_PASSWORD="$(pg_password eie_writer)" EIE_READER_PASSWORD="$(pg_password eie_reader)")
  if ! with_kafka_user admin env "${env[@]}" "$BIN/eie-admin" "$1" >>"$log" 2>&1; then
    eie_show_tail "$log"
    eie_die "eie-admin $1 failed (log: $log)"
    return 1
  fi
}

cmd_up() {
  local secure=${1:-}
  [[ -z $secure || $secure == --secure ]] || { eie_die "usage: deploy/local.sh up [--secure]"; return 1; }
  mkdir -p "$LOG_DIR" "$RUN_DIR"
  eie_pkg_install
  kafka_fetch
  # Swagger UI's files for /docs; the API reads EIE_SWAGGER_UI_DIR.
  EIE_SWAGGER_UI_DIR=$(eie_pkg_fetch_swagger_ui)
  export EIE_SWAGGER_UI_DIR
  eie_build build
  require_binaries
  [[ -z $secure ]] || prepare_secure
  start_kafka
  grant_secure
  start_pg
  eie_log "setup: topics and migrations"
  run_admin topics
  run_admin roles
  run_admin migrate
  ensure_dev_key
  local s
  for s in "${SERVICES[@]}"; do start_service "$s"; done
  wait_api
  cat <<EOF

Energy Ingestion Engine is up (${SECONDS}s).
  API            http://localhost:$API_PORT
  API docs       http://localhost:$API_PORT/docs
  OpenAPI        http://localhost:$API_PORT/openapi.json
  Example        http://localhost:$API_PORT/v1/analytics/performance/V1
  API key        $DEV_KEY (role admin; writes need it, reads are open on loopback):
                 curl -H "Authorization: Bearer \$(cat $DEV_KEY)" ...
                 more: $BIN/eie-admin keys create --keys-file $API_KEYS --name NAME --role write
                 then: kill -HUP \$(cat $RUN_DIR/api.pid)
  Metrics        http://localhost:$API_PORT/metrics  hot :$HOT_METRICS_PORT/metrics  cold :$COLD_METRICS_PORT/metrics
  Kafka          $KAFKA_BOOTSTRAP_SERVERS$(kafka_secure && printf '%s' "
                 secured: SASL_SSL, SCRAM-SHA-512; each user's librdkafka settings
                 in $KAFKA_DIR/secure/USER.properties, e.g.
                 EIE_KAFKA_PROPERTIES=\$(paste -sd, $KAFKA_DIR/secure/eie-producer.properties)")
  PostgreSQL     $DATABASE_URL (the owner: migrations, eie-replay)
                 consumers as eie_writer, the API as eie_reader; passwords in
                 $PG_PASSFILE (PGPASSFILE=$PG_PASSFILE psql $DATABASE_URL)
  Logs           $LOG_DIR  (deploy/local.sh logs [NAME])
  Stop           deploy/local.sh down
EOF
}

cmd_down() {
  local purge=${1:-} i
  [[ -z $purge || $purge == --purge ]] || { eie_die "usage: deploy/local.sh down [--purge]"; return 1; }
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    eie_proc_stop "$RUN_DIR/${SERVICES[i]}.pid"
  done
  kafka_stop "$KAFKA_DIR"
  pg_stop "$PG_DIR"
  if [[ $purge == --purge ]]; then
    rm -rf "$LOCAL"
    eie_log "deleted $LOCAL"
  fi
}

show() {
  local name=$1 pid=$2
  if [[ -n $pid ]]; then
    printf '  %-14s running (pid %s)\n' "$name" "$pid"
  else
    printf '  %-14s stopped\n' "$name"
  fi
}

cmd_status() {
  local s
  show kafka "$(kafka_running "$KAFKA_DIR" || true)"
  show postgres "$(pg_running "$PG_DIR" || true)"
  for s in "${SERVICES[@]}"; do
    show "$s" "$(eie_proc_alive "$RUN_DIR/$s.pid" || true)"
  done
}

log_file() {
  case $1 in
    kafka) echo "$KAFKA_DIR/kafka.log" ;;
    postgres) echo "$PG_DIR/postgres.log" ;;
    *) echo "$LOG_DIR/$1.log" ;;
  esac
}

cmd_logs() {
  if (($# > 0)); then
    local f
    f=$(log_file "$1")
    [[ -f $f ]] || { eie_die "no log for '$1' (names: kafka postgres admin ${SERVICES[*]})"; return 1; }
    exec tail -n 50 -F "$f"
  fi
  local name
  for name in kafka postgres admin "${SERVICES[@]}"; do
    EIE_TAIL_LINES=10 eie_show_tail "$(log_file "$name")" 2>&1
  done
}

case ${1:-} in
  up) cmd_up "${2:-}" ;;
  down) cmd_down "${2:-}" ;;
  purge) cmd_down --purge ;;
  status) cmd_status ;;
  logs) shift; cmd_logs "$@" ;;
  *)
    sed -n '4,11s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac
