#!/usr/bin/env bash
# Runs one libFuzzer harness for a while from its checked-in seeds and prints
# one line of figures; exits non-zero on any crash, leak, timeout or sanitizer
# report (libFuzzer stops at the first and keeps the input under WORK_DIR).
#
#   tests/fuzz/run_harness.sh HARNESS WORK_DIR [SECONDS]
#
#   SECONDS  default EIE_FUZZ_SECONDS, else 20
#
# The seeds in tests/fuzz/corpus/NAME/ are only read: libFuzzer writes the
# inputs it finds to the first corpus dir it is given, WORK_DIR/corpus, which
# starts empty each run so the figures always start from the seeds. A
# dictionary tests/fuzz/NAME.dict is used when there is one.
# Prints
#   fuzz: harness=NAME seconds=S execs_per_s=N coverage=EDGES features=F crashes=C
set -uo pipefail

harness=${1:?usage: run_harness.sh HARNESS WORK_DIR [SECONDS]}
work=${2:?usage: run_harness.sh HARNESS WORK_DIR [SECONDS]}
seconds=${3:-${EIE_FUZZ_SECONDS:-20}}
name=$(basename "$harness")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
seeds=$here/corpus/$name

[[ -x $harness ]] || { echo "error: no harness $harness (build with -DEIE_FUZZ=ON)" >&2; exit 2; }
[[ -d $seeds ]] || { echo "error: no seeds in $seeds" >&2; exit 2; }
[[ $seconds =~ ^[0-9]+$ ]] || { echo "error: seconds must be a whole number: $seconds" >&2; exit 2; }

rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts" || exit 2
args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
  -max_len=4096 -artifact_prefix="$work/artifacts/")
[[ -f $here/$name.dict ]] && args+=(-dict="$here/$name.dict")

# Sanitizers: stop at the first report, with a stack; leaks count as failures.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

rc=0
"$harness" "${args[@]}" "$work/corpus" "$seeds" >"$work/fuzz.log" 2>&1 || rc=$?

# Figures from libFuzzer's final stats and its last status line
# ("#N DONE cov: E ft: F corp: ..."); a stopped run has no DONE line.
stat() { sed -n "s/^stat::$1: *//p" "$work/fuzz.log" | tail -n 1; }
status_line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$work/fuzz.log" | tail -n 1)
field() { sed -n "s/.* $1: \([0-9]*\).*/\1/p" <<<"$status_line"; }
crashes=$(find "$work/artifacts" -type f | wc -l)
echo "fuzz: harness=$name seconds=$seconds execs_per_s=$(stat average_exec_per_sec)" \
  "coverage=$(field cov) features=$(field ft) crashes=$crashes"

if ((rc != 0 || crashes > 0)); then
  echo "--- $name failed (exit $rc); the report: ---" >&2
  grep -v -E '^#[0-9]+[[:space:]]' "$work/fuzz.log" | tail -n 60 >&2
  find "$work/artifacts" -type f -printf 'kept input: %p\n' >&2
  exit 1
fi
