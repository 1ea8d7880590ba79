#!/usr/bin/env bash
# Scale-out: three instances of each consumer group share the partitions
# (cooperative rebalancing); instances are stopped and started while readings
# are produced. At the end PostgreSQL holds exactly what the producer had
# acknowledged, and every instance took part.
source "$(dirname "$0")/lib.sh"
it_setup 6

devices=60 intervals=40
python3 - "$IT_DIR" "$devices" "$intervals" <<'PY'
import json, sys, time
out, devices, intervals = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start = (int(time.time()) // 60 - intervals - 10) * 60
rows = [{"vehicleId": f"V{i}", "meterId": f"M{i}", "validFrom": start * 1000} for i in range(1, devices + 1)]
for t in range(intervals):
    for i in range(1, devices + 1):
        ts = (start + t * 60) * 1000
        rows.append({"meterId": f"M{i}", "kwhConsumedAc": 0.5, "voltage": 230, "timestamp": ts})
        rows.append({"vehicleId": f"V{i}", "soc": t, "kwhDeliveredDc": 0.25, "batteryTemp": 25, "timestamp": ts})
per = len(rows) // 12 + 1
for c in range(12):
    with open(f"{out}/chunk{c:02d}.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows[c * per:(c + 1) * per])
PY
readings=$((2 * devices * intervals))
it_audit_writes

start_instance() { # STORE N
    it_start "$1$2" "$EIE_BIN/eie-consumer" --store "$1" --batch-size 300 --linger-ms 20
}
for n in 1 2 3; do start_instance cold $n; start_instance hot $n; done

(
    for chunk in "$IT_DIR"/chunk*.jsonl; do
        "$EIE_BIN/eie-produce" "$chunk" 2>>"$IT_DIR/produce.log" || { echo "failed: $chunk"; exit 1; }
        sleep 1
    done
) >"$IT_DIR/producer.status" 2>&1 &
producer=$!
IT_PIDS+=("$producer")

# Instances leave and join while the readings flow.
sleep 4; it_stop cold1; it_stop hot2
sleep 2; start_instance cold 4; start_instance hot 4
sleep 2; it_stop cold2; it_stop hot3
sleep 2; start_instance cold 5
wait "$producer" || it_fail "the producer failed: $(cat "$IT_DIR/producer.status")"

it_wait_for "the cold group to store every reading" 120 it_sql_equals "$readings" \
    "SELECT sum(next_offset) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}cold'"
it_wait_for "the hot group to store every record" 120 it_sql_equals $((readings + devices)) \
    "SELECT sum(next_offset) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}hot'"
it_expect_eq "$((devices * intervals))|$(echo "$devices * $intervals * 0.5" | bc | sed 's/\.0*$//')" \
    "$(it_psql -c "SELECT count(*) || '|' || sum(kwh_consumed_ac) FROM meter_history")" "meter history: rows and energy"
it_expect_eq "$((devices * intervals))|$(echo "$devices * $intervals * 0.25" | bc | sed 's/\.0*$//')" \
    "$(it_psql -c "SELECT count(*) || '|' || sum(kwh_delivered_dc) FROM vehicle_history")" "vehicle history: rows and energy"
it_expect_eq "$devices|$((intervals - 1))" "$(it_psql -c "SELECT count(*) || '|' || min(soc) FROM vehicle_state")" \
    "hot state: every vehicle at its last interval"
# Partitions moved between instances: none wrote a reading another had written.
it_written_once meter_history $((devices * intervals))
it_written_once vehicle_history $((devices * intervals))
it_written_once vehicle_meter_assignment "$devices"
# The instances running at the end share the partitions between them (the
# last one started may join after the readings are all stored).
got_partitions() { grep -q "assigned [1-9]" "$IT_DIR/$1.log"; }
for name in cold3 cold4 cold5 hot1 hot4; do
    it_wait_for "$name to get partitions" 60 got_partitions "$name"
done
for name in cold3 cold4 cold5 hot1 hot4; do it_stop "$name"; done
it_finish
