#!/usr/bin/env bash
# Benchmark of the two sinks against PostgreSQL's own limit.
#
#   bench/ingest.sh [N]     N readings in all (default 2,000,000), half meter,
#                           half vehicle, from 10,000 devices per stream
#   EIE_SIM_CHARGERS_PER_METER=N  the simulator's depot: banks of N chargers per
#                           meter (10,000 / N meters, so fewer meter readings;
#                           about N readings in all still); default 1
#   EIE_BENCH_RUNS=R        measure each figure R times (default 2) and keep the
#                           best, since one run on a shared 2-core machine varies
#                           by several percent
#
# Preloads the readings into Kafka with the simulator's backfill, then measures,
# each from its partition assignment to its last offset stored: the cold
# consumer draining them into the history, the hot consumer draining them into
# the latest state; and a plain COPY of the same rows (exported from the
# history) into tables with the same layout and indexes, in text and in binary
# format. Ends with
#   ingest: cold_rows_per_s=N hot_rows_per_s=N copy_rows_per_s=N ratio=R
# (R = cold / binary copy, the stricter limit) and each consumer's peak RSS.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

total=${1:-2000000}
devices=${EIE_BENCH_DEVICES:-10000}
runs=${EIE_BENCH_RUNS:-2}
bench_depot "$devices"
intervals=$((total / (devices + meters)))
total=$((intervals * (devices + meters)))
bench_setup

# --- preload ---------------------------------------------------------------
from=$(date -u -d "-$((intervals + 5)) min" +%Y-%m-%dT%H:%M:00Z)
to=$(date -u -d "@$(( $(date -d "$from" +%s) + intervals * 60 ))" +%Y-%m-%dT%H:%M:%SZ)
t0=$(bench_now)
"$BIN/eie-simulate" --vehicles "$devices" --chargers-per-meter "$chargers_per_meter" --from "$from" --to "$to" \
  --reassign-rate 0 2>"$BENCH_DIR/preload.log"
t1=$(bench_now)
echo "preload: $total readings ($devices vehicles, $meters meters) + $devices assignments into Kafka in $(echo "$t1 - $t0" | bc) s"

# --- one consumer draining the topics ----------------------------------------
# drain STORE RUN EXPECTED_OFFSETS: into emptied tables, with a fresh group that
# reads everything from the start; prints "seconds peak_rss_mb"
drain() {
  local store=$1 run=$2 expected=$3 log="$BENCH_DIR/$1.$2.log"
  if [[ $store == cold ]]; then
    bench_psql -c "TRUNCATE meter_history, vehicle_history" -c CHECKPOINT
  else
    bench_psql -c "TRUNCATE meter_state, vehicle_state, vehicle_meter_assignment" -c CHECKPOINT
  fi
  "$BIN/eie-consumer" --store "$store" --group "bench.$store.$run" --no-migrate 2>"$log" &
  local pid=$!
  until grep -q "assigned" "$log"; do sleep 0.05; done
  local start
  start=$(bench_now)
  until [[ $(bench_psql -c "SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = 'bench.$store.$run'") -ge $expected ]]; do
    sleep 0.1
  done
  local end rss
  end=$(bench_now)
  rss=$(bench_peak_rss_mb "$pid")
  kill -TERM "$pid"
  wait "$pid"
  echo "$(echo "$end - $start" | bc) $rss"
}

# best RATE_VAR SECONDS: keeps the higher rate
cold_rate=0 hot_rate=0 cold_rss=0 hot_rss=0
for ((run = 1; run <= runs; run++)); do
  read -r s rss < <(drain cold "$run" "$total")
  rate=$(echo "$total / $s" | bc)
  echo "cold run $run: $total rows in $s s = $rate rows/s, peak RSS $rss MB"
  ((rate > cold_rate)) && cold_rate=$rate
  [[ $(echo "$rss > $cold_rss" | bc) == 1 ]] && cold_rss=$rss
  read -r s rss < <(drain hot "$run" $((total + devices)))
  rate=$(echo "($total + $devices) / $s" | bc)
  echo "hot run $run: $((total + devices)) records in $s s = $rate rows/s, peak RSS $rss MB"
  ((rate > hot_rate)) && hot_rate=$rate
  [[ $(echo "$rss > $hot_rss" | bc) == 1 ]] && hot_rss=$rss
done

# --- the limit: plain COPY of the same rows ----------------------------------
# Exported from the history, loaded with one COPY per stream into fresh tables
# of the same layout and indexes, in text (what psql users run) and in binary
# (what the consumers send, the stricter limit).
copy_limit() { # FORMAT: prints seconds
  local fmt=$1 opt=""
  [[ $fmt == binary ]] && opt="WITH (FORMAT binary)"
  bench_psql <<SQL >/dev/null
SET client_min_messages = warning;
DROP TABLE IF EXISTS copy_meter_history, copy_vehicle_history;
CREATE TABLE copy_meter_history (LIKE meter_history INCLUDING ALL) PARTITION BY RANGE (ts);
CREATE TABLE copy_vehicle_history (LIKE vehicle_history INCLUDING ALL) PARTITION BY RANGE (ts);
SELECT eie_ensure_day_partition('copy_meter_history', d::date), eie_ensure_day_partition('copy_vehicle_history', d::date)
FROM generate_series(date '$(date -u -d "$from" +%F)', date '$(date -u -d "$to" +%F)', interval '1 day') AS d;
CHECKPOINT;
SQL
  local t0 t1
  t0=$(bench_now)
  bench_psql -c "\\copy copy_meter_history FROM '$BENCH_DIR/meter.$fmt' $opt" \
    -c "\\copy copy_vehicle_history FROM '$BENCH_DIR/vehicle.$fmt' $opt"
  t1=$(bench_now)
  echo "$t1 - $t0" | bc
}
for fmt in text binary; do
  opt=""
  [[ $fmt == binary ]] && opt="WITH (FORMAT binary)"
  bench_psql -c "\\copy (SELECT * FROM meter_history) TO '$BENCH_DIR/meter.$fmt' $opt" \
    -c "\\copy (SELECT * FROM vehicle_history) TO '$BENCH_DIR/vehicle.$fmt' $opt"
done
copy_rate=0 copy_text_rate=0
for ((run = 1; run <= runs; run++)); do
  s=$(copy_limit text)
  rate=$(echo "$total / $s" | bc)
  echo "copy (text) run $run: $total rows in $s s = $rate rows/s"
  ((rate > copy_text_rate)) && copy_text_rate=$rate
  s=$(copy_limit binary)
  rate=$(echo "$total / $s" | bc)
  echo "copy (binary) run $run: $total rows in $s s = $rate rows/s"
  ((rate > copy_rate)) && copy_rate=$rate
done

ratio=$(echo "scale=4; $cold_rate / $copy_rate" | bc)
ratio_text=$(echo "scale=4; $cold_rate / $copy_text_rate" | bc)
printf 'best of %d runs; cold/copy: %.2f against binary COPY, %.2f against text COPY\n' "$runs" "$ratio" "$ratio_text"
printf 'ingest: cold_rows_per_s=%s hot_rows_per_s=%s copy_rows_per_s=%s ratio=%.2f cold_peak_rss_mb=%s hot_peak_rss_mb=%s\n' \
  "$cold_rate" "$hot_rate" "$copy_rate" "$ratio" "$cold_rss" "$hot_rss"
