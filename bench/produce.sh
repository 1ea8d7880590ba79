# Benchmark of the producer side: the simulator's backfill producing to a local
# broker (idempotent, acks=all, lz4), 10,000 vehicles and 10,000 meters, beside
# librdkafka alone with the same settings (eie-bench-bare-produce: ready-made
# records, keyed alike) in the same runs.
#
#   bench/produce.sh [N]    about N readings (default 10,000,000: long enough that
#                           start-up and the last acknowledgements weigh little)
#   EIE_SIM_CHARGERS_PER_METER=N  banks of N chargers per meter (default 1)
#   EIE_BENCH_RUNS=R        runs of each (default 3); the medians are reported
#
# Counts records acknowledged per second, from the program's start to its last
# acknowledgement, with the CPU each took. Ends with
#   produce: rows_per_s=N bare_rows_per_s=B ratio=N/B
set -euo pipefail
source "$(dirname "$0")/lib.sh"

total=${1:-10000000}
runs=${EIE_BENCH_RUNS:-3}
[[ $runs =~ ^[1-9][0-9]*$ ]] || bench_usage "bench/produce.sh: EIE_BENCH_RUNS must be a positive integer, not '$runs'"
devices=${EIE_BENCH_DEVICES:-10000}
bench_depot "$devices"
intervals=$(( (total + devices + meters - 1) / (devices + meters) ))
bench_setup

# Warm-up: a broker that has just started makes the first idempotent producer
# wait seconds for its producer id ("coordinator load in progress").
"$BIN/eie-simulate" --vehicles 10 --ticks 1 --from "$(date -u -d '-10 min' +%Y-%m-%dT%H:%M:00Z)" \
  --reassign-rate 0 2>"$BENCH_DIR/warmup.log"

# timed NAME COMMAND...: runs it under /usr/bin/time; prints its seconds, and
# its CPU seconds (user + system) into $BENCH_DIR/NAME.cpu.
timed() {
  local name=$1 t0 t1 status=0
  shift
  t0=$(bench_now)
  /usr/bin/time -f "%U %S" -o "$BENCH_DIR/$name.cpu" "$@" 2>"$BENCH_DIR/$name.log" || status=$?
  t1=$(bench_now)
  echo "$t1 - $t0" | bc
  return "$status"
}
sim_rates="" bare_rates=""
for ((run = 1; run <= runs; run++)); do
  # Each run its own range of minutes, earlier each time: no reading repeats.
  from=$(date -u -d "-$((run * (intervals + 5))) min" +%Y-%m-%dT%H:%M:00Z)
  to=$(date -u -d "@$(( $(date -d "$from" +%s) + intervals * 60 ))" +%Y-%m-%dT%H:%M:%SZ)
  secs=$(timed simulate "$BIN/eie-simulate" --vehicles "$devices" --chargers-per-meter "$chargers_per_meter" \
    --from "$from" --to "$to" --reassign-rate 0) ||
    { tail -n 5 "$BENCH_DIR/simulate.log" >&2; eie_die "eie-simulate failed"; exit 1; }
  acked=$(sed -nE 's/.*stopped: [0-9]+ records sent, ([0-9]+) acknowledged, 0 failed, 0 unconfirmed.*/\1/p' "$BENCH_DIR/simulate.log")
  [[ -n $acked ]] || { tail -n 5 "$BENCH_DIR/simulate.log" >&2; eie_die "the simulator did not get every record acknowledged"; exit 1; }
  read -r user_s sys_s <"$BENCH_DIR/simulate.cpu"
  rate=$(echo "$acked / $secs" | bc)
  sim_rates+=" $rate"
  echo "run $run: simulator backfill: $acked records acknowledged in $secs s = $rate records/s ($intervals intervals of $devices vehicles and $meters meters); CPU ${user_s} s user + ${sys_s} s system"
  secs=$(timed bare "$BIN/eie-bench-bare-produce" --devices "$devices" --records "$acked") ||
    { tail -n 5 "$BENCH_DIR/bare.log" >&2; eie_die "eie-bench-bare-produce failed"; exit 1; }
  read -r user_s sys_s <"$BENCH_DIR/bare.cpu"
  rate=$(echo "$acked / $secs" | bc)
  bare_rates+=" $rate"
  echo "run $run: librdkafka alone: $acked records acknowledged in $secs s = $rate records/s; CPU ${user_s} s user + ${sys_s} s system"
done
echo "(the rest of the 2 cores goes to the broker)"
rate=$(bench_median $sim_rates) bare_rate=$(bench_median $bare_rates)
printf 'produce: rows_per_s=%.0f bare_rows_per_s=%.0f ratio=%.2f\n' "$rate" "$bare_rate" "$(echo "$rate / $bare_rate" | bc -l)"
