#!/usr/bin/env bash
# Benchmark of the REST API over a day of a 10,000-vehicle fleet.
#
#   bench/api.sh
#
# The data: 10,000 vehicles and 10,000 meters with 24 h of readings (28.8
# million rows), loaded through the real pipeline once and kept for later runs
# (bench/fleet_day.sh, which also lists the settings of the data).
#
# Then starts eie-api, and for each endpoint runs wrk with a random vehicle per
# request: a warm-up, then the measurement:
#   performance  GET /v1/analytics/performance/V<n>?from=..&to=..  over the
#                loaded time range (saved with the data), so a later run still
#                asks for full 24 h windows
#   state        GET /v1/vehicles/V<n>   (the latest state)
#   meter        GET /v1/analytics/meters/M<n>?from=..&to=..  (a meter's own
#                efficiency: its segments by the attribution rule)
#   sessions     GET /v1/vehicles/V<n>/sessions?from=..&to=..  (its charging
#                sessions over the day)
#   trend        GET /v1/vehicles/V<n>/trend?to=..  (efficiency per day and
#                baseline, ending at the loaded day's end)
# then times the fleet summary over the day (the median of three requests) and
# checks that its efficiency is the history's meter AC against vehicle DC; then
# measures the performance report again while both consumers drain a backlog
# (bench/ingest.sh's size: readings of the minutes before the loaded day,
# earlier at each run, so the day's answers stay as they are), with the sinks'
# throughput over the same seconds; and measures the baseline: eie-api's HTTP stack with a handler that does nothing
# (eie-bench-bare-api, bench/bare/), at GET /bare/{id} under the same load,
# and ends with
#   api: bare_rps=N bare_p99_ms=N state_share=F performance_share=F ...
# (each route's throughput as a share of the baseline's) and
#   api: performance_rps=N performance_p99_ms=N state_rps=N state_p99_ms=N
#        meter_rps=N meter_p99_ms=N sessions_rps=N sessions_p99_ms=N trend_rps=N
#        trend_p99_ms=N fleet_summary_ms=N
#   api: draining_performance_rps=N draining_performance_p99_ms=N
#        draining_cold_rows_per_s=N draining_hot_rows_per_s=N
# A run where any response was not 2xx, or any socket error or timeout
# occurred, says so before that line and exits with status 1.
#
# Settings (environment):
#   EIE_BENCH_VEHICLES, EIE_BENCH_HOURS, EIE_BENCH_API_DIR, EIE_BENCH_RELOAD,
#   EIE_SIM_CHARGERS_PER_METER: the data (bench/fleet_day.sh)
#   EIE_BENCH_DURATION=30       seconds measured per endpoint
#   EIE_BENCH_WARMUP=5          seconds of warm-up per endpoint (0: none)
#   EIE_BENCH_BACKLOG=2000000   readings of the backlog drained while the report
#                               is measured again (0: not measured)
#   EIE_BENCH_DRAIN_DURATION=5  seconds measured while draining (the drain must
#                               outlast them: a run where it did not says so;
#                               the hot consumer drains the backlog in some 10 s
#                               under the report's load here)
#   EIE_BENCH_DRAIN_NICE=10     the CPU priority of the consumers, PostgreSQL and
#                               Kafka while draining (nice, and their sessions'
#                               weight: lib/priority.h; 0: the same as the API)
#   EIE_BENCH_CONNECTIONS=32    wrk connections
#   EIE_BENCH_THREADS=1         wrk threads: one drives 48,000 requests/s here
#                               (a bare ulfius handler), more than twice what
#                               any endpoint serves, and a second would only
#                               take CPU from the server on a 2-core machine
#   EIE_BENCH_ENDPOINTS="performance state meter sessions trend"   which to measure; one left out
#                               shows as "-" in the summary
#   EIE_DB_POOL_SIZE            eie-api's PostgreSQL connections (its default: 4)
#   EIE_BENCH_API_BIN           another eie-api to measure on the same data (an
#                               older build, for a before-and-after comparison)
#   EIE_BENCH_API_ARGS          more eie-api options (e.g. "--access-log off")
#   EIE_BENCH_TLS=1             eie-api serves HTTPS (a certificate made for the
#                               run; wrk and curl over TLS, wrk keeps its
#                               connections)
#   EIE_BENCH_KEYS=1            every read needs a key (--read-access key, a key
#                               file with one read key, sent as a Bearer token)
#                               The bare baseline stays plain HTTP without keys
#                               in every mode, so a route's share of it across
#                               runs of the modes is what TLS and keys cost.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

