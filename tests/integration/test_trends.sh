#!/usr/bin/env bash
# Efficiency trends and baselines (migration 012), worked out by hand. Each
# vehicle charges 10 minutes a day for 11 days (AC 0.5 kWh a minute, DC by
# the day's ratio), then once in the last 24 hours (its day the twelfth):
#   VT: days at 0.94-0.96 (median 0.95, spread 1.4826 x 0.01), now 0.89:
#       above 0.85, but clearly below its own baseline: flagged;
#   VU: days from 0.86 to 0.99 (median 0.93, spread 1.4826 x 0.04), now 0.89:
#       within its usual spread: not flagged;
#   VH, VW: steady at 0.92; VH's battery at 45 °C while the fleet's is at 30-31:
#       a temperature outlier.
source "$(dirname "$0")/lib.sh"
it_setup 2

port=$(it_free_port)
IT_API="http://127.0.0.1:$port"
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50
it_start api "$EIE_BIN/eie-api" --port "$port"

today=$(( $(date -u +%s) / 86400 * 86400 ))
recent=$(( ($(date -u +%s) - 2 * 3600) / 60 * 60 ))
declare -A ratios=(
    [VT]="0.95 0.94 0.96 0.95 0.95 0.94 0.96 0.95 0.95 0.94 0.96 0.89"
    [VU]="0.86 0.99 0.90 0.97 0.88 0.95 0.92 0.98 0.87 0.96 0.93 0.89"
    [VH]="0.92 0.92 0.92 0.92 0.92 0.92 0.92 0.92 0.92 0.92 0.92 0.92"
    [VW]="0.92 0.92 0.92 0.92 0.92 0.92 0.92 0.92 0.92 0.92 0.92 0.92"
)
declare -A temps=([VT]=30 [VU]=30 [VH]=45 [VW]=31)
{
    for v in VT VU VH VW; do
        echo "{\"vehicleId\":\"$v\",\"meterId\":\"M$v\",\"validFrom\":\"$(it_time "$today" $((-13 * 1440)))\"}"
        read -ra r <<<"${ratios[$v]}"
        for k in $(seq 0 11); do
            # days -12..-2 at 10:00 UTC, then two hours ago
            if ((k < 11)); then start=$((today + (k - 12) * 86400 + 10 * 3600)); else start=$recent; fi
            for i in $(seq 0 9); do
                echo "{\"vehicleId\":\"$v\",\"soc\":$((40 + i)),\"kwhDeliveredDc\":$(printf '%.6f' "$(echo "0.5 * ${r[k]}" | bc -l)"),\"batteryTemp\":${temps[$v]},\"timestamp\":\"$(it_time "$start" "$i")\"}"
                echo "{\"meterId\":\"M$v\",\"kwhConsumedAc\":0.5,\"voltage\":230,\"timestamp\":\"$(it_time "$start" "$i")\"}"
            done
        done
    done
} >"$IT_DIR/readings.jsonl"
"$EIE_BIN/eie-produce" "$IT_DIR/readings.jsonl" 2>"$IT_DIR/produce.log" || it_fail "eie-produce failed"
it_wait_for "the history" 90 it_sql_equals 960 \
    "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)"
it_wait_for "the assignments" 60 it_sql_equals 4 "SELECT count(*) FROM vehicle_meter_assignment"
"$EIE_BIN/eie-admin" rollup >>"$IT_DIR/admin.log" 2>&1 || it_fail "eie-admin rollup failed"
it_expect_eq 48 "$(it_psql -c "SELECT count(*) FROM charging_session")" "a session a day and one recent, per vehicle"
it_wait_for "the API" 30 curl -fsS "$IT_API/healthz"


it_get /v1/vehicles/VT/trend
it_check "(.daily | length) == 12 and .daily[0].sessions == 1 and $(it_near '.daily[0].efficiencyRatio' 0.95) and .daily[0].avgBatteryTemp == 30" "VT's days"
it_check "$(it_near .baseline.efficiencyRatio 0.95) and $(it_near .baseline.spread '1.4826 * 0.01') and .baseline.days == 11" "VT's baseline"
it_check "$(it_near .recent.efficiencyRatio 0.89) and .belowBaseline == true" "0.89 is clearly below VT's 0.95"
it_get /v1/vehicles/VU/trend
it_check "$(it_near .baseline.efficiencyRatio 0.93) and $(it_near .baseline.spread '1.4826 * 0.04') and .belowBaseline == false" "0.89 is within VU's usual spread"
it_get "/v1/vehicles/VT/trend?days=7"
it_check '.baseline.days == 7' "a shorter history"
it_get "/v1/vehicles/VT/trend?days=6" 400
it_get /v1/vehicles/NOPE/trend 404

it_get /v1/fleet/summary
it_check '[.belowBaseline[].vehicleId] == ["VT"] and .belowBaseline[0].baselineDays == 11' "the fleet lists VT below its baseline"
it_check '[.degradedVehicles[].vehicleId] == []' "VT is above 0.85: not degraded"
it_check '[.temperatureOutliers[].vehicleId] == ["VH"] and .temperatureOutliers[0].avgBatteryTemp == 45 and .temperatureOutliers[0].fleetMedian == 30.5' "VH runs hot against the fleet"
it_finish
