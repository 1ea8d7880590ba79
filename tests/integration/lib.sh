# Sourced by every integration test. The stack (Kafka, PostgreSQL) is started by
# tests/run.sh; each test gets its own database and topic prefix, so tests do
# not see each other's data, and stops every process it started, pass or fail.
set -euo pipefail

: "${EIE_BIN:?run through ./tests/run.sh (EIE_BIN is not set)}"
: "${KAFKA_BOOTSTRAP_SERVERS:?run through ./tests/run.sh (no Kafka)}"
: "${EIE_TEST_PGPORT:?run through ./tests/run.sh (no PostgreSQL)}"
EIE_TEST_PGHOST=${EIE_TEST_PGHOST:-127.0.0.1}
EIE_TEST_PGUSER=${EIE_TEST_PGUSER:-eie}

IT_NAME=$(basename "$0" .sh)
IT_ID="${IT_NAME//_/-}-$$"
IT_DIR=$(mktemp -d "/tmp/eie-it.${IT_NAME}.XXXXXX")
IT_PIDS=()
IT_FAILED=0
export EIE_TOPIC_PREFIX="it.${IT_ID}."
export DATABASE_URL="postgresql://${EIE_TEST_PGUSER}@${EIE_TEST_PGHOST}:${EIE_TEST_PGPORT}/it_${IT_NAME}_$$"
export KAFKA_BOOTSTRAP_SERVERS

it_log() { printf '[%s] %s\n' "$IT_NAME" "$*" >&2; }

it_fail() {
    it_log "FAIL: $*"
    IT_FAILED=1
}

# Stops what the test started, by PID, and shows their logs on failure.
it_cleanup() {
    local rc=$?
    local pid
    for pid in "${IT_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${IT_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    it__own_services_down
    if [[ $rc -ne 0 || $IT_FAILED -ne 0 ]]; then
        local log
        for log in "$IT_DIR"/*.log; do
            [[ -f $log ]] || continue
            it_log "---- last lines of $(basename "$log")"
            tail -n 40 "$log" >&2
        done
        it_log "work directory kept: $IT_DIR"
    else
        rm -rf "$IT_DIR"
    fi
}
trap it_cleanup EXIT

# Every eie-api a test starts reads the test's key file (EIE_API_KEYS_FILE),
# which holds one write key without a rate limit: write requests send
# -H "$IT_AUTH" (read routes are open on loopback). test_api_keys.sh gives
# its servers keys of its own.
export EIE_API_KEYS_FILE=$IT_DIR/api-keys
IT_API_KEY=$("$EIE_BIN/eie-admin" keys create --name it-writer --role write --rate 0 \
    2>>"$IT_DIR/admin.log") || { it_log "eie-admin keys create failed"; exit 1; }
IT_AUTH="Authorization: Bearer $IT_API_KEY"

# ---- Services of the test's own, for a test that stops or breaks them: the
# suite's Kafka and PostgreSQL are shared by every test (run.sh -j), so no test
# may stop those. Call before it_setup; each re-points the test's variables
# (DATABASE_URL, EIE_TEST_PGPORT; KAFKA_BOOTSTRAP_SERVERS) to the new server,
# and it_cleanup stops it, as does a watchdog if the test is killed outright.
IT_OWN_PG=0
IT_OWN_KAFKA=0

it__own_services_down() {
    ((IT_OWN_PG || IT_OWN_KAFKA)) || return 0
    eie_proc_stop "$IT_DIR/own-watchdog.pid" 5 2>/dev/null || true
    ((IT_OWN_KAFKA)) && { kafka_stop "$IT_DIR/kafka" >>"$IT_DIR/services.log" 2>&1 || true; }
    ((IT_OWN_PG)) && { pg_stop "$IT_DIR/pg" >>"$IT_DIR/services.log" 2>&1 || true; }
    return 0
}

# Traps do not run when the test is SIGKILLed (a ctest timeout): this detached
# watcher then stops the test's own servers once the test's shell is gone.
it__own_watchdog() {
    [[ -s $IT_DIR/own-watchdog.pid ]] && return 0
    # shellcheck disable=SC2016 # expanded by the inner bash
    eie_proc_start own-watchdog "$IT_DIR/own-watchdog.pid" "$IT_DIR/own-watchdog.log" \
        bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
            source "$2"; kafka_stop "$3/kafka"; pg_stop "$3/pg"' own-watchdog "$$" \
        "$EIE_SOURCE_DIR/deploy/lib.sh" "$IT_DIR" 2>>"$IT_DIR/services.log"
}

it__source_deploy_lib() {
    declare -F pg_start >/dev/null && return 0
    # shellcheck source=../../deploy/lib.sh
    source "$EIE_SOURCE_DIR/deploy/lib.sh"
}

# it_own_postgres: a PostgreSQL server of the test's own (it_own_pg_stop,
# it_own_pg_start for an outage).
it_own_postgres() {
    it__source_deploy_lib
    chmod 755 "$IT_DIR" # as root the server runs as `postgres` and must get in
    EIE_TEST_PGPORT=$(eie_port_free) || exit 1
    IT_OWN_PG=1
    it__own_watchdog || exit 1
    it_own_pg_start || { it_fail "cannot start a PostgreSQL of the test's own"; exit 1; }
    export EIE_TEST_PGPORT
    export DATABASE_URL="postgresql://${EIE_TEST_PGUSER}@${EIE_TEST_PGHOST}:${EIE_TEST_PGPORT}/${DATABASE_URL##*/}"
}
it_own_pg_start() { EIE_PG_FAST=1 pg_start "$IT_DIR/pg" "$EIE_TEST_PGPORT" >>"$IT_DIR/services.log" 2>&1; }
it_own_pg_stop() { pg_stop "$IT_DIR/pg" >>"$IT_DIR/services.log" 2>&1; }

