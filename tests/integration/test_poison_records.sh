#!/usr/bin/env bash
# No record the broker accepts can stall a consumer: whatever its size, key,
# value or headers, it is stored or dead-lettered, and the readings after it
# land. A dead letter too large for the dead-letter topic (whose
# max.message.bytes is set here below the source topic's) is published
# truncated: coordinates, size, SHA-256 and a prefix. Only a dead-letter topic
# that cannot take anything holds a consumer back, and then /readyz and the
# metrics say so, with the lag measured against what PostgreSQL holds.
source "$(dirname "$0")/lib.sh"
it_setup 3

topic="${EIE_TOPIC_PREFIX}vehicle-readings"
dead_topic="${EIE_TOPIC_PREFIX}dead-letters"
vectors="$EIE_SOURCE_DIR/tests/data/avro_vectors.tsv"
now_ms=$(($(date -u +%s) * 1000 - 60000))
dead_limit=100000

# Kafka's own admin tools, from the broker's jars.
kafka_tool() {
    (
        source "$EIE_SOURCE_DIR/deploy/lib.sh"
        "$(kafka_java)" -Xmx256m -cp "$(kafka_libs)/*" "$@"
    )
}
topic_config() {
    kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --alter \
        --entity-type topics --entity-name "$dead_topic" "$@" >>"$IT_DIR/admin.log" 2>&1
}
# Sum of the topic's high watermarks, as the broker reports them.
high_watermarks() {
    kcat -Q -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$topic:0:-1" -t "$topic:1:-1" -t "$topic:2:-1" \
        2>>"$IT_DIR/kcat.log" | awk '{s += $NF} END {print s + 0}'
}
stored_offsets() { # GROUP
    it_psql -c "SELECT coalesce(sum(next_offset), 0) FROM sink_offsets
                WHERE consumer_group = '$1' AND topic = '$topic'"
}

topic_config --add-config "max.message.bytes=$dead_limit" || it_fail "cannot set the dead-letter topic's limit"

# Raw messages, one file each (kcat sends each file as one message).
PYTHONPATH="$EIE_SOURCE_DIR/tests/integration" python3 - "$vectors" "$IT_DIR" "$now_ms" <<'PY'
import sys
from raw_records import load, vehicle as vehicle_v1
vectors, out, now_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
load(vectors)
def vehicle(vid, soc, ts):
    return vehicle_v1(vid, soc, 1.0, 30.0, ts)
def write(name, data):
    open(f"{out}/{name}", "wb").write(data)
# Just under the broker's limit (message.max.bytes 1048588 by default, less
# the record batch's framing): a reading whose id is a megabyte long.
huge = vehicle("V" * 1048300, 50, now_ms)
write("huge.bin", huge)
write("large.bin", vehicle("L" * 200000, 50, now_ms))
write("garbage.bin", b"\x00\xff" * 50)
for i in range(20):
    write(f"good-{i}.bin", vehicle(f"G{i}", 40 + i, now_ms))
write("good-null-key.bin", vehicle("N1", 55, now_ms))
write("good-headers.bin", vehicle("H1", 56, now_ms))
# 3,000 headers of 40 bytes: the record fits the source topic, its dead letter
# with them would not fit the dead-letter topic.
with open(f"{out}/many-headers.args", "w") as f:
    for i in range(3000):
        f.write(f"-H\nh{i:05d}={'x' * 32}\n")
PY

produce() { # PARTITION FILE [kcat args...]
    local partition=$1 file=$2
    shift 2
    kcat -P -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$topic" -p "$partition" -X message.max.bytes=2000000 \
        "$@" "$file" 2>>"$IT_DIR/kcat.log" || it_fail "the broker refused $(basename "$file")"
}

cold_port=$(it_free_port)
hot_port=$(it_free_port)
# The dead-letter producer gives a record up after 5 s (instead of 20), so
# that a stall shows within the test's time.
stall=(--stall-after-ms 2000 -X message.timeout.ms=5000)
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 --metrics-port "$cold_port" "${stall[@]}"
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50 --metrics-port "$hot_port" "${stall[@]}"

produce 0 "$IT_DIR/good-0.bin" -k G0
produce 0 "$IT_DIR/huge.bin" -k V
produce 0 "$IT_DIR/good-1.bin" -k G1
produce 1 "$IT_DIR/large.bin" -k L
produce 1 "$IT_DIR/good-2.bin" -k G2
printf 'E:\n' | kcat -P -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$topic" -p 1 -K: -Z 2>>"$IT_DIR/kcat.log" ||
    it_fail "the broker refused a null value" # -Z: an empty value is sent as null
