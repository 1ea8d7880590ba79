#!/usr/bin/env bash
# Strict HTTP: control characters in paths and query values, the /docs assets,
# path versus query parameters, long path ids, a body's framing (Content-Length
# twice, with Transfer-Encoding, too large, unreadable), empty bodies, cursors,
# and the access log with the setting that turns it off. Raw requests through
# tests/integration/http_raw.py: the status, that exactly one response was
# sent, and whether the server closed the connection.
source "$(dirname "$0")/lib.sh"
it_setup 1

port=$(it_free_port)
it_start api "$EIE_BIN/eie-api" --port "$port" --ingest-timeout-ms 3000
it_wait_for "the API" 30 curl -fsS "http://127.0.0.1:$port/healthz"

# raw WHAT REQUEST STATUS [closed|open] [JQ]: one raw request, its checks;
# raw_args: more arguments for http_raw.py
raw_args=()
raw() {
    local what=$1 request=$2 status=$3 conn=${4:-} filter=${5:-true} out
    out=$(python3 "$EIE_SOURCE_DIR/tests/integration/http_raw.py" --port "$port" "${raw_args[@]}" "$request") ||
        { it_fail "$what: the raw client failed"; return; }
    jq -e ".status == $status and .status_lines == 1" <<<"$out" >/dev/null ||
        { it_fail "$what: expected one response with status $status, got $out"; return; }
    if [[ $conn == closed ]]; then
        jq -e '.closed' <<<"$out" >/dev/null || { it_fail "$what: the connection was left open: $out"; return; }
    elif [[ $conn == open ]]; then
        jq -e '.closed | not' <<<"$out" >/dev/null || { it_fail "$what: the connection was closed: $out"; return; }
    fi
    jq -e ".body | fromjson | $filter" <<<"$out" >/dev/null ||
        { it_fail "$what: expected $filter in the body: $out"; return; }
    it_log "ok: $what"
}
get() { printf 'GET %s HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' "$1"; }
post() { # PATH HEADERS BODY
    printf 'POST %s HTTP/1.1\\r\\nHost: x\\r\\n%s\\r\\nContent-Type: application/json\\r\\n%s\\r\\n%s' "$1" "$IT_AUTH" "$2" "$3"
}
invalid='.error.status == 400 and .error.code == "invalid_parameter"'

# --- control characters, escapes -------------------------------------------
raw "%00 in a query value" "$(get '/v1/vehicles?meterId=M1%00x')" 400 closed "$invalid and (.error.message | startswith(\"meterId:\"))"
raw "%0a in a query value" "$(get '/v1/vehicles?meterId=M1%0a')" 400 closed "$invalid"
raw "%00 in a path id" "$(get '/v1/vehicles/V1%00x')" 400 closed "$invalid and (.error.message | startswith(\"vehicleId:\"))"
raw "%1f in a path id" "$(get '/v1/analytics/performance/V%1f')" 400 closed "$invalid"
raw "a broken escape in a query value" "$(get '/v1/vehicles?meterId=M%zz')" 400 closed "$invalid"
raw "a query parameter given twice" "$(get '/v1/vehicles?limit=1&limit=2')" 400 closed "$invalid"

# --- path ids ----------------------------------------------------------------
long=$(printf 'V%.0s' {1..1500})
raw "a 1,500-byte path id" "$(get "/v1/vehicles/$long")" 400 closed "$invalid and (.error.message | test(\"1 to 64 bytes\"))"
raw "a 65-byte path id" "$(get "/v1/vehicles/${long:0:65}")" 400 closed "$invalid and (.error.message | test(\"1 to 64 bytes\"))"
# The path's vehicle, never merged with (or replaced by) ?vehicleId=
raw "a query parameter named like a path parameter" \
    "$(printf 'PUT /v1/vehicles/V7/assignment?vehicleId=V8 HTTP/1.1\\r\\nHost: x\\r\\n%s\\r\\nContent-Type: application/json\\r\\nContent-Length: 16\\r\\nConnection: close\\r\\n\\r\\n{"meterId":"M7"}' "$IT_AUTH")" \
    202 closed '.vehicleId == "V7"'

# --- cursors -------------------------------------------------------------------
for cursor in '' '%01' "${long:0:65}" '%ff%fe'; do
    raw "cursor '${cursor:0:8}'" "$(get "/v1/vehicles?cursor=$cursor")" 400 closed "$invalid and (.error.message | startswith(\"cursor:\"))"
done

# --- the documentation's assets -------------------------------------------------
[[ -n ${EIE_SWAGGER_UI_DIR:-} ]] || it_fail "EIE_SWAGGER_UI_DIR is not set (run through tests/run.sh)"
for file in package.json README.md swagger-ui.css.map swagger-ui-bundle.js.map index.html swagger-initializer.js; do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/docs/$file") == 404 ]] ||
        it_fail "/docs/$file is served"
done
for file in swagger-ui.css swagger-ui-bundle.js swagger-ui-standalone-preset.js; do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/docs/$file") == 200 ]] ||
        it_fail "/docs/$file, which the page loads, is not served"
done