# it_own_kafka: a Kafka broker of the test's own (it_own_kafka_stop,
# it_own_kafka_start for an outage).
it_own_kafka() {
    it__source_deploy_lib
    IT_KAFKA_PORT=$(eie_port_free) || exit 1
    IT_KAFKA_CONTROLLER_PORT=$(eie_port_free "$IT_KAFKA_PORT") || exit 1
    IT_OWN_KAFKA=1
    it__own_watchdog || exit 1
    it_own_kafka_start || { it_fail "cannot start a Kafka broker of the test's own"; exit 1; }
    export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$IT_KAFKA_PORT
}
it_own_kafka_start() {
    kafka_start "$IT_DIR/kafka" "$IT_KAFKA_PORT" "$IT_KAFKA_CONTROLLER_PORT" >>"$IT_DIR/services.log" 2>&1
}
it_own_kafka_stop() { kafka_stop "$IT_DIR/kafka" >>"$IT_DIR/services.log" 2>&1; }

# ---- Certificates, made by openssl for a test (valid two days, P-256 keys).
# it_tls_ca NAME: a CA, $IT_DIR/tls/NAME.crt and NAME.key.
it_tls_ca() {
    mkdir -p "$IT_DIR/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$IT_DIR/tls/$1.key" -out "$IT_DIR/tls/$1.crt" -subj "/CN=eie test CA $1" \
        -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign \
        2>>"$IT_DIR/openssl.log"
}
# it_tls_cert CA NAME SAN [USAGE]: a certificate signed by CA, $IT_DIR/tls/NAME.crt
# and NAME.key, for SAN (e.g. IP:127.0.0.1); USAGE serverAuth (default) or clientAuth.
it_tls_cert() {
    local ca=$IT_DIR/tls/$1 out=$IT_DIR/tls/$2
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$out.key" \
        -out "$out.csr" -subj "/CN=$2" 2>>"$IT_DIR/openssl.log" &&
        openssl x509 -req -in "$out.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -days 2 \
            -out "$out.crt" -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$3" "${4:-serverAuth}") \
            2>>"$IT_DIR/openssl.log"
}

