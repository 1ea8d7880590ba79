#!/usr/bin/env bash
# The Prometheus alert rules of deploy/prometheus/: they parse
# (`promtool check rules`), the scrape configuration that loads them parses
# (`promtool check config`), and each alert fires on the input series of
# alerts_test.yml and stays quiet on the healthy ones (`promtool test rules`).
# Also fails when an alert that operators rely on is removed or renamed, when
# an alert has no unit test, or when a metric it reads is no longer exported. No services: labelled unit.
set -euo pipefail

root=${EIE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
dir=$root/deploy/prometheus
# Debian's prometheus package ships promtool (tests/run.sh installs it).
command -v promtool >/dev/null || { echo "FAIL: promtool not found (apt-get install prometheus)" >&2; exit 1; }

fail=0
promtool check rules "$dir/alerts.yml" || fail=1
promtool check config "$dir/prometheus.yml" || fail=1
# promtool resolves rule_files relative to the test file.
promtool test rules "$dir/alerts_test.yml" || fail=1

# What issue 11 asks to be watched: consumer stalled, lag growing, dead letters
# per minute, API 5xx and p99.
required=(EieConsumerStalled EieConsumerBatchFailing EieConsumerLagGrowing EieDeadLettersHigh EieApi5xx EieApiLatencyHigh)
mapfile -t defined < <(sed -nE 's/^ *- alert: *([A-Za-z0-9_]+) *$/\1/p' "$dir/alerts.yml")
for name in "${required[@]}"; do
    [[ " ${defined[*]} " == *" $name "* ]] || { echo "FAIL: alerts.yml has no alert $name" >&2; fail=1; }
done
for name in "${defined[@]}"; do
    # An alert must be asserted to fire (a test with a non-empty exp_alerts).
    grep -qE "^ *- alertname: $name *$" "$dir/alerts_test.yml" ||
        { echo "FAIL: alert $name has no firing test in alerts_test.yml" >&2; fail=1; }
done
# Every metric the rules read must still be exported under that name: a
# rename in the C code would leave an alert that never fires.
root_src=("$root/api" "$root/consumers" "$root/lib")
mapfile -t used < <(grep -oE '\beie_[a-z_]+' "$dir/alerts.yml" | sed -E 's/_(bucket|sum|count)$//' | sort -u)
for metric in "${used[@]}"; do
    grep -rqF "\"$metric\"" "${root_src[@]}" ||
        { echo "FAIL: alerts.yml reads $metric, which no program exports" >&2; fail=1; }
done
if ((fail)); then
    echo "test_alert_rules: FAILED" >&2
    exit 1
fi
echo "test_alert_rules: ${#defined[@]} alerts checked and tested"
