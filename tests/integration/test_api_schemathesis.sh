#!/usr/bin/env bash
# Property-based test of the live API against its own OpenAPI document: the
# API serves /openapi.json, and schemathesis generates requests from it, valid
# and invalid, for every documented operation (the POST ingest routes too, so
# Kafka takes part), over a small known fleet. It checks that no answer is a
# 5xx, and that every answer's status, Content-Type and body are the ones the
# document gives for that operation. Every request carries the test's write
# key (lib.sh's $IT_AUTH); test_api_keys.sh checks the answers without one.
#
# schemathesis comes from PyPI, at the version pinned below, into a venv under
# EIE_STATE_DIR (default: the repository's .state), reused by later runs.
# EIE_SCHEMATHESIS_SEED=N repeats a run's generated requests; a failed run
# prints the seed it used, and the cases that failed with a curl line each.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

SCHEMATHESIS_VERSION=4.32.5
# Requests per operation and phase; the whole test stays under 3 minutes on 2 cores.
MAX_EXAMPLES=${EIE_SCHEMATHESIS_MAX_EXAMPLES:-50}
SEED=${EIE_SCHEMATHESIS_SEED:-$((RANDOM * 32768 + RANDOM))}
: "${EIE_STATE_DIR:=$(cd "${EIE_SOURCE_DIR:-$(dirname "$0")/../..}" && pwd)/.state}"
VENV=$EIE_STATE_DIR/venv-schemathesis

# Creates the venv or reuses it; the stamp is written only once pip succeeded,
# so an interrupted install is redone rather than trusted.
install_schemathesis() {
    local stamp=$VENV/.eie-schemathesis-$SCHEMATHESIS_VERSION
    [[ -f $stamp && -x $VENV/bin/schemathesis ]] && return 0
    it_log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    rm -rf "$VENV"
    mkdir -p "$EIE_STATE_DIR"
    if ! python3 -m venv "$VENV" >"$IT_DIR/venv.txt" 2>&1; then
        cat "$IT_DIR/venv.txt" >&2
        it_fail "python3 -m venv failed (on Debian: apt-get install python3-venv)"
        rm -rf "$VENV"
        return 1
    fi
    if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" >"$IT_DIR/pip.txt" 2>&1; then
        tail -n 40 "$IT_DIR/pip.txt" >&2
        it_fail "pip could not install schemathesis $SCHEMATHESIS_VERSION"
        rm -rf "$VENV"
        return 1
    fi
    touch "$stamp"
}

it_setup 3
port=$(it_free_port)
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50
it_start api "$EIE_BIN/eie-api" --port "$port"

# Three vehicles on three meters, a reading a minute for the last two hours
# (epoch milliseconds). V2 moved from M3 to M2 three hours ago and charges
# below 0.85 efficiency; V3 and M3 stopped reporting 30 minutes ago (stale).
now_min=$(($(date -u +%s) / 60))
ms() { printf '%d' $(((now_min + $1) * 60000)); }
{
    printf '{"vehicleId":"V2","meterId":"M3","validFrom":%s}\n' "$(ms -240)"
    for i in 1 2 3; do
        printf '{"vehicleId":"V%d","meterId":"M%d","validFrom":%s}\n' "$i" "$i" "$(ms -180)"
    done
    for ((k = -120; k <= -1; k++)); do
        t=$(ms "$k")
        soc=$((20 + (k + 120) / 2))
        printf '{"meterId":"M1","kwhConsumedAc":0.25,"voltage":230.5,"timestamp":%s}\n' "$t"
        printf '{"vehicleId":"V1","soc":%d.5,"kwhDeliveredDc":0.23,"batteryTemp":31.5,"timestamp":%s}\n' "$soc" "$t"
        printf '{"meterId":"M2","kwhConsumedAc":0.25,"voltage":229,"timestamp":%s}\n' "$t"
        printf '{"vehicleId":"V2","soc":%d,"kwhDeliveredDc":0.2,"batteryTemp":35,"timestamp":%s}\n' "$soc" "$t"
        if ((k <= -31)); then
            printf '{"meterId":"M3","kwhConsumedAc":0.1,"voltage":231,"timestamp":%s}\n' "$t"
            printf '{"vehicleId":"V3","soc":%d,"kwhDeliveredDc":0.09,"batteryTemp":22.25,"timestamp":%s}\n' "$soc" "$t"
        fi
    done
} >"$IT_DIR/readings.jsonl"
readings=$(grep -c '"timestamp"' "$IT_DIR/readings.jsonl")
records=$(wc -l <"$IT_DIR/readings.jsonl")
if ! "$EIE_BIN/eie-produce" "$IT_DIR/readings.jsonl" 2>"$IT_DIR/produce.log"; then
    it_fail "eie-produce failed on valid input"
    it_finish
fi

it_wait_for "the cold group's offsets to cover all $readings readings" 90 it_sql_equals "$readings" \
    "SELECT sum(next_offset) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}cold'"
it_wait_for "the hot group's offsets to cover all $records records" 90 it_sql_equals "$records" \
    "SELECT sum(next_offset) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}hot'"
it_wait_for "the API" 30 curl -fsS "http://127.0.0.1:$port/healthz"

# The document the binary serves is the one in the source tree.
source_dir=${EIE_SOURCE_DIR:-$(dirname "$0")/../..}
curl -fsS -o "$IT_DIR/openapi.json" "http://127.0.0.1:$port/openapi.json" ||
    it_fail "GET /openapi.json failed"
python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
    "$IT_DIR/openapi.json" "$source_dir/api/openapi.json" 2>/dev/null ||
    it_fail "GET /openapi.json differs from api/openapi.json (rebuild eie-api)"

if ((IT_FAILED == 0)) && install_schemathesis; then
    it_log "schemathesis $SCHEMATHESIS_VERSION: seed $SEED, at most $MAX_EXAMPLES examples per operation and phase"
    st_rc=0
    # From the work dir: schemathesis and Hypothesis leave their files there.
    # One worker: Python 3.11 before 3.11.8 (Debian 12 has 3.11.2) can fail
    # ast.parse in concurrent threads, which Hypothesis calls (CPython gh-106905).
    (cd "$IT_DIR" && "$VENV/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
        --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
        --header "$IT_AUTH" --max-examples "$MAX_EXAMPLES" --seed "$SEED" \
        --request-timeout 10 --wait-for-schema 30 --workers 1 \
        --generation-database none --no-color \
        --report junit --report-dir "$IT_DIR/schemathesis-report") \
        </dev/null 2>&1 | tee "$IT_DIR/schemathesis.txt" >&2 || st_rc=$?
    ((st_rc == 0)) || it_fail "schemathesis found problems (exit $st_rc, seed $SEED; rerun with EIE_SCHEMATHESIS_SEED=$SEED)"
    # The write routes were reached with the test's key (lib.sh), not only refused.
    curl -fsS "http://127.0.0.1:$port/metrics" >"$IT_DIR/metrics.txt" || it_fail "GET /metrics failed"
    grep -Eq '^eie_api_requests_total\{method="POST",route="/v1/ingest/meter",status="202"\} [1-9]' \
        "$IT_DIR/metrics.txt" || it_fail "schemathesis never had an ingest accepted (202) with the key"
fi

it_stop api
it_stop hot
it_stop cold
it_finish
