#!/usr/bin/env bash
# API keys (README, Access), over HTTP against the real stack:
# - eie-admin keys create prints a key once and writes only its hash; list
#   and revoke; a name twice or an unknown name is exit 1
# - write routes: 401 without a key or with an unknown one, 403 with a read
#   key (both before the body is read), 202 with a write or admin key, by
#   Authorization: Bearer or X-API-Key
# - read routes closed by --read-access key (401, then 200 with any role),
#   open by --read-access open and by default on loopback; probes and the
#   API's description never need a key
# - SIGHUP adds and revokes a key while a keep-alive connection stays open on
#   the same socket; a bad file keeps the keys in use
# - Swagger UI's Authorize (its bundle, in node) sends the key by either scheme
# - a key's bucket empties: 429 with Retry-After, counted by the key's name
# - no key ever appears in the log or /metrics; its name does
# - eie-admin keys run at once lose no change
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"
it_setup 1

keys=$IT_DIR/keys
admin() { "$EIE_BIN/eie-admin" keys "$1" --keys-file "$keys" "${@:2}" 2>>"$IT_DIR/keys-admin.log"; }

# ---- eie-admin keys.
writer=$(admin create --name ingest-w --role write --rate 1 --burst 3) || it_fail "keys create (write)"
reader=$(admin create --name dash-r --role read) || it_fail "keys create (read)"
boss=$(admin create --name ops-a --role admin --rate 0) || it_fail "keys create (admin)"
[[ $writer =~ ^eie_[A-Za-z0-9_-]{43}$ ]] || it_fail "a key is eie_ and 43 base64url characters"
[[ $writer != "$reader" && $reader != "$boss" ]] || it_fail "two keys are the same"
for k in "$writer" "$reader" "$boss"; do
    ! grep -qF -- "${k#eie_}" "$keys" || it_fail "a key itself is in the key file"
done
it_expect_eq 600 "$(stat -c %a "$keys")" "the key file is private to its owner"
admin list >"$IT_DIR/list.txt" || it_fail "keys list"
it_expect_eq "dash-r read|ingest-w write|ops-a admin" \
    "$(awk 'NR > 1 { print $1, $2 }' "$IT_DIR/list.txt" | sort | paste -sd '|')" "keys list: names and roles"
status=0
admin create --name dash-r >/dev/null || status=$?
it_expect_eq 1 "$status" "keys create: a name already there is refused"
status=0
admin revoke --name nobody || status=$?
it_expect_eq 1 "$status" "keys revoke: an unknown name is refused"

# ---- a server whose read routes need a key.
port=$(it_free_port)
api="http://127.0.0.1:$port"
it_start api "$EIE_BIN/eie-api" --port "$port" --keys-file "$keys" --read-access key --ingest-timeout-ms 5000
it_wait_for "the API ready" 60 curl -fsS "$api/readyz"

# call METHOD PATH [CURL ARGS...]: the status in $status, the body in $body,
# the response's headers in $IT_DIR/headers.
call() {
    status=$(curl -sS -o "$IT_DIR/body" -D "$IT_DIR/headers" -w '%{http_code}' -X "$1" "${@:3}" "$api$2")
    body=$(cat "$IT_DIR/body")
}
expect() { # STATUS CODE WHAT: the status, and the error's code (- for a success)
    if [[ $status != "$1" ]]; then
        it_fail "$3: status $status, expected $1: $body"
    elif [[ $2 != - ]] && ! jq -e --arg c "$2" ".error.status == $1 and .error.code == \$c" >/dev/null <<<"$body"; then
        it_fail "$3: expected the JSON error $1 $2: $body"
    else
        it_log "ok: $3"
    fi
}
now=$(date -u -d '-30 sec' +%Y-%m-%dT%H:%M:%SZ)
meter='{"meterId":"MK1","kwhConsumedAc":0.5,"voltage":231,"timestamp":"'"$now"'"}'
json=(-H 'Content-Type: application/json')

