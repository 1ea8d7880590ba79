#!/usr/bin/env bash
# The secured profile (deploy/lib/kafka_secure.sh) on a broker of the test's
# own: SASL_SSL, a SCRAM user per program, ACLs. Each program, given its
# user's settings through EIE_KAFKA_PROPERTIES, does its work: eie-produce
# writes readings, kcat as the producer a record no consumer can decode, the
# cold and hot consumers store the readings and dead-letter that record, the
# API ingests one. And each client without the right is refused, with the
# broker's reason logged: no credentials (plaintext, or TLS without SASL),
# a wrong password, the consumer's user writing telemetry, the producer's
# reading it, and a consumer under a group id outside its ACL, which stores
# nothing. Last, eie-replay rebuilds the stores as the consumers' user.
source "$(dirname "$0")/lib.sh"
it_own_kafka_secure
EIE_KAFKA_PROPERTIES=$(it_kafka_props admin) it_setup 2
producer=$(it_kafka_props eie-producer)
consumer=$(it_kafka_props eie-consumer)
api_user=$(it_kafka_props eie-api)

base=$(( $(date -u +%s) / 60 * 60 - 3600 ))
readings() { # 5 vehicle and 5 meter readings
    local m
    for m in 0 1 2 3 4; do
        echo "{\"vehicleId\":\"V1\",\"soc\":$((50 + m)),\"kwhDeliveredDc\":0.5,\"batteryTemp\":30,\"timestamp\":\"$(it_time "$base" "$m")\"}"
        echo "{\"meterId\":\"M1\",\"kwhConsumedAc\":0.6,\"voltage\":230,\"timestamp\":\"$(it_time "$base" "$m")\"}"
    done
}
# kcat_as USER ARGS...: kcat with the user's settings (one -X per property).
kcat_as() {
    local user=$1 x=() kv
    shift
    IFS=, read -ra kv <<<"$(it_kafka_props "$user")"
    for p in "${kv[@]}"; do x+=(-X "$p"); done
    timeout 60 kcat -b "$KAFKA_BOOTSTRAP_SERVERS" "${x[@]}" "$@"
}
dead_count() { kcat_as admin -C -t "${EIE_TOPIC_PREFIX}dead-letters" -o beginning -e -q -f '.\n' 2>>"$IT_DIR/kcat.log" | wc -l; }
one="{\"vehicleId\":\"V9\",\"soc\":10,\"kwhDeliveredDc\":0.1,\"batteryTemp\":20,\"timestamp\":\"$(it_time "$base" 30)\"}"

# ---- Each program with its own user does its work.
EIE_KAFKA_PROPERTIES=$consumer it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 --batch-size 10
EIE_KAFKA_PROPERTIES=$consumer it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50 --batch-size 10
readings | EIE_KAFKA_PROPERTIES=$producer "$EIE_BIN/eie-produce" 2>>"$IT_DIR/produce.log" ||
    it_fail "eie-produce as eie-producer failed: $(tail -n 3 "$IT_DIR/produce.log")"
printf 'not avro' | kcat_as eie-producer -P -t "${EIE_TOPIC_PREFIX}vehicle-readings" -k V1 2>>"$IT_DIR/kcat.log" ||
    it_fail "kcat as eie-producer could not write"
it_wait_for "the readings in the history" 120 it_sql_equals 5 "SELECT count(*) FROM vehicle_history"
it_wait_for "the meter readings in the history" 60 it_sql_equals 5 "SELECT count(*) FROM meter_history"
it_wait_for "the hot state" 60 it_sql_equals 54 "SELECT soc::int FROM vehicle_state WHERE vehicle_id = 'V1'"
it_wait_for "a dead letter from each group" 60 test "$(dead_count)" = 2
it_log "ok: produced as eie-producer, stored and dead-lettered as eie-consumer"

port=$(it_free_port)
EIE_KAFKA_PROPERTIES=$api_user it_start api "$EIE_BIN/eie-api" --port "$port"
IT_API=http://127.0.0.1:$port
it_wait_for "the API" 60 curl -fsS -o /dev/null "$IT_API/healthz"
status=$(curl -sS -o "$IT_DIR/body" -w '%{http_code}' -H "$IT_AUTH" -H 'Content-Type: application/json' \
    --data-binary "$one" "$IT_API/v1/ingest/vehicle")
it_expect_eq 202 "$status" "the API ingests as eie-api ($(cat "$IT_DIR/body"))"
it_wait_for "the ingested reading in the history" 60 it_sql_equals 1 "SELECT count(*) FROM vehicle_history WHERE vehicle_id = 'V9'"

