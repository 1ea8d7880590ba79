#!/usr/bin/env bash
# The API reads the vehicle topic itself (--state-from-broker, on by
# default), so a vehicle's reading shows on GET /v1/vehicles/{id} as soon as
# the broker has it, before the hot store does; the store stays the record:
# 1. with no hot consumer running, readings produced show within seconds;
# 2. what the consumers would not store changes nothing: an older reading, one
#    of the same time with other values, a body that does not decode, a SoC of
#    150, a meter's reading on the vehicle topic;
# 3. the store's older row, read back in pages every 100 ms, does not replace
#    the newer reading from the broker;
# 4. once the hot consumer has stored what was shown, the store's rows win
#    again (a row changed by hand shows);
# 5. off: a reading shows only once the hot store has it.
source "$(dirname "$0")/lib.sh"
it_setup 2

port=$(it_free_port)
api="http://127.0.0.1:$port"
topic="${EIE_TOPIC_PREFIX}vehicle-readings"
base=$(($(date -u +%s) / 60 * 60))
produce() { "$EIE_BIN/eie-produce" - 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed"; }
vehicle() { # ID MINUTE SOC: a reading as a JSON line
    jq -cn --arg v "$1" --argjson soc "$3" --arg ts "$(it_time "$base" "$2")" \
        '{vehicleId: $v, soc: $soc, kwhDeliveredDc: 0.1, batteryTemp: 30, timestamp: $ts}'
}
shows() { [[ $(curl -fsS "$api/v1/vehicles/$1" 2>/dev/null | jq -r .soc) == "$2" ]]; }
stored_soc() { it_psql -c "SELECT soc FROM vehicle_state WHERE vehicle_id = '$1'"; }
metric() { # NAME: the API's counter
    curl -fsS "$api/metrics" | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}

# V1 at SOC 10 (minute -10), stored by a hot consumer that then stops.
it_start hot "$EIE_BIN/eie-consumer" --store hot
vehicle V1 -10 10 | produce
it_wait_for "V1 in the store" 60 it_sql_equals 10 "SELECT soc FROM vehicle_state WHERE vehicle_id = 'V1'"
it_stop hot

# 1. The API starts reading each partition at its end once it has looked the
# topic up: a reading produced again and again until it shows.
it_start api "$EIE_BIN/eie-api" --port "$port" --state-cache-ms 100
it_wait_for "the API" 30 shows V1 10
for ((i = 0; i < 30; i++)); do
    vehicle V-first -20 1 | produce
    shows V-first 1 && break
    sleep 1
done
shows V-first 1 || it_fail "a reading the hot store does not hold did not show within 30 s"
grep -q "reading partitions 0 to 1 of $topic from their end" "$IT_DIR/api.log" ||
    it_fail "the API did not log the partitions it reads"
vehicle V1 -5 20 | produce
it_wait_for "V1 at SOC 20 from the broker" 10 shows V1 20
it_expect_eq 10 "$(stored_soc V1)" "the store has not got it: no hot consumer runs"

# 2. Then what the consumers would not store, and a marker after it all.
readings=$(metric eie_api_state_tail_readings_total)
skipped=$(metric eie_api_state_tail_skipped_total)
vehicle V1 -6 30 | produce
vehicle V1 -5 31 | produce
PYTHONPATH="$EIE_SOURCE_DIR/tests/integration" python3 - "$EIE_SOURCE_DIR/tests/data/avro_vectors.tsv" \
    "$IT_DIR" "$(((base - 60) * 1000))" <<'PY'
import sys
from raw_records import load, meter, vehicle
vectors, out, ts_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
load(vectors)
open(f"{out}/truncated.bin", "wb").write(vehicle("V1", 40, 1, 30, ts_ms)[:-3])
open(f"{out}/soc-150.bin", "wb").write(vehicle("V1", 150, 1, 30, ts_ms))
open(f"{out}/meter.bin", "wb").write(meter("V1", 1, 230, ts_ms))
PY
for f in truncated soc-150 meter; do
    kcat -P -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$topic" -k V1 "$IT_DIR/$f.bin" || it_fail "kcat could not produce $f"
done
vehicle V-marker -5 2 | produce
taken() { (($(metric eie_api_state_tail_readings_total) + $(metric eie_api_state_tail_skipped_total) >=
    readings + skipped + 6)); }
it_wait_for "the API to read the six records" 10 taken
it_wait_for "the marker" 10 shows V-marker 2
shows V1 20 || it_fail "V1: a record the consumers would not store changed what shows (SOC $(curl -fsS "$api/v1/vehicles/V1" | jq .soc))"
it_expect_eq $((skipped + 3)) "$(metric eie_api_state_tail_skipped_total)" "records passed over"

# 3. The refreshes go round the state table's three rows many times a second.
sleep 2
shows V1 20 || it_fail "V1: the store's older row replaced the broker's newer reading"

# 4. The hot consumer stores what was shown; a row changed by hand then shows.
it_start hot "$EIE_BIN/eie-consumer" --store hot
it_wait_for "V1 at SOC 20 in the store" 60 it_sql_equals 20 "SELECT soc FROM vehicle_state WHERE vehicle_id = 'V1'"
it_expect_eq 1 "$(stored_soc V-first)" "the store holds what the API showed first"
it_psql -c "UPDATE vehicle_state SET soc = 44, ts = ts - interval '1 minute' WHERE vehicle_id = 'V1'" >/dev/null
it_wait_for "V1 at SOC 44, written in the table alone" 10 shows V1 44
it_stop hot

# 5. Off: nothing shows before the hot store has it.
it_stop api
it_start api "$EIE_BIN/eie-api" --port "$port" --state-cache-ms 100 --state-from-broker off
it_wait_for "the API again" 30 shows V1 44
vehicle V1 -3 21 | produce
sleep 3
shows V1 44 || it_fail "--state-from-broker off: a reading showed before the hot store had it"
it_expect_eq 0 "$(metric eie_api_state_tail_readings_total)" "--state-from-broker off: nothing read from the broker"
it_start hot "$EIE_BIN/eie-consumer" --store hot
it_wait_for "V1 at SOC 21 once stored" 60 shows V1 21
it_finish