call POST /v1/ingest/meter "${json[@]}" --data-binary "$meter"
expect 401 unauthorized "ingest without a key"
grep -qi '^WWW-Authenticate: Bearer' "$IT_DIR/headers" || it_fail "a 401 names the Bearer scheme"
call POST /v1/ingest/meter "${json[@]}" -H "Authorization: Bearer eie_${writer:5}x" --data-binary "$meter"
expect 401 unauthorized "ingest with an unknown key"
call POST /v1/ingest/meter "${json[@]}" -H "X-API-Key: $reader" --data-binary "$meter"
expect 403 forbidden "ingest with a read key"
jq -e '.error.message | test("dash-r")' >/dev/null <<<"$body" || it_fail "a 403 names the key: $body"
call POST /v1/ingest/meter "${json[@]}" -H "Authorization: Bearer $writer" --data-binary "$meter"
expect 202 - "ingest with a write key (Authorization: Bearer)"
# Refused on its head: the 1 MiB body it announces is never sent, nor waited for.
head_only=$(python3 - "$port" "$reader" <<'PY'
import socket, sys
for key in ("", sys.argv[2]):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(b"POST /v1/ingest/vehicle HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              + (b"X-API-Key: " + key.encode() + b"\r\n" if key else b"")
              + b"Content-Length: 1048576\r\n\r\n")
    try:
        print(s.recv(4096).split(b"\r\n", 1)[0].decode(), end="|")
    except socket.timeout:
        print("timeout", end="|")
    s.close()
PY
)
it_expect_eq "HTTP/1.1 401 Unauthorized|HTTP/1.1 403 Forbidden|" "$head_only" \
    "a write without a key, or with a read key, is refused before its body"
call PUT /v1/vehicles/VK1/assignment "${json[@]}" -H "X-API-Key: $reader" --data-binary '{"meterId":"MK1"}'
expect 403 forbidden "an assignment with a read key"
call PUT /v1/vehicles/VK1/assignment "${json[@]}" -H "X-API-Key: $boss" --data-binary '{"meterId":"MK1"}'
expect 202 - "an assignment with an admin key (X-API-Key)"

call GET /v1/fleet/summary
expect 401 unauthorized "a read route without a key (--read-access key)"
call GET /metrics
expect 401 unauthorized "/metrics without a key (--read-access key)"
for role in read write admin; do
    case $role in read) k=$reader ;; write) k=$writer ;; admin) k=$boss ;; esac
    call GET /v1/fleet/summary -H "X-API-Key: $k"
    expect 200 - "a read route with a $role key"
done
for path in /healthz /readyz /openapi.json /docs; do
    call GET "$path"
    expect 200 - "$path without a key"
done

# ---- the writer's bucket (3, one a second; one token taken above): empty
# bodies are refused after the key check, so they spend tokens without Kafka.
limited=0
for i in 1 2 3 4 5 6; do
    call POST /v1/ingest/meter "${json[@]}" -H "X-API-Key: $writer" --data-binary '[]'
    if [[ $status == 429 ]]; then
        limited=1
        break
    fi
    [[ $status == 400 ]] || it_fail "a write within the limit: status $status: $body"
done
if ((limited)); then
    expect 429 rate_limited "the writer's bucket empties (429 after $((i - 1)) requests)"
    retry=$(sed -n 's/^Retry-After: *\([0-9]*\).*/\1/Ip' "$IT_DIR/headers" | tr -d '\r')
    [[ $retry =~ ^[1-9][0-9]*$ ]] || it_fail "a 429 has Retry-After in whole seconds: '$retry'"
    call POST /v1/ingest/meter "${json[@]}" -H "X-API-Key: $boss" --data-binary '[]'
    expect 400 invalid_body "another key's bucket is its own"
    sleep "${retry:-1}"
    call POST /v1/ingest/meter "${json[@]}" -H "X-API-Key: $writer" --data-binary "$meter"
    expect 202 - "after Retry-After the writer writes again"
else
    it_fail "six writes at once never got 429 from a bucket of 3"
