#!/usr/bin/env bash
# The API when its services fail, on a Kafka and a PostgreSQL of the test's
# own (it stops them, which no test may do to the suite's shared ones):
# - a query slower than --statement-timeout-ms is a 504 (a table held locked);
# - PostgreSQL down: 503 from the routes that read it, /readyz 503 naming
#   postgres, and all well again once it is back;
# - Kafka down: ingest is 503 and says which records were accepted (none),
#   /readyz 503 naming kafka, and ingest works again once it is back.
source "$(dirname "$0")/lib.sh"
it_own_kafka
it_own_postgres
it_setup 2

port=$(it_free_port)
api="http://127.0.0.1:$port"
base=$(( $(date -u +%s) / 60 * 60 - 3600 ))
t() { it_time "$base" "$1"; }
{
    echo "{\"vehicleId\":\"V1\",\"meterId\":\"M1\",\"validFrom\":\"$(t -60)\"}"
    for m in 0 10 20 30; do
        echo "{\"meterId\":\"M1\",\"kwhConsumedAc\":1,\"voltage\":230,\"timestamp\":\"$(t $m)\"}"
        echo "{\"vehicleId\":\"V1\",\"soc\":$((50 + m)),\"kwhDeliveredDc\":0.9,\"batteryTemp\":30,\"timestamp\":\"$(t $m)\"}"
    done
} >"$IT_DIR/readings.jsonl"
"$EIE_BIN/eie-produce" "$IT_DIR/readings.jsonl" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed"
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50
it_wait_for "every record stored" 60 it_sql_equals "8|9" \
    "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history) || '|' ||
        (SELECT sum(next_offset) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}hot')"
it_stop hot
it_stop cold

it_start api "$EIE_BIN/eie-api" --port "$port" --statement-timeout-ms 1000 --ingest-timeout-ms 3000
it_wait_for "the API ready" 30 curl -fsS "$api/readyz"
history="/v1/vehicles/V1/history?from=$(t 0)&to=$(t 60)&step=15m"
performance="/v1/analytics/performance/V1?from=$(t 0)&to=$(t 35)"
# get PATH: the status in $status, the body in $body
get() {
    status=$(curl -sS -o "$IT_DIR/body" -w '%{http_code}' "$api$1")
    body=$(cat "$IT_DIR/body")
}
expect() { # STATUS JQ WHAT
    [[ $status == "$1" ]] && jq -e "$2" >/dev/null <<<"$body" && { it_log "ok: $3"; return; }
    it_fail "$3: expected $1 and $2, got $status $body"
}
get "$history"; expect 200 '(.points | length) == 3' "history before any outage"
get "$performance"; expect 200 '.metrics.vehicleReadings == 4 and .metrics.totalEnergyConsumedAc == 4' "performance before any outage"

# ---- A query past the statement timeout: 504. A session holds the history's
# lock; the API's queries wait on it until PostgreSQL cancels them.
PGAPPNAME=it-locker it_start locker psql "$DATABASE_URL" -X -q -c "BEGIN" \
    -c "LOCK TABLE vehicle_history, meter_history IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(120)"
it_wait_for "the lock held" 30 it_sql_equals 2 \
    "SELECT count(*) FROM pg_locks WHERE granted AND mode = 'AccessExclusiveLock' AND relation IN ('vehicle_history'::regclass, 'meter_history'::regclass)"
start=$(date +%s%N)
get "$history"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
expect 504 '.error.status == 504 and .error.code == "timeout"' "history past the statement timeout"
((elapsed_ms >= 900 && elapsed_ms < 5000)) || it_fail "the 504 came after ${elapsed_ms} ms, not after the 1000 ms timeout"
# A window the caches do not cover: the report comes from the database.
get "/v1/analytics/performance/V1?from=$(t -20000)&to=$(t 35)"
expect 504 '.error.code == "timeout"' "a performance report past the statement timeout"
grep -q "canceling statement due to statement timeout" "$IT_DIR/api.log" || it_fail "the timeout is not in the API's log"
if grep -q "canceling statement" "$IT_DIR/body"; then it_fail "PostgreSQL's message reached the client"; fi
it_psql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'it-locker'" >/dev/null
get "$history"; expect 200 '(.points | length) == 3' "history once the lock is gone"

# ---- PostgreSQL down.
it_own_pg_stop || it_fail "cannot stop PostgreSQL"
get /readyz; expect 503 '.status == "not_ready" and .checks.postgres == "unreachable" and .checks.kafka == "ok"' "/readyz without PostgreSQL"
get "$history"; expect 503 '.error.status == 503 and .error.code == "unavailable"' "history without PostgreSQL"
get "/v1/analytics/performance/V1?from=$(t -20000)&to=$(t 35)"
expect 503 '.error.code == "unavailable"' "a performance report without PostgreSQL"
get /v1/fleet/summary; expect 503 '.error.code == "unavailable"' "fleet summary without PostgreSQL"
get /healthz; expect 200 '.status == "ok"' "/healthz: the process still serves"
it_own_pg_start || it_fail "cannot start PostgreSQL again"
it_wait_for "/readyz once PostgreSQL is back" 30 curl -fsS "$api/readyz"
get "$history"; expect 200 '(.points | length) == 3' "history once PostgreSQL is back"
get "$performance"; expect 200 '.metrics.vehicleReadings == 4' "performance once PostgreSQL is back"

# ---- Kafka down.
now=$(date -u -d '-30 sec' +%Y-%m-%dT%H:%M:%SZ)
reading() { echo "{\"meterId\":\"$1\",\"kwhConsumedAc\":0.5,\"voltage\":231,\"timestamp\":\"$now\"}"; }
ingest() {
    status=$(curl -sS -o "$IT_DIR/body" -w '%{http_code}' -H "$IT_AUTH" -H 'Content-Type: application/json' --data-binary "$1" "$api/v1/ingest/meter")
    body=$(cat "$IT_DIR/body")
}
before=$(it_topic_count meter-readings)
it_own_kafka_stop || it_fail "cannot stop Kafka"
ingest "[$(reading M7),$(reading M8)]"
expect 503 '.error.code == "unavailable" and .accepted == [] and .failed == [0,1]' "ingest without Kafka"
get /readyz; expect 503 '.checks.kafka == "unreachable" and .checks.postgres == "ok"' "/readyz without Kafka"
it_own_kafka_start || it_fail "cannot start Kafka again"
it_wait_for "/readyz once Kafka is back" 60 curl -fsS "$api/readyz"
ingest "$(reading M9)"
expect 202 '.accepted == 1' "ingest once Kafka is back"
# The failed records may yet have reached the broker (a timeout is not a
# refusal); the acknowledged one surely did.
kcat -C -b "$KAFKA_BOOTSTRAP_SERVERS" -t "${EIE_TOPIC_PREFIX}meter-readings" -o beginning -e -q -f '%k\n' \
    2>>"$IT_DIR/kcat.log" | grep -qx M9 || it_fail "the acknowledged reading is not on the topic"
it_log "meter-readings: $before before, $(it_topic_count meter-readings) after"
it_stop api
it_finish
