#!/usr/bin/env bash
# deploy/local.sh as README.md promises it, on private ports and a private
# EIE_LOCAL_DIR (the Kafka and Swagger UI downloads are the suite's, in
# EIE_STATE_DIR):
# - `up` starts Kafka, PostgreSQL, both consumers, the API and the simulator:
#   /readyz is ready, simulated readings reach PostgreSQL and the API;
# - `status` names each service running, with the pid it runs as;
# - `up` again is safe: the same processes, none added;
# - `down` stops exactly those (by pid, each checked gone; a process named like
#   one of ours survives), keeps the data, and `up` serves it again;
# - `down --purge` deletes the data.
# `up` builds build/ (RelWithDebInfo), as it would for a developer: about a
# minute on 2 cores the first time, seconds after that.
source "$(dirname "$0")/lib.sh"
it__source_deploy_lib

LOCAL_SH=$EIE_SOURCE_DIR/deploy/local.sh
BIN=$EIE_SOURCE_DIR/build/bin
chmod 755 "$IT_DIR" # as root PostgreSQL runs as `postgres` and must get in
export EIE_LOCAL_DIR=$IT_DIR/local
EIE_KAFKA_PORT=$(eie_port_free)
EIE_KAFKA_CONTROLLER_PORT=$(eie_port_free "$EIE_KAFKA_PORT")
EIE_PG_PORT=$(eie_port_free "$EIE_KAFKA_PORT" "$EIE_KAFKA_CONTROLLER_PORT")
EIE_API_PORT=$(eie_port_free "$EIE_KAFKA_PORT" "$EIE_KAFKA_CONTROLLER_PORT" "$EIE_PG_PORT")
EIE_HOT_METRICS_PORT=$(eie_port_free "$EIE_KAFKA_PORT" "$EIE_KAFKA_CONTROLLER_PORT" "$EIE_PG_PORT" "$EIE_API_PORT")
EIE_COLD_METRICS_PORT=$(eie_port_free "$EIE_KAFKA_PORT" "$EIE_KAFKA_CONTROLLER_PORT" "$EIE_PG_PORT" \
    "$EIE_API_PORT" "$EIE_HOT_METRICS_PORT")
export EIE_KAFKA_PORT EIE_KAFKA_CONTROLLER_PORT EIE_PG_PORT EIE_API_PORT EIE_HOT_METRICS_PORT \
    EIE_COLD_METRICS_PORT
export EIE_SIM_VEHICLES=5 EIE_KAFKA_HEAP_OPTS="-Xmx512m -Xms256m"
# local.sh's own topic names, not the test prefix of lib.sh.
unset EIE_TOPIC_PREFIX
API=http://127.0.0.1:$EIE_API_PORT
LOCAL_DB=postgresql://eie@127.0.0.1:$EIE_PG_PORT/energy_ingestion
# local.sh makes the passwords (PostgreSQL asks for them): its password file.
export PGPASSFILE=$EIE_LOCAL_DIR/pgpass
SERVICES=(kafka postgres consumer-hot consumer-cold api simulator)

# local.sh COMMAND...: runs it, bounded, its output in local-COMMAND.log.
local_sh() {
    timeout "${LOCAL_SH_TIMEOUT:-120}" bash "$LOCAL_SH" "$@" >>"$IT_DIR/local-$1.log" 2>&1
}

# gone PID...: true when none of the PIDs is a live process.
gone() {
    local pid
    for pid in "$@"; do
        eie_proc__exists "$pid" && return 1
    done
    return 0
}

# stop_pids PID...: TERM, up to 20 s, then KILL.
stop_pids() {
    local i
    kill -TERM "$@" 2>/dev/null
    for ((i = 0; i < 200; i++)); do
        gone "$@" && return 0
        sleep 0.1
    done
    kill -KILL "$@" 2>/dev/null
}

