#!/usr/bin/env bash
# A Kafka outage loses nothing: the broker is stopped while readings flow,
# the consumers keep running (no exit) and log their reconnect attempts, and
# once the broker is back every reading produced before the outage and after
# it is stored, each written by one committed batch (it_audit_writes). On a
# Kafka broker of the test's own, since it stops it.
source "$(dirname "$0")/lib.sh"
it_own_kafka
it_setup 2
it_audit_writes

base=$(( $(date -u +%s) / 60 * 60 - 24 * 3600 ))
chunk() { # K: 20 vehicle readings, V1..V5 at minutes 4K..4K+3 past base (each once)
    local i m
    for ((m = $1 * 4; m < $1 * 4 + 4; m++)); do
        for i in 1 2 3 4 5; do
            echo "{\"vehicleId\":\"V$i\",\"soc\":$((m % 100)),\"kwhDeliveredDc\":0.5,\"batteryTemp\":30,\"timestamp\":\"$(it_time "$base" "$m")\"}"
        done
    done
}
# The trickle: a chunk at a time, each acknowledged before the next, until
# the stop file appears; the acknowledged chunks counted in trickle.done.
trickle() {
    local k=0
    until [[ -e $IT_DIR/trickle.stop ]]; do
        chunk "$k" | "$EIE_BIN/eie-produce" 2>>"$IT_DIR/produce.log" || { echo "chunk $k failed"; return 1; }
        k=$((k + 1))
        echo "$k" >"$IT_DIR/trickle.done"
        sleep 0.1
    done
}
count_is() { it_sql_equals "$1" "SELECT count(*) FROM vehicle_history"; }
count_at_least() { [[ $(it_psql -c "SELECT count(*) FROM vehicle_history") -ge $1 ]]; }

it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 --batch-size 10
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50 --batch-size 10
echo 0 >"$IT_DIR/trickle.done"
trickle >>"$IT_DIR/trickle.log" 2>&1 &
trickle_pid=$!
IT_PIDS+=("$trickle_pid")
# Readings flowing: the consumers are storing them as they come.
it_wait_for "readings flowing into the history" 120 count_at_least 200

# ---- The outage: the trickle ends (each chunk it started acknowledged), and
# the broker is stopped at once, most likely with readings not yet stored.
touch "$IT_DIR/trickle.stop"
wait "$trickle_pid" || it_fail "the trickle failed: $(cat "$IT_DIR/trickle.log")"
before=$(( $(cat "$IT_DIR/trickle.done") * 20 ))
marks=$(wc -l <"$IT_DIR/cold.log")
it_own_kafka_stop || it_fail "cannot stop Kafka"
it_log "Kafka stopped: $before readings produced, $(it_psql -c "SELECT count(*) FROM vehicle_history") stored"
sleep 15
for name in cold hot; do
    var="${name}_pid"
    kill -0 "${!var}" 2>/dev/null || it_fail "$name exited during the Kafka outage"
    attempts=$(grep -c "Connect to .* failed: Connection refused" "$IT_DIR/$name.log" || true)
    ((attempts >= 2)) || it_fail "$name logged $attempts reconnect attempts during the outage"
    it_log "$name: $attempts reconnect attempts logged"
done
grep -q "brokers are down" <(tail -n "+$marks" "$IT_DIR/cold.log") || it_fail "cold did not log that the brokers are down"

it_own_kafka_start || it_fail "cannot start Kafka again"
it_log "Kafka started again"
# Readings produced after the outage.
for ((k = 250; k < 255; k++)); do chunk "$k"; done | "$EIE_BIN/eie-produce" 2>>"$IT_DIR/produce.log" ||
    it_fail "eie-produce failed after the outage"
total=$((before + 100))
it_wait_for "all $total readings after the outage" 120 count_is "$total"
it_wait_for "the hot state to reach the newest readings" 60 it_sql_equals "5|$((1019 % 100 * 5))" \
    "SELECT count(*) || '|' || sum(soc) FROM vehicle_state"
it_expect_eq "$total" "$(it_psql -c "SELECT count(*) FROM vehicle_history")" "every reading stored"
it_written_once vehicle_history "$total"
for name in cold hot; do
    var="${name}_pid"
    kill -0 "${!var}" 2>/dev/null || it_fail "$name exited after the outage"
done
it_stop cold
it_stop hot
it_finish
