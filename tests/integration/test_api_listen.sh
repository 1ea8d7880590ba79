#!/usr/bin/env bash
# Where the API listens, and its access log:
# - HOST (and --host, which beats it) is the listen address: on 127.0.0.2 the
#   API answers there and 127.0.0.1 is refused;
# - by default one access line per request, all written by the time it exits;
#   --access-log off (or EIE_ACCESS_LOG=off) writes none.
source "$(dirname "$0")/lib.sh"
it_setup 1

# serve NAME CMD...: starts eie-api (CMD) as NAME on $port, waiting for its
# "listening" line rather than polling it (a poll is a request, and logged).
serve() {
    local name=$1
    shift
    it_start "$name" "$@"
    it_wait_for "$name listening" 30 grep -q "listening on" "$IT_DIR/$name.log"
}
requests() { # ADDRESS: 5 requests, each answered
    local a=$1 path
    for path in /healthz /readyz /v1/fleet/summary /v1/vehicles/NOPE /openapi.json; do
        curl -sS -o /dev/null -w '%{http_code}\n' "http://$a:$port$path" >>"$IT_DIR/codes.txt" ||
            it_fail "GET $a:$port$path: no answer"
    done
}
access_lines() { grep -c " access: " "$IT_DIR/$1.log" || true; }
refused() { # ADDRESS: connecting to ADDRESS:$port is refused (curl exit 7)
    local rc=0
    curl -sS -o /dev/null --max-time 5 "http://$1:$port/healthz" 2>>"$IT_DIR/curl.log" || rc=$?
    it_expect_eq 7 "$rc" "$1:$port refused (curl exit status)"
}

# ---- HOST from the environment.
port=$(it_free_port)
serve env-host env HOST=127.0.0.2 "$EIE_BIN/eie-api" --port "$port"
it_expect_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.2:$port/healthz")" "HOST=127.0.0.2: answered on 127.0.0.2"
refused 127.0.0.1
grep -q "listening on http://127.0.0.2:$port" "$IT_DIR/env-host.log" || it_fail "the log does not name 127.0.0.2"
it_stop env-host

# ---- --host beats HOST.
port=$(it_free_port)
serve flag-host env HOST=127.0.0.1 "$EIE_BIN/eie-api" --port "$port" --host 127.0.0.2
it_expect_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.2:$port/healthz")" "--host 127.0.0.2 over HOST=127.0.0.1"
refused 127.0.0.1
it_stop flag-host

# ---- Access log on by default: one line per request, with its route and status.
: >"$IT_DIR/codes.txt"
port=$(it_free_port)
serve log-on "$EIE_BIN/eie-api" --port "$port"
requests 127.0.0.1
it_stop log-on
it_expect_eq 5 "$(access_lines log-on)" "default: one access line per request"
it_expect_eq "200 200 200 404 200" "$(paste -sd' ' "$IT_DIR/codes.txt")" "the requests' statuses"
grep -q " access: address=127.0.0.1 method=GET route=/v1/fleet/summary status=200 duration_ms=" "$IT_DIR/log-on.log" ||
    it_fail "no access line for /v1/fleet/summary"

# ---- --access-log off, and EIE_ACCESS_LOG=off: none.
port=$(it_free_port)
serve log-off "$EIE_BIN/eie-api" --port "$port" --access-log off
requests 127.0.0.1
sleep 0.5 # past the 200 ms the lines may wait to be written
it_stop log-off
it_expect_eq 0 "$(access_lines log-off)" "--access-log off: no access line"
port=$(it_free_port)
serve log-off-env env EIE_ACCESS_LOG=off "$EIE_BIN/eie-api" --port "$port"
requests 127.0.0.1
sleep 0.5
it_stop log-off-env
it_expect_eq 0 "$(access_lines log-off-env)" "EIE_ACCESS_LOG=off: no access line"
it_finish