vehicles=${EIE_BENCH_VEHICLES:-10000}
hours=${EIE_BENCH_HOURS:-24}
duration=${EIE_BENCH_DURATION:-30}
warmup=${EIE_BENCH_WARMUP:-5}
connections=${EIE_BENCH_CONNECTIONS:-32}
threads=${EIE_BENCH_THREADS:-1}
endpoints=${EIE_BENCH_ENDPOINTS:-performance state meter sessions trend}
backlog=${EIE_BENCH_BACKLOG:-2000000}
drain_duration=${EIE_BENCH_DRAIN_DURATION:-5}
drain_nice=${EIE_BENCH_DRAIN_NICE:-10}
for setting in vehicles hours duration connections threads drain_duration; do
  [[ ${!setting} =~ ^[1-9][0-9]*$ ]] || bench_usage "bench/api.sh: $setting must be a positive integer, not '${!setting}'"
done
[[ $backlog =~ ^[0-9]+$ ]] || bench_usage "bench/api.sh: EIE_BENCH_BACKLOG must be a whole number of readings"
[[ $drain_nice =~ ^(1?[0-9])$ ]] || bench_usage "bench/api.sh: EIE_BENCH_DRAIN_NICE must be a nice value, 0 to 19"
[[ $warmup =~ ^[0-9]+$ ]] || bench_usage "bench/api.sh: EIE_BENCH_WARMUP must be a whole number of seconds"
for e in $endpoints; do
  [[ $e =~ ^(performance|state|meter|sessions|trend)$ ]] || bench_usage "bench/api.sh: unknown endpoint '$e' in EIE_BENCH_ENDPOINTS (performance, state, meter, sessions, trend)"
done
lua=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/api.lua

# --- tools -------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  if [[ ${EIE_SKIP_INSTALL:-0} != 1 ]] && eie_is_root && command -v apt-get >/dev/null; then
    eie_log "installing packages: wrk"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk
  else
    eie_die "wrk not found; install it (Debian: apt-get install wrk)"
    exit 1
  fi
fi

# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/fleet_day.sh"

# Hourly summaries up to date, as running cold consumers keep them (the load's
# consumers stopped before its last hours closed), and vacuumed like the rest.
t0=$(bench_now)
"$BIN/eie-admin" rollup 2>>"$LOG_DIR/admin.log" || { eie_show_tail "$LOG_DIR/admin.log"; eie_die "eie-admin rollup failed"; exit 1; }
bench_psql -c "VACUUM (ANALYZE) meter_hourly, vehicle_hourly, hourly_rollup, hourly_rollup_dirty"
eie_log "rollup: summaries up to date in $(echo "$(bench_now) - $t0" | bc) s"

# The history and state into the page cache, as they would be on a server that
# has been serving for a while (whatever the host did since the load).
t0=$(bench_now)
if blocks=$(bench_psql -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" \
  -c "SELECT coalesce(sum(pg_prewarm(c.oid, 'read')), 0) FROM pg_class c
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'i')" 2>"$LOG_DIR/prewarm.log"); then
  eie_log "prewarm: $((blocks * 8 / 1024)) MB read in $(echo "$(bench_now) - $t0" | bc) s"
else
  eie_warn "prewarm: skipped ($(tr '\n' ' ' <"$LOG_DIR/prewarm.log"))"
fi

