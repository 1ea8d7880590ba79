#!/usr/bin/env bash
# The simulator's backfill with faults: deterministic for a seed, and every
# fault lands where it should: repeats stored once, out-of-order and late
# readings in the history without overwriting newer state, invalid ones as dead
# letters, reassignments as assignment history. And the depot both ways: with
# a meter per vehicle (the default) no meter ever feeds two vehicles at once;
# with banks of chargers (--chargers-per-meter) meters are shared, and each
# draws the sum of its vehicles' DC over their efficiency.
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

# The same fleet (seed) in banks of 4 chargers behind 5 meters, over the 30
# minutes before the default run's window, into the same topics.
bank_from=$(it_time "$(date -d "$from" +%s)" -40)
bank_to=$(it_time "$(date -d "$bank_from" +%s)" $intervals)
bank_meters=5
"$EIE_BIN/eie-simulate" --vehicles $vehicles --chargers-per-meter 4 --from "$bank_from" --to "$bank_to" \
    --reassign-rate 0.01 --seed 42 2>"$IT_DIR/sim-bank.log" ||
    it_fail "the bank run failed: $(tail -n 3 "$IT_DIR/sim-bank.log")"
grep -q "$vehicles vehicles and $bank_meters meters (4 chargers each)" "$IT_DIR/sim-bank.log" ||
    it_fail "expected $bank_meters meters of 4 chargers: $(grep backfilling "$IT_DIR/sim-bank.log")"
bank_summary=$(grep "stopped:" "$IT_DIR/sim-bank.log")
bank_reassigned=$(sed -E 's/.* ([0-9]+) reassignments.*/\1/' <<<"$bank_summary")
[[ $bank_reassigned -gt 0 ]] || it_fail "no reassignment in the bank run: $bank_summary"

it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
readings=$((2 * vehicles * intervals + (vehicles + bank_meters) * intervals))
it_wait_for "the history: every valid reading once" 90 it_sql_equals $((readings - invalid)) \
    "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)"
it_wait_for "the assignments" 60 it_sql_equals $((2 * vehicles + reassigned + bank_reassigned)) \
    "SELECT count(*) FROM vehicle_meter_assignment"

# Pairs of vehicles on one meter at overlapping times, in the default run's
# window and in the bank run's (assignments made before the default run's
# start end at it, when every vehicle is assigned anew).
overlaps() {
    it_psql -c "SELECT count(*) FROM vehicle_meter_assignment_period a
        JOIN vehicle_meter_assignment_period b ON a.meter_id = b.meter_id AND a.vehicle_id < b.vehicle_id
         AND tstzrange(a.valid_from, a.valid_to) && tstzrange(b.valid_from, b.valid_to)
        WHERE a.valid_from $1 '$from' AND b.valid_from $1 '$from'"
}
it_expect_eq 0 "$(overlaps '>=')" "a meter per vehicle: no two vehicles on one meter at overlapping times"
shared=$(overlaps '<')
[[ $shared -ge $((bank_meters * 6)) ]] || it_fail "banks of 4: expected vehicles sharing each meter, found $shared pairs"

# Each vehicle's efficiency, from the default run, where its meter is its own:
# DC over the meter's AC. The bank run's vehicles are the same (same seed, so
# the same DC every interval), and each bank meter's AC must be the sum of its
# vehicles' DC over their efficiency, within the readings' rounding (0.001 kWh).
read -r compared sharing missing wrong < <(it_psql -F ' ' -c "
    WITH fed AS (
        SELECT v.vehicle_id, p.meter_id, v.ts, date_trunc('minute', v.ts) AS minute, v.kwh_delivered_dc AS dc
        FROM vehicle_history v JOIN vehicle_meter_assignment_period p ON p.vehicle_id = v.vehicle_id
         AND v.ts >= p.valid_from AND (p.valid_to IS NULL OR v.ts < p.valid_to)),
    ac AS (SELECT meter_id, date_trunc('minute', ts) AS minute, kwh_consumed_ac AS ac FROM meter_history),
    eff AS (
        SELECT vehicle_id, avg(dc / ac) AS eff FROM fed JOIN ac USING (meter_id, minute)
        WHERE ts >= '$from' AND ac > 0.05 GROUP BY 1),
    bank AS (
        SELECT meter_id, minute, sum(dc / eff) FILTER (WHERE dc > 0) AS expected,
               count(*) FILTER (WHERE dc > 0) AS charging,
               count(*) FILTER (WHERE dc > 0 AND eff IS NULL) AS missing
        FROM fed LEFT JOIN eff USING (vehicle_id) WHERE ts < '$from' GROUP BY 1, 2)
    SELECT count(*), count(*) FILTER (WHERE charging > 1), sum(missing),
           count(*) FILTER (WHERE abs(ac - coalesce(expected, 0)) > 0.004 + 0.02 * ac)
    FROM bank JOIN ac USING (meter_id, minute)")
it_log "banks of 4: $compared meter-minutes, $sharing with two or more vehicles charging, $wrong off"
it_expect_eq $((bank_meters * intervals)) "$compared" "every bank meter's reading compared"
[[ $sharing -ge $((bank_meters * intervals / 2)) ]] || it_fail "banks of 4: only $sharing meter-minutes with several vehicles charging"
it_expect_eq 0 "$missing" "an efficiency for every vehicle that charged"
it_expect_eq 0 "$wrong" "a bank meter's AC is the sum of its vehicles' DC over their efficiency"
# The hot state holds each vehicle's newest valid reading, whatever order they came in.
it_wait_for "the hot state" 60 it_sql_equals 0 \
    "SELECT count(*) FROM vehicle_state s JOIN (SELECT vehicle_id, max(ts) AS ts FROM vehicle_history GROUP BY 1) h USING (vehicle_id) WHERE s.ts <> h.ts"
it_expect_eq "$vehicles" "$(it_psql -c "SELECT count(*) FROM vehicle_state")" "one state row per vehicle"
it_stop cold
it_stop hot
grep -q "invalid $invalid)" "$IT_DIR/cold.log" || it_fail "cold did not dead-letter $invalid invalid readings: $(grep 'dead letters' "$IT_DIR/cold.log" | tail -n 1)"
it_finish
