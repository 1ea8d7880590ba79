#!/usr/bin/env bash
# eie-replay against the real stack. A dataset with repeated, out-of-order,
# late and invalid readings and reassignments goes into the live database and,
# through other consumer groups, into a reference database. The live stores
# are then damaged and rebuilt from the topics while readings keep arriving and
# the API keeps answering: a first rebuild is killed (SIGKILL) half-way and
# leaves the live stores as they were, the second resumes it and switches.
# Live and reference are then identical. Ranged replays restore damaged days
# and leave the other days alone.
source "$(dirname "$0")/lib.sh"
it_setup 3

day0=$(( $(date -u +%s) / 86400 * 86400 ))          # today, 00:00 UTC
day_of() { date -u -d "@$(( day0 + $1 * 86400 ))" +%Y-%m-%d; }
# From 22:00 four days ago to 02:00 yesterday: four days of history.
"$EIE_BIN/eie-simulate" --vehicles 60 --from "$(it_time $((day0 - 3 * 86400)) -120)" \
    --to "$(it_time $((day0 - 86400)) 120)" --seed 11 --duplicate-rate 0.02 --out-of-order-rate 0.02 \
    --late-rate 0.02 --late-max-s 1800 --invalid-rate 0.005 --reassign-rate 0.002 \
    2>"$IT_DIR/sim1.log" || it_fail "the simulator failed"
sent() { sed -nE 's/.*stopped: ([0-9]+) records sent.*/\1/p' "$1"; }
reassigned() { echo $((60 + $(sed -nE 's/.* ([0-9]+) reassignments.*/\1/p' "$1"))); }
total=$(sent "$IT_DIR/sim1.log")
assignments=$(reassigned "$IT_DIR/sim1.log")

# The reference database is the superuser's, served as before the roles.
ref="${IT_SUPER_URL}_ref"
psql "postgresql://${EIE_TEST_PGUSER}@${EIE_TEST_PGHOST}:${EIE_TEST_PGPORT}/postgres" -X -q \
    -c "CREATE DATABASE \"${ref##*/}\"" >/dev/null
# groups_done URL GROUP_PREFIX: the hot group has read every record, the cold
# one every reading.
groups_done() {
    [[ $(psql "$1" -X -At -c "SELECT (SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '$2hot') || '|' || (SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '$2cold')") == "$total|$((total - assignments))" ]]
}
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50
DATABASE_URL=$ref it_start ref-hot "$EIE_BIN/eie-consumer" --store hot --group "${EIE_TOPIC_PREFIX}ref.hot"
DATABASE_URL=$ref it_start ref-cold "$EIE_BIN/eie-consumer" --store cold --group "${EIE_TOPIC_PREFIX}ref.cold"
it_wait_for "the live stores" 120 groups_done "$DATABASE_URL" "$EIE_TOPIC_PREFIX"
it_wait_for "the reference stores" 120 groups_done "$ref" "${EIE_TOPIC_PREFIX}ref."

# A reading repeated with other values in a later batch: the stores keep the
# first, and so must the rebuild (which builds the history without its key and
# settles repeats at the end).
repeat_ts=$(it_time $((day0 - 2 * 86400)) 30)
"$EIE_BIN/eie-produce" --type vehicle - <<<"{\"vehicleId\":\"V9\",\"soc\":11.5,\"kwhDeliveredDc\":0,\"batteryTemp\":20,\"timestamp\":\"$repeat_ts\"}" 2>>"$IT_DIR/produce.log" ||
    it_fail "producing the first copy failed"
total=$((total + 1))
it_wait_for "the first copy" 60 groups_done "$DATABASE_URL" "$EIE_TOPIC_PREFIX"
"$EIE_BIN/eie-produce" --type vehicle - <<<"{\"vehicleId\":\"V9\",\"soc\":99.5,\"kwhDeliveredDc\":0,\"batteryTemp\":20,\"timestamp\":\"$repeat_ts\"}" 2>>"$IT_DIR/produce.log" ||
    it_fail "producing the second copy failed"
