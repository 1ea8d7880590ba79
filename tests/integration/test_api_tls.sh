#!/usr/bin/env bash
# HTTPS: eie-api with --tls-cert and --tls-key (certificates made here by
# openssl, a CA and a server certificate for 127.0.0.1), in both thread
# modes: a client trusting the CA is served, keep-alive included, and a write
# with its key; a client trusting another CA is refused, as is plain HTTP; an
# unreadable Content-Length is answered once, inside the TLS stream. Then the
# usage errors: one file without the other, unreadable, not PEM, a key that
# is not the certificate's, each exit 2 naming the setting.
source "$(dirname "$0")/lib.sh"
it_setup 1

it_tls_ca ca || { it_fail "openssl could not make the CA"; exit 1; }
it_tls_ca other-ca
it_tls_cert ca server IP:127.0.0.1 || { it_fail "openssl could not make the server certificate"; exit 1; }
chmod 600 "$IT_DIR/tls/server.key"
tls=(--tls-cert "$IT_DIR/tls/server.crt" --tls-key "$IT_DIR/tls/server.key")
port=$(it_free_port)
url=https://127.0.0.1:$port

# checks LABEL: what both thread modes must do.
checks() {
    local what=$1 out status
    status=$(curl -sS --cacert "$IT_DIR/tls/ca.crt" -o "$IT_DIR/body" -w '%{http_code}' "$url/healthz") ||
        it_fail "$what: curl trusting the CA failed"
    it_expect_eq 200 "$status" "$what: GET /healthz over TLS, the CA trusted"
    # Two requests, one connection: the second makes no new connection.
    out=$(curl -sS --cacert "$IT_DIR/tls/ca.crt" -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
        "$url/healthz" "$url/v1/vehicles?limit=1")
    it_expect_eq $'200 1\n200 0' "$out" "$what: keep-alive, two requests on one TLS connection"
    status=$(curl -sS --cacert "$IT_DIR/tls/ca.crt" -o "$IT_DIR/body" -w '%{http_code}' -H "$IT_AUTH" \
        -H 'Content-Type: application/json' -X POST --data-binary \
        "{\"meterId\":\"M1\",\"kwhConsumedAc\":0.5,\"voltage\":230,\"timestamp\":\"$(it_time "$(date +%s)" -1)\"}" \
        "$url/v1/ingest/meter")
    it_expect_eq 202 "$status" "$what: a write with its key over TLS"
    local rc=0
    curl -sS --cacert "$IT_DIR/tls/other-ca.crt" -o /dev/null "$url/healthz" 2>"$IT_DIR/curl.err" || rc=$?
    it_expect_eq 60 "$rc" "$what: a client trusting another CA refuses the server (curl 60)"
    rc=0
    curl -sS --max-time 5 -o /dev/null "http://127.0.0.1:$port/healthz" 2>>"$IT_DIR/curl.err" || rc=$?
    [[ $rc -ne 0 ]] || it_fail "$what: plain HTTP to the TLS port was served"
    it_log "ok: $what: plain HTTP to the TLS port fails (curl $rc)"
    # An unreadable Content-Length: libmicrohttpd answers it twice by itself
    # (http_bad_length.h); our one answer must reach the client inside TLS.
    local raw=(python3 "$EIE_SOURCE_DIR/tests/integration/http_raw.py" --port "$port" --cafile "$IT_DIR/tls/ca.crt")
    local post='POST /v1/ingest/meter HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
    out=$("${raw[@]}" "${post}Content-Length: 12ab\\r\\n\\r\\n{}") || it_fail "$what: the raw TLS client failed"
    jq -e '.status == 400 and .status_lines == 1 and .closed and (.body | fromjson | .error.status == 400)' <<<"$out" >/dev/null ||
        it_fail "$what: Content-Length not a number over TLS: $out"
    out=$("${raw[@]}" "${post}Content-Length: 99999999999999999999999\\r\\n\\r\\n{}") || it_fail "$what: the raw TLS client failed"
    jq -e '.status == 413 and .status_lines == 1 and .closed and (.body | fromjson | .error.code == "payload_too_large")' <<<"$out" >/dev/null ||
        it_fail "$what: Content-Length past 2^64 over TLS: $out"
    it_log "ok: $what: an unreadable Content-Length gets one answer inside TLS"
    out=$("${raw[@]}" 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n') || it_fail "$what: the raw TLS client failed"
    jq -e '.status == 200 and .status_lines == 1 and (.closed | not)' <<<"$out" >/dev/null ||
        it_fail "$what: the raw TLS client's keep-alive request: $out"
}

it_start api "$EIE_BIN/eie-api" --port "$port" "${tls[@]}" --ingest-timeout-ms 5000
it_wait_for "the API over TLS" 30 curl -fsS --cacert "$IT_DIR/tls/ca.crt" "$url/healthz"
grep -q "listening on https://127.0.0.1:$port" "$IT_DIR/api.log" || it_fail "the API does not say it serves HTTPS"
checks "a thread per connection"
it_stop api
it_start api_pool "$EIE_BIN/eie-api" --port "$port" "${tls[@]}" --http-threads 2 --ingest-timeout-ms 5000
it_wait_for "the API over TLS, a pool of threads" 30 curl -fsS --cacert "$IT_DIR/tls/ca.crt" "$url/healthz"
checks "a pool of threads"
it_stop api_pool
# Environment instead of flags.
EIE_TLS_CERT=$IT_DIR/tls/server.crt EIE_TLS_KEY=$IT_DIR/tls/server.key it_start api_env "$EIE_BIN/eie-api" --port "$port"
it_wait_for "the API over TLS from EIE_TLS_CERT and EIE_TLS_KEY" 30 curl -fsS --cacert "$IT_DIR/tls/ca.crt" "$url/healthz"
it_stop api_env

# refused LABEL SETTING ARGS...: exit 2, the message naming SETTING.
refused() {
    local what=$1 setting=$2 status=0
    shift 2
    "$EIE_BIN/eie-api" --port "$(it_free_port)" "$@" >/dev/null 2>"$IT_DIR/usage.err" || status=$?
    it_expect_eq 2 "$status" "$what: exit 2"
    grep -qF -- "$setting" "$IT_DIR/usage.err" || it_fail "$what: $setting not named: $(cat "$IT_DIR/usage.err")"
}
printf 'not a certificate\n' >"$IT_DIR/tls/junk.pem"
refused "--tls-cert alone" "--tls-key (EIE_TLS_KEY)" --tls-cert "$IT_DIR/tls/server.crt"
refused "EIE_TLS_KEY alone" "--tls-cert (EIE_TLS_CERT)" --tls-key "$IT_DIR/tls/server.key"
refused "a missing certificate" "--tls-cert (EIE_TLS_CERT): cannot read" --tls-cert "$IT_DIR/tls/none.crt" --tls-key "$IT_DIR/tls/server.key"
refused "a certificate that is not PEM" "--tls-cert (EIE_TLS_CERT)" --tls-cert "$IT_DIR/tls/junk.pem" --tls-key "$IT_DIR/tls/server.key"
refused "a key file holding a certificate" "--tls-key (EIE_TLS_KEY)" --tls-cert "$IT_DIR/tls/server.crt" --tls-key "$IT_DIR/tls/server.crt"
refused "another certificate's key" "does not go with the certificate" --tls-cert "$IT_DIR/tls/server.crt" --tls-key "$IT_DIR/tls/other-ca.key"
it_finish
