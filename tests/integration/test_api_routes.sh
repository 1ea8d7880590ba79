#!/usr/bin/env bash
# Every route of the REST service over HTTP against the real stack, its happy
# path and its errors; analytics on data with a known answer: a vehicle that
# changed meters mid-window, a late and a repeated reading, an empty window.
# (Kafka and PostgreSQL outages: test_api_outages.sh, on servers of its own.)
source "$(dirname "$0")/lib.sh"
it_setup 2

port=$(it_free_port)
api="http://127.0.0.1:$port"
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50
it_start api "$EIE_BIN/eie-api" --port "$port" --ingest-timeout-ms 3000

base=$(( $(date -u +%s) / 60 * 60 - 7200 ))
t() { it_time "$base" "$1"; }
# V1 charges through M1, then from minute 60 through M2 (which V2 uses too).
cat >"$IT_DIR/readings.jsonl" <<JSON
{"vehicleId":"V1","meterId":"M1","validFrom":"$(t -180)"}
{"vehicleId":"V1","meterId":"M2","validFrom":"$(t 60)"}
{"vehicleId":"V2","meterId":"M2","validFrom":"$(t -2880)"}
{"vehicleId":"V3","meterId":"M3","validFrom":"$(t -60)"}
{"meterId":"M1","kwhConsumedAc":1.0,"voltage":230,"timestamp":"$(t 0)"}
{"meterId":"M1","kwhConsumedAc":2.0,"voltage":231,"timestamp":"$(t 30)"}
{"meterId":"M1","kwhConsumedAc":4.0,"voltage":232,"timestamp":"$(t 90)"}
{"meterId":"M2","kwhConsumedAc":8.0,"voltage":228,"timestamp":"$(t 0)"}
{"meterId":"M2","kwhConsumedAc":3.0,"voltage":228.5,"timestamp":"$(t 90)"}
{"meterId":"M2","kwhConsumedAc":1.0,"voltage":229,"timestamp":"$(t 100)"}
{"vehicleId":"V1","soc":50,"kwhDeliveredDc":0.9,"batteryTemp":30,"timestamp":"$(t 0)"}
{"vehicleId":"V1","soc":52,"kwhDeliveredDc":1.8,"batteryTemp":31,"timestamp":"$(t 30)"}
{"vehicleId":"V1","soc":60,"kwhDeliveredDc":2.7,"batteryTemp":32,"timestamp":"$(t 90)"}
{"vehicleId":"V1","soc":61,"kwhDeliveredDc":0.9,"batteryTemp":34.2,"timestamp":"$(t 100)"}
{"vehicleId":"V1","soc":52,"kwhDeliveredDc":1.8,"batteryTemp":31,"timestamp":"$(t 30)"}
{"vehicleId":"V1","soc":51,"kwhDeliveredDc":0.1,"batteryTemp":30.5,"timestamp":"$(t 10)"}
{"vehicleId":"V2","soc":20,"kwhDeliveredDc":0,"batteryTemp":22,"timestamp":"$(t 0)"}
{"vehicleId":"V3","soc":90,"kwhDeliveredDc":1.0,"batteryTemp":25,"timestamp":"$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)"}
JSON
"$EIE_BIN/eie-produce" "$IT_DIR/readings.jsonl" 2>"$IT_DIR/produce.log" || it_fail "eie-produce failed"
it_wait_for "the history" 60 it_sql_equals 13 \
    "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)"
it_wait_for "the hot state" 60 it_sql_equals 18 \
    "SELECT sum(next_offset) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}hot'"
it_wait_for "the API" 30 curl -fsS "$api/healthz"

