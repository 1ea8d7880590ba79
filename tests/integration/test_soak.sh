#!/usr/bin/env bash
# The short soak: bench/soak.sh with 10 SIGKILLs per consumer, one PostgreSQL
# and one broker restart, every simulator fault and the bad records, on a
# stack of its own (it restarts services, so it must not use the suite's).
# Nothing lost or stored twice, the stores identical to a clean replay's, and
# every bad record dead-lettered exactly once by each group. EIE_SOAK_SEED replays a
# failing run (the seed is the first line of soak.log); EIE_SOAK_OVERSIZED=0
# leaves out the 1 MB record (a consumer that cannot dead-letter it stalls, and
# the test then fails on the catch-up).
source "$(dirname "$0")/lib.sh"

status=0
EIE_SOAK_CATCH_UP_S=${EIE_SOAK_CATCH_UP_S:-240} timeout 540 \
    bash "$EIE_SOURCE_DIR/bench/soak.sh" --seconds "${EIE_SOAK_TEST_SECONDS:-75}" --kills 10 \
    --pg-restarts 1 --kafka-restarts 1 --vehicles 50 >"$IT_DIR/soak.log" 2>&1 || status=$?
grep -E '^soak: seed=|^\[soak' "$IT_DIR/soak.log" >&2 || true
line=$(grep -E '^soak: kills=' "$IT_DIR/soak.log" || true)
[[ -n $line ]] || { it_fail "no summary line (exit $status): $(grep -A3 'FAIL' "$IT_DIR/soak.log" | head -n 20)"; it_finish; }
it_log "$line"
it_expect_eq 0 "$status" "bench/soak.sh exit status"
field() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<" $line"; }
it_expect_eq 20 "$(field kills)" "10 SIGKILLs per consumer"
it_expect_eq 2 "$(field restarts)" "one PostgreSQL and one broker restart"
it_expect_eq 0 "$(field lost)" "no reading lost"
it_expect_eq 0 "$(field duplicated)" "no reading stored twice"
it_expect_eq 0 "$(field differences)" "eie-admin verify against the clean replay: 0 differences"
it_expect_eq 0 "$(field unplanned_exits)" "no consumer exited unless killed"
it_expect_eq 0 "$(field missing_dead_letters)" "every bad record dead-lettered by each group"
bad=$(field bad_records)
[[ $bad =~ ^[0-9]+$ && $bad -gt 0 ]] || it_fail "no bad records were produced ($bad)"
it_expect_eq $((2 * bad)) "$(field dead_letters)" "each group dead-lettered each bad record (distinct)"
[[ $(field records) -gt 10000 ]] || it_fail "too few records for a soak: $(field records)"
it_expect_eq 0 "$(field dead_letter_repeats)" "no bad record dead-lettered twice by a group"
((status == 0)) || it_log "last lines: $(tail -n 40 "$IT_DIR/soak.log")"
it_finish