# ---- Refusals. refused NAME PATTERN PROPERTIES: eie-produce with those
# settings exits non-zero within 40 s, logging PATTERN, and nothing lands.
refused() {
    local name=$1 pattern=$2 start=$SECONDS rc=0
    echo "$one" | EIE_KAFKA_PROPERTIES=$3 timeout 60 "$EIE_BIN/eie-produce" --flush-timeout-ms 10000 \
        >>"$IT_DIR/$name.log" 2>&1 || rc=$?
    if ((rc == 0)); then
        it_fail "$name: eie-produce was not refused"
    elif ((rc == 124 || SECONDS - start > 40)); then
        it_fail "$name: refused only after $((SECONDS - start)) s (exit $rc)"
    elif ! grep -qE "$pattern" "$IT_DIR/$name.log"; then
        it_fail "$name: exit $rc without '$pattern' in its log"
    else
        it_log "ok: $name refused in $((SECONDS - start)) s, exit $rc: $(grep -m1 -oE "$pattern.{0,60}" "$IT_DIR/$name.log")"
    fi
}
refused no-credentials "security.protocol configuration" ""
refused tls-without-sasl "broker might require SASL authentication" "security.protocol=SSL,ssl.ca.location=${producer##*ssl.ca.location=}"
refused wrong-password "invalid credentials with SASL mechanism SCRAM-SHA-512" \
    "${producer/sasl.password=/sasl.password=x}"
refused consumer-writes-telemetry "Topic authorization failed" "$consumer"
it_expect_eq 1 "$(it_psql -c "SELECT count(*) FROM vehicle_history WHERE vehicle_id = 'V9'")" \
    "nothing the refused clients sent was stored"

# The producer's user may not read.
if kcat_as eie-producer -C -t "${EIE_TOPIC_PREFIX}vehicle-readings" -o beginning -e -q \
    >"$IT_DIR/producer-reads.out" 2>"$IT_DIR/producer-reads.log"; then
    it_fail "kcat as eie-producer read $(wc -l <"$IT_DIR/producer-reads.out") records"
elif grep -q "Topic authorization failed" "$IT_DIR/producer-reads.log"; then
    it_log "ok: eie-producer may not read: $(grep -m1 -o "Topic authorization failed.*" "$IT_DIR/producer-reads.log")"
else
    it_fail "kcat as eie-producer failed without 'Topic authorization failed': $(tail -n 2 "$IT_DIR/producer-reads.log")"
fi

# A consumer under a group id outside its ACL, though under the topic
# prefix: refused by the group coordinator, logged, and nothing stored in a
# database of its own.
wrong_group=${EIE_TOPIC_PREFIX}other
# (The superuser's database, beside the test's own with its roles.)
wrong_db=${IT_SUPER_URL}_wrong
psql "${IT_SUPER_URL%/*}/postgres" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"${wrong_db##*/}\"" >/dev/null
DATABASE_URL=$wrong_db "$EIE_BIN/eie-admin" migrate 2>>"$IT_DIR/admin.log"
DATABASE_URL=$wrong_db EIE_KAFKA_PROPERTIES=$consumer it_start wrong-group "$EIE_BIN/eie-consumer" \
    --store cold --group "$wrong_group" --linger-ms 50 --batch-size 10
it_wait_for "the wrong group's refusal logged" 60 grep -q "Group authorization failed" "$IT_DIR/wrong-group.log" &&
    it_log "ok: group $wrong_group refused: $(grep -m1 -o "Group authorization failed.*" "$IT_DIR/wrong-group.log" | cut -c1-120)"
sleep 3
it_expect_eq 0 "$(psql "$wrong_db" -X -At -c "SELECT count(*) FROM vehicle_history")" \
    "the consumer under group $wrong_group stored nothing"
it_stop wrong-group

it_stop api
it_stop hot
it_stop cold

# eie-replay reads as the consumers do, under their groups' ids.
if EIE_KAFKA_PROPERTIES=$consumer timeout 240 "$EIE_BIN/eie-replay" >"$IT_DIR/replay.out" 2>"$IT_DIR/replay.log"; then
    it_expect_eq 6 "$(it_psql -c "SELECT count(*) FROM vehicle_history")" "eie-replay as eie-consumer rebuilt the history"
else
    it_fail "eie-replay as eie-consumer failed (exit $?): $(tail -n 3 "$IT_DIR/replay.log")"
fi
it_finish