# get PATH [EXPECTED_STATUS]: body in $body, status checked
get() {
    local status
    status=$(curl -sS -o "$IT_DIR/body" -w '%{http_code}' "$api$1")
    body=$(cat "$IT_DIR/body")
    [[ $status == "${2:-200}" ]] || it_fail "GET $1: status $status, expected ${2:-200}: $body"
}
# send METHOD PATH DATA [CONTENT_TYPE]: status in $status, body in $body
send() {
    status=$(curl -sS -o "$IT_DIR/body" -w '%{http_code}' -X "$1" -H "$IT_AUTH" -H "Content-Type: ${4:-application/json}" \
        --data-binary "$3" "$api$2")
    body=$(cat "$IT_DIR/body")
}
check() { jq -e "$1" >/dev/null <<<"$body" || it_fail "${2:-response}: expected $1 in $body"; }
error_is() { check ".error.status == $1 and .error.code == \"$2\" and (.error.message | length > 0)" "error"; }

# --- performance -------------------------------------------------------------
# V1 had M1 to itself until minute 60, then shared M2 with V2: only the M1
# part is its own (migration 010's rule); the M2 part is reported as shared.
get /v1/analytics/performance/V1
check '.meterId == "M2" and .timeRange == "24h"'
check '.metrics.totalEnergyConsumedAc == 3 and .metrics.meterReadings == 2' "AC only while V1 had its meter to itself"
check '.metrics.totalEnergyDeliveredDc == 2.8 and .metrics.vehicleReadings == 5' "attributable DC with the late reading, the repeat once"
check '(.metrics.efficiencyRatio * 1e9 | round) == 933333333 and .metrics.avgBatteryTemp == 31.54'
check '.metrics.efficiencyUnavailableReason == null'
check '.attribution.attributable.acKwh == 3 and .attribution.attributable.dcKwh == 2.8' "attributable share"
check ".attribution.shared.acKwh == 4 and .attribution.shared.dcKwh == 3.6 and .attribution.shared.othersDcKwh == 0 and .attribution.shared.seconds >= 3600" "shared share"
check ".attribution.shared.periods == [{\"meterId\":\"M2\",\"from\":\"$(t 60)\",\"to\":.to,\"sharedWith\":[\"V2\"],\"acKwh\":4,\"dcKwh\":3.6,\"othersDcKwh\":0}]" "the shared period, with whom"
check '.attribution.unassigned.seconds > 0 and .attribution.unassigned.dcKwh == 0 and .attribution.totalEnergyDeliveredDc == 6.4' "before V1's first assignment"
check ".latestSnapshot.lastReadingAt == \"$(t 100)\" and .latestSnapshot.currentSoC == 61 and .latestSnapshot.currentVoltage == 229 and .latestSnapshot.lastBatteryTemp == 34.2" "snapshot: the newest reading, not the late one"
grep -q '"lastBatteryTemp":34.2[,}]' <<<"$body" || it_fail "34.2 printed with noise: $body"
get "/v1/analytics/performance/V1?window=15m"
check '.timeRange == "15m" and .metrics.vehicleReadings == 0 and .metrics.efficiencyRatio == null' "a window with no readings"
check '.metrics.efficiencyUnavailableReason | test("shared")' "why there is no ratio: shared all along"
get "/v1/analytics/performance/V1?from=$(t 0)&to=$(t 60)"
check '.timeRange == "custom" and .meterId == "M1" and .metrics.totalEnergyConsumedAc == 3 and .metrics.totalEnergyDeliveredDc == 2.8'
check '.attribution.shared.seconds == 0 and .attribution.unassigned.seconds == 0 and .attribution.attributable.seconds == 3600'
get "/v1/analytics/performance/V1?from=$(t -9000)&to=$(t -8000)"
check '.meterId == null and .metrics.totalEnergyConsumedAc == 0 and .metrics.efficiencyRatio == null' "an empty window before any assignment"
check '.metrics.efficiencyUnavailableReason | test("no meter")'
get /v1/analytics/performance/V9 404; error_is 404 not_found
get "/v1/analytics/performance/V1?window=10m" 400; error_is 400 invalid_parameter
get "/v1/analytics/performance/V1?window=31d" 400
get "/v1/analytics/performance/V1?window=abc" 400
get "/v1/analytics/performance/V1?from=$(t 0)" 400
get "/v1/analytics/performance/V1?from=$(t 60)&to=$(t 0)" 400
get "/v1/analytics/performance/V1?from=yesterday&to=$(t 0)" 400
get "/v1/analytics/performance/V1?window=1h&from=$(t 0)&to=$(t 60)" 400
get "/v1/analytics/performance/$(printf 'V%.0s' {1..65})" 400