produce 2 "$IT_DIR/good-null-key.bin"
mapfile -t many_headers <"$IT_DIR/many-headers.args"
produce 2 "$IT_DIR/garbage.bin" -k X "${many_headers[@]}"
produce 2 "$IT_DIR/good-headers.bin" -k H1 -H trace=abc -H "tenant=depot 7"
produce 2 "$IT_DIR/good-3.bin" -k G3
end=$(high_watermarks)
it_expect_eq 10 "$end" "the broker took all 10 records"

for group in cold hot; do
    it_wait_for "group $group to pass every record" 90 it_sql_equals "$end" \
        "SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}$group'"
done
it_expect_eq "G0 G1 G2 G3 H1 N1" "$(it_psql -c "SELECT string_agg(vehicle_id, ' ' ORDER BY vehicle_id) FROM vehicle_history")" \
    "the good readings around the bad ones are in the history (null key and headers included)"
it_expect_eq "G0 G1 G2 G3 H1 N1" "$(it_psql -c "SELECT string_agg(vehicle_id, ' ' ORDER BY vehicle_id) FROM vehicle_state")" \
    "and in the hot state"

# The dead letters: 4 bad records x 2 groups; headers, sizes and hashes.
dead=$(kcat -C -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$dead_topic" -o beginning -e -q -X fetch.message.max.bytes=2000000 \
    -f '%k|%S|%h\n' 2>>"$IT_DIR/kcat.log" | tee "$IT_DIR/dead-letters.txt")
it_expect_eq 8 "$(grep -c . <<<"$dead")" "dead letters: 4 bad records x 2 groups"
sha_huge=$(sha256sum "$IT_DIR/huge.bin" | cut -d' ' -f1)
sha_large=$(sha256sum "$IT_DIR/large.bin" | cut -d' ' -f1)
for group in "${EIE_TOPIC_PREFIX}hot" "${EIE_TOPIC_PREFIX}cold"; do
    of_group=$(grep -E "eie\.consumer\.group=$group(,|\$)" <<<"$dead" || true)
    huge_dl=$(grep -F "eie.source.partition=0," <<<"$of_group" || true)
    grep -qF "|4096|" <<<"$huge_dl" || it_fail "$group: the 1 MB record's dead letter is not a 4096-byte prefix: $(cut -c1-300 <<<"$huge_dl")"
    for want in eie.truncated=true "eie.original.size=$(stat -c %s "$IT_DIR/huge.bin")" \
        "eie.original.sha256=$sha_huge" eie.source.offset=1; do
        grep -qF "$want" <<<"$huge_dl" || it_fail "$group: the 1 MB record's dead letter lacks $want"
    done
    large_dl=$(grep -F "eie.source.partition=1,eie.source.offset=0," <<<"$of_group" || true)
    for want in eie.truncated=true "eie.original.sha256=$sha_large" "eie.original.size=$(stat -c %s "$IT_DIR/large.bin")"; do
        grep -qF "$want" <<<"$large_dl" || it_fail "$group: the 200 kB record's dead letter lacks $want"
    done
    null_dl=$(grep -F "eie.source.partition=1,eie.source.offset=2," <<<"$of_group" || true)
    grep -q '^E|-1|eie.reason=bad-framing' <<<"$null_dl" ||
        it_fail "$group: the null value's dead letter is not whole with a null value: $null_dl"
    headers_dl=$(grep -F "eie.source.partition=2,eie.source.offset=1," <<<"$of_group" || true)
    for want in eie.truncated=true eie.original.headers=3000 eie.reason=bad-framing; do
        grep -qF "$want" <<<"$headers_dl" || it_fail "$group: the many-headers dead letter lacks $want"
    done
done
# The truncated values are the originals' first 4096 bytes.
kcat -C -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$dead_topic" -o beginning -e -q -D '' -f '%K\n%S\n%k%s' \
    >"$IT_DIR/dead-values.bin" 2>>"$IT_DIR/kcat.log" || it_fail "cannot read the dead letters' values"
python3 - "$IT_DIR" <<'PY' || it_fail "a truncated dead letter's value is not its original's prefix"
import sys
d = sys.argv[1]
data = open(f"{d}/dead-values.bin", "rb").read()
originals = {b"V": open(f"{d}/huge.bin", "rb").read(), b"L": open(f"{d}/large.bin", "rb").read()}
checked, pos = 0, 0
while pos < len(data):
    # Each record: key length, value length (-1: null), then both.
    klen_end = data.index(b"\n", pos)
    klen = max(int(data[pos:klen_end]), 0)
    vlen_end = data.index(b"\n", klen_end + 1)
    vlen = max(int(data[klen_end + 1:vlen_end]), 0)
    key = data[vlen_end + 1:vlen_end + 1 + klen]
    value = data[vlen_end + 1 + klen:vlen_end + 1 + klen + vlen]
    pos = vlen_end + 1 + klen + vlen
    if key in originals:
        assert value == originals[key][:4096], (key, len(value))
        checked += 1
assert checked == 4, checked
PY
metrics=$(curl -fsS "http://127.0.0.1:$cold_port/metrics") || it_fail "no /metrics on the cold consumer"
for line in 'eie_consumer_dead_letter_forms_total{store="cold",form="truncated"} 3' \
    'eie_consumer_dead_letter_forms_total{store="cold",form="whole"} 1' \
    'eie_consumer_ready{store="cold"} 1' 'eie_consumer_consecutive_failures{store="cold"} 0'; do
    grep -qF "$line" <<<"$metrics" || it_fail "cold /metrics lacks: $line"
done
grep -q "takes records up to $dead_limit bytes" "$IT_DIR/cold.log" ||
    it_fail "the dead-letter producer was not sized from the topic's limit"
it_expect_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$cold_port/readyz")" "cold /readyz: ready"
it_expect_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$hot_port/healthz")" "hot /healthz"

# ---- A dead-letter topic that takes nothing: records of at most 200 bytes,
# less than the headers that say where a dead letter came from. The consumers
# stall on the next bad record, say so, and the lag shows what PostgreSQL is
# missing.
topic_config --add-config max.message.bytes=200 || it_fail "cannot make the dead-letter topic unavailable"
produce 0 "$IT_DIR/garbage.bin" -k X
for i in 4 5 6 7 8 9 10 11; do produce $((i % 3)) "$IT_DIR/good-$i.bin" -k "G$i"; done
end=$(high_watermarks)
readyz_503() { [[ $(curl -s -o "$IT_DIR/readyz.json" -w '%{http_code}' "http://127.0.0.1:$1/readyz") == 503 ]]; }
for group in cold hot; do
    port_var="${group}_port"
    it_wait_for "$group /readyz to report the stall" 60 readyz_503 "${!port_var}"
    grep -q '"status":"not_ready"' "$IT_DIR/readyz.json" && grep -q 'stalled: a batch of .* messages has failed to commit' "$IT_DIR/readyz.json" &&
        grep -q 'dead letter.*Message size too large' "$IT_DIR/readyz.json" || it_fail "$group /readyz gives no reason: $(cat "$IT_DIR/readyz.json")"
    metrics=$(curl -fsS "http://127.0.0.1:${!port_var}/metrics")
    grep -qF "eie_consumer_ready{store=\"$group\"} 0" <<<"$metrics" || it_fail "$group: eie_consumer_ready is not 0"
    grep -q "^eie_consumer_consecutive_failures{store=\"$group\"} [1-9]" <<<"$metrics" || it_fail "$group: no consecutive failures"
    grep -q "^eie_consumer_batch_failing_seconds{store=\"$group\"} [1-9]" <<<"$metrics" || it_fail "$group: failing seconds not counted"
    # The gauge against an independent reckoning: the broker's high
    # watermarks less the offsets in PostgreSQL.
    lag=$(awk -v t="$topic" 'index($0, "eie_consumer_lag_messages{") == 1 && index($0, "topic=\"" t "\"") {s += $2} END {print s + 0}' <<<"$metrics")
    expected=$((end - $(stored_offsets "${EIE_TOPIC_PREFIX}$group")))
    ((expected > 0)) || it_fail "$group stored everything although its dead letters cannot be published"
    it_expect_eq "$expected" "$lag" "$group lag gauge = high watermarks - stored offsets while stalled"
done
topic_config --add-config "max.message.bytes=$dead_limit" || it_fail "cannot make the dead-letter topic available again"
for group in cold hot; do
    it_wait_for "group $group to catch up once dead letters can be published" 90 it_sql_equals "$end" \
        "SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}$group'"
    port_var="${group}_port"
    it_expect_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${!port_var}/readyz")" "$group ready again"
    lag=$(curl -fsS "http://127.0.0.1:${!port_var}/metrics" | awk -v t="$topic" 'index($0, "eie_consumer_lag_messages{") == 1 && index($0, "topic=\"" t "\"") {s += $2} END {print s + 0}')
    it_expect_eq 0 "$lag" "$group lag back to 0"
done
it_expect_eq 14 "$(it_psql -c "SELECT count(*) FROM vehicle_history")" "every good reading stored once"
it_stop cold
it_stop hot
it_finish
