#!/usr/bin/env bash
# The cold consumer's writers (--writers) store batches at once, each on its
# own connection, and commit them in the order they were read. Every reading
# here comes twice, the copy right after its chunk, so that a batch often
# repeats readings of the batch still being written before it: it waits for
# that one instead of deadlocking against it, stores each reading once, and
# every message's offset is stored.
source "$(dirname "$0")/lib.sh"
it_setup 2

base=$(( $(date -u +%s) / 60 * 60 ))
# 40 chunks of 50 readings (V1..V50, one minute each), each chunk twice.
for ((m = 40; m >= 1; m--)); do
    chunk=$(for ((i = 1; i <= 50; i++)); do
        echo "{\"vehicleId\":\"V$i\",\"soc\":$m,\"kwhDeliveredDc\":0.25,\"batteryTemp\":30,\"timestamp\":\"$(it_time "$base" "-$m")\"}"
    done)
    printf '%s\n%s\n' "$chunk" "$chunk"
done >"$IT_DIR/readings.json"
"$EIE_BIN/eie-produce" - <"$IT_DIR/readings.json" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed"

# Batches of 50, so that many are in flight at once; three writers.
EIE_LOG_LEVEL=debug it_start cold "$EIE_BIN/eie-consumer" --store cold --writers 3 --batch-size 50
cold_read() {
    it_sql_equals 4000 "SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}cold'"
}
it_wait_for "every message's offset stored" 60 cold_read
it_expect_eq "2000|500" "$(it_psql -c "SELECT count(*) || '|' || sum(kwh_delivered_dc) FROM vehicle_history")" \
    "each reading stored once (rows | kWh)"
writers=$(it_psql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'eie-consumer cold'")
((writers >= 2)) || it_fail "the batches went through $writers connection(s), expected several"
if grep -q "dropping\|deadlock" "$IT_DIR/cold.log"; then
    it_fail "a batch was dropped: $(grep -m 2 "dropping\|deadlock" "$IT_DIR/cold.log")"
fi
it_log "$(grep -c "rolled back for a batch before it" "$IT_DIR/cold.log") batch(es) rolled back for an earlier one, $(grep -c "readings already stored; merging" "$IT_DIR/cold.log") merged"
it_finish
