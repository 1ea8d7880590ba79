#!/usr/bin/env bash
# Builds (with sanitizers by default) and runs all tests through ctest, with
# a private Kafka + PostgreSQL stack for the integration tests, then the fuzz
# harnesses (built with clang in build-fuzz/, each run EIE_FUZZ_SECONDS, 20).
#
#   tests/run.sh [--unit] [--no-sanitize] [--no-fuzz] [-R REGEX] [-j N] [-- CTEST_ARGS...]
#
#   --unit         only `ctest -L unit` and the fuzz harnesses; starts no services
#   --no-sanitize  build and test build/ instead of build-asan/
#   --no-fuzz      neither build nor run the fuzz harnesses
#   -R REGEX       passed to ctest (fuzz tests are named fuzz.fuzz_<what>)
#   -j N           ctest parallelism (integration tests share one stack)
#   EIE_KEEP_TEST_DIR=1 keeps the stack's temp dir (logs, data) for debugging.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

usage() { sed -n '6,14s/^# \{0,1\}//p' "$0"; }

unit_only=0
sanitize=1
fuzz=1
ctest_args=()
while (($# > 0)); do
  case $1 in
    --unit) unit_only=1 ;;
    --no-sanitize) sanitize=0 ;;
    --no-fuzz) fuzz=0 ;;
    -R | -j)
      (($# >= 2)) || { echo "error: $1 needs a value" >&2; exit 2; }
      ctest_args+=("$1" "$2")
      shift
      ;;
    --) shift; ctest_args+=("$@"); break ;;
    -h | --help) usage; exit 0 ;;
    *) echo "error: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source-path=SCRIPTDIR/.. source=tests/lib/stack.sh
source "$ROOT/tests/lib/stack.sh"

eie_pkg_install
if ((!unit_only)); then
  kafka_fetch
  # Swagger UI's files for the API's /docs; eie-api reads EIE_SWAGGER_UI_DIR.
  EIE_SWAGGER_UI_DIR=$(eie_pkg_fetch_swagger_ui)
  export EIE_SWAGGER_UI_DIR
fi

if ((sanitize)); then
  build_dir=build-asan
  eie_build "$build_dir" -DCMAKE_BUILD_TYPE=Debug -DEIE_SANITIZE=ON
else
  build_dir=build
  eie_build "$build_dir"
fi
if ((fuzz)); then
  # libFuzzer comes with clang; the harnesses carry ASan and UBSan themselves.
  CC=clang eie_build build-fuzz -DEIE_FUZZ=ON
fi

export EIE_BIN=$ROOT/$build_dir/bin
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if [[ -f $ROOT/tests/lsan.supp ]]; then
  export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp
fi

main_args=("${ctest_args[@]}")
if ((unit_only)); then
  main_args=(-L unit "${main_args[@]}")
else
  # INT/TERM exit through EXIT, so the stack is stopped exactly once.
  trap stack_down EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  stack_up
fi

# The tests live in two build dirs; -R may select tests of one only, so it
# is an error only when neither has a test to run.
rc=0
total=0
run_suite() {
  local dir=$1 n
  shift
  n=$(ctest --test-dir "$dir" -N "$@" | sed -n 's/^Total Tests: //p')
  ((${n:-0} > 0)) || return 0
  total=$((total + n))
  ctest --test-dir "$dir" --output-on-failure "$@" || rc=$?
}
run_suite "$ROOT/$build_dir" "${main_args[@]}"
if ((fuzz)); then
  run_suite "$ROOT/build-fuzz" -L fuzz "${ctest_args[@]}"
fi
if ((total == 0)); then
  echo "error: no tests match" >&2
  rc=8
fi
echo "tests/run.sh: ctest exit $rc, elapsed ${SECONDS}s"
exit "$rc"
