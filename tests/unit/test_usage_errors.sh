#!/usr/bin/env bash
# Every program on bad usage (README, Configuration): exit status 2 and a
# message on stderr naming the setting, whether it came as a flag, as its
# environment variable or as a -X librdkafka property; --help exits 0. No
# services (usage is checked before anything connects): labelled unit.
set -uo pipefail

: "${EIE_BIN:?EIE_BIN is not set}"
fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# expect ENV_ASSIGNMENT|- MESSAGE PROGRAM ARGS...: exit 2 and MESSAGE on stderr.
expect() {
    local env=$1 message=$2 status=0
    shift 2
    if [[ $env == - ]]; then
        "$EIE_BIN/$1" "${@:2}" </dev/null >/dev/null 2>"$out" || status=$?
    else
        env "$env" "$EIE_BIN/$1" "${@:2}" </dev/null >/dev/null 2>"$out" || status=$?
    fi
    local what="${env/#-/} $*"
    if [[ $status != 2 ]]; then
        echo "FAIL: ${what# }: exit status $status, expected 2 ($(head -c 300 "$out"))" >&2
        fail=1
    elif ! grep -qF -- "$message" "$out"; then
        echo "FAIL: ${what# }: expected '$message' in: $(head -c 300 "$out")" >&2
        fail=1
    else
        echo "ok: ${what# } -> 2: $message"
    fi
}

expect - "invalid --format (EIE_PRODUCE_FORMAT) 'xml'" eie-produce --format xml
expect EIE_PRODUCE_FORMAT=xml "invalid --format (EIE_PRODUCE_FORMAT) 'xml'" eie-produce
expect - 'No such configuration property: "no.such"' eie-produce -X no.such=1
expect EIE_KAFKA_PROPERTIES=no.such=1 "invalid -X (EIE_KAFKA_PROPERTIES)" eie-produce
expect - "invalid --vehicle-schema (EIE_VEHICLE_SCHEMA) '99'" eie-produce --vehicle-schema 99
expect - "invalid --vehicles '0'" eie-simulate --vehicles 0
expect EIE_SIM_VEHICLES=many "invalid EIE_SIM_VEHICLES 'many'" eie-simulate
expect - "invalid --store (EIE_STORE) 'warm'" eie-consumer --store warm
expect - "--store" eie-consumer
expect - "invalid --batch-size '0'" eie-consumer --store cold --batch-size 0
expect EIE_BATCH_SIZE=lots "invalid EIE_BATCH_SIZE 'lots'" eie-consumer --store cold
expect EIE_LINGER_MS=-5 "invalid EIE_LINGER_MS '-5'" eie-consumer --store hot
expect - "invalid --retention-days 'x'" eie-consumer --store cold --retention-days x
expect - "invalid --port '70000'" eie-api --port 70000
expect PORT=0 "invalid PORT '0'" eie-api
expect - "invalid --state-cache-ms '-1'" eie-api --state-cache-ms -1
expect EIE_STATEMENT_TIMEOUT_MS=soon "invalid EIE_STATEMENT_TIMEOUT_MS 'soon'" eie-api
expect - "invalid --http-threads '-2'" eie-api --http-threads -2
expect - "unknown option or missing value: --nope" eie-api --nope
expect - "invalid --read-access (EIE_READ_ACCESS) 'maybe'" eie-api --read-access maybe
expect EIE_STATE_FROM_BROKER=yes "invalid --state-from-broker (EIE_STATE_FROM_BROKER) 'yes'" eie-api
expect EIE_READ_ACCESS=closed "invalid --read-access (EIE_READ_ACCESS) 'closed'" eie-api
expect - "invalid --keys-file (EIE_API_KEYS_FILE): /nonexistent/keys" eie-api --keys-file /nonexistent/keys
expect EIE_API_KEYS='k read eie_notahash' "invalid --keys (EIE_API_KEYS): line 1: key 'k': the hash" eie-api
expect EIE_API_KEYS='x' "--keys-file (EIE_API_KEYS_FILE) and --keys (EIE_API_KEYS) exclude each other" \
    eie-api --keys-file /dev/null
