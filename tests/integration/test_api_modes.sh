#!/usr/bin/env bash
# The API's modes give the same answers: --http-threads (a pool of HTTP
# threads over epoll instead of a thread per connection), --state-cache-ms 0
# (no in-memory latest states: every answer from PostgreSQL) and
# --rollup-cache-hours 0 (no hourly summaries in memory), each against the
# default, route by route, on data with summarised hours, a meter change and
# the window's edges inside hours.
source "$(dirname "$0")/lib.sh"
it_setup 2

base=$(( $(date -u +%s) / 60 * 60 ))
t() { it_time "$base" "$1"; }
{
    echo "{\"vehicleId\":\"V1\",\"meterId\":\"M1\",\"validFrom\":\"$(t -400)\"}"
    echo "{\"vehicleId\":\"V2\",\"meterId\":\"M2\",\"validFrom\":\"$(t -400)\"}"
    echo "{\"vehicleId\":\"V2\",\"meterId\":\"M3\",\"validFrom\":\"$(t -215)\"}"
    for i in $(seq 0 29); do
        m=$((-300 + 10 * i))
        for k in 1 2 3; do
            echo "{\"meterId\":\"M$k\",\"kwhConsumedAc\":$k.5,\"voltage\":$((228 + k)),\"timestamp\":\"$(t $m)\"}"
        done
        echo "{\"vehicleId\":\"V1\",\"soc\":$((40 + i)),\"kwhDeliveredDc\":1.25,\"batteryTemp\":$((20 + i % 4)),\"timestamp\":\"$(t $m)\"}"
        echo "{\"vehicleId\":\"V2\",\"soc\":$((70 - i)),\"kwhDeliveredDc\":0.75,\"batteryTemp\":30.5,\"timestamp\":\"$(t $m)\"}"
    done
} >"$IT_DIR/readings.jsonl"
"$EIE_BIN/eie-produce" "$IT_DIR/readings.jsonl" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed"
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 --housekeep-interval-s 1
it_wait_for "every record stored" 60 it_sql_equals "153|150" \
    "SELECT (SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}hot') || '|' ||
            (SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history))"
it_wait_for "the closed hours summarised" 60 it_sql_equals "0|true" \
    "SELECT (SELECT count(*) FROM hourly_rollup_dirty) || '|' ||
        (SELECT bool_and(summarised_until = date_trunc('hour', now() - interval '15 minutes', 'UTC')) FROM hourly_rollup)"
it_stop hot
it_stop cold

modes=(default threads nostate norollup)
declare -A args=([default]="" [threads]="--http-threads 2" [nostate]="--state-cache-ms 0" [norollup]="--rollup-cache-hours 0")
declare -A ports
for mode in "${modes[@]}"; do
    ports[$mode]=$(it_free_port)
    # shellcheck disable=SC2086 # the mode's flags, split on purpose
    it_start "api-$mode" "$EIE_BIN/eie-api" --port "${ports[$mode]}" ${args[$mode]}
done
for mode in "${modes[@]}"; do
    it_wait_for "the $mode API to know V2" 30 curl -fsS "http://127.0.0.1:${ports[$mode]}/v1/vehicles/V2"
done

routes=(
    /v1/vehicles/V1 /v1/vehicles/V2 /v1/vehicles/V9 /v1/meters/M2 /v1/meters/M3
    "/v1/vehicles?limit=1" "/v1/vehicles?limit=1&cursor=V1" "/v1/vehicles?socBelow=60" "/v1/vehicles?meterId=M3"
    "/v1/vehicles?staleFor=1h" "/v1/vehicles?charging=true" /v1/fleet/summary "/v1/fleet/summary?efficiencyBelow=0.5"
    /v1/analytics/performance/V1 /v1/analytics/performance/V2 "/v1/analytics/performance/V1?window=6h"
    "/v1/analytics/performance/V2?from=$(t -283)&to=$(t -7)" "/v1/analytics/performance/V1?from=$(t -235)&to=$(t -125)"
    "/v1/analytics/performance/V2?from=$(t -3000)&to=$(t -1)" "/v1/analytics/performance/V1?window=10m"
    "/v1/vehicles/V2/history?from=$(t -300)&to=$(t 0)&step=1h" "/v1/vehicles/V1/history?from=$(t -283)&to=$(t -7)&step=15m"
)
# Status and body, without what moves with the clock: ages, and the ends and
# lengths (seconds) of a window given relative to now and of its parts.
answer() {
    local body status relative=false
    [[ $2 == *from=* ]] || relative=true
    status=$(curl -sS -o "$IT_DIR/body" -w '%{http_code}' "http://127.0.0.1:$1$2")
    body=$(jq -S -c --argjson relative "$relative" 'walk(if type == "object" then del(.ageSeconds) else . end)
        | if $relative then walk(if type == "object" then del(.from, .to, .seconds) else . end) else . end' \
        "$IT_DIR/body" 2>/dev/null || cat "$IT_DIR/body")
    printf '%s %s\n' "$status" "$body"
}
for route in "${routes[@]}"; do
    expected=$(answer "${ports[default]}" "$route")
    [[ $expected == 200* || $route == */V9 || $route == *window=10m* ]] || it_fail "default API: $route: $expected"
    for mode in threads nostate norollup; do
        actual=$(answer "${ports[$mode]}" "$route")
        [[ $actual == "$expected" ]] || it_fail "$mode ($(echo ${args[$mode]})): GET $route: got $actual, the default gives $expected"
    done
done
it_log "ok: ${#routes[@]} routes, the same answers in each mode"
# The modes are what they say: without summaries in memory no report comes
# from the caches; with them (the default) the reports above did.
from_caches() {
    curl -fsS "http://127.0.0.1:$1/metrics" | awk '/^eie_api_performance_reports_total\{source="caches"\}/ { n = $2 } END { print n + 0 }'
}
it_expect_eq 0 "$(from_caches "${ports[norollup]}")" "--rollup-cache-hours 0: no report from the caches"
(($(from_caches "${ports[default]}") > 0)) || it_fail "the default API served no report from its caches"
for mode in "${modes[@]}"; do it_stop "api-$mode"; done
it_finish
