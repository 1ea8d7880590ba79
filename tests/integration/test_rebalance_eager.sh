#!/usr/bin/env bash
# A message left behind from a revoked partition is never stored by its old
# owner, with the eager protocol (-X partition.assignment.strategy=range),
# where a partition goes to its next owner in the same round as it is
# revoked. The first instance's batch cannot commit (the history locked) when
# the second joins: the revocation waits for that batch to be stored, so the
# second reads on from the offsets it stored. Every reading is written once,
# and no batch meets offsets another instance moved. (With the cooperative
# protocol, test_rebalance.sh, librdkafka itself hands the partitions on only
# a round later.)
source "$(dirname "$0")/lib.sh"
it_setup 6

devices=40 intervals=30
python3 - "$IT_DIR" "$devices" "$intervals" <<'PY'
import json, sys, time
out, devices, intervals = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start = (int(time.time()) // 60 - intervals - 10) * 60
for t in range(intervals):
    with open(f"{out}/chunk{t:02d}.jsonl", "w") as f:
        for i in range(1, devices + 1):
            ts = (start + t * 60) * 1000
            f.write(json.dumps({"meterId": f"M{i}", "kwhConsumedAc": 0.5, "voltage": 230, "timestamp": ts}) + "\n")
            f.write(json.dumps({"vehicleId": f"V{i}", "soc": t, "kwhDeliveredDc": 0.25, "batteryTemp": 25, "timestamp": ts}) + "\n")
PY
readings=$((2 * devices * intervals))
it_audit_writes

start_instance() { # NAME
    it_start "$1" "$EIE_BIN/eie-consumer" --store cold --batch-size 40 --linger-ms 50 \
        -X partition.assignment.strategy=range
}
has_partitions() { grep -qE " assigned [1-9][0-9]* partitions? \(eager\)" "$IT_DIR/$1.log"; }

(
    for chunk in "$IT_DIR"/chunk*.jsonl; do
        "$EIE_BIN/eie-produce" "$chunk" 2>>"$IT_DIR/produce.log" || { echo "failed: $chunk"; exit 1; }
        sleep 0.5
    done
) >"$IT_DIR/producer.status" 2>&1 &
producer=$!
IT_PIDS+=("$producer")

start_instance a
it_wait_for "a to get every partition" 60 grep -q " assigned 12 partitions (eager)" "$IT_DIR/a.log"
sleep 2
# Longer than a waits before it pauses and polls (5 s), and so serves the
# rebalance, with its batch in hand.
# The lock's end, as the logs write times.
it_psql -c "BEGIN; LOCK meter_history, vehicle_history IN SHARE MODE; SELECT pg_sleep(12);
    SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'); COMMIT" \
    >"$IT_DIR/lock.end" 2>>"$IT_DIR/lock.log" &
locker=$!
IT_PIDS+=("$locker")
sleep 0.5
start_instance b
it_wait_for "b to get partitions" 60 has_partitions b
wait "$locker" || it_fail "locking the history failed: $(cat "$IT_DIR/lock.log")"
# b joined while the history was locked, and a's revocation waited for the
# batch it held (paused and polling, or with none more to collect, in the
# revocation itself): both sides of the lock's end. A busy machine decides
# which of the two ways a takes.
first_time() { grep -m1 "$2" "$IT_DIR/$1.log" | cut -d' ' -f1; }
lock_end=$(grep -m1 -oE '^[0-9-]+T[0-9:.]+Z' "$IT_DIR/lock.end")
b_joined=$(first_time b " subscribed to ")
a_revoked=$(first_time a " revoked 12 partitions")
if [[ -z $lock_end || -z $b_joined || -z $a_revoked || ! $b_joined < $lock_end || ! $lock_end < $a_revoked ]]; then
    it_fail "a was not holding a batch when b joined: b joined at $b_joined, the history unlocked at $lock_end, a revoked at $a_revoked"
else
    it_log "ok: a held a batch when b joined ($b_joined), and gave up its partitions once it was stored ($a_revoked, after $lock_end)"
fi

wait "$producer" || it_fail "the producer failed: $(cat "$IT_DIR/producer.status")"
it_wait_for "the group to store every reading" 120 it_sql_equals "$readings" \
    "SELECT sum(next_offset) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}cold'"
it_written_once meter_history $((devices * intervals))
it_written_once vehicle_history $((devices * intervals))
if grep -h "dropping the batch" "$IT_DIR"/a.log "$IT_DIR"/b.log; then
    it_fail "a batch of a partition that had moved was dropped (its old owner still held it)"
fi
it_stop a
it_stop b
it_finish
