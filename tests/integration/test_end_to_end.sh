#!/usr/bin/env bash
# One known set of readings travels the whole way: eie-produce -> Kafka -> hot
# and cold consumers -> PostgreSQL -> GET /v1/analytics/performance. The set
# holds a repeated reading and an out-of-order one; the stores and the endpoint
# must hold exactly the expected values.
source "$(dirname "$0")/lib.sh"
it_setup 3

port=$(it_free_port)
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50
it_start api "$EIE_BIN/eie-api" --port "$port"

# Two hours ago, on a whole minute: well inside the 24 h window.
base=$(( $(date -u +%s) / 60 * 60 - 7200 ))
t() { it_time "$base" "$1"; }
cat >"$IT_DIR/readings.jsonl" <<JSON
{"vehicleId":"V1","meterId":"M1","validFrom":"$(t -60)"}
{"vehicleId":"V2","meterId":"M2","validFrom":"$(t -2880)"}
{"vehicleId":"V3","meterId":"M3","validFrom":"$(t -60)"}
{"meterId":"M1","kwhConsumedAc":1.0,"voltage":230,"timestamp":"$(t 0)"}
{"meterId":"M1","kwhConsumedAc":2.0,"voltage":231,"timestamp":"$(t 1)"}
{"meterId":"M1","kwhConsumedAc":2.0,"voltage":231,"timestamp":"$(t 1)"}
{"meterId":"M1","kwhConsumedAc":3.0,"voltage":229.5,"timestamp":"$(t 2)"}
{"meterId":"M2","kwhConsumedAc":5.0,"voltage":240,"timestamp":"$(t 0)"}
{"vehicleId":"V1","soc":50,"kwhDeliveredDc":0.9,"batteryTemp":30,"timestamp":"$(t 0)"}
{"vehicleId":"V1","soc":50,"kwhDeliveredDc":0.9,"batteryTemp":30,"timestamp":"$(t 0)"}
{"vehicleId":"V1","soc":55,"kwhDeliveredDc":2.7,"batteryTemp":32,"timestamp":"$(t 2)"}
{"vehicleId":"V1","soc":52,"kwhDeliveredDc":1.8,"batteryTemp":31,"timestamp":"$(t 1)"}
{"vehicleId":"V3","soc":10,"kwhDeliveredDc":0,"batteryTemp":20.5,"timestamp":"$(t -1800)"}
JSON
"$EIE_BIN/eie-produce" "$IT_DIR/readings.jsonl" 2>"$IT_DIR/produce.log" ||
    it_fail "eie-produce exited with $? on valid input"
grep -q "13 read, 13 sent, 13 acknowledged, 0 rejected" "$IT_DIR/produce.log" ||
    it_fail "producer summary: $(tail -n 1 "$IT_DIR/produce.log")"

# 8 distinct history rows: M1 x3, M2, V1 x3, V3; the hot store has 3 vehicles' assignments.
it_wait_for "the history to hold 8 rows" 60 it_sql_equals 8 \
    "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)"
it_wait_for "the hot state to hold V1's latest reading" 60 it_sql_equals 55 \
    "SELECT soc FROM vehicle_state WHERE vehicle_id = 'V1'"
# Offsets start at 0 in each partition, so their sum is the messages read.
it_wait_for "the cold group's offsets to cover all 10 readings" 60 it_sql_equals 10 \
    "SELECT sum(next_offset) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}cold'"
it_wait_for "the hot group's offsets to cover all 13 records" 60 it_sql_equals 13 \
    "SELECT sum(next_offset) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}hot'"

it_expect_eq "M1|3|6|229.5" "$(it_psql -c "SELECT meter_id, count(*), sum(kwh_consumed_ac), min(voltage) FROM meter_history WHERE meter_id = 'M1' GROUP BY 1")" \
    "M1 history: three distinct readings, the repeat stored once"
it_expect_eq "V1|3|5.4" "$(it_psql -c "SELECT vehicle_id, count(*), round(sum(kwh_delivered_dc)::numeric, 9)::float8 FROM vehicle_history WHERE vehicle_id = 'V1' GROUP BY 1")" \
    "V1 history: three distinct readings"
