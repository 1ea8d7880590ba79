#!/usr/bin/env bash
# Benchmark of freshness: how long after a producer's acknowledgement a reading
# shows on the state route and in the performance report.
#
#   bench/freshness.sh
#   EIE_FRESHNESS_PROBES=N      probes per phase (default 300)
#   EIE_FRESHNESS_GAP_S=S       mean gap between probes, exponential (default 0.3)
#   EIE_FRESHNESS_LOAD_VEHICLES=V  the background load: the simulator in real time
#                               with V vehicles and V meters each reporting every
#                               second, spread evenly over it (default 25,000:
#                               50,000 readings/s)
#   EIE_FRESHNESS_WARMUP_S=S    load before the probes start (default 20)
#   EIE_BENCH_BASELINE_BIN=DIR  also measure the eie-consumer and eie-api in DIR
#                               (e.g. a build of the previous commit), on the
#                               same stack just before, as the baseline
#
# Starts its own Kafka and PostgreSQL, both consumers and the API (default
# settings, access log off), then runs bench/freshness_probe.py twice: on the
# idle system and under the steady background load. Each probe is one reading
# of a probe vehicle produced through POST /v1/ingest/vehicle (answered only
# after Kafka's acknowledgement) at a random moment, then polled for on
# GET /v1/vehicles/{id} (lastReadingAt) and in GET /v1/analytics/performance/{id}
# (latestSnapshot and the history's count). Ends, per set of programs, with
#   freshness: state_p50_ms=N state_p99_ms=N report_p99_ms=N load_rows_per_s=N
# where load_rows_per_s is what the cold consumer stored per second during the
# loaded probes (0 for the idle line), and CPU use of each process and of the
# machine over each phase.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

probes=${EIE_FRESHNESS_PROBES:-300}
gap=${EIE_FRESHNESS_GAP_S:-0.3}
load_vehicles=${EIE_FRESHNESS_LOAD_VEHICLES:-25000}
warmup=${EIE_FRESHNESS_WARMUP_S:-20}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_setup
# On any exit (a probe that gives up ends the script): the load and the
# programs started detached go too, before the stack.
load_pid=""
freshness_cleanup() {
  [[ -n $load_pid ]] && kill -TERM "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
  local f
  for f in "$BENCH_DIR"/{baseline,current}/{hot,cold,api}.pid; do [[ -e $f ]] && eie_proc_stop "$f"; done
  bench_teardown
}
trap freshness_cleanup EXIT

# stored_total GROUP: records the group has stored (its next offsets summed)
stored_total() {
  bench_psql -c "SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '$1'"
}

# lags: the records each group has yet to store, now: "HOT COLD"
lags() {
  local hot cold readings all
  # Stored first: read after the end offsets, a lag could come out below 0.
  hot=$(stored_total bench.hot)
  cold=$(stored_total bench.cold)
  readings=$(end_offsets "${EIE_TOPIC_PREFIX}meter-readings" "${EIE_TOPIC_PREFIX}vehicle-readings")
  all=$((readings + $(end_offsets "${EIE_TOPIC_PREFIX}vehicle-assignments")))
  echo "$((all - hot)) $((readings - cold))"
}

# caught_up: until both groups have stored everything on the topics
caught_up() {
  local t_end=$((SECONDS + 1200))
  until [[ $(lags) == "0 0" ]]; do
    ((SECONDS < t_end)) || { eie_warn "the consumers did not catch up in 20 minutes"; return 0; }
    sleep 0.5
  done
}

# slowest LABEL OUT: the probes slowest on the state route, when they were made
slowest() {
  echo "$1, slowest on the state route: $(grep '^probe' "$2" | sort -t= -k2 -g -r | head -n 5 |
    awk '{ printf "%s%s %s at %s (%s)", (NR > 1 ? "; " : ""), $5, $6, $4, $7 }')"
}

# probe_cpu TIMEFILE: the probe's own CPU (it polls, on the same machine)
probe_cpu() { awk '{ printf "\n  the probe itself: %.0f%% of one core", 100 * ($1 + $2) / $3 }' "$1"; }

# measure LABEL BINDIR PRIME: one set of programs, idle then loaded; PRIME=1
# gives the probe vehicles their first reading (the first set does)
# Ingest needs a write key (README, API keys): one made here, which the probes
# send.
EIE_FRESHNESS_WRITE_KEY=$("$BIN/eie-admin" keys create --keys-file "$BENCH_DIR/api-keys" --name freshness \
  --role write 2>"$BENCH_DIR/keys.log") ||
  { eie_show_tail "$BENCH_DIR/keys.log"; eie_die "bench/freshness.sh: eie-admin keys create failed"; exit 1; }
export EIE_FRESHNESS_WRITE_KEY