# --- a body's framing ---------------------------------------------------------
too_large='.error.status == 413 and .error.code == "payload_too_large"'
raw "Content-Length twice" "$(post /v1/ingest/meter 'Content-Length: 2\r\nContent-Length: 5\r\n' '{}')" 400 closed '.error.status == 400'
raw "Content-Length and Transfer-Encoding" "$(post /v1/ingest/meter 'Content-Length: 2\r\nTransfer-Encoding: chunked\r\n' '{}')" 400 closed '.error.status == 400'
raw "Transfer-Encoding other than chunked" "$(post /v1/ingest/meter 'Transfer-Encoding: gzip\r\n' '{}')" 400 closed '.error.status == 400'
# Declared larger than the limit, the body never sent: answered at once.
raw "Content-Length over the limit" "$(post /v1/ingest/meter 'Content-Length: 5000000\r\n' '')" 413 closed "$too_large"
# libmicrohttpd answers an unreadable Content-Length itself, and twice (see
# http_server.c): the API must send one answer.
# bad_lengths LABEL [BEFORE]: both cases, BEFORE run ahead of each
bad_lengths() {
    ${2:-true}
    raw "Content-Length past 2^64$1" "$(post /v1/ingest/meter 'Content-Length: 99999999999999999999999\r\n' '{}')" 413 closed "$too_large"
    ${2:-true}
    raw "Content-Length not a number$1" "$(post /v1/ingest/meter 'Content-Length: 12ab\r\n' '{}')" 400 closed '.error.status == 400'
}
bad_lengths ""
raw "an empty body" "$(post /v1/ingest/meter 'Content-Length: 0\r\nConnection: close\r\n' '')" 400 closed \
    '.error.code == "invalid_body" and (.error.message | startswith("empty body"))'
raw "a keep-alive request stays open" "$(printf 'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')" 200 open

# A pool of HTTP threads: one thread reads the heads of many connections (one
# thread in the pool here). Another connection's head, started after the bad
# request's line and before its headers, is still half-read on the same
# thread when the bad Content-Length is parsed.
half_head_soon() {
    (
        sleep 0.4
        exec 8<>"/dev/tcp/127.0.0.1/$port"
        printf 'POST /v1/ingest/meter HTTP/1.1\r\nHost: x\r\n' >&8
        sleep 3
    ) &
    half_heads+=("$!")
}
half_heads=()
it_stop api
it_start api_pool "$EIE_BIN/eie-api" --port "$port" --http-threads 1
it_wait_for "the API with a pool of threads" 30 curl -fsS "http://127.0.0.1:$port/healthz"
bad_lengths " (a pool thread)"
raw_args=(--pause-after-line 1)
bad_lengths " (a pool thread, another head read meanwhile)" half_head_soon
raw_args=()
wait "${half_heads[@]}"
it_stop api_pool
it_start api "$EIE_BIN/eie-api" --port "$port" --ingest-timeout-ms 3000
it_wait_for "the API" 30 curl -fsS "http://127.0.0.1:$port/healthz"

# --- the limits on a head and on connections -----------------------------------
# A head larger than --connection-memory-limit: a long URI gets 414, long
# headers 431 (libmicrohttpd's answers, sent once, the connection closed).
raw_status() { # REQUEST: the first status line's code and the status lines sent
    python3 "$EIE_SOURCE_DIR/tests/integration/http_raw.py" --port "$port" "$1" | jq -r '"\(.status) \(.status_lines) \(.closed)"'
}
it_expect_eq "414 1 true" "$(raw_status "$(get "/v1/vehicles?meterId=$(printf 'M%.0s' {1..40000})")")" \
    "a URI past --connection-memory-limit gets one 414"
it_expect_eq "431 1 true" "$(raw_status "$(printf 'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nX-Big: %s\\r\\n\\r\\n' "$(printf 'h%.0s' {1..40000})")")" \
    "headers past --connection-memory-limit get one 431"
it_expect_eq "200 1 false" "$(raw_status "$(printf 'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nX-Big: %s\\r\\n\\r\\n' "$(printf 'h%.0s' {1..8000})")")" \
    "headers within --connection-memory-limit are served"
# More connections than the open-file limit leaves room for: refused, exit 2,
# the setting named.
status=0
prlimit --nofile=1024:1024 "$EIE_BIN/eie-api" --port "$(it_free_port)" --max-connections 2000 \
    >/dev/null 2>"$IT_DIR/fd.err" || status=$?
it_expect_eq 2 "$status" "--max-connections above the open-file limit: exit 2"
grep -q -- "--max-connections (EIE_MAX_CONNECTIONS) 2000 is more than the 896 descriptors" "$IT_DIR/fd.err" ||
    it_fail "the refusal does not name the setting and the room: $(cat "$IT_DIR/fd.err")"

# --- the access log -------------------------------------------------------------
curl -fsS -o /dev/null "http://127.0.0.1:$port/v1/vehicles/V1?x=1" -H 'User-Agent: access-log-probe' || true
# Access lines are written in blocks, within 200 ms.
it_wait_for "the access log line" 5 grep -q 'route=/v1/vehicles/:vehicleId status=404' "$IT_DIR/api.log"
grep -Eq 'info: access: address=127\.0\.0\.1 method=GET route=/v1/vehicles/:vehicleId status=404 duration_ms=[0-9]+\.[0-9]{3}$' "$IT_DIR/api.log" ||
    it_fail "no access log line for GET /v1/vehicles/V1: $(grep 'access:' "$IT_DIR/api.log" | tail -3)"
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z eie-api info: access: address=127\.0\.0\.1 method=POST route=- status=413 ' "$IT_DIR/api.log" ||
    it_fail "no access log line for the 413 answered at the head"
it_stop api
it_start api_quiet "$EIE_BIN/eie-api" --port "$port" --access-log off
it_wait_for "the API without access log" 30 curl -fsS "http://127.0.0.1:$port/healthz"
curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz"
it_stop api_quiet # what is gathered is written at exit
! grep -q 'access:' "$IT_DIR/api_quiet.log" || it_fail "--access-log off still logs requests"
"$EIE_BIN/eie-api" --access-log maybe >/dev/null 2>"$IT_DIR/usage.err" && it_fail "--access-log maybe accepted"
grep -q "access-log" "$IT_DIR/usage.err" || it_fail "a bad --access-log is not named: $(cat "$IT_DIR/usage.err")"
it_finish
