#!/usr/bin/env bash
# The API under a connection flood: 1,000 connections from 127.0.0.1 that
# trickle a request head a byte at a time and 1,000 that send nothing must not
# keep a client on 127.0.0.2 from being served within its normal latency, and
# the server must shed the flood within the request head deadline. Bounded:
# the flood client gives up on its own (tests/integration/http_flood.py). In
# both of the API's threading modes.
source "$(dirname "$0")/lib.sh"
it_setup 1

ulimit -n 16384 # the flood client's own 2,000 sockets
head_timeout_ms=3000
# flood MODE [EIE-API OPTIONS...]: the whole check against one server
flood() {
    local mode=$1 port shed
    shift
    port=$(it_free_port)
    it_start "api_$mode" "$EIE_BIN/eie-api" --port "$port" --header-timeout-ms "$head_timeout_ms" "$@"
    it_wait_for "the API ($mode)" 30 curl -fsS "http://127.0.0.1:$port/healthz"

    timeout 120 python3 "$EIE_SOURCE_DIR/tests/integration/http_flood.py" --port "$port" \
        --trickling 1000 --silent 1000 --requests 200 --hold 20 >"$IT_DIR/flood.$mode.json" ||
        it_fail "$mode: the flood client failed or ran out of time"
    it_log "$mode: figures: $(cat "$IT_DIR/flood.$mode.json")"
    jq -e '.during.served == .during.requests and .baseline.served == .baseline.requests' \
        "$IT_DIR/flood.$mode.json" >/dev/null || it_fail "$mode: not every request was served during the flood"
    # p99 during the flood at most 5 times the baseline's, or 50 ms
    jq -e '.during.p99_ms <= ([5 * .baseline.p99_ms, 50] | max)' "$IT_DIR/flood.$mode.json" >/dev/null ||
        it_fail "$mode: p99 during the flood is over max(5 x baseline, 50 ms)"
    # Every flood connection closed by the server, the last within the deadline
    # (plus one second: the server checks heads every 250 ms at most, and the
    # client notices the close on its next read).
    jq -e ".flood.closed_by_server == .flood.connections and .flood.last_closed_s <= $head_timeout_ms / 1000 + 1" \
        "$IT_DIR/flood.$mode.json" >/dev/null || it_fail "$mode: the flood was not shed within the head deadline"
    shed=$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^eie_api_connections_shed_total/ { print $2 }')
    [[ ${shed:-0} -gt 0 ]] || it_fail "$mode: eie_api_connections_shed_total is ${shed:-missing}"
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || it_fail "$mode: the API does not answer after the flood"
    it_stop "api_$mode"
}
# A thread per connection (the default), and a pool of threads over epoll.
flood per_connection
flood pool --http-threads 2
it_finish
