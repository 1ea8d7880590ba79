#!/usr/bin/env bash
# Hourly summaries behind the performance endpoint: the answer is the same
# whether the hours are read raw, dirty or summarised; a late reading for a
# summarised hour counts at once and after the hour is summarised again; a
# repeated reading counts once.
source "$(dirname "$0")/lib.sh"
it_setup 2

t0=$(( $(date -u +%s) / 60 * 60 ))
t() { it_time "$t0" "$1"; }
{
    echo "{\"vehicleId\":\"V1\",\"meterId\":\"M1\",\"validFrom\":\"$(t -400)\"}"
} >"$IT_DIR/assignments.jsonl"
for i in $(seq 0 24); do
    echo "{\"meterId\":\"M1\",\"kwhConsumedAc\":0.5,\"voltage\":230,\"timestamp\":\"$(t $((-300 + 10 * i)))\"}"
done >"$IT_DIR/meters.jsonl"
for i in $(seq 0 24); do
    echo "{\"vehicleId\":\"V1\",\"soc\":50,\"kwhDeliveredDc\":0.25,\"batteryTemp\":$((20 + 10 * (i % 2))),\"timestamp\":\"$(t $((-300 + 10 * i)))\"}"
done >"$IT_DIR/vehicles.jsonl"

it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 --housekeep-interval-s 1
port=$(it_free_port)
it_start api "$EIE_BIN/eie-api" --port "$port"
it_wait_for "the API" 30 curl -sf "http://127.0.0.1:$port/healthz"

"$EIE_BIN/eie-produce" --type assignment "$IT_DIR/assignments.jsonl" 2>>"$IT_DIR/produce.log" || it_fail "producing assignments"
"$EIE_BIN/eie-produce" --type meter "$IT_DIR/meters.jsonl" 2>>"$IT_DIR/produce.log" || it_fail "producing meter readings"
"$EIE_BIN/eie-produce" --type vehicle "$IT_DIR/vehicles.jsonl" 2>>"$IT_DIR/produce.log" || it_fail "producing vehicle readings"
stored() { it_sql_equals "$1" "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)"; }
it_wait_for "the readings" 60 stored 50

url="http://127.0.0.1:$port/v1/analytics/performance/V1?from=$(t -330)&to=$(t -30)"
metrics() { curl -sf "$url" | jq -c '.metrics'; }
# Summarised and clean: the hours closed 15 minutes ago or more (at least the
# first three of the readings' five) summarised, no hour dirty.
summarised() {
    it_sql_equals "0|true" "SELECT (SELECT count(*) FROM hourly_rollup_dirty) || '|' ||
        ((SELECT sum(readings) FROM vehicle_hourly WHERE vehicle_id = 'V1') >= 18 AND
         (SELECT sum(readings) FROM meter_hourly WHERE meter_id = 'M1') >= 18)"
}
it_wait_for "the hours to be summarised" 60 summarised
expected='{"totalEnergyConsumedAc":12.5,"totalEnergyDeliveredDc":6.25,"efficiencyRatio":0.5,"avgBatteryTemp":24.8,"meterReadings":25,"vehicleReadings":25,"energyLossKwh":6.25}'
it_expect_eq "$expected" "$(metrics)" "the window's totals from summaries and the minutes at its edges"
raw=$(psql "$DATABASE_URL" -X -At -c "SELECT sum(kwh_consumed_ac) || '|' || count(*) FROM meter_history WHERE meter_id = 'M1' AND ts >= '$(t -330)' AND ts < '$(t -30)'")
it_expect_eq "12.5|25" "$raw" "the history agrees"

# A late reading for a summarised hour, and a repeat (other value) of a reading.
late=$(t -185)
printf '%s\n' "{\"meterId\":\"M1\",\"kwhConsumedAc\":0.5,\"voltage\":230,\"timestamp\":\"$late\"}" \
    "{\"meterId\":\"M1\",\"kwhConsumedAc\":4,\"voltage\":230,\"timestamp\":\"$(t -200)\"}" |
    "$EIE_BIN/eie-produce" --type meter - 2>>"$IT_DIR/produce.log" || it_fail "producing the late reading"
printf '%s\n' "{\"vehicleId\":\"V1\",\"soc\":50,\"kwhDeliveredDc\":0.25,\"batteryTemp\":30,\"timestamp\":\"$late\"}" |
    "$EIE_BIN/eie-produce" --type vehicle - 2>>"$IT_DIR/produce.log" || it_fail "producing the late reading"
late_stored() { it_sql_equals 1 "SELECT count(*) FROM meter_history WHERE ts = '$late'"; }
it_wait_for "the late reading" 60 late_stored
expected='{"totalEnergyConsumedAc":13,"totalEnergyDeliveredDc":6.5,"efficiencyRatio":0.5,"avgBatteryTemp":25,"meterReadings":26,"vehicleReadings":26,"energyLossKwh":6.5}'
it_expect_eq "$expected" "$(metrics)" "a late reading counts at once"
summarised_again() {
    it_sql_equals "0|true" "SELECT (SELECT count(*) FROM hourly_rollup_dirty) || '|' ||
        ((SELECT readings FROM meter_hourly WHERE meter_id = 'M1' AND hour = date_trunc('hour', '$late'::timestamptz, 'UTC')) =
         (SELECT count(*) FROM meter_history WHERE meter_id = 'M1' AND date_trunc('hour', ts, 'UTC') = date_trunc('hour', '$late'::timestamptz, 'UTC')))"
}
it_wait_for "the late hour to be summarised again" 60 summarised_again
it_expect_eq "$expected" "$(metrics)" "and the same once its hour is summarised again"
it_finish
