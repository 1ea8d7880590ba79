#!/usr/bin/env bash
# Interoperability: readings written by a client that is not ours (Python,
# confluent-kafka and fastavro from PyPI, writing single-object encoding) are
# ingested correctly, schema v1 and v2 alike; and what our producer writes
# (both vehicle schema versions) decodes in Python.
source "$(dirname "$0")/lib.sh"
it_setup 1

venv="${EIE_STATE_DIR:-$EIE_SOURCE_DIR/.state}/venv-interop"
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import confluent_kafka, fastavro' 2>/dev/null; then
    python3 -m venv "$venv" && "$venv/bin/pip" install -q confluent-kafka==2.6.1 fastavro==1.13.1 ||
        { it_fail "cannot install confluent-kafka and fastavro from PyPI"; it_finish; }
fi
py() { "$venv/bin/python" "$EIE_SOURCE_DIR/tests/integration/interop.py" "$@"; }
schemas="$EIE_SOURCE_DIR/schemas/avro"

# Python writes; our consumers store.
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50
py produce "$KAFKA_BOOTSTRAP_SERVERS" "$EIE_TOPIC_PREFIX" "$schemas" || it_fail "the Python producer failed"
it_wait_for "the Python readings in the history" 60 it_sql_equals 3 \
    "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)"
it_wait_for "the Python readings in the hot state" 60 it_sql_equals 4 \
    "SELECT sum(next_offset) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}hot'"
it_expect_eq "PY1|42.5|1.125|28.5|CH-7" "$(it_psql -c "SELECT vehicle_id, soc, kwh_delivered_dc, battery_temp, charger_id FROM vehicle_history WHERE vehicle_id = 'PY1'")" \
    "a v2 reading from Python, chargerId included"
it_expect_eq "PY2|10|" "$(it_psql -c "SELECT vehicle_id, soc, charger_id FROM vehicle_history WHERE vehicle_id = 'PY2'")" \
    "a v1 reading from Python, read by the v2 consumer (chargerId null)"
it_expect_eq "PYM1|1.25|229.5" "$(it_psql -c "SELECT meter_id, kwh_consumed_ac, voltage FROM meter_history")" "a meter reading from Python"
it_expect_eq "PY1|PYM1" "$(it_psql -c "SELECT vehicle_id, meter_id FROM vehicle_meter_assignment")" "an assignment from Python"
grep -q "dead letters (" "$IT_DIR/cold.log" && it_fail "Python records were dead-lettered"

# We write (newest schema, then v1 as an older producer would); Python reads.
ts=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:00Z)
echo "{\"vehicleId\":\"OURS2\",\"soc\":61.5,\"kwhDeliveredDc\":0.25,\"batteryTemp\":30.5,\"timestamp\":\"$ts\",\"chargerId\":\"CH-9\"}" |
    "$EIE_BIN/eie-produce" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce (v2) failed"
echo "{\"vehicleId\":\"OURS1\",\"soc\":33,\"kwhDeliveredDc\":0.5,\"batteryTemp\":21,\"timestamp\":\"$ts\"}" |
    "$EIE_BIN/eie-produce" --vehicle-schema 1 2>>"$IT_DIR/produce.log" || it_fail "eie-produce (v1) failed"
py consume "$KAFKA_BOOTSTRAP_SERVERS" "$EIE_TOPIC_PREFIX" "$schemas" 4 >"$IT_DIR/decoded.jsonl" ||
    it_fail "Python could not read our records: $(cat "$IT_DIR/decoded.jsonl")"
ms=$(( $(date -u -d "$ts" +%s) * 1000 ))
grep -qF "{\"batteryTemp\": 30.5, \"chargerId\": \"CH-9\", \"key\": \"OURS2\", \"kwhDeliveredDc\": 0.25, \"schema\": \"vehicle_reading.v2.avsc\", \"soc\": 61.5, \"timestamp\": $ms, \"vehicleId\": \"OURS2\"}" "$IT_DIR/decoded.jsonl" ||
    it_fail "our v2 record, as Python reads it: $(grep OURS2 "$IT_DIR/decoded.jsonl")"
grep -qF "{\"batteryTemp\": 21.0, \"key\": \"OURS1\", \"kwhDeliveredDc\": 0.5, \"schema\": \"vehicle_reading.v1.avsc\", \"soc\": 33.0, \"timestamp\": $ms, \"vehicleId\": \"OURS1\"}" "$IT_DIR/decoded.jsonl" ||
    it_fail "our v1 record, as Python reads it: $(grep OURS1 "$IT_DIR/decoded.jsonl")"
it_wait_for "our v1 and v2 records stored" 60 it_sql_equals "OURS1||OURS2|CH-9" \
    "SELECT string_agg(vehicle_id || '|' || coalesce(charger_id, ''), '|' ORDER BY vehicle_id) FROM vehicle_state WHERE vehicle_id LIKE 'OURS%'"
it_stop hot
it_stop cold
it_finish