fi
call GET /metrics -H "X-API-Key: $reader"
cp "$IT_DIR/body" "$IT_DIR/metrics.txt"
grep -Eq '^eie_api_key_requests_total\{key="ingest-w",outcome="rate_limited"\} [1-9]' "$IT_DIR/metrics.txt" ||
    it_fail "429s counted by the key's name: $(grep key_requests "$IT_DIR/metrics.txt")"
grep -Eq '^eie_api_key_requests_total\{key="dash-r",outcome="forbidden"\} 3' "$IT_DIR/metrics.txt" ||
    it_fail "403s counted by the key's name"
grep -Eq '^eie_api_auth_failures_total\{reason="missing"\} [1-9]' "$IT_DIR/metrics.txt" ||
    it_fail "401s counted by reason"

# ---- Swagger UI's Authorize, with either scheme: its own request builder
# sends the key on the routes that declare the scheme and not on the probes.
[[ -n ${EIE_SWAGGER_UI_DIR:-} ]] || it_fail "EIE_SWAGGER_UI_DIR is not set (run through tests/run.sh)"
cases=$(jq -nc --argjson m "$meter" '[
    {operationId: "ingestMeterReadings", body: [$m], status: 202, sendsKey: true},
    {operationId: "putVehicleAssignment", parameters: {vehicleId: "VK2"}, body: {meterId: "MK1"}, status: 202, sendsKey: true},
    {operationId: "getFleetSummary", status: 200, sendsKey: true},
    {operationId: "getHealth", status: 200, sendsKey: false}]')
for scheme in bearerKey apiKeyHeader; do
    node "$(dirname "$0")/swagger_authorize.js" "${EIE_SWAGGER_UI_DIR:-}" "$api" "$scheme" "$boss" "$cases" \
        2>>"$IT_DIR/swagger.log" || it_fail "Swagger UI's Authorize with $scheme: $(grep FAIL "$IT_DIR/swagger.log")"
done
grep -c '^ok:' "$IT_DIR/swagger.log" | grep -qx 8 && it_log "ok: Swagger UI's Authorize (both schemes, 8 requests)"

# ---- SIGHUP while a connection stays open (http.client keeps one socket;
# hup.py fails if it had to open another).
cat >"$IT_DIR/hup.py" <<'PY'
import http.client, json, os, re, signal, subprocess, sys, time
port, pid, log, admin, keys = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
sock = None

def get(key):
    global sock
    conn.request("GET", "/v1/fleet/summary", headers={"X-API-Key": key})
    r = conn.getresponse()
    r.read()
    if sock is None:
        sock = conn.sock
    if conn.sock is not sock:
        sys.exit("the connection was not kept open")
    return r.status

def hup(expect):
    """SIGHUP, then wait for the log line of this reload."""
    before = open(log).read().count("SIGHUP:")
    os.kill(pid, signal.SIGHUP)
    for _ in range(100):
        lines = [l for l in open(log).read().splitlines() if "SIGHUP:" in l]
        if len(lines) > before:
            if expect not in lines[-1]:
                sys.exit(f"after SIGHUP expected '{expect}' in: {lines[-1]}")
            return
        time.sleep(0.1)
    sys.exit("no log line after SIGHUP")