total=$((total + 1))
it_wait_for "the second copy" 60 groups_done "$DATABASE_URL" "$EIE_TOPIC_PREFIX"
it_wait_for "the reference stores" 60 groups_done "$ref" "${EIE_TOPIC_PREFIX}ref."
repeat_soc() { it_psql -c "SELECT soc FROM vehicle_history WHERE vehicle_id = 'V9' AND ts = '$repeat_ts'"; }
it_expect_eq 11.5 "$(repeat_soc)" "the live history keeps the first of a repeated reading"

# Damage, as a bug in the consumers might have done.
it_psql -c "DELETE FROM vehicle_history WHERE vehicle_id = 'V3'" -c "UPDATE meter_state SET voltage = 0"

port=$(it_free_port)
it_start api "$EIE_BIN/eie-api" --port "$port"
it_wait_for "the API" 30 curl -sf "http://127.0.0.1:$port/healthz"
# Asks for a vehicle's state over and over, through the rebuild and the switch.
poll_api() {
    while :; do
        curl -s -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/v1/vehicles/V7" >>"$IT_DIR/api_codes"
        curl -s -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/v1/analytics/performance/V7?window=48h" >>"$IT_DIR/api_codes"
        sleep 0.05
    done
}
poll_api &
poll_pid=$!
IT_PIDS+=("$poll_pid")

# A rebuild interrupted (SIGINT), then killed (SIGKILL) half-way leaves the
# live stores untouched.
"$EIE_BIN/eie-replay" --batch-size 2000 >"$IT_DIR/replay0.out" 2>"$IT_DIR/replay0.log" &
replay_pid=$!
rebuilt_rows() { it_psql -c "SELECT count(*) FROM eie_rebuild.vehicle_history" 2>/dev/null; }
more_than() { [[ $(rebuilt_rows) -gt $1 ]]; }
it_wait_for "the first rebuild to store rows" 60 more_than 0
kill -INT "$replay_pid"
for ((i = 0; i < 300; i++)); do kill -0 "$replay_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$replay_pid" 2>/dev/null && { it_fail "eie-replay did not stop within 30 s of SIGINT"; kill -KILL "$replay_pid"; }
status=0
wait "$replay_pid" || status=$?
it_expect_eq 1 "$status" "an interrupted rebuild exits 1"
grep -q "interrupted: the live stores are untouched" "$IT_DIR/replay0.log" || it_fail "no word of the interruption"
it_expect_eq 0 "$(it_psql -c "SELECT count(*) FROM vehicle_history WHERE vehicle_id = 'V3'")" \
    "the live history is untouched after SIGINT"
"$EIE_BIN/eie-replay" --batch-size 2000 >"$IT_DIR/replay1.out" 2>"$IT_DIR/replay1.log" &
replay_pid=$!
it_wait_for "the resumed rebuild to store rows" 60 more_than "$(rebuilt_rows)"
kill -KILL "$replay_pid"
status=0
wait "$replay_pid" || status=$?
it_expect_eq 137 "$status" "the first rebuild was killed before it finished"
it_expect_eq 0 "$(it_psql -c "SELECT count(*) FROM vehicle_history WHERE vehicle_id = 'V3'")" \
    "the live history is untouched after the kill"
it_expect_eq t "$(it_psql -c "SELECT bool_and(voltage = 0) FROM meter_state")" \
    "the live state is untouched after the kill"

