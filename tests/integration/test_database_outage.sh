#!/usr/bin/env bash
# A PostgreSQL outage loses nothing: the consumers stop consuming, retry with
# backoff and log it, and when the server is back they resume where they
# stopped. Readings produced during the outage all land, exactly once.
# On a PostgreSQL server of its own, since it stops it.
source "$(dirname "$0")/lib.sh"
it_own_postgres
it_setup 2

readings() { # FIRST LAST: vehicle readings V1..V5 for minutes FIRST..LAST ago
    local m i
    for ((m = $1; m >= $2; m--)); do
        for i in 1 2 3 4 5; do
            echo "{\"vehicleId\":\"V$i\",\"soc\":$m,\"kwhDeliveredDc\":0.5,\"batteryTemp\":30,\"timestamp\":\"$(date -u -d "-$m min" +%Y-%m-%dT%H:%M:00Z)\"}"
        done
    done
}
count_is() { it_sql_equals "$1" "SELECT count(*) || '|' || sum(kwh_delivered_dc) FROM vehicle_history"; }

it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
readings 40 31 | "$EIE_BIN/eie-produce" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed"
it_wait_for "the first 50 readings" 60 count_is "50|25"

it_own_pg_stop || it_fail "cannot stop PostgreSQL"
it_log "PostgreSQL stopped"
readings 30 11 | "$EIE_BIN/eie-produce" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed during the outage"
sleep 6
for name in cold hot; do
    var="${name}_pid"
    kill -0 "${!var}" 2>/dev/null || it_fail "$name exited during the outage"
    grep -q "failed (attempt" "$IT_DIR/$name.log" || it_fail "$name did not log its retries"
done
it_own_pg_start || it_fail "cannot start PostgreSQL again"
it_log "PostgreSQL started again"

it_wait_for "all 150 readings after the outage" 90 count_is "150|75"
it_wait_for "the hot state to reach the newest readings" 60 it_sql_equals "5|55" \
    "SELECT count(*) || '|' || sum(soc) FROM vehicle_state"
grep -q "batch written after" "$IT_DIR/cold.log" || it_fail "cold did not log its recovery"
it_stop cold
it_stop hot
it_finish