# --- meter reports -------------------------------------------------------------
# M2 fed V2 all day and V1 too from minute 60: its AC against both vehicles' DC.
get /v1/analytics/meters/M2
check '.meterId == "M2" and .metrics.totalEnergyConsumedAc == 12 and .metrics.totalEnergyDeliveredDc == 3.6 and .metrics.efficiencyRatio == 0.3'
check '.shared.acKwh == 4 and .shared.dcKwh == 3.6 and .shared.seconds >= 3600'
check '[.vehicles[] | [.vehicleId, .dcKwh, .sharedDcKwh]] == [["V1",3.6,3.6],["V2",0,0]]'
get /v1/analytics/meters/M1
check '.metrics.totalEnergyConsumedAc == 3 and .metrics.totalEnergyDeliveredDc == 2.8 and .metrics.unassignedAcKwh == 4' "M1's AC after V1 left is nobody's"
get /v1/analytics/meters/M3
check '.metrics.totalEnergyConsumedAc == 0 and .metrics.efficiencyRatio == null and [.vehicles[].vehicleId] == ["V3"]' "a meter with assignments and no readings"
get /v1/analytics/meters/M9 404; error_is 404 not_found
get "/v1/analytics/meters/M2?window=10m" 400; error_is 400 invalid_parameter

# --- state -------------------------------------------------------------------
# The API keeps the latest states in memory, refreshed every 500 ms.
state_is() { curl -fsS "$api/v1/vehicles/$1" | jq -e "$2" >/dev/null; }
it_wait_for "the API's latest state of V1" 10 state_is V1 '.soc == 61'
get /v1/vehicles/V3
check '.vehicleId == "V3" and .meterId == "M3" and .charging == true and .stale == false and .soc == 90'
get /v1/vehicles/V1
check '.meterId == "M2" and .charging == false and .stale == true and .batteryTemp == 34.2 and .ageSeconds > 1000'
get /v1/vehicles/NOPE 404; error_is 404 not_found
get /v1/vehicles/%01 400; error_is 400 invalid_parameter
get /v1/meters/M2
check '.meterId == "M2" and .voltage == 229 and .vehicleIds == ["V1","V2"] and .stale == true'
get /v1/meters/M1
check '.vehicleIds == []'
get /v1/meters/M3 404
get "/v1/vehicles?limit=2"
check '[.items[].vehicleId] == ["V1","V2"] and .nextCursor == "V2"'
get "/v1/vehicles?limit=2&cursor=V2"
check '[.items[].vehicleId] == ["V3"] and .nextCursor == null' "second page"
get "/v1/vehicles?socBelow=50"
check '[.items[].vehicleId] == ["V2"]'
get "/v1/vehicles?socAbove=55&charging=false"
check '[.items[].vehicleId] == ["V1"]'
get "/v1/vehicles?charging=true"
check '[.items[].vehicleId] == ["V3"]'
get "/v1/vehicles?staleFor=10m"
check '[.items[].vehicleId] == ["V1","V2"]'
get "/v1/vehicles?meterId=M2"
check '[.items[].vehicleId] == ["V1","V2"]'
for bad in limit=0 limit=1001 socBelow=abc socBelow=101 charging=yes staleFor=5s meterId=%0a; do
    get "/v1/vehicles?$bad" 400
    error_is 400 invalid_parameter
done