measure() {
  local label=$1 bin=$2 prime=$3 dir="$BENCH_DIR/$1" api_port
  mkdir -p "$dir"
  api_port=$(eie_port_free)
  # The groups of the previous set go on where it stopped.
  eie_proc_start "hot.$label" "$dir/hot.pid" "$dir/hot.log" "$bin/eie-consumer" --store hot \
    --no-migrate
  eie_proc_start "cold.$label" "$dir/cold.pid" "$dir/cold.log" "$bin/eie-consumer" --store cold \
    --no-migrate
  eie_proc_start "api.$label" "$dir/api.pid" "$dir/api.log" "$bin/eie-api" --port "$api_port" \
    --access-log off --keys-file "$BENCH_DIR/api-keys"
  local base=http://127.0.0.1:$api_port
  until curl -fsS -o /dev/null "$base/readyz" 2>/dev/null; do sleep 0.2; done
  until grep -q assigned "$dir/hot.log" && grep -q assigned "$dir/cold.log"; do sleep 0.2; done
  caught_up

  local pids=("$(cat "$dir/hot.pid")" "$(cat "$dir/cold.pid")" "$(cat "$dir/api.pid")")
  bench_cpu_begin hot="${pids[0]}" cold="${pids[1]}" api="${pids[2]}"
  /usr/bin/time -f "%U %S %e" -o "$dir/idle.time" \
    python3 "$here/freshness_probe.py" "$base" P "$probes" "$gap" 1 "$prime" >"$dir/idle.out"
  echo "$label, idle: $(bench_cpu_end "hot cold api")$(probe_cpu "$dir/idle.time")"
  local idle_line
  idle_line=$(sed -n 's/^freshness_raw: //p' "$dir/idle.out")

  "$BIN/eie-simulate" --vehicles "$load_vehicles" --interval-s 1 --spread --reassign-rate 0 \
    --seed 7 2>"$dir/load.log" &
  load_pid=$!
  sleep "$warmup"
  # Steady means in step: both consumers less than a second of the load behind
  # (the catch-up after the load's start is not what the probes measure).
  local t_steady=$SECONDS hot_lag cold_lag
  while read -r hot_lag cold_lag < <(lags) && ((hot_lag > 2 * load_vehicles || cold_lag > 2 * load_vehicles)); do
    ((SECONDS < t_steady + 120)) || { eie_warn "$label: the consumers were still $hot_lag (hot) and $cold_lag (cold) records behind the load after 2 minutes"; break; }
    sleep 0.2
  done
  eie_log "$label: the consumers in step with the load $((SECONDS - t_steady)) s after the warm-up"
  local s0 t0 s1 t1
  s0=$(stored_total bench.cold)
  t0=$(bench_now)
  bench_cpu_begin hot="${pids[0]}" cold="${pids[1]}" api="${pids[2]}" simulator="$load_pid"
  /usr/bin/time -f "%U %S %e" -o "$dir/load.time" \
    python3 "$here/freshness_probe.py" "$base" P "$probes" "$gap" 2 0 >"$dir/load.out"
  echo "$label, loaded: $(bench_cpu_end "hot cold api simulator")$(probe_cpu "$dir/load.time")"
  s1=$(stored_total bench.cold)
  t1=$(bench_now)
  local lag
  read -r hot_lag cold_lag < <(lags)
  lag="hot $hot_lag and cold $cold_lag records behind"
  kill -TERM "$load_pid"
  wait "$load_pid" || true
  load_pid=""
  local t2
  t2=$(bench_now)
  caught_up
  lag+=" when the load stopped, caught up $(echo "$(bench_now) - $t2" | bc) s later"
  local load_line rate
  load_line=$(sed -n 's/^freshness_raw: //p' "$dir/load.out")
  rate=$(echo "($s1 - $s0) / ($t1 - $t0)" | bc)
  slowest "$label, idle" "$dir/idle.out"
  slowest "$label, loaded" "$dir/load.out"
  echo "$label, idle:   $idle_line"
  echo "$label, loaded: $load_line (the cold consumer stored $rate records/s; $lag)"
  grep -E "stopped|records" "$dir/load.log" | tail -n 2 || true
  for f in "$dir/hot.pid" "$dir/cold.pid" "$dir/api.pid"; do eie_proc_stop "$f"; done
  summary+=("$(fresh_line "$label, idle" "$idle_line" 0)")
  summary+=("$(fresh_line "$label, loaded" "$load_line" "$rate")")
}

# fresh_line LABEL RAW RATE: the summary line from the probe's raw figures
fresh_line() {
  local raw=$2 f
  declare -A v
  for f in $raw; do v[${f%%=*}]=${f#*=}; done
  printf '%s: freshness: state_p50_ms=%s state_p99_ms=%s report_p99_ms=%s load_rows_per_s=%s (lost %s of %s)' \
    "$1" "${v[state_p50_ms]}" "${v[state_p99_ms]}" "${v[report_p99_ms]}" "$3" "${v[lost]}" "${v[n]}"
}

summary=()
if [[ -n ${EIE_BENCH_BASELINE_BIN:-} ]]; then
  measure baseline "$EIE_BENCH_BASELINE_BIN" 1
  measure current "$BIN" 0
else
  measure current "$BIN" 1
fi
printf '%s\n' "${summary[@]}"