# it_own_kafka_secure: a broker of the test's own in the secured profile
# (deploy/lib/kafka_secure.sh): SASL_SSL with a SCRAM user per program and
# ACLs for the test's topics and its consumer groups (topic prefix + hot,
# cold). The programs get no credentials by default: it_kafka_props USER
# gives a user's librdkafka properties for EIE_KAFKA_PROPERTIES.
# [HOT_GROUP COLD_GROUP]: the group id prefixes the consumers may use
# (kafka_secure_grant's; default the topic prefix + hot, cold).
it_own_kafka_secure() {
    it__source_deploy_lib
    kafka_secure_prepare "$IT_DIR/kafka" >>"$IT_DIR/services.log" 2>&1 ||
        { it_fail "cannot prepare the secured profile"; exit 1; }
    it_own_kafka
    kafka_secure_grant "$IT_DIR/kafka" "$IT_KAFKA_PORT" "$EIE_TOPIC_PREFIX" "$@" >>"$IT_DIR/services.log" 2>&1 ||
        { it_fail "cannot grant the ACLs"; exit 1; }
}
it_kafka_props() { kafka_secure_props "$IT_DIR/kafka" "$1"; }

# EIE_IT_SECURE=1 (ctest's integration.secure.* entries): the test runs,
# unchanged, against a broker of its own in the secured profile. Every
# program connects as its own user: EIE_BIN becomes a folder of wrappers that
# exec the real program with that user's EIE_KAFKA_PROPERTIES (producers as
# eie-producer, consumers and eie-replay as eie-consumer, eie-api as eie-api,
# eie-admin as admin), kcat runs as the admin, and Python clients read
# IT_KAFKA_PROPS_PRODUCER and IT_KAFKA_PROPS_CONSUMER. The consumers may use
# any group id under the test's topic prefix. A program missing from the map
# would connect without credentials and be refused, failing the test.
it__secure_user() {
    case $1 in
        eie-produce | eie-simulate) echo eie-producer ;;
        eie-consumer | eie-replay) echo eie-consumer ;;
        eie-api) echo eie-api ;;
        eie-admin) echo admin ;;
        *) return 1 ;;
    esac
}
it__secure_setup() {
    it_own_kafka_secure "$EIE_TOPIC_PREFIX" "$EIE_TOPIC_PREFIX"
    local wrappers=$IT_DIR/bin real prog user
    mkdir -p "$wrappers"
    for real in "$EIE_BIN"/eie-*; do
        prog=${real##*/}
        user=$(it__secure_user "$prog") || continue
        printf '#!/bin/bash\nEIE_KAFKA_PROPERTIES=%q${EIE_KAFKA_PROPERTIES:+,$EIE_KAFKA_PROPERTIES} exec %q "$@"\n' \
            "$(it_kafka_props "$user")" "$real" >"$wrappers/$prog"
        chmod 700 "$wrappers/$prog"
    done
    printf '#!/bin/bash\nexec %q -F %q "$@"\n' "$(command -v kcat)" \
        "$(kafka_secure__dir "$IT_DIR/kafka")/admin.properties" >"$wrappers/kcat"
    chmod 700 "$wrappers/kcat"
    export EIE_BIN=$wrappers PATH=$wrappers:$PATH
    IT_KAFKA_PROPS_PRODUCER=$(it_kafka_props eie-producer)
    IT_KAFKA_PROPS_CONSUMER=$(it_kafka_props eie-consumer)
    export IT_KAFKA_PROPS_PRODUCER IT_KAFKA_PROPS_CONSUMER
    it_log "secured profile: SASL_SSL on $KAFKA_BOOTSTRAP_SERVERS, a user per program (wrappers in $wrappers)"
}

# it_topic_count TOPIC_SUFFIX: the records on one of the test's topics.
it_topic_count() {
    kcat -C -b "$KAFKA_BOOTSTRAP_SERVERS" -t "${EIE_TOPIC_PREFIX}$1" -o beginning -e -q -f '.\n' \
        2>>"$IT_DIR/kcat.log" | wc -l
}

# The test's own checks and set-up SQL run as the superuser (IT_SUPER_URL,
# once it_setup made it) in the test's database; DATABASE_URL=OTHER it_psql
# asks another one.
it_psql() {
    local url=$DATABASE_URL
    [[ -n ${IT_OWNER_URL:-} && $url == "$IT_OWNER_URL" ]] && url=$IT_SUPER_URL
    psql "$url" -X -q -v ON_ERROR_STOP=1 -At "$@"
}

# Creates the test's database and topics, sets up the roles of least
# privilege (eie-admin roles, as the superuser) and applies the migrations as
# their owner. From then on DATABASE_URL is the owner's (eie-admin, eie-replay,
# psql "$DATABASE_URL"), and it_start gives eie-consumer the writer's URL
# (IT_WRITER_URL) and eie-api the reader's (IT_READER_URL): every test runs
# the programs with no more rights than a secured deployment gives them.
it_setup() {
    local db=${DATABASE_URL##*/} server="${EIE_TEST_PGHOST}:${EIE_TEST_PGPORT}"
    [[ ${EIE_IT_SECURE:-0} == 1 ]] && it__secure_setup
    psql "postgresql://${EIE_TEST_PGUSER}@$server/postgres" -X -q \
        -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null
    IT_SUPER_URL="postgresql://${EIE_TEST_PGUSER}@$server/$db"
    "$EIE_BIN/eie-admin" roles --database-url "$IT_SUPER_URL" 2>>"$IT_DIR/admin.log"
    IT_OWNER_URL=$(it__role_url owner "$server" "$db")
    IT_WRITER_URL=$(it__role_url writer "$server" "$db")
    IT_READER_URL=$(it__role_url reader "$server" "$db")
    export DATABASE_URL=$IT_OWNER_URL
    "$EIE_BIN/eie-admin" topics --partitions "${1:-3}" 2>>"$IT_DIR/admin.log"
    "$EIE_BIN/eie-admin" migrate 2>>"$IT_DIR/admin.log"
}

# it__role_url owner|writer|reader SERVER DB: the role's URL, with its password
# when EIE_<ROLE>_PASSWORD is set (eie-admin roles sets it then) and
# IT_PG_PARAMS (e.g. sslmode=verify-full&sslrootcert=FILE) as its query.
it__role_url() {
    local var="EIE_${1^^}_PASSWORD"
    printf 'postgresql://eie_%s%s@%s/%s%s' "$1" "${!var:+:${!var}}" "$2" "$3" "${IT_PG_PARAMS:+?$IT_PG_PARAMS}"
}

# it__role_env CMD...: the DATABASE_URL the program of CMD gets (see
# it_setup): the writer's for eie-consumer, the reader's for eie-api, when it
# would otherwise get the owner's; nothing else changes.
it__role_env() {
    [[ -n ${IT_OWNER_URL:-} && ${DATABASE_URL:-} == "$IT_OWNER_URL" ]] || return 0
    local arg
    for arg in "$@"; do
        case $arg in
            */eie-consumer) printf '%s' "$IT_WRITER_URL"; return 0 ;;
            */eie-api) printf '%s' "$IT_READER_URL"; return 0 ;;
        esac
    done
}

