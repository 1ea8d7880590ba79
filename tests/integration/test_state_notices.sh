#!/usr/bin/env bash
# The API's state cache follows the hot store's commits as they are announced
# (the broker itself not read: --state-from-broker off, test_state_from_broker.sh),
# with its own refreshes a minute apart (--state-cache-ms 60000):
# - a commit of more readings than its notices hold is read by stamp (the
#   state tables scanned);
# - a commit of fewer carries them in its notices, and the cache applies them
#   without reading the tables: new values of vehicles whose ids hold quotes,
#   backslashes, commas, semicolons, braces, spaces and non-ASCII characters
#   show on GET /v1/vehicles/{id} (which only the cache answers for a vehicle
#   it holds) within seconds, and a late reading or one of the same time as
#   the stored one changes nothing, as in the store;
# - a commit of assignments only offers no state row and reads none;
# - rows written by other means show too (the state tables read in pages).
source "$(dirname "$0")/lib.sh"
it_setup 2

port=$(it_free_port)
api="http://127.0.0.1:$port"
base=$(($(date -u +%s) / 60 * 60))
produce() { "$EIE_BIN/eie-produce" - 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed"; }
metric() { # NAME: the API's counter
    curl -fsS "$api/metrics" | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}
notice_rows() { metric eie_api_state_cache_notice_rows_total; }
scans() { metric eie_api_state_cache_scans_total; }
awkward=('V"quote' 'V\back\\slash' 'V,comma;semi' 'V{brace}' 'V two words' 'Vé-Zürich' 'V} 1')
# vehicles MINUTE SOC ID...: a reading of each vehicle, as JSON lines
vehicles() {
    local minute=$1 soc=$2
    shift 2
    jq -cn --argjson soc "$soc" --arg ts "$(it_time "$base" "$minute")" \
        '$ARGS.positional[] | {vehicleId: ., soc: $soc, kwhDeliveredDc: 0.1, batteryTemp: 30, timestamp: $ts}' \
        --args "$@"
}
shows() { # ID SOC: the API shows the vehicle at that SOC
    local path
    path=$(jq -rn --arg v "$1" '$v | @uri')
    [[ $(curl -fsS "$api/v1/vehicles/$path" 2>/dev/null | jq -r .soc) == "$2" ]]
}

# 1. Six thousand vehicles with ids of 64 characters, each escaped in a
# notice, and the awkward ones, stored before the hot consumer starts, which
# lingers a second for its first batch: more than the notices of a commit hold.
mapfile -t many < <(for i in $(seq 6000); do printf '%s%05d\n' "$(printf ';%.0s' $(seq 59))" "$i"; done)
vehicles -10 1 "${many[@]}" "${awkward[@]}" | produce
it_start api "$EIE_BIN/eie-api" --port "$port" --state-cache-ms 60000 --state-from-broker off
it_wait_for "the API" 30 curl -fsS -o /dev/null "$api/readyz"
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 1000
it_wait_for "the first readings in the cache" 60 shows 'V} 1' 1
for id in "${awkward[@]}" "${many[0]}" "${many[5999]}"; do shows "$id" 1 || it_fail "$id: not shown at SOC 1"; done
(($(scans) >= 1)) || it_fail "a commit of 6,000 readings was not read by stamp"

# 2. New readings of the awkward vehicles, and a marker after them.
scanned=$(scans)
rows=$(notice_rows)
vehicles -8 2 "${awkward[@]}" | produce
vehicles -8 2 V-marker | produce
it_wait_for "the marker" 10 shows V-marker 2
for id in "${awkward[@]}"; do shows "$id" 2 || it_fail "$id: not shown at SOC 2"; done
(($(notice_rows) >= rows + ${#awkward[@]} + 1)) ||
    it_fail "the readings did not come from the notices: $(notice_rows) applied, $rows before"
it_expect_eq "$scanned" "$(scans)" "no table scanned for commits whose notices carried their readings"

# 3. A late reading and one of the same time with other values: the store
# keeps what it has, and so does the cache.
vehicles -9 98 'V"quote' | produce
vehicles -8 99 'V"quote' | produce
vehicles -7 3 V-marker | produce
it_wait_for "the second marker" 10 shows V-marker 3
shows 'V"quote' 2 || it_fail "V\"quote: a late reading or a repeat of the same time replaced the newer one in the cache"
it_expect_eq 2 "$(it_psql -c "SELECT soc FROM vehicle_state WHERE vehicle_id = 'V\"quote'")" "and in the store"

# 4. An assignment only: no state row, no scan; the assignment shows.
echo "{\"vehicleId\":\"V-marker\",\"meterId\":\"M1\",\"validFrom\":\"$(it_time "$base" -30)\"}" | produce
assigned() { [[ $(curl -fsS "$api/v1/vehicles/V-marker" | jq -r .meterId) == M1 ]]; }
it_wait_for "V-marker on M1" 10 assigned
it_expect_eq "$scanned" "$(scans)" "no table scanned for a commit of assignments"

# 5. Rows written by other means announce nothing: an API refreshing every
# 100 ms reads the state tables a page at a time, and goes round them again:
# a change in the last page, then one in the first.
it_stop api
it_start api "$EIE_BIN/eie-api" --port "$port" --state-cache-ms 100 --state-from-broker off
it_wait_for "the API again" 30 shows V-marker 3
for change in "V-marker 55" "${many[0]} 56"; do
    read -r id soc <<<"$change"
    it_psql -c "UPDATE vehicle_state SET soc = $soc, ts = ts + interval '1 second' WHERE vehicle_id = '$id'" >/dev/null
    it_wait_for "SOC $soc of $id, written in the table alone" 30 shows "$id" "$soc"
done
it_finish