# ours: "PID NAME" of each process of this deployment, by what /proc says:
# the programs run from build/bin with this test's EIE_LOCAL_DIR in their
# environment, the broker and the postmaster with their data dir in their
# command line. A process named like ours but started otherwise is not one.
ours() {
    local p cmd name
    for p in /proc/[0-9]*; do
        cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
        name=""
        if [[ $cmd == "$BIN/eie-"* ]] &&
            tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qxF "EIE_LOCAL_DIR=$EIE_LOCAL_DIR"; then
            name=${cmd%% *}
            name=${name##*/}
        elif [[ $cmd == *java*" kafka.Kafka $EIE_LOCAL_DIR/kafka/server.properties"* ]]; then
            name=kafka
        elif [[ $cmd == *"/postgres -D $EIE_LOCAL_DIR/pg"* ]]; then
            name=postgres
        fi
        [[ -z $name ]] || printf '%s %s\n' "${p#/proc/}" "$name"
    done | sort -n
}

# Whatever happens, `down` runs before lib.sh's cleanup; if the test is killed
# outright (no trap runs), a detached watcher runs it once this shell is gone.
cleanup() {
    local rc=$?
    set +e # the (exit) below hands the status on to it_cleanup
    eie_proc_stop "$IT_DIR/local-watchdog.pid" 5 2>/dev/null || true
    [[ -d $EIE_LOCAL_DIR ]] && { local_sh down || it_fail "cleanup: local.sh down failed"; }
    # A broken `down` is this test's failure, not a reason to leave them running.
    local left
    left=$(ours)
    if [[ -n $left ]]; then
        it_fail "cleanup: still running after down, stopping them by pid: $(paste -sd, <<<"$left")"
        # shellcheck disable=SC2046 # one word per pid
        stop_pids $(cut -d' ' -f1 <<<"$left")
    fi
    (exit "$rc")
    it_cleanup
}
trap cleanup EXIT

# A decoy with a program's name, started by no deployment: `down` leaves it.
mkdir -p "$IT_DIR/decoy"
cp "$(command -v sleep)" "$IT_DIR/decoy/eie-consumer"
it_start decoy "$IT_DIR/decoy/eie-consumer" 600

# shellcheck disable=SC2016 # expanded by the inner bash
eie_proc_start local-watchdog "$IT_DIR/local-watchdog.pid" "$IT_DIR/local-watchdog.log" \
    bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; bash "$2" down
        [[ $(tr "\0" " " 2>/dev/null <"/proc/$3/cmdline") == "$4 600 " ]] && kill "$3"' \
    local-watchdog "$$" "$LOCAL_SH" "$decoy_pid" "$IT_DIR/decoy/eie-consumer" \
    2>>"$IT_DIR/local-watchdog.log" || exit 1

# status: sets RUNNING to "NAME PID" of each service `status` reports running.
status() {
    local_sh status || it_fail "local.sh status: exit status $?"
    mapfile -t RUNNING < <(sed -n 's/^ *\([a-z-]*\) *running (pid \([0-9]*\))$/\1 \2/p' "$IT_DIR/local-status.log")
    : >"$IT_DIR/local-status.log"
}

# readings [UNTIL]: the readings in the history (those stamped UNTIL or before).
readings() {
    psql "$LOCAL_DB" -X -q -At -v until="${1:-infinity}" 2>/dev/null <<'SQL'
SELECT (SELECT count(*) FROM vehicle_history WHERE ts <= :'until')
     + (SELECT count(*) FROM meter_history WHERE ts <= :'until');
SQL
}
newest() { psql "$LOCAL_DB" -X -q -At -c "SELECT max(ts) FROM vehicle_history" 2>/dev/null; }
readings_arrived() { (($(readings || echo 0) > 0)); }
served() {
    curl -fsS --max-time 5 "$API/v1/analytics/performance/V1" 2>/dev/null |
        jq -e '.vehicleId == "V1" and .metrics.vehicleReadings > 0 and .latestSnapshot.lastReadingAt != null'
}
ready() { [[ $(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$API/readyz") == 200 ]]; }

# ---- up: everything runs and the simulated fleet's readings arrive.
start=$SECONDS
LOCAL_SH_TIMEOUT=300 local_sh up || { it_fail "local.sh up: exit status $?"; exit 1; }
it_log "up took $((SECONDS - start))s (the build of build/ included)"
it_wait_for "the API's /readyz" 60 ready
it_wait_for "simulated readings in PostgreSQL" 60 readings_arrived
it_wait_for "V1's readings on the API (GET /v1/analytics/performance/V1)" 30 served &&
    it_log "ok: up: /readyz 200, $(readings) readings in PostgreSQL, V1's on the API"

status
it_expect_eq "${SERVICES[*]}" "$(printf '%s\n' "${RUNNING[@]}" | cut -d' ' -f1 | paste -sd' ')" \
    "status: every service running"
procs1=$(ours)
it_expect_eq "eie-api eie-consumer eie-consumer eie-simulate kafka postgres" \
    "$(cut -d' ' -f2 <<<"$procs1" | sort | paste -sd' ')" \
    "up: one process per service (eie-consumer: hot and cold)"
# The pids status names are the processes that run.
for entry in "${RUNNING[@]}"; do
    pid=${entry#* }
    grep -q "^$pid " <<<"$procs1" || it_fail "status names ${entry% *} as pid $pid, which is none of: $procs1"
done

# ---- up again: nothing restarted, nothing added.
local_sh up || it_fail "local.sh up (again): exit status $?"
it_expect_eq "$procs1" "$(ours)" "up again: the same processes, by pid, and no more"
ready || it_fail "after up again: /readyz is not 200"

# ---- down: exactly ours stop, the data stays.
newest=$(newest || true)
before=$(readings "$newest" || echo 0)
local_sh down || it_fail "local.sh down: exit status $?"
mapfile -t pids < <(cut -d' ' -f1 <<<"$procs1")
gone "${pids[@]}" || it_fail "down: still running: $(for p in "${pids[@]}"; do gone "$p" || echo "$p"; done | tr '\n' ' ')"
it_expect_eq "" "$(ours)" "down: no process of the deployment left"
eie_proc__exists "$decoy_pid" || it_fail "down stopped the decoy named eie-consumer (pid $decoy_pid)"
status
it_expect_eq 0 "${#RUNNING[@]}" "status after down: nothing running"
[[ -s $EIE_LOCAL_DIR/pg/PG_VERSION && -s $EIE_LOCAL_DIR/kafka/data/meta.properties ]] ||
    it_fail "down deleted the data: $(ls -R "$EIE_LOCAL_DIR" 2>&1 | head -n 20)"

# The kept data serves again: the readings stored before `down` are all there
# (the restarted simulator's come after them; at least as many: a batch may
# have landed between the count and `down`).
local_sh up || it_fail "local.sh up (after down): exit status $?"
after=$(readings "$newest" || echo 0)
if ((before > 0 && after >= before)); then
    it_log "ok: down kept the data: $after readings until $newest ($before before down)"
else
    it_fail "after down and up: $after readings until $newest, $before before down"
fi
it_wait_for "the API's /readyz after down and up" 60 ready
it_wait_for "V1's readings on the API after down and up" 30 served
procs2=$(ours)

# ---- down --purge: stopped, and the data is gone.
local_sh down --purge || it_fail "local.sh down --purge: exit status $?"
mapfile -t pids < <(cut -d' ' -f1 <<<"$procs2")
gone "${pids[@]}" || it_fail "down --purge: still running: $(ours)"
[[ ! -e $EIE_LOCAL_DIR ]] || it_fail "down --purge left $EIE_LOCAL_DIR: $(ls "$EIE_LOCAL_DIR")"
it_expect_eq "" "$(ours)" "down --purge: no process of the deployment left"

it_finish
