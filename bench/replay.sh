#!/usr/bin/env bash
# Benchmark of eie-replay: rebuilds both stores from the topics of a day of a
# 10,000-vehicle fleet (28.8 million readings and the assignments; the data of
# bench/fleet_day.sh, shared with bench/api.sh and loaded once).
#
#   bench/replay.sh
#
# Times one full rebuild, as an operator runs it: every record read into fresh
# tables, the catch-up rounds, the keys, the hot state, the summaries, VACUUM
# (ANALYZE) of the rebuilt tables and the switch. Checks the rebuilt history holds one row per device
# and minute, prints the phases' times from eie-replay's log
#   replay phases: reading S s (N rows, R rows/s), catch-up S s, ...
# and the CPU use of the machine and of each process over the reading phase,
# and ends with
#   replay: records=N seconds=S rows_per_s=R reading_records_per_s=P
#           copy_rows_per_s=C ratio=P/C
# where N counts the records on the topics, R is N / S, and P is N over the
# reading phase.
#
# Settings (environment): those of the data (bench/fleet_day.sh), and
#   EIE_BENCH_REPLAY_ARGS       extra eie-replay flags (e.g. "--batch-size 50000")
#   EIE_BENCH_REPLAY_BIN        another eie-replay to time on the same data (an
#                               older build, for a before-and-after comparison)
#   EIE_BENCH_COPY=0            skip the COPY baseline (binary COPY of the
#                               rebuilt history into tables without keys, after
#                               the rebuild; then the last line has no ratio)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

vehicles=${EIE_BENCH_VEHICLES:-10000}
hours=${EIE_BENCH_HOURS:-24}
for setting in vehicles hours; do
  [[ ${!setting} =~ ^[1-9][0-9]*$ ]] || bench_usage "bench/replay.sh: $setting must be a positive integer, not '${!setting}'"
done
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/fleet_day.sh"

records=$(end_offsets "${EIE_TOPIC_PREFIX}meter-readings" "${EIE_TOPIC_PREFIX}vehicle-readings" \
  "${EIE_TOPIC_PREFIX}vehicle-assignments")
echo "replay: rebuilding both stores from $records records"
read -ra extra <<<"${EIE_BENCH_REPLAY_ARGS:-}"
t0=$(bench_now)
# --restart: a rebuild left by an interrupted run would be resumed, not timed.
: >"$LOG_DIR/replay.log"
"${EIE_BENCH_REPLAY_BIN:-$BIN/eie-replay}" --restart "${extra[@]}" >"$LOG_DIR/replay.out" 2> >(tee "$LOG_DIR/replay.log" >&2) &
replay_pid=$!
# The CPU use over the reading phase: from the start until eie-replay logs the
# rows the rebuild's groups stored ("rebuild: N rows stored in S s").
BENCH_PG_DIR=$API_DIR/pg BENCH_DIR=$RUN_DIR bench_cpu_begin replay="$replay_pid" kafka="$(cat "$API_DIR/kafka/kafka.pid")"
reading_cpu=""
while kill -0 "$replay_pid" 2>/dev/null; do
  if grep -q " rebuild: [0-9]* rows stored" "$LOG_DIR/replay.log"; then
    reading_cpu=$(BENCH_PG_DIR=$API_DIR/pg BENCH_DIR=$RUN_DIR bench_cpu_end "replay postgres kafka")
    break
  fi
  sleep 0.2
done
wait "$replay_pid" || {
  eie_show_tail "$LOG_DIR/replay.log"
  eie_die "eie-replay failed (log: $LOG_DIR/replay.log)"
  exit 1
}
t1=$(bench_now)
history_counts_ok replay || exit 1
cat "$LOG_DIR/replay.out"
# Where the time went, from eie-replay's log: reading (the readings into the
# history without keys, the assignments into the hot store), the catch-up
# rounds, the history's primary keys, the hot state taken from the history,
# the hourly summaries, VACUUM, the switch.
phases=$(awk '
  $4 == "rebuild:" && $6 == "rows" && $7 == "stored" { rows = $5; reading = $9 }
  $4 == "catch-up:" && $7 == "stored" { catchup += $9 }
  $4 == "primary" && $5 == "keys" && $6 == "built" { keys = $8 }
  $4 == "hourly" && $5 == "summaries" && $6 == "built" { summaries = $8 }
  $4 == "hot" && $5 == "state" && $6 == "taken" { hot = $11 }
  $4 == "vacuumed" { vacuum = $6 }
  $4 == "switched" { switched = $6 / 1000 }
  END {
    if (reading == "" || reading == 0) exit 1
    printf "replay phases: reading %.1f s (%d rows, %.0f rows/s), catch-up %.1f s, primary keys %.1f s, hot state %.1f s, hourly summaries %.1f s, vacuum %.1f s, switch %.1f s\n",
      reading, rows, rows / reading, catchup, keys, hot, summaries, vacuum, switched
  }' "$LOG_DIR/replay.log") && echo "$phases" ||
  eie_warn "replay: no phases in $LOG_DIR/replay.log (an eie-replay that does not log them)"
[[ -n $reading_cpu ]] && echo "replay reading phase: $reading_cpu"
seconds=$(echo "$t1 - $t0" | bc)

# The same run's limit: binary COPY of the rebuilt history's rows into tables
# without their primary keys, as the reading phase loads them (the keys are
# the next phase), against the reading phase's records per second.
copy_line=""
if [[ ${EIE_BENCH_COPY:-1} == 1 ]]; then
  read -r lo hi rows < <(bench_psql -F ' ' -c "SELECT (min(lo) AT TIME ZONE 'UTC')::date, (max(hi) AT TIME ZONE 'UTC')::date, sum(n) FROM (
      SELECT min(ts) lo, max(ts) hi, count(*) n FROM meter_history
      UNION ALL SELECT min(ts), max(ts), count(*) FROM vehicle_history) s")
  bench_copy_export "$LOG_DIR" binary
  s=$(BENCH_PG_DIR=$API_DIR/pg BENCH_DIR=$RUN_DIR bench_copy_history "$LOG_DIR" binary nokeys "$lo" "$hi" "$rows")
  rm -f "$LOG_DIR/meter.binary" "$LOG_DIR/vehicle.binary"
  copy_rate=$(echo "$rows / $s" | bc)
  echo "copy (binary, no keys): $rows rows in $s s = $copy_rate rows/s; $(cat "$LOG_DIR/copy.binary.cpu")"
  reading_s=$(sed -n 's/^replay phases: reading \([0-9.]*\) s .*/\1/p' <<<"${phases:-}")
  if [[ -n $reading_s ]]; then
    reading_rate=$(echo "$records / $reading_s" | bc)
    copy_line=$(printf ' reading_records_per_s=%s copy_rows_per_s=%s ratio=%.2f' "$reading_rate" "$copy_rate" \
      "$(echo "$reading_rate / $copy_rate" | bc -l)")
  fi
fi
printf 'replay: records=%d seconds=%.1f rows_per_s=%.0f%s\n' "$records" "$seconds" "$(echo "$records / $seconds" | bc -l)" "$copy_line"
