#!/usr/bin/env bash
# Messages that are not our readings must neither crash nor stop a consumer:
# each is logged with its topic, partition and offset, published to the
# dead-letter topic with its reason, its offset is still stored (so it is not
# read again), and the good readings around it land.
source "$(dirname "$0")/lib.sh"
it_setup 1

topic="${EIE_TOPIC_PREFIX}vehicle-readings"
vectors="$EIE_SOURCE_DIR/tests/data/avro_vectors.tsv"
now_ms=$(( $(date -u +%s) * 1000 - 60000 ))

# Raw messages, one file each (kcat sends each file as one message).
PYTHONPATH="$EIE_SOURCE_DIR/tests/integration" python3 - "$vectors" "$IT_DIR" "$now_ms" <<'PY'
import sys
from raw_records import load, meter, vehicle
vectors, out, now_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
load(vectors)
msgs = {
    "1-not-avro": b'{"vehicleId":"V1","soc":50}',
    "2-unknown-schema": b"\xc3\x01" + b"\x01" * 8 + b"\x04V1",
    "3-truncated": vehicle("V1", 50, 1, 30, now_ms)[:-3],
    "4-invalid-soc": vehicle("V1", 150, 1, 30, now_ms),
    "5-good": vehicle("V1", 60, 1.5, 30, now_ms),
    "6-meter-on-vehicle-topic": meter("M1", 1, 230, now_ms),
    "7-good": vehicle("V2", 70, 2.5, 31, now_ms),
}
for name, data in msgs.items():
    open(f"{out}/{name}.bin", "wb").write(data)
PY

metrics_port=$(it_free_port)
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 --metrics-port "$metrics_port"
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
for f in "$IT_DIR"/[0-9]-*.bin; do
    kcat -P -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$topic" -k V1 -p 0 "$f" ||
        it_fail "kcat could not produce $f"
done

it_wait_for "both groups to pass all 7 messages" 60 it_sql_equals 14 \
    "SELECT sum(next_offset) FROM sink_offsets"
it_expect_eq "V1|60|1.5
V2|70|2.5" "$(it_psql -c "SELECT vehicle_id, soc, kwh_delivered_dc FROM vehicle_history ORDER BY 1")" \
    "only the good readings are in the history"
it_expect_eq "V1|60
V2|70" "$(it_psql -c "SELECT vehicle_id, soc FROM vehicle_state ORDER BY 1")" \
    "only the good readings are in the hot state"

for name in cold hot; do
    log="$IT_DIR/$name.log"
    for reason in "offset 0 (bad-framing)" "offset 1 (unknown-schema)" "offset 2 (bad-body)" \
        "offset 3 (invalid): soc: 150" "offset 5 (wrong-topic)"; do
        grep -qF "skipping $topic [0] at $reason" "$log" || it_fail "$name did not log: $reason"
    done
    var="${name}_pid"
    kill -0 "${!var}" 2>/dev/null || it_fail "$name consumer is no longer running"
done

# Each group dead-letters the 5 bad messages, keeping key and value, with headers.
dead=$(kcat -C -b "$KAFKA_BOOTSTRAP_SERVERS" -t "${EIE_TOPIC_PREFIX}dead-letters" -o beginning -e -q \
    -f '%k|%h\n')
it_expect_eq 10 "$(grep -c . <<<"$dead")" "dead letters: 5 bad messages x 2 groups"
for group in "${EIE_TOPIC_PREFIX}hot" "${EIE_TOPIC_PREFIX}cold"; do
    for pair in "0 bad-framing" "1 unknown-schema" "2 bad-body" "3 invalid" "5 wrong-topic"; do
        set -- $pair
        grep -q "^V1|eie.reason=$2,eie.error=.*,eie.source.topic=$topic,eie.source.partition=0,eie.source.offset=$1,eie.consumer.group=$group\$" <<<"$dead" ||
            it_fail "no dead letter from $group for offset $1 ($2)"
    done
done
grep -q 'eie.error=soc: 150 is outside 0..100' <<<"$dead" || it_fail "the validation error is not in the headers"
values=$(kcat -C -b "$KAFKA_BOOTSTRAP_SERVERS" -t "${EIE_TOPIC_PREFIX}dead-letters" -o beginning -e -q -f '%s\n' | tr -d '\000')
it_expect_eq 2 "$(grep -cF '{"vehicleId":"V1","soc":50}' <<<"$values")" "the original value is kept"
# The consumer's own /metrics: rows, batches, dead letters by reason, lag.
metrics=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics") || it_fail "no /metrics on the cold consumer"
for line in 'eie_consumer_rows_written_total{store="cold"} 2' \
    'eie_consumer_dead_letters_total{store="cold",reason="invalid"} 1' \
    'eie_consumer_dead_letters_total{store="cold",reason="bad-body"} 1' \
    "eie_consumer_lag_messages{store=\"cold\",topic=\"$topic\",partition=\"0\"} 0" \
    '# TYPE eie_consumer_batch_seconds histogram'; do
    grep -qF "$line" <<<"$metrics" || it_fail "cold /metrics lacks: $line"
done
grep -q '^eie_consumer_batches_total{store="cold"} [1-9]' <<<"$metrics" || it_fail "cold /metrics: no batches"
it_stop cold
it_stop hot
for name in cold hot; do
    grep -q "5 dead letters (bad-framing 1, unknown-schema 1, bad-body 1, wrong-topic 1, invalid 1)" "$IT_DIR/$name.log" ||
        it_fail "$name did not count dead letters by reason"
done
it_finish
