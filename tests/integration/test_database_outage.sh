#!/usr/bin/env bash
# A PostgreSQL outage loses nothing: the consumers stop consuming, retry with
# backoff and log it, and when the server is back they resume where they
# stopped. Readings produced during the outage all land, exactly once. An
# outage longer than max.poll.interval.ms (here 7 s instead of 300) does not
# put a consumer out of its group: it pauses its partitions and keeps polling.
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
it_audit_writes
count_is() { it_sql_equals "$1" "SELECT count(*) || '|' || sum(kwh_delivered_dc) FROM vehicle_history"; }

# librdkafka wants max.poll.interval.ms >= session.timeout.ms (the broker's
# least is 6 s).
short_poll=(-X session.timeout.ms=6000 -X max.poll.interval.ms=7000)
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 "${short_poll[@]}"
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50 "${short_poll[@]}"
readings 40 31 | "$EIE_BIN/eie-produce" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed"
it_wait_for "the first 50 readings" 60 count_is "50|25"
# Both consumers in their groups and past their first batch, so that the
# outage finds each of them writing, not joining.
it_wait_for "the hot state of the first readings" 60 it_sql_equals "5|155" \
    "SELECT count(*) || '|' || sum(soc) FROM vehicle_state"

it_own_pg_stop || it_fail "cannot stop PostgreSQL"
it_log "PostgreSQL stopped"
readings 30 21 | "$EIE_BIN/eie-produce" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed during the outage"
# More batches than writers (the cold consumer's two take one each), so that
# one waits for a writer to be free.
sleep 1
readings 20 16 | "$EIE_BIN/eie-produce" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed during the outage"
sleep 1
readings 15 11 | "$EIE_BIN/eie-produce" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed during the outage"
sleep 16 # over twice max.poll.interval.ms
for name in cold hot; do
    var="${name}_pid"
    kill -0 "${!var}" 2>/dev/null || it_fail "$name exited during the outage"
    grep -q "failed (attempt" "$IT_DIR/$name.log" || it_fail "$name did not log its retries"
    grep -q "paused .* while a batch fails to commit" "$IT_DIR/$name.log" ||
        it_fail "$name did not pause its partitions while stalled"
    if grep -qi "maximum poll interval\|revoked" "$IT_DIR/$name.log"; then
        it_fail "$name left its group while stalled: $(grep -i "maximum poll interval\|revoked" "$IT_DIR/$name.log" | head -n 2)"
    fi
done
it_own_pg_start || it_fail "cannot start PostgreSQL again"
it_log "PostgreSQL started again"

it_wait_for "all 150 readings after the outage" 90 count_is "150|75"
it_wait_for "the hot state to reach the newest readings" 60 it_sql_equals "5|55" \
    "SELECT count(*) || '|' || sum(soc) FROM vehicle_state"
grep -q "batch written after" "$IT_DIR/cold.log" || it_fail "cold did not log its recovery"
# The batches retried through the outage were each committed once.
it_written_once vehicle_history 150
it_stop cold
it_stop hot
it_finish