# --- fleet summary -----------------------------------------------------------
get /v1/fleet/summary
check '.vehicles == 3 and .meters == 2 and .charging == 1 and .staleVehicles == 2 and .window == "24h"'
check '.averageSoC == 57 and .efficiencyBelow == 0.85'
check '[.degradedVehicles[].vehicleId] == ["V2"] and .degradedVehicles[0].efficiencyRatio == 0' "V2 draws AC but its battery gets nothing"
check '.fleetEfficiency.totalEnergyConsumedAc == 19 and .fleetEfficiency.totalEnergyDeliveredDc == 7.4' "every reading once"
check '.fleetEfficiency.attributable.acKwh == 11 and .fleetEfficiency.attributable.dcKwh == 3.8 and .fleetEfficiency.shared.acKwh == 4 and .fleetEfficiency.shared.dcKwh == 3.6 and .fleetEfficiency.unassignedAcKwh == 4'
check '[.degradedMeters[] | [.meterId, .efficiencyRatio, .totalEnergyConsumedAc]] == [["M2",0.3,12]]' "a shared meter's group efficiency"
get "/v1/fleet/summary?minEnergyKwh=9"
check '.degradedVehicles == [] and .degradedMeters[0].meterId == "M2"' "V2's 8 kWh of attributable AC are below the minimum"
get "/v1/fleet/summary?minEnergyKwh=-1" 400; error_is 400 invalid_parameter
get "/v1/fleet/summary?efficiencyBelow=0.95"
check '[.degradedVehicles[].vehicleId] == ["V2","V1"]'
get "/v1/fleet/summary?efficiencyBelow=2" 400
get "/v1/fleet/summary?window=0m" 400

# --- history -----------------------------------------------------------------
get "/v1/vehicles/V1/history?from=$(t 0)&to=$(t 120)&step=1h"
check '.step == "1h" and (.points | length) == 2'
check ".points[0].t == \"$(t 0)\" and .points[0].kwhDeliveredDc == 2.8 and .points[0].kwhConsumedAc == 3 and .points[0].soc == 52"
check ".points[0].kwhConsumedAcShared == 0 and .points[1].kwhConsumedAc == 0 and .points[1].kwhConsumedAcShared == 4" "M2's AC after minute 60 is shared, not V1's"
check ".points[1].t == \"$(t 60)\" and .points[1].kwhDeliveredDc == 3.6 and .points[1].soc == 61 and .points[1].batteryTemp == 33.1"
get "/v1/vehicles/V1/history"
check '.step == "5m" and (.points | length) > 0' "the default: the last 24 h in at most 500 points"
get "/v1/vehicles/V1/history?from=$(t -40000)&to=$(t 0)&step=1m" 400
get "/v1/vehicles/V1/history?step=30s" 400
get "/v1/vehicles/V9/history" 404

# --- HTTP ingest -------------------------------------------------------------
now=$(date -u -d '-30 sec' +%Y-%m-%dT%H:%M:%SZ)
send POST /v1/ingest/vehicle "{\"vehicleId\":\"V4\",\"soc\":33.3,\"kwhDeliveredDc\":0.5,\"batteryTemp\":20,\"timestamp\":\"$now\"}"
[[ $status == 202 ]] || it_fail "ingest one vehicle reading: $status $body"
check ".accepted == 1 and .topic == \"${EIE_TOPIC_PREFIX}vehicle-readings\""
send POST /v1/ingest/meter "[{\"meterId\":\"M4\",\"kwhConsumedAc\":0.6,\"voltage\":231,\"timestamp\":\"$now\"},{\"meterId\":\"M5\",\"kwhConsumedAc\":0.7,\"voltage\":232,\"timestamp\":$(date +%s)000}]"
[[ $status == 202 ]] || it_fail "ingest two meter readings: $status $body"
check '.accepted == 2'
send PUT /v1/vehicles/V4/assignment '{"meterId":"M4"}'
[[ $status == 202 ]] || it_fail "assignment: $status $body"
check '.vehicleId == "V4" and .meterId == "M4"'
it_wait_for "HTTP-ingested readings in the stores" 60 it_sql_equals "33.3|M4|2" \
    "SELECT (SELECT soc FROM vehicle_state WHERE vehicle_id = 'V4') || '|' || (SELECT meter_id FROM vehicle_assignment_current WHERE vehicle_id = 'V4') || '|' || (SELECT count(*) FROM meter_history WHERE meter_id IN ('M4','M5'))"