expect - "invalid --write-rate '-1'" eie-api --write-rate -1
expect - "--tls-cert (EIE_TLS_CERT) without --tls-key (EIE_TLS_KEY)" eie-api --tls-cert /dev/null
expect EIE_TLS_KEY=/dev/null "--tls-key (EIE_TLS_KEY) without --tls-cert (EIE_TLS_CERT)" eie-api
expect - "invalid --tls-cert (EIE_TLS_CERT): cannot read /nonexistent/cert.pem" \
    eie-api --tls-cert /nonexistent/cert.pem --tls-key /nonexistent/key.pem
expect EIE_WRITE_BURST=0 "invalid EIE_WRITE_BURST '0'" eie-api
expect - "invalid --from-day 'yesterday'" eie-replay --from-day yesterday
expect - "invalid --partitions '0'" eie-admin topics --partitions 0
expect EIE_TOPIC_RETENTION_MS=-7 "invalid EIE_TOPIC_RETENTION_MS '-7'" eie-admin topics
expect - "unknown option or missing value: --nope" eie-admin migrate --nope
expect - "unexpected argument 'extra'" eie-admin rollup extra
expect - "unexpected argument 'extra'" eie-admin roles extra
expect - "unknown option or missing value: --writer-password" eie-admin roles --writer-password
expect - "--against (EIE_VERIFY_AGAINST) is required" eie-admin verify
expect - "unknown command 'bogus'" eie-admin bogus
expect - "--keys-file (EIE_API_KEYS_FILE) is required" eie-admin keys create --name k
expect - "--name is required" eie-admin keys revoke --keys-file /dev/null
expect - "invalid --role 'owner'" eie-admin keys create --keys-file /dev/null --name k --role owner
expect - "invalid --name 'a b'" eie-admin keys create --keys-file /dev/null --name 'a b'
expect - "unknown command 'rotate'" eie-admin keys rotate

for prog in eie-produce eie-simulate eie-consumer eie-api eie-replay eie-admin; do
    status=0
    "$EIE_BIN/$prog" --help >"$out" 2>&1 || status=$?
    if [[ $status != 0 ]] || ! grep -q "Usage: $prog" "$out"; then
        echo "FAIL: $prog --help: exit status $status, $(head -c 200 "$out")" >&2
        fail=1
    fi
done
for cmd in create list revoke; do
    status=0
    "$EIE_BIN/eie-admin" keys "$cmd" --help >"$out" 2>&1 || status=$?
    if [[ $status != 0 ]] || ! grep -q "Usage: eie-admin keys $cmd" "$out"; then
        echo "FAIL: eie-admin keys $cmd --help: exit status $status, $(head -c 200 "$out")" >&2
        fail=1
    fi
done

# The bench scripts check their settings before they start anything; under
# set -e an error helper's own status used to end them with 1. Bounded in
# time: one that wrongly went on would start its stack.
bench=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../bench" && pwd)
expect_bench() { # "ENV_ASSIGNMENT..." MESSAGE SCRIPT ARGS...
    local env=$1 message=$2 status=0 vars
    shift 2
    read -ra vars <<<"$env"
    env "${vars[@]}" timeout 60 bash "$bench/$1" "${@:2}" </dev/null >/dev/null 2>"$out" || status=$?
    if [[ $status != 2 ]] || ! grep -qF -- "$message" "$out"; then
        echo "FAIL: $env bench/$*: exit status $status, expected 2 and '$message' ($(head -c 300 "$out"))" >&2
        fail=1
    else
        echo "ok: $env bench/$* -> 2: $message"
    fi
}
expect_bench EIE_BENCH_CONNECT=2 "EIE_BENCH_CONNECT must be 0 or 1, not '2'" ingest.sh
expect_bench "EIE_BENCH_CONNECT=1 EIE_BENCH_CONNECT_MODE=merge" \
    "EIE_BENCH_CONNECT_MODE must be insert or upsert, not 'merge'" ingest.sh
expect_bench EIE_SIM_CHARGERS_PER_METER=0 "EIE_SIM_CHARGERS_PER_METER must be a whole number" ingest.sh
expect_bench EIE_BENCH_HOURS=x "hours must be a positive integer, not 'x'" replay.sh
expect_bench EIE_BENCH_WARMUP=x "EIE_BENCH_WARMUP must be a whole number of seconds" api.sh
expect_bench EIE_BENCH_RUNS=0 "EIE_BENCH_RUNS must be a positive integer, not '0'" produce.sh
exit $fail