it_expect_eq "$(t 2)|55|2.7|32" "$(it_psql -c "SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), soc, kwh_delivered_dc, battery_temp FROM vehicle_state WHERE vehicle_id = 'V1'")" \
    "V1 hot state: the newest reading by event time, not the last to arrive"
it_expect_eq "229.5|3" "$(it_psql -c "SELECT voltage, kwh_consumed_ac FROM meter_state WHERE meter_id = 'M1'")" \
    "M1 hot state"
it_expect_eq "3" "$(it_psql -c "SELECT count(*) FROM vehicle_meter_assignment")" "assignments"
# Exactly these day partitions: V3's day and V1's, made on demand, and today
# with the 3 days after it (--partitions-ahead-days' default).
day() { date -u -d "@$1" +%Y%m%d; }
expected=$(for s in $((base - 1800 * 60)) "$base" $(for d in 0 1 2 3; do echo $(($(date -u +%s) + d * 86400)); done); do
    echo "vehicle_history_$(day "$s")"; done | sort -u | tr '\n' ' ')
it_expect_eq "$expected" "$(it_psql -c "SELECT string_agg(c.relname, ' ' ORDER BY c.relname) || ' ' FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'vehicle_history'::regclass")" \
    "day partitions: V3's older day and V1's on demand, today and 3 days ahead"

it_wait_for "the API" 30 curl -fsS "http://127.0.0.1:$port/healthz"
body=$(curl -sS "http://127.0.0.1:$port/v1/analytics/performance/V1")
it_log "performance/V1: $body"
check() { jq -e "$1" >/dev/null <<<"$body" || it_fail "performance/V1: expected $1"; }
check '.vehicleId == "V1" and .meterId == "M1" and .timeRange == "24h"'
check ".latestSnapshot.lastReadingAt == \"$(t 2)\""
check '.latestSnapshot.currentSoC == 55 and .latestSnapshot.currentVoltage == 229.5 and .latestSnapshot.lastBatteryTemp == 32'
check '.metrics.totalEnergyConsumedAc == 6 and .metrics.totalEnergyDeliveredDc == 5.4'
check '.metrics.efficiencyRatio == 0.9 and .metrics.avgBatteryTemp == 31'
check '.metrics.meterReadings == 3 and .metrics.vehicleReadings == 3'
check '(.metrics.energyLossKwh * 1000 | round) == 600'
# Printed as people write them, not with binary noise.
grep -q '"totalEnergyDeliveredDc":5.4,' <<<"$body" || it_fail "5.4 printed with noise: $body"
grep -q '"efficiencyRatio":0.9,' <<<"$body" || it_fail "0.9 printed with noise: $body"

# V3 has reported (outside the window) and its meter drew nothing: no ratio.
body=$(curl -sS "http://127.0.0.1:$port/v1/analytics/performance/V3")
check '.metrics.totalEnergyConsumedAc == 0 and .metrics.efficiencyRatio == null and .metrics.avgBatteryTemp == null'
check '.latestSnapshot.currentSoC == 10 and .meterId == "M3"'

# Unknown vehicle: 404 with a JSON error.
status=$(curl -sS -o "$IT_DIR/404.json" -w '%{http_code}' "http://127.0.0.1:$port/v1/analytics/performance/NOPE")
it_expect_eq 404 "$status" "unknown vehicle status"
jq -e '.error.code == "not_found" and .error.status == 404' "$IT_DIR/404.json" >/dev/null ||
    it_fail "404 body: $(cat "$IT_DIR/404.json")"
status=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/analytics/performance/V1?window=1y")
it_expect_eq 400 "$status" "a bad window is a 400"

# The API reads the vehicle topic for its state cache (under the secured
# profile, as its ACLs allow), and Kafka refused it nothing.
grep -q "state cache: reading partitions 0 to 2 of ${EIE_TOPIC_PREFIX}vehicle-readings" "$IT_DIR/api.log" ||
    it_fail "the API does not read the vehicle topic"
! grep -i "authoriz" "$IT_DIR/api.log" || it_fail "Kafka refused the API something"

# Clean shutdown of every program on SIGTERM.
it_stop api
it_stop hot
it_stop cold
it_finish
