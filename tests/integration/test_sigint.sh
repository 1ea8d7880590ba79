#!/usr/bin/env bash
# SIGINT (Ctrl-C) stops every long-running program cleanly, losing nothing:
# - eie-produce reading a stream: stops reading, waits for Kafka, reports
#   "(interrupted)" with every sent record acknowledged, exit 1 (not a full
#   import), and the topic holds exactly the acknowledged records;
# - eie-simulate in real time: exit 0, everything it sent acknowledged and on
#   the topic;
# - eie-consumer (hot and cold) in the middle of a backlog: exit 0; what it
#   committed is stored, and restarted it stores the rest, each reading once;
# - eie-api: exit 0 after answering, ingested readings on the topic, its
#   access log written out at exit.
# (Ctrl-C reaches a foreground program's whole process group; here each
# program gets it by pid.)
source "$(dirname "$0")/lib.sh"
it_setup 2

wait_exit() { # NAME: waits (30 s at most); the exit status in $exit_status
    local var="${1//-/_}_pid" i
    for ((i = 0; i < 300; i++)); do kill -0 "${!var}" 2>/dev/null || break; sleep 0.1; done
    kill -0 "${!var}" 2>/dev/null && { it_fail "$1 did not stop within 30 s of SIGINT"; kill -KILL "${!var}"; }
    exit_status=0
    wait "${!var}" || exit_status=$?
}
now_s=$(date -u +%s)

# ---- eie-produce: a stream that keeps coming until the interrupt.
mkfifo "$IT_DIR/stream"
it_start writer bash -c 'i=0; while :; do i=$((i + 1)); printf "{\"vehicleId\":\"P%d\",\"soc\":50,\"kwhDeliveredDc\":0.1,\"batteryTemp\":20,\"timestamp\":%d000}\n" $((i % 50)) $(($2 - i)); ((i % 20)) || sleep 0.05; done >"$1"' \
    writer "$IT_DIR/stream" "$now_s"
it_start produce "$EIE_BIN/eie-produce" --type vehicle "$IT_DIR/stream"
sleep 2
kill -INT "$produce_pid"
wait_exit produce
it_expect_eq 1 "$exit_status" "eie-produce after SIGINT: exit 1 (an interrupted import is not a full one)"
summary=$(grep "eie-produce: .* read" "$IT_DIR/produce.log" | tail -n 1)
it_log "$summary"
acked=$(sed -nE 's/.* ([0-9]+) acknowledged.*/\1/p' <<<"$summary")
sent=$(sed -nE 's/.* ([0-9]+) sent.*/\1/p' <<<"$summary")
[[ $summary == *"0 failed, 0 unconfirmed (interrupted)" && -n $acked && $acked == "$sent" && $acked -gt 0 ]] ||
    it_fail "eie-produce did not wait for every sent record: $summary"
# The writer ends on a broken pipe; the topic is still until the next part.
it_wait_for "the writer to end" 10 bash -c "! kill -0 $writer_pid 2>/dev/null" || kill "$writer_pid" 2>/dev/null || true
it_expect_eq "$acked" "$(it_topic_count vehicle-readings)" "the topic holds exactly the acknowledged records"

# ---- eie-simulate in real time.
it_start sim "$EIE_BIN/eie-simulate" --vehicles 5 --interval-s 1 --reassign-rate 0
sleep 4
kill -INT "$sim_pid"
wait_exit sim
it_expect_eq 0 "$exit_status" "eie-simulate after SIGINT: exit 0"
line=$(grep "stopped:" "$IT_DIR/sim.log" | tail -n 1)
it_log "$line"
sim_sent=$(sed -nE 's/.*stopped: ([0-9]+) records sent, ([0-9]+) acknowledged, 0 failed, 0 unconfirmed.*/\1 \2/p' <<<"$line")
read -r s a <<<"$sim_sent"
[[ -n ${a:-} && $s == "$a" && $a -gt 5 ]] || it_fail "eie-simulate did not wait for every record: $line"
on_topics=$(($(it_topic_count meter-readings) + $(it_topic_count vehicle-readings) + $(it_topic_count vehicle-assignments) - acked))
it_expect_eq "$a" "$on_topics" "the topics hold exactly what the simulator had acknowledged"

