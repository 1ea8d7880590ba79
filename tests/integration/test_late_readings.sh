#!/usr/bin/env bash
# A late reading never overwrites a newer one, across batches: the newer
# reading (and the newer assignment) is stored and committed first, then the
# late ones are produced. The hot state, the current assignment and the API's
# state, meter and performance routes still show the newer; the late
# assignment joins the assignment history only.
source "$(dirname "$0")/lib.sh"
it_setup 2

port=$(it_free_port)
api="http://127.0.0.1:$port"
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start api "$EIE_BIN/eie-api" --port "$port"
base=$(( $(date -u +%s) / 60 * 60 ))
t() { it_time "$base" "$1"; }
produce() { "$EIE_BIN/eie-produce" - 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed"; }
hot_read() { # N: the hot group has read and committed N records
    it_sql_equals "$1" "SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}hot'"
}
api_says() { curl -fsS "$api$1" | jq -e "$2" >/dev/null; }
state() {
    it_psql -c "SELECT (SELECT soc || '@' || to_char(ts AT TIME ZONE 'UTC', 'HH24:MI') FROM vehicle_state WHERE vehicle_id = 'V1')
        || '|' || (SELECT voltage || '@' || to_char(ts AT TIME ZONE 'UTC', 'HH24:MI') FROM meter_state WHERE meter_id = 'M1')
        || '|' || (SELECT meter_id FROM vehicle_assignment_current WHERE vehicle_id = 'V1')"
}
hm() { date -u -d "$(t "$1")" +%H:%M; }

# 1. The newer readings and assignment, stored on their own.
produce <<JSON
{"vehicleId":"V1","meterId":"M2","validFrom":"$(t -30)"}
{"vehicleId":"V1","soc":80,"kwhDeliveredDc":0.5,"batteryTemp":30,"timestamp":"$(t -5)"}
{"meterId":"M1","kwhConsumedAc":0.6,"voltage":240,"timestamp":"$(t -5)"}
{"meterId":"M2","kwhConsumedAc":0.6,"voltage":230,"timestamp":"$(t -5)"}
JSON
it_wait_for "the newer records committed" 60 hot_read 4
it_expect_eq "80@$(hm -5)|240@$(hm -5)|M2" "$(state)" "the newer state"
it_wait_for "the API to show the newer state" 30 api_says /v1/vehicles/V1 '.soc == 80 and .meterId == "M2"'

# 2. Late ones, in later batches: older readings, an older assignment.
produce <<JSON
{"vehicleId":"V1","meterId":"M1","validFrom":"$(t -60)"}
{"vehicleId":"V1","soc":20,"kwhDeliveredDc":0.1,"batteryTemp":20,"timestamp":"$(t -10)"}
{"meterId":"M1","kwhConsumedAc":0.1,"voltage":200,"timestamp":"$(t -10)"}
JSON
it_wait_for "the late records committed" 60 hot_read 7
it_expect_eq "80@$(hm -5)|240@$(hm -5)|M2" "$(state)" "the hot state after the late records: still the newer"
it_expect_eq "$(t -60) M1,$(t -30) M2" \
    "$(it_psql -c "SELECT string_agg(to_char(valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') || ' ' || meter_id, ',' ORDER BY valid_from) FROM vehicle_meter_assignment WHERE vehicle_id = 'V1'")" \
    "the late assignment is in the assignment history"

# A marker committed after the late records: once the API knows it, its caches
# have loaded everything the late records changed.
produce <<<"{\"vehicleId\":\"V9\",\"soc\":9,\"kwhDeliveredDc\":0,\"batteryTemp\":20,\"timestamp\":\"$(t -1)\"}"
it_wait_for "the marker committed" 60 hot_read 8
it_wait_for "the API to know the marker" 30 api_says /v1/vehicles/V9 '.soc == 9'
check() { # PATH JQ WHAT
    local body
    body=$(curl -sS "$api$1")
    jq -e "$2" >/dev/null <<<"$body" || it_fail "$3: expected $2 in $body"
}
check /v1/vehicles/V1 ".soc == 80 and .batteryTemp == 30 and .meterId == \"M2\" and .lastReadingAt == \"$(t -5)\"" \
    "GET /v1/vehicles/V1 after the late records"
check /v1/meters/M1 ".voltage == 240 and .vehicleIds == []" "GET /v1/meters/M1: newest voltage, V1 not back on M1"
check /v1/meters/M2 '.vehicleIds == ["V1"]' "GET /v1/meters/M2"
check "/v1/vehicles?meterId=M2" '[.items[].vehicleId] == ["V1"]' "GET /v1/vehicles?meterId=M2"
check /v1/analytics/performance/V1 ".meterId == \"M2\" and .latestSnapshot.currentSoC == 80 and .latestSnapshot.lastReadingAt == \"$(t -5)\"" \
    "the performance report's snapshot and meter"
it_stop api
it_stop hot
it_finish