vehicles_before=$(it_topic_count vehicle-readings) assignments_before=$(it_topic_count vehicle-assignments)
send POST /v1/ingest/vehicle "[{\"vehicleId\":\"V5\",\"soc\":10,\"kwhDeliveredDc\":0,\"batteryTemp\":20,\"timestamp\":\"$now\"},{\"vehicleId\":\"V6\",\"soc\":150,\"kwhDeliveredDc\":0,\"batteryTemp\":20,\"timestamp\":\"$now\"},{\"vehicleId\":\"V7\",\"soc\":10}]"
[[ $status == 400 ]] || it_fail "one invalid record: $status $body"
error_is 400 invalid_body
check '.error.details == [{"index":1,"field":"soc","message":"150 is outside 0..100 %"},{"index":2,"field":"kwhDeliveredDc","message":"missing"}]' "field-level errors"
send POST /v1/ingest/vehicle '{"vehicleId":' ; [[ $status == 400 ]] || it_fail "not JSON: $status"; error_is 400 invalid_body
send POST /v1/ingest/vehicle '[]' ; [[ $status == 400 ]] || it_fail "empty array: $status"
send POST /v1/ingest/vehicle '{"vehicleId":"V5"}' text/plain; [[ $status == 415 ]] || it_fail "text/plain: $status"; error_is 415 unsupported_media_type
python3 -c 'import json; print(json.dumps([{"vehicleId":"V8","soc":1,"kwhDeliveredDc":0,"batteryTemp":1,"timestamp":0}]*1001))' >"$IT_DIR/big.json"
send POST /v1/ingest/vehicle "@$IT_DIR/big.json"; [[ $status == 413 ]] || it_fail "1001 records: $status"; error_is 413 payload_too_large
head -c 1100000 /dev/zero | tr '\0' ' ' >"$IT_DIR/huge.json"
send POST /v1/ingest/vehicle "@$IT_DIR/huge.json"; [[ $status == 413 ]] || it_fail "over 1 MiB: $status"
send PUT /v1/vehicles/V4/assignment '{"meterId":""}'; [[ $status == 400 ]] || it_fail "empty meterId: $status"
# Markers with the keys of the rejected records, through the same producer:
# acknowledged, so anything a rejected request had produced before them, on
# the same partitions, is on the topics too. Only the markers may be there.
send POST /v1/ingest/vehicle "[$(for v in V5 V6 V7 V8; do printf '{"vehicleId":"%s","soc":10,"kwhDeliveredDc":0,"batteryTemp":20,"timestamp":"%s"},' "$v" "$now"; done | sed 's/,$//')]"
[[ $status == 202 ]] || it_fail "the markers: $status $body"
send PUT /v1/vehicles/V4/assignment '{"meterId":"M4"}'
[[ $status == 202 ]] || it_fail "the assignment marker: $status $body"
it_expect_eq "$((vehicles_before + 4))|$((assignments_before + 1))" \
    "$(it_topic_count vehicle-readings)|$(it_topic_count vehicle-assignments)" \
    "rejected requests produced nothing (only the 5 markers after them are new)"

# --- operator routes -----------------------------------------------------------
get /healthz; check '.status == "ok"'
get /readyz; check '.status == "ready" and .checks.postgres == "ok" and .checks.kafka == "ok"'
get /metrics
grep -q 'eie_api_requests_total{method="GET",route="/v1/vehicles/:vehicleId",status="200"} ' <<<"$body" || it_fail "metrics: no request counter"
grep -q 'eie_api_request_seconds_bucket{method="GET",route="/v1/fleet/summary",le="0.5"} ' <<<"$body" || it_fail "metrics: no latency histogram"
get /openapi.json; check '.openapi | startswith("3.")' "OpenAPI document"
get /docs; grep -q "swagger-ui" <<<"$body" || it_fail "/docs is not Swagger UI"
if [[ -n ${EIE_SWAGGER_UI_DIR:-} ]]; then
    get /docs/swagger-ui-bundle.js
fi
get /docs/..%2Fsecret 404
get /no/such/route 404; error_is 404 not_found

it_stop api
it_stop hot
it_stop cold
it_finish
