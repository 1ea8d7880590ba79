#!/usr/bin/env bash
# Verification of two stores: a dataset with repeated, out-of-order and late
# readings is ingested live into one database, then replayed from the topics
# into a fresh one by new consumer groups; eie-admin verify finds them
# identical (their charging sessions too, once derived), and finds a changed
# and a missing row, and a changed session, once they are not.
source "$(dirname "$0")/lib.sh"
it_setup 2

# Over an hour ago: whole closed hours, which sessions are derived from.
from=$(date -u -d "-120 min" +%Y-%m-%dT%H:%M:00Z)
to=$(date -u -d "@$(( $(date -d "$from" +%s) + 40 * 60 ))" +%Y-%m-%dT%H:%M:%SZ)
"$EIE_BIN/eie-simulate" --vehicles 15 --from "$from" --to "$to" --seed 7 --duplicate-rate 0.05 \
    --out-of-order-rate 0.05 --late-rate 0.05 --late-max-s 900 --invalid-rate 0.01 --reassign-rate 0.01 \
    2>"$IT_DIR/sim.log" || it_fail "the simulator failed"
total=$(sed -nE 's/.*stopped: ([0-9]+) records sent.*/\1/p' "$IT_DIR/sim.log")
assignments=$((15 + $(sed -nE 's/.* ([0-9]+) reassignments.*/\1/p' "$IT_DIR/sim.log")))

live=$DATABASE_URL
# The second database is the superuser's, served as before the roles.
replay="${IT_SUPER_URL}_replay"
psql "postgresql://${EIE_TEST_PGUSER}@${EIE_TEST_PGHOST}:${EIE_TEST_PGPORT}/postgres" -X -q \
    -c "CREATE DATABASE \"${replay##*/}\"" >/dev/null
# both GROUP_PREFIX: the hot group has read every record, the cold one every reading
both_done() {
    it_sql_equals "$total|$((total - assignments))" \
        "SELECT (SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '$1hot') || '|' || (SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '$1cold')"
}

it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50
it_wait_for "the live stores" 90 both_done "${EIE_TOPIC_PREFIX}"
DATABASE_URL=$replay it_start hot2 "$EIE_BIN/eie-consumer" --store hot --group "${EIE_TOPIC_PREFIX}replay.hot"
DATABASE_URL=$replay it_start cold2 "$EIE_BIN/eie-consumer" --store cold --group "${EIE_TOPIC_PREFIX}replay.cold"
DATABASE_URL=$replay it_wait_for "the replayed stores" 90 both_done "${EIE_TOPIC_PREFIX}replay."
for name in hot cold hot2 cold2; do it_stop "$name"; done
for url in "$live" "$replay"; do
    "$EIE_BIN/eie-admin" rollup --database-url "$url" --settle '0 minutes' >>"$IT_DIR/admin.log" 2>&1 ||
        it_fail "eie-admin rollup failed on $url"
done
sessions=$(it_psql -c "SELECT count(*) FROM charging_session")
((sessions > 0)) || it_fail "no charging sessions derived to compare"

"$EIE_BIN/eie-admin" verify --database-url "$live" --against "$replay" >"$IT_DIR/verify.out" 2>&1 ||
    it_fail "live and replayed stores differ: $(cat "$IT_DIR/verify.out")"
grep -q "groups compared, 0 differences" "$IT_DIR/verify.out" || it_fail "verify said: $(cat "$IT_DIR/verify.out")"
it_log "$(tail -n 1 "$IT_DIR/verify.out") ($sessions sessions among them)"

# Differences in the hot state alone (the histories still identical): a
# vehicle's latest state, a meter's, and a vehicle's assignments.
psql "$replay" -X -q -c "UPDATE vehicle_state SET soc = soc + 1 WHERE vehicle_id = 'V2'" \
    -c "UPDATE meter_state SET voltage = voltage + 1 WHERE meter_id = 'M4'" \
    -c "DELETE FROM vehicle_meter_assignment WHERE vehicle_id = 'V6'"
status=0
"$EIE_BIN/eie-admin" verify --database-url "$live" --against "$replay" >"$IT_DIR/verify.out" 2>&1 || status=$?
it_expect_eq 1 "$status" "verify exits 1 on differences in the hot state"
grep -q "^state/vehicle V2: differs (rows 1 vs 1, " "$IT_DIR/verify.out" || it_fail "the changed vehicle state is not listed: $(cat "$IT_DIR/verify.out")"
grep -q "^state/meter M4: differs (rows 1 vs 1, " "$IT_DIR/verify.out" || it_fail "the changed meter state is not listed"
grep -q "^assignments V6: only in the first" "$IT_DIR/verify.out" || it_fail "the missing assignments are not listed"
grep -q ", 3 differences$" "$IT_DIR/verify.out" || it_fail "verify counted: $(tail -n 1 "$IT_DIR/verify.out")"
if grep -q "^history/" "$IT_DIR/verify.out"; then it_fail "history listed although it is identical"; fi

psql "$replay" -X -q -c "UPDATE charging_session SET readings = readings + 1 WHERE vehicle_id = 'V2'" \
    -c "UPDATE vehicle_history SET soc = soc + 1 WHERE vehicle_id = 'V3' AND ts = (SELECT max(ts) FROM vehicle_history WHERE vehicle_id = 'V3')" \
    -c "DELETE FROM meter_history WHERE meter_id = 'M5'"
status=0
"$EIE_BIN/eie-admin" verify --database-url "$live" --against "$replay" >"$IT_DIR/verify.out" 2>&1 || status=$?
it_expect_eq 1 "$status" "verify exits 1 on differences"
grep -Eq "^history/vehicle V3 .*: differs \(rows ([0-9]+) vs \1, " "$IT_DIR/verify.out" || it_fail "the changed row is not listed: $(cat "$IT_DIR/verify.out")"
grep -q "^history/meter M5 .*: only in the first" "$IT_DIR/verify.out" || it_fail "the missing rows are not listed"
grep -q "^sessions V2 .*: differs" "$IT_DIR/verify.out" || it_fail "the changed session is not listed: $(cat "$IT_DIR/verify.out")"
status=0
"$EIE_BIN/eie-admin" verify >/dev/null 2>&1 || status=$?
it_expect_eq 2 "$status" "verify without --against is bad usage"
it_finish