# it_start NAME CMD...: runs CMD in the background, logging to NAME.log; its PID
# goes into the variable NAME_pid (dashes become underscores).
it_start() {
    local name=$1 url
    shift
    url=$(it__role_env "$@")
    DATABASE_URL=${url:-$DATABASE_URL} "$@" >>"$IT_DIR/$name.log" 2>&1 &
    local pid=$!
    IT_PIDS+=("$pid")
    printf -v "${name//-/_}_pid" '%s' "$pid"
}

# it_stop NAME [SIGNAL]: SIGTERM (or SIGNAL), then expects a clean exit
# (status 0) within 30 s.
it_stop() {
    local var="${1//-/_}_pid"
    local pid=${!var}
    kill "-${2:-TERM}" "$pid"
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        it_fail "$1 did not stop within 30 s of SIG${2:-TERM}"
        kill -KILL "$pid"
    fi
    local status=0
    wait "$pid" || status=$?
    [[ $status -eq 0 ]] || it_fail "$1 exited with status $status after SIG${2:-TERM}"
}

# it_wait_for DESCRIPTION TIMEOUT_S COMMAND...: polls until COMMAND succeeds.
it_wait_for() {
    local what=$1 timeout=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            it_fail "timed out after ${timeout}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

# it_sql_equals EXPECTED SQL: true when the query prints EXPECTED.
it_sql_equals() {
    [[ $(it_psql -c "$2") == "$1" ]]
}

it_expect_eq() {
    local expected=$1 actual=$2 what=$3
    if [[ "$expected" == "$actual" ]]; then
        it_log "ok: $what"
    else
        it_fail "$what: expected '$expected', got '$actual'"
    fi
}

it_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# RFC 3339 time, minutes relative to a base epoch second.
it_time() {
    date -u -d "@$(($1 + $2 * 60))" +%Y-%m-%dT%H:%M:%SZ
}

# Exactly-once, counted: it_audit_writes records, in the same transaction, each
# row a consumer offers the history and the assignment history (a BEFORE INSERT
# trigger fires for every row offered, even one ON CONFLICT then skips), so a
# reading written by two committed batches shows twice, where the tables' keys
# would absorb the second write. Tables of those names created later in any
# schema (eie-replay's rebuild) are audited too, with their schema. Test data
# must not repeat a reading itself.
it_audit_writes() {
    it_psql >/dev/null <<'SQL'
CREATE TABLE IF NOT EXISTS public.it_write_audit (schema text NOT NULL, tbl text NOT NULL,
    device text NOT NULL, ts timestamptz NOT NULL);
CREATE OR REPLACE FUNCTION public.it_audit_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO public.it_write_audit VALUES (TG_TABLE_SCHEMA, TG_ARGV[0], to_jsonb(NEW) ->> TG_ARGV[1],
                                              (to_jsonb(NEW) ->> TG_ARGV[2])::timestamptz);
    RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION public.it_audit_table(tbl regclass) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    name text := (SELECT relname FROM pg_class WHERE oid = tbl);
    cols text[] := CASE name WHEN 'meter_history' THEN ARRAY['meter_id', 'ts']
                             WHEN 'vehicle_history' THEN ARRAY['vehicle_id', 'ts']
                             WHEN 'vehicle_meter_assignment' THEN ARRAY['vehicle_id', 'valid_from'] END;
BEGIN
    IF cols IS NOT NULL THEN
        EXECUTE format('CREATE OR REPLACE TRIGGER it_audit BEFORE INSERT ON %s FOR EACH ROW '
                       'EXECUTE FUNCTION public.it_audit_write(%L, %L, %L)', tbl, name, cols[1], cols[2]);
    END IF;
END $$;
CREATE OR REPLACE FUNCTION public.it_audit_new_tables() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT objid FROM pg_event_trigger_ddl_commands()
             WHERE command_tag = 'CREATE TABLE' AND object_type = 'table' LOOP
        IF NOT (SELECT relispartition FROM pg_class WHERE oid = c.objid) THEN
            PERFORM public.it_audit_table(c.objid::regclass);
        END IF;
    END LOOP;
END $$;
DROP EVENT TRIGGER IF EXISTS it_audit_new_tables;
CREATE EVENT TRIGGER it_audit_new_tables ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
    EXECUTE FUNCTION public.it_audit_new_tables();
SELECT public.it_audit_table(t::regclass) FROM unnest(ARRAY['public.meter_history',
    'public.vehicle_history', 'public.vehicle_meter_assignment']) t;
SQL
}

# it_written_once TABLE ROWS [SCHEMA]: every one of the ROWS rows of TABLE (in
# SCHEMA, public by default) was written by exactly one committed batch.
it_written_once() {
    local schema=${3:-public}
    it_expect_eq "0|$2" "$(it_psql -c "SELECT count(*) FILTER (WHERE n > 1) || '|' || count(*) FROM
        (SELECT device, ts, count(*) AS n FROM it_write_audit WHERE tbl = '$1' AND schema = '$schema' GROUP BY 1, 2) w")" \
        "$schema.$1: each of $2 rows written once (written twice | rows)"
}

# it_get PATH [STATUS]: GET $IT_API PATH; the body in $body, the status must
# be STATUS (200).
it_get() {
    local status
    status=$(curl -sS -o "$IT_DIR/body" -w '%{http_code}' "$IT_API$1")
    body=$(cat "$IT_DIR/body")
    [[ $status == "${2:-200}" ]] || it_fail "GET $1: status $status, expected ${2:-200}: $body"
}

# it_check JQ [WHAT]: the last body ($body) satisfies the jq expression.
it_check() { jq -e "$1" >/dev/null <<<"$body" || it_fail "${2:-response}: expected $1 in $body"; }

# it_near A B: a jq expression, true when A and B (sums of floats) agree to 9
# decimals.
it_near() { echo "((($1) - ($2)) | fabs) < 1e-9"; }

it_finish() {
    if [[ $IT_FAILED -ne 0 ]]; then
        it_log "FAILED"
        exit 1
    fi
    it_log "passed"
}
