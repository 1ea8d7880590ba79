#!/usr/bin/env bash
# Benchmark of the producer side: the simulator's backfill producing to a local
# broker (idempotent, acks=all, lz4), 10,000 vehicles and 10,000 meters.
#
#   bench/produce.sh [N]    about N readings (default 10,000,000: long enough that
#                           start-up and the last acknowledgements weigh little)
#   EIE_SIM_CHARGERS_PER_METER=N  banks of N chargers per meter (default 1)
#
# Counts records acknowledged per second, from the simulator's start to its
# last acknowledgement. Ends with
#   produce: rows_per_s=N
set -euo pipefail
source "$(dirname "$0")/lib.sh"

total=${1:-10000000}
devices=${EIE_BENCH_DEVICES:-10000}
bench_depot "$devices"
intervals=$(( (total + devices + meters - 1) / (devices + meters) ))
bench_setup

# Warm-up: a broker that has just started makes the first idempotent producer
# wait seconds for its producer id ("coordinator load in progress").
"$BIN/eie-simulate" --vehicles 10 --ticks 1 --from "$(date -u -d '-10 min' +%Y-%m-%dT%H:%M:00Z)" \
  --reassign-rate 0 2>"$BENCH_DIR/warmup.log"

from=$(date -u -d "-$((intervals + 5)) min" +%Y-%m-%dT%H:%M:00Z)
to=$(date -u -d "@$(( $(date -d "$from" +%s) + intervals * 60 ))" +%Y-%m-%dT%H:%M:%SZ)
t0=$(bench_now)
/usr/bin/time -f "%U %S" -o "$BENCH_DIR/cpu" \
  "$BIN/eie-simulate" --vehicles "$devices" --chargers-per-meter "$chargers_per_meter" --from "$from" --to "$to" \
  --reassign-rate 0 2>"$BENCH_DIR/simulate.log"
t1=$(bench_now)
acked=$(sed -nE 's/.*stopped: [0-9]+ records sent, ([0-9]+) acknowledged, 0 failed, 0 unconfirmed.*/\1/p' "$BENCH_DIR/simulate.log")
[[ -n $acked ]] || { tail -n 5 "$BENCH_DIR/simulate.log" >&2; eie_die "the simulator did not get every record acknowledged"; exit 1; }
secs=$(echo "$t1 - $t0" | bc)
rate=$(echo "$acked / $secs" | bc)
read -r user_s sys_s <"$BENCH_DIR/cpu"
echo "simulator backfill: $acked records acknowledged in $secs s ($intervals intervals of $devices vehicles and $meters meters)"
echo "simulator CPU: ${user_s} s user + ${sys_s} s system in $secs s (the rest of the 2 cores goes to the broker)"
echo "produce: rows_per_s=$rate"
