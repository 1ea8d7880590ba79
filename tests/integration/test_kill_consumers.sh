#!/usr/bin/env bash
# Exactly-once under crashes: while readings are being produced, the cold and
# the hot consumer are each killed with SIGKILL at random moments (12 times
# each) and restarted. At the end PostgreSQL must hold exactly what the
# producer had acknowledged: row counts, energy sums and the latest state, and
# every reading written by one committed batch only (it_audit_writes). Then
# eie-replay rebuilds the stores, killed three times and resumed, with the same
# checks. The moments come from EIE_KILL_SEED, logged, so that a failure can be
# replayed.
source "$(dirname "$0")/lib.sh"
it_setup 4

devices=${EIE_KILL_TEST_DEVICES:-100}
intervals=${EIE_KILL_TEST_INTERVALS:-60}
kills=${EIE_KILL_TEST_KILLS:-12}

# Chunks of readings, and the totals they must produce.
python3 - "$IT_DIR" "$devices" "$intervals" <<'PY'
import json, random, sys, time
out, devices, intervals = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(7)
start = (int(time.time()) // 60 - intervals - 10) * 60
rows = []
for i in range(1, devices + 1):
    rows.append({"vehicleId": f"V{i}", "meterId": f"M{i}", "validFrom": start * 1000})
ac = dc = 0
latest = {}
for t in range(intervals):
    for i in range(1, devices + 1):
        ts = (start + t * 60) * 1000
        a = rnd.randint(0, 5000) / 1000
        d = rnd.randint(0, 4000) / 1000
        soc = rnd.randint(0, 1000) / 10
        ac += a; dc += d
        latest[i] = soc
        rows.append({"meterId": f"M{i}", "kwhConsumedAc": a, "voltage": 230, "timestamp": ts})
        rows.append({"vehicleId": f"V{i}", "soc": soc, "kwhDeliveredDc": d, "batteryTemp": 25, "timestamp": ts})
chunks = 20
per = (len(rows) + chunks - 1) // chunks
for c in range(chunks):
    with open(f"{out}/chunk{c:02d}.jsonl", "w") as f:
        for r in rows[c * per:(c + 1) * per]:
            f.write(json.dumps(r) + "\n")
with open(f"{out}/expected", "w") as f:
    n = devices * intervals
    f.write(f"{n}|{ac:.3f}\n{n}|{dc:.3f}\n{devices}|{sum(latest.values()):.1f}\n{devices}\n{len(rows)}\n")
PY
mapfile -t expected <"$IT_DIR/expected"
it_audit_writes
seed=${EIE_KILL_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$seed
it_log "kill moments from seed $seed (rerun with EIE_KILL_SEED=$seed)"

start_cold() { it_start cold "$EIE_BIN/eie-consumer" --store cold --instance-id cold-1 --batch-size 400 --linger-ms 20; }
start_hot() { it_start hot "$EIE_BIN/eie-consumer" --store hot --instance-id hot-1 --batch-size 400 --linger-ms 20; }
start_cold
start_hot

(
    for chunk in "$IT_DIR"/chunk*.jsonl; do
        "$EIE_BIN/eie-produce" "$chunk" 2>>"$IT_DIR/produce.log" || { echo "failed: $chunk"; exit 1; }
        sleep 0.5
    done
) >"$IT_DIR/producer.status" 2>&1 &
producer=$!
IT_PIDS+=("$producer")

for ((k = 1; k <= kills; k++)); do
    cold_delay=0.$((RANDOM % 9 + 1)) hot_delay=0.$((RANDOM % 9 + 1))
    echo "kill $k: cold after ${cold_delay} s, hot after ${hot_delay} s" >>"$IT_DIR/kills.log"
    sleep "$cold_delay"
    kill -KILL "$cold_pid"
    wait "$cold_pid" 2>/dev/null || true
    start_cold
    sleep "$hot_delay"
    kill -KILL "$hot_pid"
    wait "$hot_pid" 2>/dev/null || true
    start_hot
done
it_log "killed each consumer $kills times"
wait "$producer" || it_fail "the producer failed: $(cat "$IT_DIR/producer.status")"

total=${expected[4]}
it_wait_for "the cold group to pass all meter and vehicle readings" 180 it_sql_equals $((total - devices)) \
    "SELECT sum(next_offset) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}cold'"
it_wait_for "the hot group to pass all records" 180 it_sql_equals "$total" \
    "SELECT sum(next_offset) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}hot'"

# stores WHAT: PostgreSQL holds exactly what the producer had acknowledged.
stores() {
    it_expect_eq "${expected[0]}" "$(it_psql -c "SELECT count(*) || '|' || round(sum(kwh_consumed_ac)::numeric, 3) FROM meter_history")" \
        "$1: meter history: rows and AC energy"
    it_expect_eq "${expected[1]}" "$(it_psql -c "SELECT count(*) || '|' || round(sum(kwh_delivered_dc)::numeric, 3) FROM vehicle_history")" \
        "$1: vehicle history: rows and DC energy"
    it_expect_eq "${expected[2]}" "$(it_psql -c "SELECT count(*) || '|' || round(sum(soc)::numeric, 1) FROM vehicle_state")" \
        "$1: hot state: one row per vehicle, its latest state of charge"
    it_expect_eq "${expected[3]}" "$(it_psql -c "SELECT count(*) FROM meter_state")" "$1: hot state: one row per meter"
    it_expect_eq "${expected[3]}" "$(it_psql -c "SELECT count(*) FROM vehicle_meter_assignment")" "$1: assignments"
}
stores "consumers"
n=${expected[0]%%|*}
it_written_once meter_history "$n"
it_written_once vehicle_history "$n"
it_written_once vehicle_meter_assignment "${expected[3]}"
it_stop cold
it_stop hot

# eie-replay rebuilds the stores from the topics, killed (SIGKILL) at seeded
# moments after it has stored rows and resumed each time: the rebuilt store,
# too, has each reading written by one committed batch, and after the switch
# the stores are the same.
rebuilt_rows() { it_psql -c "SELECT count(*) FROM it_write_audit WHERE schema = 'eie_rebuild'"; }
rebuilt=0
for ((k = 1; k <= 3 && !rebuilt; k++)); do
    before=$(rebuilt_rows)
    "$EIE_BIN/eie-replay" --batch-size 100 >>"$IT_DIR/replay.out" 2>>"$IT_DIR/replay.log" &
    replay_pid=$!
    stored_more() { [[ $(rebuilt_rows) -gt $before ]] || ! kill -0 "$replay_pid"; }
    it_wait_for "rebuild $k to store rows" 60 stored_more
    delay=0.0$((RANDOM % 10))
    echo "replay kill $k: ${delay} s after it stored rows" >>"$IT_DIR/kills.log"
    sleep "$delay"
    kill -KILL "$replay_pid" 2>/dev/null || rebuilt=1
    status=0
    wait "$replay_pid" 2>/dev/null || status=$?
    ((!rebuilt)) || it_log "rebuild $k had finished before its kill (exit $status)"
    # On a busy machine the kill can come after the switch (while the old
    # tables are dropped): the rebuild is then done, and another run would
    # start a new one, writing every reading again.
    if ((!rebuilt)) && [[ $(it_psql -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'eie_rebuild'") == 0 ]]; then
        rebuilt=1
        it_log "rebuild $k had switched in before its kill"
    fi
done
if ((!rebuilt)); then
    "$EIE_BIN/eie-replay" --batch-size 100 >>"$IT_DIR/replay.out" 2>>"$IT_DIR/replay.log" ||
        it_fail "the last rebuild failed: $(tail -n 20 "$IT_DIR/replay.log")"
fi
it_log "rebuild resumed $(grep -c "resuming the rebuild" "$IT_DIR/replay.log") times"
it_written_once meter_history "$n" eie_rebuild
it_written_once vehicle_history "$n" eie_rebuild
it_written_once vehicle_meter_assignment "${expected[3]}" eie_rebuild
stores "after the rebuild"
it_finish
