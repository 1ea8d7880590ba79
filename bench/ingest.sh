#!/usr/bin/env bash
# Benchmark of the two sinks against PostgreSQL's own limit.
#
#   bench/ingest.sh [N]     N readings in all (default 2,000,000), half meter,
#                           half vehicle, from 10,000 devices per stream
#   EIE_SIM_CHARGERS_PER_METER=N  the simulator's depot: banks of N chargers per
#                           meter (10,000 / N meters, so fewer meter readings;
#                           about N readings in all still); default 1
#   EIE_BENCH_RUNS=R        measure each figure R times (default 3) and report
#                           the median, since one run on a shared 2-core machine
#                           varies by several percent
#   EIE_BENCH_BASELINE_BIN=DIR  also drain with the eie-consumer in DIR (e.g. a
#                           build of the previous commit), in the same runs,
#                           alternating with this build's
#   EIE_BENCH_PG_TMPFS=1    PostgreSQL's data directory on a tmpfs (/dev/shm), a
#                           stand-in for fast storage (fsync stays on)
#   EIE_BENCH_CONNECT=1     also Kafka Connect with the Debezium JDBC sink
#                           storing the same readings, in the same runs
#                           (bench/kafka_connect.sh, which lists its settings)
#   EIE_BENCH_KAFKA_SECURE=1  the broker in the secured profile (SASL_SSL with
#                           SCRAM-SHA-512 and ACLs; README, Kafka secured), the
#                           simulator and consumers each as its own user
#
# Preloads the readings into Kafka with the simulator's backfill, then measures,
# each from its partition assignment to its last offset stored: the cold
# consumer draining them into the history, the hot consumer draining them into
# the latest state; and a plain COPY of the same rows (exported from the
# history) into tables with the same layout and indexes, in text and in binary
# format. Each drain and COPY prints the CPU use of the machine (busy and idle
# share of all cores, other work on the machine included) and of each process
# (consumer, PostgreSQL, Kafka) over it. Ends with
#   ingest: cold_rows_per_s=N hot_rows_per_s=N copy_rows_per_s=N ratio=R
# (medians; R = cold / binary copy, the stricter limit) and each consumer's
# peak RSS, and the same line for the baseline's consumer when there is one.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

total=${1:-2000000}
devices=${EIE_BENCH_DEVICES:-10000}
runs=${EIE_BENCH_RUNS:-3}
bench_depot "$devices"
intervals=$((total / (devices + meters)))
total=$((intervals * (devices + meters)))
connect=${EIE_BENCH_CONNECT:-0}
[[ $connect == [01] ]] || bench_usage "EIE_BENCH_CONNECT must be 0 or 1, not '$connect'"
# shellcheck source-path=SCRIPTDIR
[[ $connect == 1 ]] && source "$(dirname "$0")/kafka_connect.sh"
bench_setup
[[ $connect == 1 ]] && connect_start

# --- preload ---------------------------------------------------------------
from=$(date -u -d "-$((intervals + 5)) min" +%Y-%m-%dT%H:%M:00Z)
to=$(date -u -d "@$(( $(date -d "$from" +%s) + intervals * 60 ))" +%Y-%m-%dT%H:%M:%SZ)
t0=$(bench_now)
bench_kafka_as eie-producer "$BIN/eie-simulate" --vehicles "$devices" --chargers-per-meter "$chargers_per_meter" --from "$from" --to "$to" \
  --reassign-rate 0 2>"$BENCH_DIR/preload.log"
t1=$(bench_now)
echo "preload: $total readings ($devices vehicles, $meters meters) + $devices assignments into Kafka in $(echo "$t1 - $t0" | bc) s"

# --- one consumer draining the topics ----------------------------------------
# drain STORE LABEL CONSUMER RUN EXPECTED_OFFSETS: into emptied tables, with a
# fresh group that reads everything from the start; prints "seconds
# peak_rss_mb", and the CPU use over the drain into $BENCH_DIR/STORE.LABEL.RUN.cpu
drain() {
  local store=$1 label=$2 consumer=$3 run=$4 expected=$5 log="$BENCH_DIR/$1.$2.$4.log"
  local group="bench.$store.$label.$run"
  if [[ $store == cold ]]; then
    bench_psql -c "TRUNCATE meter_history, vehicle_history" -c CHECKPOINT
  else
    bench_psql -c "TRUNCATE meter_state, vehicle_state, vehicle_meter_assignment" -c CHECKPOINT
  fi
  local vars=()
  mapfile -t vars < <(bench_kafka_env eie-consumer)
  # Through env, not a function: $! is then the consumer itself.
  env "${vars[@]}" "$consumer" --store "$store" --group "$group" --no-migrate 2>"$log" &
  local pid=$!
  until grep -q "assigned" "$log"; do sleep 0.05; done
  local start
  start=$(bench_now)
  bench_cpu_begin consumer="$pid"
  until [[ $(bench_psql -c "SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '$group'") -ge $expected ]]; do
    sleep 0.1
  done
  local end rss
  end=$(bench_now)
  bench_cpu_end consumer >"$BENCH_DIR/$store.$label.$run.cpu"
  rss=$(bench_peak_rss_mb "$pid")
  kill -TERM "$pid"
  wait "$pid"
  echo "$(echo "$end - $start" | bc) $rss"
}


