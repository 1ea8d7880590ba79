#!/usr/bin/env bash
# A database outage longer than the backoff's cap: the consumer retries its
# batch after 100 ms, then twice as long each time up to 10 s, and from then
# on every 10 s (the times of its log lines, not only the waits it announces),
# and when the server is back it stores the batch. On a PostgreSQL server of
# its own, since it stops it.
source "$(dirname "$0")/lib.sh"
it_own_postgres
it_setup 1

reading() { # MINUTES_AGO
    echo "{\"vehicleId\":\"V1\",\"soc\":$1,\"kwhDeliveredDc\":0.5,\"batteryTemp\":30,\"timestamp\":\"$(date -u -d "-$1 min" +%Y-%m-%dT%H:%M:00Z)\"}"
}
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50
reading 3 | "$EIE_BIN/eie-produce" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed"
it_wait_for "the first reading" 60 it_sql_equals 1 "SELECT count(*) FROM vehicle_history"

it_own_pg_stop || it_fail "cannot stop PostgreSQL"
it_log "PostgreSQL stopped"
reading 2 | "$EIE_BIN/eie-produce" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed during the outage"
# Retries at about 0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3, 12.7, 22.7 and 32.7 s:
# two waits at the cap.
retries() { grep -c "failed (attempt" "$IT_DIR/cold.log" || true; }
# Not it_wait_for: a backoff that grows too far fails below, with the waits.
for ((i = 0; i < 200 && $(retries) < 10; i++)); do sleep 0.2; done
it_own_pg_start || it_fail "cannot start PostgreSQL again"
it_log "PostgreSQL started again after $(retries) failed attempts"
it_wait_for "the batch to be stored after the outage" 30 it_sql_equals 2 "SELECT count(*) FROM vehicle_history"
grep -q "batch written after" "$IT_DIR/cold.log" || it_fail "the consumer did not log its recovery"

# Each wait announced is twice the one before, capped at 10 s, and the next
# attempt came that long after (within 1 s: an attempt itself takes a moment).
python3 - "$IT_DIR/cold.log" >"$IT_DIR/backoff.txt" <<'PY' || it_fail "backoff: $(cat "$IT_DIR/backoff.txt")"
import datetime, re, sys
attempts = []
for line in open(sys.argv[1]):
    m = re.match(r"(\S+)Z .* failed \(attempt (\d+), retrying in (\d+) ms\)", line)
    if m:
        t = datetime.datetime.fromisoformat(m.group(1)).timestamp()
        attempts.append((t, int(m.group(3))))
problems = []
for i, (t, wait_ms) in enumerate(attempts):
    expected = min(100 * 2 ** i, 10000)
    if wait_ms != expected:
        problems.append(f"attempt {i + 1} announced {wait_ms} ms, expected {expected}")
    if i + 1 < len(attempts):
        gap = attempts[i + 1][0] - t
        if not wait_ms / 1000 - 0.05 <= gap <= wait_ms / 1000 + 1.0:
            problems.append(f"attempt {i + 2} came {gap:.2f} s after attempt {i + 1}, which announced {wait_ms} ms")
gaps = [b[0] - a[0] for a, b in zip(attempts, attempts[1:])]
print("gaps (s): " + " ".join(f"{g:.2f}" for g in gaps))
if sum(1 for g in gaps if g >= 9.9) < 2:
    problems.append("fewer than two waits at the 10 s cap")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY
it_log "$(head -n 1 "$IT_DIR/backoff.txt")"
it_stop cold
it_finish