# --- the API -------------------------------------------------------------------
api_port=$(eie_port_free "$pg_port")
# The API keeps the hourly summaries of its last EIE_ROLLUP_CACHE_HOURS in
# memory (default 48: a day's report at any time of day). The loaded day may
# be older than that by now: sized to reach back to it, as an operator sizes
# the cache to the windows users ask for.
from_s=$(date -u -d "$from" +%s)
cache_hours=${EIE_ROLLUP_CACHE_HOURS:-$(( ($(date -u +%s) - from_s) / 3600 + 2 ))}
((cache_hours < 48)) && cache_hours=48
((cache_hours > 744)) && { eie_die "bench/api.sh: the loaded day ($from) is more than 30 days old; reload it with EIE_BENCH_RELOAD=1"; exit 1; }
# In this script's session, where wrk runs too. With the kernel's autogroups
# (sched_autogroup_enabled), each session is scheduled as one group and
# groups share the CPUs evenly: a server in a session of its own and wrk,
# both on these 2 cores, would take turns in whole time slices, which no
# deployment with its clients elsewhere sees. Measured on the state route:
# p99 3.8 ms with the two in one session, 9.6 ms in two.
api_bin=${EIE_BENCH_API_BIN:-$BIN/eie-api}
read -ra api_args <<<"${EIE_BENCH_API_ARGS:-}"
# What the clients add in the secured modes: curl's options, wrk's header.
curl_opts=() wrk_opts=() scheme=http
if [[ ${EIE_BENCH_TLS:-0} == 1 ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$RUN_DIR/tls.key" -out "$RUN_DIR/tls.crt" 2>"$LOG_DIR/tls.log" ||
    { eie_die "bench/api.sh: openssl could not make a certificate ($(tr '\n' ' ' <"$LOG_DIR/tls.log"))"; exit 1; }
  api_args+=(--tls-cert "$RUN_DIR/tls.crt" --tls-key "$RUN_DIR/tls.key")
  curl_opts+=(--cacert "$RUN_DIR/tls.crt")
  scheme=https
fi
if [[ ${EIE_BENCH_KEYS:-0} == 1 ]]; then
  rm -f "$RUN_DIR/api-keys"
  bench_key=$("$BIN/eie-admin" keys create --keys-file "$RUN_DIR/api-keys" --name bench --role read 2>"$LOG_DIR/keys.log") ||
    { eie_die "bench/api.sh: eie-admin keys create failed ($(tr '\n' ' ' <"$LOG_DIR/keys.log"))"; exit 1; }
  api_args+=(--keys-file "$RUN_DIR/api-keys" --read-access key)
  curl_opts+=(-H "Authorization: Bearer $bench_key")
  wrk_opts+=(-H "Authorization: Bearer $bench_key")
fi
EIE_START_SAME_SESSION=1 eie_proc_start api "$RUN_DIR/api.pid" "$LOG_DIR/api.log" "$api_bin" \
  --port "$api_port" --rollup-cache-hours "$cache_hours" "${api_args[@]}" 9>&-
base=$scheme://127.0.0.1:$api_port
curl() { command curl "${curl_opts[@]}" "$@"; }
api_ready() { # PATH SECONDS: until PATH answers 2xx
  local t_end=$((SECONDS + $2))
  until curl -fsS -o /dev/null --max-time 2 "$base$1" 2>/dev/null; do
    if ((SECONDS >= t_end)) || ! eie_proc_alive "$RUN_DIR/api.pid" >/dev/null; then
      eie_show_tail "$LOG_DIR/api.log"
      eie_die "api: $base$1 did not answer 2xx: $(curl -sS --max-time 5 "$base$1" 2>&1 | head -c 300) (log: $LOG_DIR/api.log)"
      return 1
    fi
    sleep 0.2
  done
}
api_ready /healthz 60
api_ready /readyz 30
# Until the API's caches have loaded the day (a report comes from them), as
# they would have on a server that has been running.
# How many performance reports came from the caches (and of those, how many
# asked the database nothing: the notices vouched for the caches) and how many
# from the database alone since the last call (the database's plpgsql answers
# every report the caches cannot vouch for).
declare -A sources_before=([caches]=0 [database]=0 [memory]=0)
report_sources() {
  local caches database memory
  read -r caches database memory < <(curl -sf "$base/metrics" | awk -F'[{}" ]+' '
    /^eie_api_performance_reports_total\{/ { n[$3] = $NF }
    /^eie_api_performance_reports_from_memory_total / { n["memory"] = $2 }
    END { printf "%d %d %d\n", n["caches"], n["database"], n["memory"] }')
  echo "$1: reports from the caches $((caches - sources_before[caches])) (of them asking the database nothing $((memory - sources_before[memory]))), from the database alone $((database - sources_before[database]))"
  sources_before=([caches]=$caches [database]=$database [memory]=$memory)
}
cached_reports() {
  curl -sf "$base/metrics" | awk '/^eie_api_performance_reports_total\{source="caches"\}/ { n = $2 } END { print n + 0 }'
}
t0=$(bench_now)
for ((i = 0; ; i++)); do
  curl -sf -o /dev/null "$base/v1/analytics/performance/V1?from=$from&to=$to" || true
  (($(cached_reports) > 0)) && break
  if ((i >= 600)); then
    eie_warn "api: no report from the caches after 60 s; measuring anyway"
    break
  fi
  sleep 0.1
done
eie_log "api: caches loaded in $(echo "$(bench_now) - $t0" | bc) s"
pool=${EIE_DB_POOL_SIZE:-$("$api_bin" --help | sed -n 's/.*--db-pool-size .*(default \([0-9]*\)).*/\1/p')}
echo "api: tls=${EIE_BENCH_TLS:-0} keys=${EIE_BENCH_KEYS:-0} (the bare baseline: plain HTTP, no keys)"
echo "api: eie-api on $base, pool ${pool:-?} connections; wrk $threads threads, $connections connections, ${warmup} s warm-up and ${duration} s per endpoint"

declare -A prefix query letter=([performance]=V [state]=V [meter]=M [sessions]=V [trend]=V)
prefix[performance]=/v1/analytics/performance/
query[performance]="?from=$from&to=$to"
prefix[state]=/v1/vehicles/
query[state]=""
prefix[meter]=/v1/analytics/meters/
query[meter]="?from=$from&to=$to"
# A path after the id: api.lua puts the query after it, so it goes there.
prefix[sessions]=/v1/vehicles/
query[sessions]="/sessions?from=$from&to=$to"
prefix[trend]=/v1/vehicles/
query[trend]="/trend?to=$to"
prefix[draining]=${prefix[performance]}
query[draining]=${query[performance]}
letter[draining]=V
prefix[bare]=/bare/
query[bare]=""
letter[bare]=V

# One request first: an endpoint that does not answer 200 is not worth timing.
probe() {
  local name=$1 url code body
  url=$base${prefix[$name]}${letter[$name]}1${query[$name]}
  body=$LOG_DIR/probe.$name.json
  code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 10 "$url") || code=000
  if [[ $code != 200 ]]; then
    eie_die "$name: GET ${url#"$base"} answered $code: $(head -c 300 "$body" 2>/dev/null)"
    return 1
  fi
  if [[ $name == performance ]]; then
    local n
    n=$(jq -r '"\(.metrics.meterReadings) \(.metrics.vehicleReadings)"' "$body")
    [[ $n == "$((hours * 60)) $((hours * 60))" ]] ||
      eie_warn "$name: V1 has $n meter and vehicle readings in the window, expected $((hours * 60)) each"
  fi
  eie_log "$name: GET ${url#"$base"} -> 200 $(jq -c . "$body" | head -c 200)"
}

# measure NAME [BASE]: warm-up, then the measured run; sets R[field] from its
# result line
failed=0
measure() {
  local name=$1 out=$LOG_DIR/wrk.$1.txt line kv
  local opts=("${wrk_opts[@]}")
  [[ -n ${2:-} ]] && opts=() # the bare baseline: plain, no keys
  local args=(--latency -t "$threads" -c "$connections" --timeout 10s "${opts[@]}" -s "$lua" "${2:-$base}"
    -- "${prefix[$name]}" "$vehicles" "${query[$name]}" "${letter[$name]}")
  if ((warmup > 0)); then
    wrk -d "${warmup}s" "${args[@]}" >"$LOG_DIR/wrk.$name.warmup.txt"
    if [[ $name == performance ]]; then report_sources "performance warm-up"; fi
  fi
  wrk -d "${duration}s" "${args[@]}" >"$out"
  line=$(grep '^wrk-result ' "$out") || { cat "$out" >&2; eie_die "$name: no result from wrk"; return 1; }
  declare -gA R=()
  for kv in ${line#wrk-result }; do R[${kv%%=*}]=${kv#*=}; done
  local errors=$((R[non2xx] + R[connect_errors] + R[read_errors] + R[write_errors] + R[timeouts]))
  printf '%s: %d requests in %.1f s = %.0f req/s; latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; ' \
    "$name" "${R[requests]}" "${R[duration_s]}" "${R[rps]}" "${R[p50_ms]}" "${R[p90_ms]}" "${R[p99_ms]}" "${R[max_ms]}"
  if ((errors == 0)); then
    echo "no errors"
  else
    echo "ERRORS: ${R[non2xx]} not 2xx, ${R[connect_errors]} connect, ${R[read_errors]} read, ${R[write_errors]} write, ${R[timeouts]} timeouts"
    failed=1
  fi
}

declare -A rps=([performance]=- [state]=- [meter]=- [sessions]=- [trend]=- [bare]=- [draining]=-)
declare -A p99=([performance]=- [state]=- [meter]=- [sessions]=- [trend]=- [bare]=- [draining]=-)

# The baseline, in the same run: eie-api's HTTP stack (server, router, key
# check, metrics, access log) with a handler that does nothing
# (bench/bare/bare_api.c), under the same settings; each route's throughput
# is reported as a share of it.
bare_port=$(eie_port_free "$api_port")
bare_args=()
for ((i = 0; i < ${#api_args[@]}; i++)); do
  [[ ${api_args[i]} == --access-log || ${api_args[i]} == --http-threads ]] &&
    bare_args+=("${api_args[i]}" "${api_args[i + 1]:-}")
done
EIE_START_SAME_SESSION=1 eie_proc_start bare "$RUN_DIR/bare.pid" "$LOG_DIR/bare.log" "$BIN/eie-bench-bare-api" \
  --port "$bare_port" "${bare_args[@]}" 9>&-
bare_base=http://127.0.0.1:$bare_port
t_end=$((SECONDS + 30))
until command curl -fsS -o /dev/null "$bare_base/bare/V1" 2>/dev/null; do
  ((SECONDS < t_end)) || { eie_show_tail "$LOG_DIR/bare.log"; eie_die "the bare baseline did not answer"; exit 1; }
  sleep 0.2
done
measure bare "$bare_base"
rps[bare]=$(printf '%.0f' "${R[rps]}")
p99[bare]=$(printf '%.2f' "${R[p99_ms]}")
eie_proc_stop "$RUN_DIR/bare.pid"

for name in $endpoints; do
  probe "$name"
  measure "$name"
  rps[$name]=$(printf '%.0f' "${R[rps]}")
  p99[$name]=$(printf '%.2f' "${R[p99_ms]}")
  if [[ $name == performance ]]; then report_sources performance; fi
  curl -sf "$base/metrics" >"$LOG_DIR/metrics.$name.txt" || true
done
# The fleet summary reads the whole day: timed alone, not under load. Its
# efficiency must be the history's own sums (every reading counted once).
fleet_ms=()
for i in 1 2 3; do
  code=$(curl -s -o "$LOG_DIR/fleet.json" -w '%{http_code} %{time_total}' "$base/v1/fleet/summary?from=$from&to=$to") || code="000 0"
  if [[ ${code%% *} != 200 ]]; then
    echo "fleet summary: answered ${code%% *}: $(head -c 300 "$LOG_DIR/fleet.json" 2>/dev/null)"
    failed=1
    fleet_ms=()
    break
  fi
  fleet_ms+=("$(echo "${code#* } * 1000" | bc)")
done
if ((${#fleet_ms[@]} == 3)); then
  fleet_ms=$(printf '%s\n' "${fleet_ms[@]}" | sort -g | sed -n 2p)
  api_ratio=$(jq -r '.fleetEfficiency.efficiencyRatio' "$LOG_DIR/fleet.json")
  history_ratio=$(bench_psql -c "SELECT (SELECT sum(kwh_delivered_dc) FROM vehicle_history WHERE ts >= '$from' AND ts < '$to')
    / (SELECT sum(kwh_consumed_ac) FROM meter_history WHERE ts >= '$from' AND ts < '$to')")
  printf 'fleet summary: %.0f ms (median of 3); efficiency %s, the history %s; attributable %s, degraded vehicles %s, degraded shared meters %s\n' \
    "$fleet_ms" "$api_ratio" "$history_ratio" "$(jq -r '.fleetEfficiency.attributable.efficiencyRatio' "$LOG_DIR/fleet.json")" \
    "$(jq '.degradedVehicles | length' "$LOG_DIR/fleet.json")" "$(jq '.degradedMeters | length' "$LOG_DIR/fleet.json")"
  awk -v a="$api_ratio" -v h="$history_ratio" 'BEGIN { d = a - h; exit !(d < 1e-9 && d > -1e-9) }' ||
    { echo "fleet summary: its efficiency $api_ratio is not the history's $history_ratio"; failed=1; }
else
  fleet_ms=-
fi

# --- the report while the sinks drain a backlog ---------------------------------
# As after an outage: a backlog produced while the consumers were away, which
# they drain while an operator looks at the reports. Its readings are the
# minutes before the loaded day (before the previous backlog's at a later run):
# the loaded window's answers, and fleet_day.sh's counts of it, stay as they
# are, while the sinks do a catch-up's work (COPY into the history, hours
# summarised again, the hot store's upserts) and the API's caches see the
# summaries change.
drain_cold=- drain_hot=-
if ((backlog > 0)) && [[ " $endpoints " == *" performance "* ]]; then
  intervals=$((backlog / (vehicles + meters)))
  b_to=$(load_get backlog_from)
  [[ -n $b_to ]] || b_to=$from
  b_from=$(date -u -d "@$(($(date -d "$b_to" +%s) - intervals * 60))" +%Y-%m-%dT%H:%M:%SZ)
  t0=$(bench_now)
  "$BIN/eie-simulate" --vehicles "$vehicles" --chargers-per-meter "$chargers_per_meter" --from "$b_from" --to "$b_to" \
    --reassign-rate 0 --duplicate-rate 0 --out-of-order-rate 0 --late-rate 0 --invalid-rate 0 2>"$LOG_DIR/backlog.log" ||
    { eie_show_tail "$LOG_DIR/backlog.log"; eie_die "backlog: eie-simulate failed"; exit 1; }
  load_put backlog_from "$b_from"
  eie_log "backlog: $((intervals * (vehicles + meters))) readings from $b_from to $b_to into Kafka in $(echo "$(bench_now) - $t0" | bc) s"
  # The storage side below the API, as an operator who looks at the reports
  # during a catch-up sets it (deploy: EIE_NICE, EIE_PG_NICE, EIE_KAFKA_NICE).
  # The database serves the API's few reports that its caches cannot answer
  # at the same priority.
  eie_proc_nice postgres "$(pg_running "$API_DIR/pg")" "$drain_nice" &&
    eie_proc_nice kafka "$(cat "$API_DIR/kafka/kafka.pid")" "$drain_nice" || exit 1
  export EIE_NICE=$drain_nice
  # One consumer at a time, each until it has stored its first batch, so that
  # both are draining when the measurement starts: a group's first join can
  # wait for its coordinator (25 s seen for the cold group after a broker
  # start), longer than the hot consumer takes for the whole backlog; and the
  # cold consumer's housekeeping at its start derives again the sessions of
  # the vehicles whose assignments the last backlog stored late, days before
  # the loaded day (minutes of work when the previous run ended less than a
  # minute before this one's first derivation: eie_refresh_sessions' look-back).
  read -r cold0 hot0 < <(stored_offsets)
  for s in cold hot; do
    consumers_start "$s"
    t_end=$((SECONDS + 900))
    now=${s}1 was=${s}0
    until read -r cold1 hot1 < <(stored_offsets) && ((${!now} > ${!was})); do
      ((SECONDS < t_end)) && eie_proc_alive "$RUN_DIR/consumer-$s.pid" >/dev/null ||
        { eie_show_tail "$LOG_DIR/consumer-$s.log"; eie_die "backlog: the $s consumer stored nothing"; exit 1; }
      sleep 0.05
    done
  done
  read -r cold0 hot0 < <(stored_offsets)
  t0=$(bench_now)
  BENCH_PG_DIR=$API_DIR/pg BENCH_DIR=$RUN_DIR bench_cpu_begin api="$(cat "$RUN_DIR/api.pid")" \
    consumer-cold="$(cat "$RUN_DIR/consumer-cold.pid")" consumer-hot="$(cat "$RUN_DIR/consumer-hot.pid")" \
    kafka="$(cat "$API_DIR/kafka/kafka.pid")"
  report_sources "before draining" >/dev/null
  duration=$drain_duration warmup=0 measure draining
  cpu=$(BENCH_DIR=$RUN_DIR bench_cpu_end "api postgres consumer-cold consumer-hot kafka")
  read -r cold1 hot1 < <(stored_offsets)
  t1=$(bench_now)
  rps[draining]=$(printf '%.0f' "${R[rps]}")
  p99[draining]=$(printf '%.2f' "${R[p99_ms]}")
  drain_cold=$(echo "($cold1 - $cold0) / ($t1 - $t0)" | bc)
  drain_hot=$(echo "($hot1 - $hot0) / ($t1 - $t0)" | bc)
  echo "draining: the sinks stored cold $drain_cold rows/s, hot $drain_hot rows/s meanwhile (consumers, PostgreSQL and Kafka at nice $drain_nice); $cpu"
  report_sources draining
  consumed_wait || exit 1
  # Both drains must have lasted the whole measurement: the offsets read at
  # its end still short of what each group ends at.
  read -r cold_end hot_end < <(stored_offsets)
  for s in cold hot; do
    at=${s}1 end=${s}_end
    if ((${!at} >= ${!end})); then
      echo "draining: the $s consumer had finished before the measurement ended; lower EIE_BENCH_DRAIN_DURATION"
      failed=1
    fi
  done
  consumers_stop
fi

if ((failed)); then
  echo "api: THE RUN HAD ERRORS (non-2xx responses or socket errors, above); wrk output in $LOG_DIR"
fi
share() { [[ ${rps[$1]} == - ]] && echo - || echo "scale=3; ${rps[$1]} / ${rps[bare]}" | bc; }
echo "api: bare_rps=${rps[bare]} bare_p99_ms=${p99[bare]} state_share=$(share state) performance_share=$(share performance) meter_share=$(share meter) sessions_share=$(share sessions) trend_share=$(share trend)"
echo "api: performance_rps=${rps[performance]} performance_p99_ms=${p99[performance]} state_rps=${rps[state]} state_p99_ms=${p99[state]} meter_rps=${rps[meter]} meter_p99_ms=${p99[meter]} sessions_rps=${rps[sessions]} sessions_p99_ms=${p99[sessions]} trend_rps=${rps[trend]} trend_p99_ms=${p99[trend]} fleet_summary_ms=$([[ $fleet_ms == - ]] && echo - || printf '%.0f' "$fleet_ms")"
echo "api: draining_performance_rps=${rps[draining]} draining_performance_p99_ms=${p99[draining]} draining_cold_rows_per_s=$drain_cold draining_hot_rows_per_s=$drain_hot"
exit "$failed"
