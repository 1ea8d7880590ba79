#!/usr/bin/env bash
# The simulator's backfill with faults: deterministic for a seed, and every
# fault lands where it should: repeats stored once, out-of-order and late
# readings in the history without overwriting newer state, invalid ones as dead
# letters, reassignments as assignment history.
source "$(dirname "$0")/lib.sh"
it_setup 2

vehicles=20 intervals=30
from=$(date -u -d "-$((intervals + 10)) min" +%Y-%m-%dT%H:%M:00Z)
to=$(date -u -d "@$(( $(date -d "$from" +%s) + intervals * 60 ))" +%Y-%m-%dT%H:%M:%SZ)
faults=(--duplicate-rate 0.05 --out-of-order-rate 0.05 --late-rate 0.05 --late-max-s 600
        --invalid-rate 0.02 --reassign-rate 0.01 --seed 42)
"$EIE_BIN/eie-simulate" --vehicles $vehicles --from "$from" --to "$to" "${faults[@]}" \
    2>"$IT_DIR/sim.log" || it_fail "the simulator failed: $(tail -n 3 "$IT_DIR/sim.log")"
summary=$(grep "stopped:" "$IT_DIR/sim.log")
it_log "$summary"
count() { sed -E "s/.* ([0-9]+) $1.*/\\1/" <<<"$summary"; }
repeated=$(count repeated) invalid=$(count invalid) reassigned=$(count reassignments)
[[ $(count "out of order") -gt 0 && $(count late) -gt 0 && $repeated -gt 0 && $invalid -gt 0 && $reassigned -gt 0 ]] ||
    it_fail "expected every kind of fault at these rates: $summary"
grep -q "0 failed, 0 unconfirmed" <<<"$summary" || it_fail "not everything was acknowledged"

# Same seed, same records: a second run into other topics matches byte for byte.
dump() { kcat -C -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$1" -o beginning -e -q -f '%k %T %s\n' | sed 's/^\([^ ]*\) [0-9]* /\1 /' | sort | md5sum; }
EIE_TOPIC_PREFIX="${EIE_TOPIC_PREFIX}again." "$EIE_BIN/eie-admin" topics --partitions 2 2>>"$IT_DIR/admin.log"
EIE_TOPIC_PREFIX="${EIE_TOPIC_PREFIX}again." "$EIE_BIN/eie-simulate" --vehicles $vehicles --from "$from" \
    --to "$to" "${faults[@]}" 2>"$IT_DIR/sim2.log" || it_fail "second run failed"
it_expect_eq "$(dump "${EIE_TOPIC_PREFIX}vehicle-readings")" "$(dump "${EIE_TOPIC_PREFIX}again.vehicle-readings")" \
    "a seed gives the same vehicle readings"
it_expect_eq "$(dump "${EIE_TOPIC_PREFIX}vehicle-assignments")" "$(dump "${EIE_TOPIC_PREFIX}again.vehicle-assignments")" \
    "a seed gives the same assignments"

it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
readings=$((2 * vehicles * intervals))
it_wait_for "the history: every valid reading once" 90 it_sql_equals $((readings - invalid)) \
    "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)"
it_wait_for "the assignments" 60 it_sql_equals $((vehicles + reassigned)) "SELECT count(*) FROM vehicle_meter_assignment"
# The hot state holds each vehicle's newest valid reading, whatever order they came in.
it_wait_for "the hot state" 60 it_sql_equals 0 \
    "SELECT count(*) FROM vehicle_state s JOIN (SELECT vehicle_id, max(ts) AS ts FROM vehicle_history GROUP BY 1) h USING (vehicle_id) WHERE s.ts <> h.ts"
it_expect_eq "$vehicles" "$(it_psql -c "SELECT count(*) FROM vehicle_state")" "one state row per vehicle"
it_stop cold
it_stop hot
grep -q "invalid $invalid)" "$IT_DIR/cold.log" || it_fail "cold did not dead-letter $invalid invalid readings: $(grep 'dead letters' "$IT_DIR/cold.log" | tail -n 1)"
it_finish