def keys_admin(*args):
    out = subprocess.run([admin, "keys", *args, "--keys-file", keys], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return out.stdout.strip()

def expect(status, want, what):
    if status != want:
        sys.exit(f"{what}: status {status}, expected {want}")
    print(f"ok: {what}", file=sys.stderr)

late = keys_admin("create", "--name", "late-r", "--role", "read")
expect(get(late), 401, "a key made after the start is not taken before SIGHUP")
hup("4 API keys loaded")
expect(get(late), 200, "after SIGHUP the new key is taken, on the same connection")
keys_admin("revoke", "--name", "late-r")
hup("3 API keys loaded")
expect(get(late), 401, "after revoke and SIGHUP the key is refused, on the same connection")
with open(keys, "a") as f:
    f.write("broken line\n")
hup("the key file was not loaded, the 3 keys in use stay")
expect(get(sys.argv[6]), 200, "a bad file on SIGHUP keeps the keys in use")
conn.close()
PY
python3 "$IT_DIR/hup.py" "$port" "$api_pid" "$IT_DIR/api.log" "$EIE_BIN/eie-admin" "$keys" "$reader" ||
    it_fail "SIGHUP reload (hup.py)"
grep -q 'eie-api error: SIGHUP: the key file was not loaded.*line 6: expected NAME ROLE' "$IT_DIR/api.log" ||
    it_fail "a bad file on SIGHUP is logged as an error with its line (6: two comments, three keys)"
sed -i '/^broken line$/d' "$keys"

# ---- read access: open, and the default on loopback (auto).
open_port=$(it_free_port)
it_start api_open "$EIE_BIN/eie-api" --port "$open_port" --keys-file "$keys" --read-access open
auto_port=$(it_free_port)
EIE_READ_ACCESS=auto it_start api_auto "$EIE_BIN/eie-api" --host 127.0.0.2 --port "$auto_port" --keys-file "$keys"
it_wait_for "the open API" 60 curl -fsS "http://127.0.0.1:$open_port/healthz"
it_wait_for "the auto API" 60 curl -fsS "http://127.0.0.2:$auto_port/healthz"
api="http://127.0.0.1:$open_port"
call GET /v1/fleet/summary
expect 200 - "a read route without a key (--read-access open)"
call POST /v1/ingest/meter "${json[@]}" --data-binary "$meter"
expect 401 unauthorized "ingest without a key (--read-access open)"
api="http://127.0.0.2:$auto_port"
call GET /v1/vehicles
expect 200 - "a read route without a key (auto, listening on 127.0.0.2)"
call POST /v1/ingest/meter "${json[@]}" -H "X-API-Key: $reader" --data-binary "$meter"
expect 403 forbidden "ingest with a read key (auto)"
grep -q 'read routes open' "$IT_DIR/api_auto.log" || it_fail "auto on loopback logs that read routes are open"

# ---- no keys at all: writes refused, the log says how to make one.
none_port=$(it_free_port)
env -u EIE_API_KEYS_FILE "$EIE_BIN/eie-api" --port "$none_port" >>"$IT_DIR/api_none.log" 2>&1 &
IT_PIDS+=("$!")
api_none_pid=$!
it_wait_for "the API without keys" 60 curl -fsS "http://127.0.0.1:$none_port/healthz"
api="http://127.0.0.1:$none_port"
call POST /v1/ingest/meter "${json[@]}" -H "X-API-Key: $writer" --data-binary "$meter"
expect 401 unauthorized "ingest on a server without keys"
grep -q 'no API keys: every write route answers 401' "$IT_DIR/api_none.log" ||
    it_fail "a server without keys warns that writes are refused"

it_stop api_none
it_stop api_open
it_stop api_auto
it_stop api

# ---- the keys never reach a log or the metrics; their names do.
for k in "$writer" "$reader" "$boss"; do
    for f in "$IT_DIR"/api*.log "$IT_DIR/metrics.txt" "$IT_DIR/keys-admin.log"; do
        ! grep -qF -- "${k#eie_}" "$f" || it_fail "a key appears in $(basename "$f")"
    done
done
grep -q 'access: .* status=202 duration_ms=[0-9.]* key=ingest-w$' "$IT_DIR/api.log" ||
    it_fail "the access log names the key that wrote"
grep -q 'key="ingest-w"' "$IT_DIR/metrics.txt" || it_fail "the metrics name the key"

# ---- eie-admin keys at once take turns: no change is lost.
for i in 1 2 3 4 5 6; do admin create --name "par-$i" >/dev/null & done
wait
it_expect_eq 6 "$(admin list | grep -c '^par-')" "six keys create at once: all six kept"
for i in 1 2 3 4 5 6; do admin revoke --name "par-$i" & done
wait
it_expect_eq 0 "$(admin list | grep -c '^par-')" "six keys revoke at once: all six gone"
it_finish
