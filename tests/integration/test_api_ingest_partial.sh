#!/usr/bin/env bash
# A partly accepted ingest, both ways the README describes:
# - some readings invalid: 400 with a detail per bad field, and nothing is
#   accepted (not even the valid readings of the same request);
# - all valid but Kafka refuses some (here: records larger than the topic's
#   max.message.bytes, which only the long id reaches): 503 listing by index
#   which were accepted and which failed, and exactly the accepted ones are
#   on the topic and in the store; the API goes on accepting afterwards.
source "$(dirname "$0")/lib.sh"
it_setup 2

topic="${EIE_TOPIC_PREFIX}vehicle-readings"
(
    source "$EIE_SOURCE_DIR/deploy/lib.sh"
    "$(kafka_java)" -Xmx256m -cp "$(kafka_libs)/*" kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" \
        --alter --entity-type topics --entity-name "$topic" --add-config max.message.bytes=200
) >>"$IT_DIR/admin.log" 2>&1 || it_fail "cannot set the topic's max.message.bytes"

port=$(it_free_port)
api="http://127.0.0.1:$port"
# One record per request to the broker, uncompressed, so that each record's
# size alone decides whether the topic takes it.
it_start api "$EIE_BIN/eie-api" --port "$port" --ingest-timeout-ms 5000 -X compression.type=none -X batch.num.messages=1
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_wait_for "the API ready" 30 curl -fsS "$api/readyz"

now=$(date -u -d '-30 sec' +%Y-%m-%dT%H:%M:%SZ)
long=$(printf 'L%.0s' {1..64})
reading() { printf '{"vehicleId":"%s","soc":%s,"kwhDeliveredDc":0.5,"batteryTemp":20,"timestamp":"%s"}' "$1" "$2" "$now"; }
ingest() {
    status=$(curl -sS -o "$IT_DIR/body" -w '%{http_code}' -H "$IT_AUTH" -H 'Content-Type: application/json' --data-binary "$1" "$api/v1/ingest/vehicle")
    body=$(cat "$IT_DIR/body")
}
expect() { # STATUS JQ WHAT
    [[ $status == "$1" ]] && jq -e "$2" >/dev/null <<<"$body" && { it_log "ok: $3"; return; }
    it_fail "$3: expected $1 and $2, got $status $body"
}
keys() {
    kcat -C -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$topic" -o beginning -e -q -f '%k\n' 2>>"$IT_DIR/kcat.log" | LC_ALL=C sort | tr '\n' ' '
}

# Some invalid: nothing accepted. An acknowledged marker with the same keys
# afterwards shows that nothing went before it.
ingest "[$(reading A1 10),$(reading A2 150),$(reading A3 10)]"
expect 400 '.error.code == "invalid_body" and .error.details == [{"index":1,"field":"soc","message":"150 is outside 0..100 %"}]' \
    "one invalid reading of three: 400 with its detail"
ingest "[$(reading A1 11),$(reading A2 12),$(reading A3 13)]"
expect 202 '.accepted == 3' "the same readings, all valid"
it_expect_eq "A1 A2 A3 " "$(keys)" "the invalid request put nothing on the topic"

# All valid, the middle one too large for the topic: accepted [0, 2], failed [1].
ingest "[$(reading B1 21),$(reading "$long" 22),$(reading B3 23)]"
expect 503 '.error.status == 503 and .error.code == "unavailable" and .accepted == [0,2] and .failed == [1]' \
    "Kafka refuses one record of three: 503 with accepted and failed"
ingest "[$(reading C1 31)]"
expect 202 '.accepted == 1' "ingest goes on after a refused record"
it_expect_eq "A1 A2 A3 B1 B3 C1 " "$(keys)" "exactly the accepted readings are on the topic"
it_wait_for "the accepted readings in the hot state" 60 it_sql_equals "A1 A2 A3 B1 B3 C1" \
    "SELECT string_agg(vehicle_id, ' ' ORDER BY vehicle_id) FROM vehicle_state"
it_stop api
it_stop hot
it_finish
