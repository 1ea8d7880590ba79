#!/usr/bin/env bash
# --ingest-timeout-ms (EIE_INGEST_TIMEOUT_MS) bounds an ingest's wait for
# Kafka's acknowledgement: with the broker down, POST /v1/ingest/meter is a 503
# with the JSON error (no record accepted) after about that long, not after the
# 10 s default, and not at once. Two APIs, 1.5 s and 5 s, against a Kafka of
# the test's own (it stops it).
source "$(dirname "$0")/lib.sh"
it_own_kafka
it_setup 1

fast_port=$(it_free_port)
slow_port=$(it_free_port)
it_start fast "$EIE_BIN/eie-api" --port "$fast_port" --ingest-timeout-ms 1500
EIE_INGEST_TIMEOUT_MS=5000 it_start slow "$EIE_BIN/eie-api" --port "$slow_port"
it_wait_for "the 1.5 s API ready" 30 curl -fsS "http://127.0.0.1:$fast_port/readyz"
it_wait_for "the 5 s API ready" 30 curl -fsS "http://127.0.0.1:$slow_port/readyz"

now=$(date -u -d '-30 sec' +%Y-%m-%dT%H:%M:%SZ)
reading() { echo "{\"meterId\":\"$1\",\"kwhConsumedAc\":0.5,\"voltage\":231,\"timestamp\":\"$now\"}"; }
ingest() { # PORT BODY: the status in $status, the seconds taken in $took, the body in $body
    local out
    out=$(curl -sS -o "$IT_DIR/body" -w '%{http_code} %{time_total}' --max-time 30 \
        -H "$IT_AUTH" -H 'Content-Type: application/json' --data-binary "$2" "http://127.0.0.1:$1/v1/ingest/meter")
    status=${out% *}
    took=${out#* }
    body=$(cat "$IT_DIR/body")
}
# within SECONDS LOW HIGH: LOW <= SECONDS < HIGH
within() { awk -v t="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(t >= lo && t < hi) }'; }

# Both producers connected and acknowledged once.
for port in "$fast_port" "$slow_port"; do
    ingest "$port" "$(reading "M$port")"
    it_expect_eq 202 "$status" "ingest on :$port with Kafka up"
done

it_own_kafka_stop || it_fail "cannot stop Kafka"
it_log "Kafka stopped"
ingest "$fast_port" "[$(reading M1),$(reading M2)]"
it_expect_eq 503 "$status" "--ingest-timeout-ms 1500 without Kafka: status"
jq -e '.error.status == 503 and .error.code == "unavailable" and (.error.message | type == "string")
       and .accepted == [] and .failed == [0,1]' >/dev/null <<<"$body" ||
    it_fail "--ingest-timeout-ms 1500: not the JSON error: $body"
it_log "--ingest-timeout-ms 1500: 503 after ${took}s"
within "$took" 1.4 3.5 || it_fail "--ingest-timeout-ms 1500: the 503 came after ${took}s, not about 1.5 s"

ingest "$slow_port" "$(reading M3)"
it_expect_eq 503 "$status" "EIE_INGEST_TIMEOUT_MS=5000 without Kafka: status"
jq -e '.error.code == "unavailable" and .accepted == [] and .failed == [0]' >/dev/null <<<"$body" ||
    it_fail "EIE_INGEST_TIMEOUT_MS=5000: not the JSON error: $body"
it_log "EIE_INGEST_TIMEOUT_MS=5000: 503 after ${took}s"
within "$took" 4.9 8 || it_fail "EIE_INGEST_TIMEOUT_MS=5000: the 503 came after ${took}s, not about 5 s"

it_own_kafka_start || it_fail "cannot start Kafka again"
it_wait_for "the API ready once Kafka is back" 60 curl -fsS "http://127.0.0.1:$fast_port/readyz"
ingest "$fast_port" "$(reading M4)"
it_expect_eq 202 "$status" "ingest once Kafka is back"
it_stop fast
it_stop slow
it_finish
