#!/usr/bin/env bash
# The API's state cache follows the hot store's commits as they are announced,
# with its own refreshes a minute apart (--state-cache-ms 60000):
# - a commit of most of the devices is read by stamp (the tables scanned);
# - a commit of a few devices among the many it holds is read by key (the
#   commit's notices name its rows): new values of vehicles whose ids hold
#   quotes, backslashes, commas, braces, spaces and non-ASCII characters show
#   on GET /v1/vehicles/{id} within seconds, which only the cache answers for
#   a vehicle it holds;
# - a commit of assignments only names no state row and reads none by stamp.
source "$(dirname "$0")/lib.sh"
it_setup 2

port=$(it_free_port)
api="http://127.0.0.1:$port"
it_start hot "$EIE_BIN/eie-consumer" --store hot
it_start api "$EIE_BIN/eie-api" --port "$port" --state-cache-ms 60000
it_wait_for "the API" 30 curl -fsS -o /dev/null "$api/readyz"
base=$(($(date -u +%s) / 60 * 60))
produce() { "$EIE_BIN/eie-produce" - 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed"; }
reads() { # BY: the cache's reads after notices, by key or by stamp
    curl -fsS "$api/metrics" | awk -v l="eie_api_state_cache_reads_total{by=\"$1\"}" '$1 == l { n = $2 } END { print n + 0 }'
}
awkward=('V"quote' 'V\back\\slash' 'V,comma' 'V{brace}' 'V two words' 'Vé-Zürich' 'V} 1')
# vehicle SOC ID...: a reading of each vehicle, as JSON lines
vehicles() {
    local soc=$1
    shift
    jq -cn --argjson soc "$soc" --arg ts "$(it_time "$base" $((soc - 10)))" \
        '$ARGS.positional[] | {vehicleId: ., soc: $soc, kwhDeliveredDc: 0.1, batteryTemp: 30, timestamp: $ts}' \
        --args "$@"
}
shows() { # ID SOC: the API shows the vehicle at that SOC
    local path
    path=$(jq -rn --arg v "$1" '$v | @uri')
    [[ $(curl -fsS "$api/v1/vehicles/$path" 2>/dev/null | jq -r .soc) == "$2" ]]
}

# 1. Two hundred vehicles and meters, the awkward ones among them, where the
# cache holds nothing yet: read by stamp.
mapfile -t many < <(seq -f 'V%03g' 1 200)
{
    vehicles 1 "${many[@]}" "${awkward[@]}"
    jq -cn --arg ts "$(it_time "$base" -9)" 'range(1; 201) | {meterId: "M\(.)", kwhConsumedAc: 0.1, voltage: 230, timestamp: $ts}'
} | produce
it_wait_for "the first readings in the cache" 60 shows 'V} 1' 1
for id in "${awkward[@]}" V001 V200; do shows "$id" 1 || it_fail "$id: not shown at SOC 1"; done
(($(reads stamp) >= 1)) || it_fail "the first commits were not read by stamp"

# Notices of those commits may still be on their way: let them land.
sleep 2
key=$(reads key)
stamp=$(reads stamp)

# 2. New readings of the awkward vehicles and a meter: named, read by key.
{
    vehicles 2 "${awkward[@]}"
    echo "{\"meterId\":\"M\\\"7\",\"kwhConsumedAc\":0.1,\"voltage\":231,\"timestamp\":\"$(it_time "$base" -8)\"}"
} | produce
for id in "${awkward[@]}"; do
    it_wait_for "$id at SOC 2" 10 shows "$id" 2
done
(($(reads key) > key)) || it_fail "the commit of a few devices was not read by key"
it_expect_eq "$stamp" "$(reads stamp)" "no table scanned for a commit that named its rows"
it_expect_eq "231" "$(it_psql -c "SELECT voltage FROM meter_state WHERE meter_id = 'M\"7'")" "the awkward meter stored"

# 3. An assignment only: no state row, no scan; the assignment shows.
stamp=$(reads stamp)
echo "{\"vehicleId\":\"V001\",\"meterId\":\"M1\",\"validFrom\":\"$(it_time "$base" -30)\"}" | produce
assigned() { [[ $(curl -fsS "$api/v1/vehicles/V001" | jq -r .meterId) == M1 ]]; }
it_wait_for "V001 on M1" 10 assigned
it_expect_eq "$stamp" "$(reads stamp)" "no table scanned for a commit of assignments"
it_finish