# ---- the consumers, interrupted in the middle of the backlog (small batches).
# A backlog of a few thousand readings, read in batches of 20.
"$EIE_BIN/eie-simulate" --vehicles 40 --from "$(date -u -d '-3 hours' +%Y-%m-%dT%H:%M:00Z)" \
    --to "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:00Z)" --reassign-rate 0 2>>"$IT_DIR/backfill.log" ||
    it_fail "the backfill failed"
total=$(($(it_topic_count meter-readings) + $(it_topic_count vehicle-readings)))
records=$((total + $(it_topic_count vehicle-assignments)))
offsets() { it_psql -c "SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}$1'"; }
rows() { it_psql -c "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)"; }
started() { (($(offsets "$1") > 0)); }
it_start cold "$EIE_BIN/eie-consumer" --store cold --batch-size 20 --linger-ms 10
it_start hot "$EIE_BIN/eie-consumer" --store hot --batch-size 20 --linger-ms 10
it_wait_for "the cold consumer under way" 60 started cold
it_wait_for "the hot consumer under way" 60 started hot
it_stop cold INT
it_stop hot INT
cold_done=$(offsets cold) hot_done=$(offsets hot)
it_log "stopped by SIGINT at cold $cold_done of $total, hot $hot_done of $records"
((cold_done < total && hot_done < records)) || it_log "note: a consumer finished its backlog before the SIGINT"
grep -q "stopping: writing the last batch" "$IT_DIR/cold.log" || it_fail "the cold consumer did not log its stop"
# What a stopped consumer committed is what it stored: its rows and offsets
# went in one transaction.
it_expect_eq "$cold_done" "$(rows)" "the cold consumer's stored offsets count its stored rows"
it_start cold2 "$EIE_BIN/eie-consumer" --store cold --linger-ms 50
it_start hot2 "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_wait_for "the cold group to finish after its restart" 60 it_sql_equals "$total" \
    "SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}cold'"
it_wait_for "the hot group to finish after its restart" 60 it_sql_equals "$records" \
    "SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}hot'"
it_expect_eq "$total" "$(rows)" "every reading stored once across the SIGINT and the restart"
it_expect_eq "0" "$(it_psql -c "SELECT count(*) FROM vehicle_state s JOIN (SELECT vehicle_id, max(ts) AS ts FROM vehicle_history GROUP BY 1) h USING (vehicle_id) WHERE s.ts <> h.ts")" \
    "the hot state holds each vehicle's newest reading"
it_stop cold2
it_stop hot2

# ---- eie-api.
port=$(it_free_port)
it_start api "$EIE_BIN/eie-api" --port "$port"
it_wait_for "the API ready" 30 curl -fsS "http://127.0.0.1:$port/readyz"
before=$(it_topic_count meter-readings)
ts=$(date -u -d '-30 sec' +%Y-%m-%dT%H:%M:%SZ)
status=$(curl -sS -o /dev/null -w '%{http_code}' -H "$IT_AUTH" -H 'Content-Type: application/json' \
    --data-binary "{\"meterId\":\"MX\",\"kwhConsumedAc\":0.5,\"voltage\":230,\"timestamp\":\"$ts\"}" "http://127.0.0.1:$port/v1/ingest/meter")
it_expect_eq 202 "$status" "an ingest before the interrupt"
curl -sS -o /dev/null "http://127.0.0.1:$port/v1/vehicles/P1?sigint-marker" || true
it_stop api INT
it_expect_eq "$((before + 1))" "$(it_topic_count meter-readings)" "the acknowledged reading is on the topic"
grep -q "received SIGINT, stopping" "$IT_DIR/api.log" || it_fail "the API did not log the SIGINT"
grep -q "access: .*route=/v1/vehicles/:vehicleId" "$IT_DIR/api.log" || it_fail "the last request's access line was not written out at exit"
it_finish
