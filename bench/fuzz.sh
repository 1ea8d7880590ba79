#!/usr/bin/env bash
# Runs every fuzz harness (tests/fuzz) longer than tests/run.sh does, one after
# the other, each from its checked-in seeds (only read; new inputs and any
# crashing input go to build-fuzz/tests/fuzz/work/NAME/, git-ignored).
#
#   bench/fuzz.sh [SECONDS]   per harness (default 300)
#   EIE_FUZZ_HARNESSES="fuzz_codec fuzz_router"  runs only those
#
# Prints per harness
#   fuzz: harness=NAME seconds=S execs_per_s=N coverage=EDGES features=F crashes=C
# (coverage: libFuzzer's "cov", the instrumented edges reached) and ends with
#   fuzz: harnesses=N seconds=S failed=F crashes=C
# exiting non-zero when any harness crashed, leaked or had a sanitizer report.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

seconds=${1:-300}
[[ $seconds =~ ^[1-9][0-9]*$ ]] || bench_usage "SECONDS must be a positive whole number: $seconds"

eie_pkg_install
CC=clang eie_build build-fuzz -DEIE_FUZZ=ON >/dev/null
bin=$EIE_REPO_ROOT/build-fuzz/bin
work=$EIE_REPO_ROOT/build-fuzz/tests/fuzz/work

harnesses=${EIE_FUZZ_HARNESSES:-$(cd "$bin" && ls fuzz_* | tr '\n' ' ')}
n=0 failed=0 crashes=0
for name in $harnesses; do
  n=$((n + 1))
  line=$(bash "$EIE_REPO_ROOT/tests/fuzz/run_harness.sh" "$bin/$name" "$work/$name" "$seconds") ||
    failed=$((failed + 1))
  echo "$line"
  c=$(sed -n 's/.* crashes=\([0-9]*\).*/\1/p' <<<"$line")
  crashes=$((crashes + ${c:-0}))
done
echo "fuzz: harnesses=$n seconds=$seconds failed=$failed crashes=$crashes"
((failed == 0))