labels=(current)
declare -A consumer=([current]=$BIN/eie-consumer)
if [[ -n ${EIE_BENCH_BASELINE_BIN:-} ]]; then
  labels=(baseline current)
  consumer[baseline]=$EIE_BENCH_BASELINE_BIN/eie-consumer
fi
declare -A rates=() rsses=()
for ((run = 1; run <= runs; run++)); do
  # With a baseline, every other run drains it second: throughput drifts
  # within a session (the page cache, the broker's log), and the order would
  # otherwise favour whichever goes first.
  order=("${labels[@]}")
  ((run % 2 == 0 && ${#labels[@]} == 2)) && order=("${labels[1]}" "${labels[0]}")
  for label in "${order[@]}"; do
    read -r s rss < <(drain cold "$label" "${consumer[$label]}" "$run" "$total")
    rate=$(echo "$total / $s" | bc)
    echo "cold run $run ($label): $total rows in $s s = $rate rows/s, peak RSS $rss MB; $(cat "$BENCH_DIR/cold.$label.$run.cpu")"
    rates[cold.$label]+=" $rate"
    rsses[cold.$label]+=" $rss"
    read -r s rss < <(drain hot "$label" "${consumer[$label]}" "$run" $((total + devices)))
    rate=$(echo "($total + $devices) / $s" | bc)
    echo "hot run $run ($label): $((total + devices)) records in $s s = $rate rows/s, peak RSS $rss MB; $(cat "$BENCH_DIR/hot.$label.$run.cpu")"
    rates[hot.$label]+=" $rate"
    rsses[hot.$label]+=" $rss"
  done
  if [[ $connect == 1 ]]; then
    [[ -n ${CONNECT_RECORDS:-} ]] || connect_produce
    s=$(connect_drain "$run")
    rate=$(echo "$total / $s" | bc)
    echo "connect run $run: $total rows in $s s = $rate rows/s; $(cat "$BENCH_DIR/connect.$run.cpu")"
    rates[connect]+=" $rate"
  fi
done

# --- the limit: plain COPY of the same rows ----------------------------------
# Exported from the history, loaded with one COPY per stream into fresh tables
# of the same layout and indexes, in text (what psql users run) and in binary
# (what the consumers send, the stricter limit).
for fmt in text binary; do
  bench_copy_export "$BENCH_DIR" "$fmt"
done
copy_rates="" copy_text_rates=""
for ((run = 1; run <= runs; run++)); do
  s=$(bench_copy_history "$BENCH_DIR" text keys "$from" "$to" "$total")
  rate=$(echo "$total / $s" | bc)
  echo "copy (text) run $run: $total rows in $s s = $rate rows/s; $(cat "$BENCH_DIR/copy.text.cpu")"
  copy_text_rates+=" $rate"
  s=$(bench_copy_history "$BENCH_DIR" binary keys "$from" "$to" "$total")
  rate=$(echo "$total / $s" | bc)
  echo "copy (binary) run $run: $total rows in $s s = $rate rows/s; $(cat "$BENCH_DIR/copy.binary.cpu")"
  copy_rates+=" $rate"
done

# shellcheck disable=SC2086 # the lists are numbers separated by spaces
copy_rate=$(bench_median $copy_rates) copy_text_rate=$(bench_median $copy_text_rates)
storage=disk
[[ ${EIE_BENCH_PG_TMPFS:-0} == 1 ]] && storage="tmpfs (/dev/shm)"
kafka=plaintext
[[ $BENCH_KAFKA_SECURE == 1 ]] && kafka="SASL_SSL (SCRAM-SHA-512, ACLs)"
echo "medians of $runs runs; PostgreSQL's data on $storage; Kafka clients over $kafka"
for label in "${labels[@]}"; do
  # shellcheck disable=SC2086
  cold_rate=$(bench_median ${rates[cold.$label]}) hot_rate=$(bench_median ${rates[hot.$label]})
  # shellcheck disable=SC2086
  cold_rss=$(bench_median ${rsses[cold.$label]}) hot_rss=$(bench_median ${rsses[hot.$label]})
  ratio=$(echo "scale=4; $cold_rate / $copy_rate" | bc)
  ratio_text=$(echo "scale=4; $cold_rate / $copy_text_rate" | bc)
  tag=""
  [[ $label == baseline ]] && tag=" (baseline: $EIE_BENCH_BASELINE_BIN)"
  printf '%s: cold/copy %.2f against binary COPY, %.2f against text COPY (%s rows/s)\n' "$label" "$ratio" "$ratio_text" "$copy_text_rate"
  printf 'ingest%s: cold_rows_per_s=%s hot_rows_per_s=%s copy_rows_per_s=%s ratio=%.2f cold_peak_rss_mb=%s hot_peak_rss_mb=%s\n' \
    "$tag" "$cold_rate" "$hot_rate" "$copy_rate" "$ratio" "$cold_rss" "$hot_rss"
done
if [[ $connect == 1 ]]; then
  connect_check
  # shellcheck disable=SC2086
  connect_rate=$(bench_median ${rates[connect]})
  printf 'connect (Kafka Connect %s, Debezium JDBC sink %s, %s, %s task(s) per stream): connect_rows_per_s=%s copy_rows_per_s=%s ratio=%.2f\n' \
    "$(connect__prop connect.version)" "$(connect__prop debezium.version)" "$connect__mode" "$connect__tasks" \
    "$connect_rate" "$copy_rate" "$(echo "scale=4; $connect_rate / $copy_rate" | bc)"
fi