# More readings arrive before the second run resumes and switches; the live
# consumers, paused meanwhile, then hold positions older than the rebuilt
# store's offsets: their next batch must not commit, and they go on from the
# rebuilt store's offsets instead.
# Paused only between transactions: a consumer stopped inside one would hold
# locks that the switch waits for until its lock_timeout.
consumers_idle() {
    [[ $(it_psql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
        AND application_name LIKE 'eie-consumer%' AND state <> 'idle'") == 0 ]]
}
pause_consumers() {
    kill -STOP "$hot_pid" "$cold_pid"
    sleep 0.2
    consumers_idle && return 0
    kill -CONT "$hot_pid" "$cold_pid"
    return 1
}
it_wait_for "the live consumers paused between transactions" 60 pause_consumers
"$EIE_BIN/eie-simulate" --vehicles 60 --from "$(it_time $((day0 - 86400)) 120)" \
    --to "$(it_time $((day0 - 86400)) 180)" --seed 12 2>"$IT_DIR/sim2.log" || it_fail "the second simulator failed"
"$EIE_BIN/eie-replay" >"$IT_DIR/replay2.out" 2>"$IT_DIR/replay2.log" ||
    it_fail "the second rebuild failed: $(tail -n 20 "$IT_DIR/replay2.log")"
kill -CONT "$hot_pid" "$cold_pid"
grep -q "resuming the rebuild" "$IT_DIR/replay1.log" || it_fail "the second run did not resume the first"
grep -q "resuming the rebuild" "$IT_DIR/replay2.log" || it_fail "the third run did not resume the second"
grep -Eq "^rebuild: records=[1-9][0-9]* rows=[0-9]+ seconds=" "$IT_DIR/replay2.out" ||
    it_fail "no summary line: $(cat "$IT_DIR/replay2.out")"
total=$((total + $(sent "$IT_DIR/sim2.log")))
assignments=$((assignments + $(reassigned "$IT_DIR/sim2.log")))
fenced() { grep -q "store changed under this consumer" "$IT_DIR/$1.log"; }
it_wait_for "the live hot consumer to notice the switch" 60 fenced hot
it_wait_for "the live cold consumer to notice the switch" 60 fenced cold
it_wait_for "the live stores after the switch" 120 groups_done "$DATABASE_URL" "$EIE_TOPIC_PREFIX"
it_wait_for "the reference stores" 120 groups_done "$ref" "${EIE_TOPIC_PREFIX}ref."
it_expect_eq "" "$(it_psql -c "SELECT string_agg(nspname, ',') FROM pg_namespace WHERE nspname LIKE 'eie\_%'")" \
    "no rebuild or retired schema is left"

verify() {
    "$EIE_BIN/eie-admin" verify --database-url "$DATABASE_URL" --against "$ref" >"$IT_DIR/verify.out" 2>&1
}
verify || it_fail "rebuilt and reference stores differ: $(head -n 20 "$IT_DIR/verify.out")"
it_expect_eq 11.5 "$(repeat_soc)" "the rebuilt history keeps the first of a repeated reading"
# The rebuilt hourly summaries agree with the rebuilt history (clean hours).
summary_differences() {
    it_psql -c "WITH v AS (SELECT summarised_until AS until FROM hourly_rollup WHERE stream = 'vehicle'),
      raw AS (SELECT vehicle_id, date_trunc('hour', ts, 'UTC') AS hour, count(*)::int AS n, round(sum(kwh_delivered_dc)::numeric, 9) AS kwh
              FROM vehicle_history, v WHERE ts < v.until GROUP BY 1, 2),
      sums AS (SELECT vehicle_id, hour, readings AS n, round(kwh_delivered_dc::numeric, 9) AS kwh FROM vehicle_hourly
               WHERE hour NOT IN (SELECT hour FROM hourly_rollup_dirty WHERE stream = 'vehicle'))
      SELECT count(*) FROM ((SELECT * FROM raw EXCEPT SELECT * FROM sums) UNION ALL (SELECT * FROM sums EXCEPT SELECT * FROM raw)) d"
}
it_expect_eq 0 "$(summary_differences)" "the rebuilt hourly summaries match the rebuilt history"
it_expect_eq t "$(it_psql -c "SELECT summarised_until > '$(day_of -1)' FROM hourly_rollup WHERE stream = 'vehicle'")" \
    "the rebuild summarised the closed hours"
it_log "$(tail -n 1 "$IT_DIR/verify.out")"
# The charging sessions were rebuilt too: with the reference's brought up to
# date (its consumers derive them only every minute), verify compares them.
"$EIE_BIN/eie-admin" rollup --database-url "$ref" >>"$IT_DIR/admin.log" 2>&1 || it_fail "eie-admin rollup of the reference failed"
final_sessions() { # URL CUTOFF: sessions ended a gap before CUTOFF
    psql "$1" -X -At -c "SELECT count(*) FROM charging_session, charging_session_state WHERE ended_at < '$2'::timestamptz - gap"
}
cutoff=$(psql "$ref" -X -At -c "SELECT least(until, '$(it_psql -c "SELECT until FROM charging_session_state")') FROM charging_session_state")
rebuilt_sessions=$(final_sessions "$DATABASE_URL" "$cutoff")
((rebuilt_sessions > 0)) || it_fail "the rebuild derived no charging sessions before $cutoff"
it_expect_eq "$rebuilt_sessions" "$(final_sessions "$ref" "$cutoff")" "the rebuilt and reference stores hold as many final sessions"
verify || it_fail "rebuilt and reference sessions differ: $(head -n 20 "$IT_DIR/verify.out")"

kill "$poll_pid"
wait "$poll_pid" 2>/dev/null || true
bad=$(grep -cv '^200$' "$IT_DIR/api_codes" || true)
it_expect_eq 0 "$bad" "the API answered 200 throughout ($(wc -l <"$IT_DIR/api_codes") requests)"

# Ranged replays: damage two days, replay one; the other stays damaged.
v5_rows() { psql "$1" -X -At -c "SELECT count(*) FROM vehicle_history WHERE vehicle_id = 'V5' AND ts >= '$2' AND ts < '$2'::date + 1"; }
it_psql -c "DELETE FROM vehicle_history WHERE vehicle_id = 'V5' AND ts >= '$(day_of -2)' AND ts < '$(day_of 0)'"
"$EIE_BIN/eie-replay" --from-day "$(day_of -2)" >"$IT_DIR/days1.out" 2>"$IT_DIR/days1.log" ||
    it_fail "replaying one day failed"
grep -Eq "^replay: records=[1-9][0-9]* rows=[1-9][0-9]* seconds=" "$IT_DIR/days1.out" ||
    it_fail "no summary line: $(cat "$IT_DIR/days1.out")"
it_expect_eq "$(v5_rows "$ref" "$(day_of -2)")" "$(v5_rows "$DATABASE_URL" "$(day_of -2)")" "the replayed day is whole again"
it_expect_eq 0 "$(v5_rows "$DATABASE_URL" "$(day_of -1)")" "the day not replayed is untouched"
"$EIE_BIN/eie-replay" --from-day "$(day_of -4)" --to-day "$(day_of -1)" --keep-old >"$IT_DIR/days2.out" \
    2>"$IT_DIR/days2.log" || it_fail "replaying three days failed"
verify || it_fail "after the ranged replays, the stores differ: $(head -n 20 "$IT_DIR/verify.out")"
it_expect_eq 8 "$(it_psql -c "SELECT count(*) FROM pg_tables WHERE schemaname LIKE 'eie\_retired\_%'")" \
    "--keep-old kept the eight replaced partitions"

status=0
"$EIE_BIN/eie-replay" --from-day 2026-13-01 2>"$IT_DIR/usage.err" || status=$?
it_expect_eq 2 "$status" "a bad --from-day is bad usage"
grep -q "from-day" "$IT_DIR/usage.err" || it_fail "the message does not name --from-day"
status=0
"$EIE_BIN/eie-replay" --from-day "$(day_of -1)" --to-day "$(day_of -2)" 2>/dev/null || status=$?
it_expect_eq 2 "$status" "--to-day before --from-day is bad usage"
it_finish
