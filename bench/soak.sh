#!/usr/bin/env bash
# Soak under faults (issue 11, item 6): exactly-once and dead-lettering hold
# while everything that can go wrong does, for a long time.
#
#   bench/soak.sh [--seconds S] [--kills K] [--pg-restarts N] [--kafka-restarts N]
#                 [--vehicles N] [--seed N] [--no-oversized] [--help]
#
#   --seconds S        how long faults are injected (EIE_SOAK_SECONDS, 1500)
#   --kills K          SIGKILLs per consumer, hot and cold each (EIE_SOAK_KILLS, 120)
#   --pg-restarts N    PostgreSQL restarts (EIE_SOAK_PG_RESTARTS, 3)
#   --kafka-restarts N broker restarts (EIE_SOAK_KAFKA_RESTARTS, 2)
#   --vehicles N       simulated vehicles and meters (EIE_SOAK_VEHICLES, 100)
#   --seed N           seeds the kill timings, the simulator and the bad records
#                      (EIE_SOAK_SEED, random; printed first, so a failing run can
#                      be replayed with it)
#   --no-oversized     leave out the 1 MB record (EIE_SOAK_OVERSIZED=0)
#   EIE_SOAK_BATCH_SIZE (1000), EIE_SOAK_PARTITIONS (6), EIE_SOAK_CHUNK_MINUTES (5),
#   EIE_SOAK_PAUSE_S (1), EIE_SOAK_BAD_EVERY (3 chunks), EIE_SOAK_CATCH_UP_S (900)
#   EIE_BIN=DIR        use these binaries instead of building build/ (the test suite
#                      passes its sanitizer build); EIE_KEEP_TEST_DIR=1 keeps the stack's
#                      directory (logs, data) after the run.
#
# On a private Kafka + PostgreSQL (tests/lib/stack.sh: its own temp dir and
# free ports), the simulator produces readings in chunks with every fault rate
# on (repeats, out of order, late, invalid, reassignments), and every few
# chunks a set of bad records goes in with kcat: a value of 1,000,000 bytes, a
# null key, a null value, 100 headers, garbage bytes. Meanwhile each consumer
# (hot and cold, static members as tests/integration/test_kill_consumers.sh
# runs them) is killed with SIGKILL at seeded random moments and restarted at
# once, and PostgreSQL and the broker are restarted a few times. Then:
#   1. the soak's groups must catch up to the topics' end;
#   2. fresh groups, never killed, read the same topics into a second database
#      (the reference: a clean replay), and `eie-admin verify --against` must
#      find 0 differences;
#   3. every bad record must be dead-lettered by each soak group.
# Progress lines go to stdout, kills and restarts to the kill log; the last line:
#   soak: kills= restarts= records= readings= bad_records= lost= duplicated= differences=
#         dead_letters= missing_dead_letters= dead_letter_repeats= unplanned_exits=
#         seed= seconds=
# records: every record on the three source topics (readings, assignments and
# bad records); readings: the distinct valid readings the simulators made
# (which the reference's history must hold); bad_records: what the producers
# made bad (the simulator's invalid readings and kcat's records); the others
# are explained where they are computed, below. Exit 0 only if lost,
# duplicated, differences, missing_dead_letters, dead_letter_repeats and
# unplanned_exits are 0 and
# the reference dead-lettered exactly the bad records made; 1 otherwise, also
# when a group does not catch up (a stall).
set -euo pipefail

usage() { sed -n '5,22s/^# \{0,1\}//p' "$0"; }

seconds=${EIE_SOAK_SECONDS:-1500}
kills=${EIE_SOAK_KILLS:-120}
pg_restarts=${EIE_SOAK_PG_RESTARTS:-3}
kafka_restarts=${EIE_SOAK_KAFKA_RESTARTS:-2}
vehicles=${EIE_SOAK_VEHICLES:-100}
seed=${EIE_SOAK_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) ))}
oversized=${EIE_SOAK_OVERSIZED:-1}
batch_size=${EIE_SOAK_BATCH_SIZE:-1000}
partitions=${EIE_SOAK_PARTITIONS:-6}
chunk_minutes=${EIE_SOAK_CHUNK_MINUTES:-5}
pause_s=${EIE_SOAK_PAUSE_S:-1}
bad_every=${EIE_SOAK_BAD_EVERY:-3}
catch_up_s=${EIE_SOAK_CATCH_UP_S:-900}

need_value() { (($1 >= 2)) || { echo "error: $2 needs a value" >&2; exit 2; }; }
while (($# > 0)); do
  case $1 in
    --seconds) need_value $# "$1"; seconds=$2; shift ;;
    --kills) need_value $# "$1"; kills=$2; shift ;;
    --pg-restarts) need_value $# "$1"; pg_restarts=$2; shift ;;
    --kafka-restarts) need_value $# "$1"; kafka_restarts=$2; shift ;;
    --vehicles) need_value $# "$1"; vehicles=$2; shift ;;
    --seed) need_value $# "$1"; seed=$2; shift ;;
    --no-oversized) oversized=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "error: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for v in seconds kills pg_restarts kafka_restarts vehicles seed batch_size partitions \
  chunk_minutes bad_every catch_up_s; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "error: ${v//_/-} must be a whole number, not '${!v}'" >&2; exit 2; }
done
((kills >= 1 && seconds >= 10 && vehicles >= 1)) ||
  { echo "error: need --kills >= 1, --seconds >= 10, --vehicles >= 1" >&2; exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../tests/lib/stack.sh
source "$ROOT/tests/lib/stack.sh"

say() { printf '[soak %5ds] %s\n' "$SECONDS" "$*"; }
echo "soak: seed=$seed (replay with EIE_SOAK_SEED=$seed) seconds=$seconds kills=$kills per consumer" \
  "pg_restarts=$pg_restarts kafka_restarts=$kafka_restarts vehicles=$vehicles oversized=$oversized"

if [[ -n ${EIE_BIN:-} ]]; then
  BIN=$EIE_BIN
else
  eie_pkg_install
  eie_build build >/dev/null
  BIN=$ROOT/build/bin
fi
kafka_fetch
for b in eie-admin eie-consumer eie-simulate; do
  [[ -x $BIN/$b ]] || { echo "error: $BIN/$b not found" >&2; exit 1; }
done
command -v kcat >/dev/null || { echo "error: kcat not found (apt-get install kcat)" >&2; exit 1; }

# ------------------------------------------------------------ the stack
# Everything this script starts and has not reaped yet is recorded here and
# stopped by pid on exit; a pid leaves the list once waited for, since the
# kernel may give it to another process after that.
PIDS=()
forget_pid() {
  local p kept=()
  for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}
# tests/run.sh exports its shared stack's directory; this script must never
# stop that one, only the stack it starts below.
unset EIE_TEST_DIR
cleanup() {
  local rc=$? pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((rc != 0)) && [[ -n ${EIE_TEST_DIR:-} && -n ${W:-} ]]; then
    eie_show_tail "$W"/*.log
    EIE_KEEP_TEST_DIR=1
  fi
  stack_down
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stack_up
W=$EIE_TEST_DIR/soak
mkdir -p "$W"
pg_base="postgresql://eie@127.0.0.1:$EIE_TEST_PGPORT"
export DATABASE_URL=$pg_base/soak EIE_TOPIC_PREFIX=soak.
REF_URL=$pg_base/soak_ref
psql "$pg_base/postgres" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE soak" -c "CREATE DATABASE soak_ref"
"$BIN/eie-admin" topics --partitions "$partitions" 2>>"$W/admin.log"
"$BIN/eie-admin" migrate 2>>"$W/admin.log"
DATABASE_URL=$REF_URL "$BIN/eie-admin" migrate 2>>"$W/admin.log"
B=$KAFKA_BOOTSTRAP_SERVERS
SOURCE_TOPICS=(soak.meter-readings soak.vehicle-readings soak.vehicle-assignments)
DEAD_TOPIC=soak.dead-letters

# ------------------------------------------------------------ bad records
# One file per kind, made once from the seed; every injection sends the set
# again (new offsets, so each copy is a bad record of its own).
python3 - "$W" "$seed" <<'PY'
import random, sys
out, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
def garbage(n):
    # Never the single-object marker C3 01, so it cannot pass as a reading.
    b = bytearray(rnd.getrandbits(8) for _ in range(n))
    b[0] = 0x7b
    return bytes(b)
open(f"{out}/bad-oversized.bin", "wb").write(garbage(1_000_000))
open(f"{out}/bad-garbage.bin", "wb").write(garbage(97))
open(f"{out}/bad-null-key.bin", "wb").write(garbage(40))
open(f"{out}/bad-headers.bin", "wb").write(garbage(33))
# kcat skips an empty file; a line "key:" read with -K: -Z is a null value.
open(f"{out}/bad-null-value.txt", "wb").write(b"V3:\n")
PY
child=""
run_child() { # CMD...: runs CMD as the current child, waits, returns its status
  # <&0: a background command's stdin is /dev/null unless redirected on it.
  "$@" <&0 &
  child=$!
  wait "$child"
}
many_headers=()
for ((h = 0; h < 100; h++)); do many_headers+=(-H "soak.header.$h=value-$h"); done
# inject_bad N: sends one set to the meter or the vehicle topic (by N); counts
# in `produced` the records the broker acknowledged (kcat exits non-zero
# otherwise; a record it gave up on may still have landed, and then the
# bad-record count below disagrees with the reference and the run fails).
inject_bad() {
  local topic=${SOURCE_TOPICS[$(($1 % 2))]} sent=0 k
  k=(-P -b "$B" -t "$topic" -X message.max.bytes=2000000 -X message.timeout.ms=120000)
  if ((oversized)); then
    run_child kcat "${k[@]}" -k "V$(($1 % vehicles + 1))" "$W/bad-oversized.bin" 2>>"$W/kcat.log" && sent=$((sent + 1))
  fi
  run_child kcat "${k[@]}" -k "V1" "$W/bad-garbage.bin" 2>>"$W/kcat.log" && sent=$((sent + 1))
  run_child kcat "${k[@]}" "$W/bad-null-key.bin" 2>>"$W/kcat.log" && sent=$((sent + 1))
  run_child kcat "${k[@]}" -k "M2" "${many_headers[@]}" "$W/bad-headers.bin" 2>>"$W/kcat.log" && sent=$((sent + 1))
  run_child kcat "${k[@]}" -K : -Z <"$W/bad-null-value.txt" 2>>"$W/kcat.log" && sent=$((sent + 1))
  echo "bad $sent" >>"$W/produced"
}

# ------------------------------------------------------------ producers
# Chunks of backfill, each a window of chunk_minutes of simulated time after
# the previous one, from far enough back that the last window still ends
# before now (readings more than 5 minutes ahead are invalid). Each chunk's
# simulator has a seed of its own, from the soak's seed.
producer_loop() {
  local chunk=0 start from to sent failed unconfirmed repeated invalid reassigned
  # A chunk takes at least half a second, so 2 * seconds chunks fit (at most 30 days).
  start=$(( $(date -u +%s) / 60 * 60 - (2 * seconds + 60) * chunk_minutes * 60 ))
  ((start >= $(date -u +%s) - 30 * 86400)) || start=$(( $(date -u +%s) / 60 * 60 - 30 * 86400 ))
  # The loop runs its programs one at a time, each as `child`, so that the
  # script's SIGTERM stops the one running too.
  trap 'kill -TERM "$child" 2>/dev/null; exit 143' TERM
  while [[ ! -f $W/stop-producing ]]; do
    from=$((start + chunk * chunk_minutes * 60))
    to=$((from + chunk_minutes * 60))
    ((to < $(date -u +%s) - 600)) || break
    run_child "$BIN/eie-simulate" --vehicles "$vehicles" --from "$(date -u -d "@$from" +%FT%TZ)" \
      --to "$(date -u -d "@$to" +%FT%TZ)" --seed $((seed * 1000 + chunk)) --duplicate-rate 0.02 \
      --out-of-order-rate 0.02 --late-rate 0.02 --late-max-s 900 --invalid-rate 0.005 \
      --reassign-rate 0.002 2>"$W/sim.last.log" || echo "chunk $chunk: the simulator failed"
    { echo "=== chunk $chunk at +${SECONDS}s"; cat "$W/sim.last.log"; } >>"$W/sim.log"
    read -r sent failed unconfirmed repeated invalid reassigned < <(sed -nE \
      's/.*stopped: ([0-9]+) records sent, [0-9]+ acknowledged, ([0-9]+) failed, ([0-9]+) unconfirmed; faults: ([0-9]+) repeated, .* ([0-9]+) invalid, ([0-9]+) reassignments.*/\1 \2 \3 \4 \5 \6/p' \
      "$W/sim.last.log") || true
    echo "sim ${sent:-0} ${failed:-0} ${unconfirmed:-0} ${invalid:-0} ${repeated:-0} ${reassigned:-0}" >>"$W/produced"
    if ((chunk % bad_every == bad_every - 1)); then
      inject_bad "$chunk"
    fi
    chunk=$((chunk + 1))
    sleep "$pause_s"
  done
}
# produced_sum KIND FIELD: totals of the producer's counts (sim: 2 sent,
# 3 failed, 4 unconfirmed, 5 invalid, 6 repeated, 7 reassignments; bad: 2).
produced_sum() { awk -v kind="$1" -v f="$2" '$1 == kind { s += $f } END { print s + 0 }' "$W/produced"; }

# ------------------------------------------------------------ consumers
# start_consumer NAME STORE [ARGS...]: sets NAME_pid.
start_consumer() {
  local name=$1 store=$2
  shift 2
  "$BIN/eie-consumer" --store "$store" --batch-size "$batch_size" --linger-ms 50 "$@" \
    >>"$W/$name.log" 2>&1 &
  printf -v "${name}_pid" '%s' "$!"
  PIDS+=("$!")
}
start_hot() { start_consumer hot hot --instance-id soak-hot; }
start_cold() { start_consumer cold cold --instance-id soak-cold; }
stop_consumer() { # NAME: SIGTERM, a clean stop expected
  local var="${1}_pid" status=0
  kill -TERM "${!var}" 2>/dev/null || true
  wait "${!var}" || status=$?
  forget_pid "${!var}"
  ((status == 0)) || say "warning: $1 exited with status $status after SIGTERM"
}

# end_offsets TOPIC...: the sum of the partitions' high watermarks, which is
# the number of records (the producers are idempotent, not transactional, so
# offsets have no gaps).
end_offsets() {
  local t p sum=0 out
  for t in "$@"; do
    for ((p = 0; p < partitions; p++)); do
      out=$(kcat -Q -b "$B" -t "$t:$p:-1" 2>>"$W/kcat.log") || return 1
      [[ $out =~ offset\ ([0-9]+) ]] || return 1
      sum=$((sum + BASH_REMATCH[1]))
    done
  done
  echo "$sum"
}
stored_offsets() { # URL GROUP
  psql "$1" -X -At -c "SELECT coalesce(sum(next_offset), 0) FROM sink_offsets WHERE consumer_group = '$2'" 2>/dev/null
}
# wait_groups URL HOT_GROUP COLD_GROUP: until both have stored the topics' end.
wait_groups() {
  local deadline=$((SECONDS + catch_up_s)) hot_end cold_end h c
  hot_end=$(end_offsets "${SOURCE_TOPICS[@]}")
  cold_end=$(end_offsets "${SOURCE_TOPICS[@]:0:2}")
  while :; do
    h=$(stored_offsets "$1" "$2") || h=0
    c=$(stored_offsets "$1" "$3") || c=0
    [[ $h == "$hot_end" && $c == "$cold_end" ]] && return 0
    if ((SECONDS >= deadline)); then
      say "FAIL: after ${catch_up_s}s, $2 stored $h of $hot_end offsets and $3 $c of $cold_end"
      local log
      for log in "$W"/*hot.log "$W"/*cold.log; do
        grep -h ' error: ' "$log" | tail -n 1 | sed "s|^|  last error in $(basename "$log"): |" || true
      done
      return 1
    fi
    sleep 1
  done
}

# ------------------------------------------------------------ faults
# Kill timings come from bash's RANDOM seeded with the soak's seed, so the
# schedule (which consumer, after how long) replays exactly; what each kill
# interrupts still depends on the machine's timing.
RANDOM=$seed
total_kills=$((2 * kills))
mean_ms=$((seconds * 1000 / total_kills))
hot_kills=0 cold_kills=0 pg_done=0 kafka_done=0 unplanned_exits=0
kill_log=$W/kills.log
restart_pg() {
  local down_ms=$((1000 + RANDOM % 4000))
  echo "$(date +%T.%3N) +${SECONDS}s restart PostgreSQL (down ${down_ms} ms)" >>"$kill_log"
  stack_pg_stop 2>>"$kill_log"
  sleep "$((down_ms / 1000)).$(printf %03d $((down_ms % 1000)))"
  stack_pg_start 2>>"$kill_log"
  pg_done=$((pg_done + 1))
  say "restarted PostgreSQL ($pg_done/$pg_restarts)"
}
restart_kafka() {
  local down_ms=$((1000 + RANDOM % 4000))
  echo "$(date +%T.%3N) +${SECONDS}s restart Kafka (down ${down_ms} ms)" >>"$kill_log"
  stack_kafka_stop 2>>"$kill_log"
  sleep "$((down_ms / 1000)).$(printf %03d $((down_ms % 1000)))"
  stack_kafka_start 2>>"$kill_log"
  kafka_done=$((kafka_done + 1))
  say "restarted Kafka ($kafka_done/$kafka_restarts)"
}
# A consumer must only ever stop because we killed it: one that exited by
# itself (a crash, a sanitizer report, giving up on a server) is counted as an
# unplanned exit, and fails the run. SIGKILL of an exited, unreaped process
# succeeds, so the exit status tells which it was (137 is our SIGKILL).
kill_one() { # NAME
  local var="${1}_pid" pid status=0
  pid=${!var}
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || status=$?
  forget_pid "$pid"
  echo "$(date +%T.%3N) +${SECONDS}s SIGKILL $1 pid $pid" >>"$kill_log"
  if ((status != 137)); then
    unplanned_exits=$((unplanned_exits + 1))
    say "FAIL: $1 (pid $pid) had exited by itself with status $status (log: $W/$1.log)"
  fi
  "start_$1"
}

start_hot
start_cold
producer_loop >>"$W/producer.log" 2>&1 &
producer_pid=$!
PIDS+=("$producer_pid")
say "producing, killing each consumer $kills times over about ${seconds}s (kill log: $kill_log)"

soak_start=$SECONDS
for ((i = 1; i <= total_kills; i++)); do
  # Uniform in [50, 2 * mean - 50] ms: the mean spacing spreads the kills over
  # the requested time.
  span=$((2 * mean_ms - 100))
  ((span > 0)) || span=1
  delay=$((50 + (RANDOM * 32768 + RANDOM) % span))
  sleep "$((delay / 1000)).$(printf %03d $((delay % 1000)))"
  # Random order, but each consumer gets exactly `kills`.
  if ((hot_kills < kills && (cold_kills >= kills || RANDOM % 2 == 0))); then
    kill_one hot
    hot_kills=$((hot_kills + 1))
  else
    kill_one cold
    cold_kills=$((cold_kills + 1))
  fi
  # Restarts spread evenly over the kills, PostgreSQL's and Kafka's interleaved.
  if ((pg_done < pg_restarts && i >= (pg_done + 1) * total_kills / (pg_restarts + 1))); then
    restart_pg
  fi
  if ((kafka_done < kafka_restarts && i >= (2 * kafka_done + 1) * total_kills / (2 * kafka_restarts + 1) + 1)); then
    restart_kafka
  fi
  if ((i % 20 == 0 || i == total_kills)); then
    say "kills $i/$total_kills (hot $hot_kills, cold $cold_kills), restarts pg $pg_done kafka $kafka_done," \
      "records produced $(produced_sum sim 2), bad records $(produced_sum bad 2)"
  fi
done
touch "$W/stop-producing"
producer_status=0
wait "$producer_pid" || producer_status=$?
forget_pid "$producer_pid"
# A producer loop that died early would leave the faults hitting idle consumers.
((producer_status == 0)) || { say "FAIL: the producer loop exited with status $producer_status"; tail -n 5 "$W/producer.log"; exit 1; }
say "faults over after $((SECONDS - soak_start))s; waiting for the soak's groups to catch up"
records=$(end_offsets "${SOURCE_TOPICS[@]}")
wait_groups "$DATABASE_URL" soak.hot soak.cold
stop_consumer hot
stop_consumer cold
say "soak groups caught up: $records records; building the reference by a clean replay"

# ------------------------------------------------------------ reference
# Fresh groups into the second database, never killed.
DATABASE_URL=$REF_URL start_consumer refhot hot --group soak.ref.hot
DATABASE_URL=$REF_URL start_consumer refcold cold --group soak.ref.cold
wait_groups "$REF_URL" soak.ref.hot soak.ref.cold
stop_consumer refhot
stop_consumer refcold
say "reference built"

# ------------------------------------------------------------ checks
# differences: eie-admin verify compares the two databases per device and
# day (rows, energy, a checksum of every row) and the hot state.
verify_status=0
"$BIN/eie-admin" verify --database-url "$DATABASE_URL" --against "$REF_URL" >"$W/verify.out" 2>&1 ||
  verify_status=$?
differences=$(sed -nE 's/^verify: [0-9]+ groups compared, ([0-9]+) differences$/\1/p' "$W/verify.out")
[[ -n $differences ]] || { say "FAIL: verify printed no summary: $(tail -n 5 "$W/verify.out")"; differences=unknown; }
((verify_status == 0)) || say "verify: $(head -n 10 "$W/verify.out")"

# lost and duplicated, per reading (stream, device, timestamp): the reference's
# history is the set of distinct valid readings on the topics (a clean replay
# stores each once, repeats merged by the primary key). lost = readings in the
# reference missing from the soak's history; duplicated = readings stored more
# than once in the soak's history plus readings it holds that the reference
# does not (a reading stored twice under a changed key or from a dead-lettered
# record). The history's primary key rules out the first kind; a reading
# applied twice with other values would show in verify's checksums instead.
history_keys() { # URL FILE
  PGTZ=UTC psql "$1" -X -q -v ON_ERROR_STOP=1 -At -F ' ' \
    -c "\\copy (SELECT 'meter', meter_id, ts FROM meter_history UNION ALL SELECT 'vehicle', vehicle_id, ts FROM vehicle_history) TO '$2'"
  LC_ALL=C sort -o "$2" "$2"
}
history_keys "$DATABASE_URL" "$W/keys.soak"
history_keys "$REF_URL" "$W/keys.ref"
lost=$(LC_ALL=C comm -23 <(LC_ALL=C sort -u "$W/keys.ref") <(LC_ALL=C sort -u "$W/keys.soak") | wc -l)
extra=$(LC_ALL=C comm -13 <(LC_ALL=C sort -u "$W/keys.ref") <(LC_ALL=C sort -u "$W/keys.soak") | wc -l)
repeated=$(( $(wc -l <"$W/keys.soak") - $(LC_ALL=C sort -u "$W/keys.soak" | wc -l) ))
duplicated=$((extra + repeated))
stored=$(wc -l <"$W/keys.soak")

# dead letters: each record on the dead-letter topic names its group and its
# source (eie.consumer.group, eie.source.topic/partition/offset). The bad
# records are those the reference groups, which were never killed,
# dead-lettered; each soak group must have dead-lettered every one of them.
# dead_letters counts distinct (group, source) pairs of the soak's groups;
# missing_dead_letters the pairs it lacks; dead_letter_repeats the records
# beyond the first per pair, which must be none: dead letters are published
# before the batch commits, and a consumer killed in between reads the batch
# again, but passes over those its group published already
# (consumers/dead_seen.h).
kcat -C -b "$B" -t "$DEAD_TOPIC" -o beginning -e -q -f '%h\n' >"$W/dead-letters" 2>>"$W/kcat.log"
read -r bad_ref_hot bad_ref_cold dead_letters missing_dead dead_letter_repeats < <(python3 - "$W/dead-letters" <<'PY'
import re, sys
# kcat prints headers as key=value joined by commas, and eie.error may hold
# commas, and other headers may follow (a truncated dead letter's eie.original.*):
# each field is taken by its own name, the last occurrence (eie.error comes first).
def header(name, line):
    found = re.findall(r"(?:^|,)" + re.escape(name) + r"=([^,]*)", line)
    return found[-1] if found else None
records, sources = {}, {}
for line in open(sys.argv[1], errors="replace"):
    line = line.rstrip("\n")
    group = header("eie.consumer.group", line)
    source = tuple(header("eie.source." + k, line) for k in ("topic", "partition", "offset"))
    if group is None or None in source:
        continue
    records[group] = records.get(group, 0) + 1
    sources.setdefault(group, set()).add(source)
get = lambda g: sources.get(g, set())
expected = {"soak.hot": get("soak.ref.hot"), "soak.cold": get("soak.ref.cold")}
distinct = sum(len(get(g)) for g in expected)
missing = sum(len(expected[g] - get(g)) for g in expected)
# A source the reference did not dead-letter, dead-lettered by the soak, is wrong too.
missing += sum(len(get(g) - expected[g]) for g in expected)
repeats = sum(records.get(g, 0) - len(get(g)) for g in expected)
print(len(get("soak.ref.hot")), len(get("soak.ref.cold")), distinct, missing, repeats)
PY
)
bad_records=$(( $(produced_sum bad 2) + $(produced_sum sim 5) ))
sim_failed=$(( $(produced_sum sim 3) + $(produced_sum sim 4) ))
((sim_failed == 0)) || say "note: the simulators reported $sim_failed records failed or unconfirmed (the topics stay the truth)"
hot_passed=$(stored_offsets "$DATABASE_URL" soak.hot)

status=0
for v in lost duplicated differences missing_dead dead_letter_repeats unplanned_exits; do
  [[ ${!v} == 0 ]] || { say "FAIL: $v=${!v}"; status=1; }
done
# The reference's own bad-record count must be what the producers made
# (simulated invalid readings + kcat's records), else the check above proves nothing.
if [[ $bad_ref_hot != "$bad_records" || $bad_ref_cold != "$bad_records" ]]; then
  say "FAIL: the producers made $bad_records bad records; the reference groups dead-lettered $bad_ref_hot (hot) and $bad_ref_cold (cold)"
  status=1
fi
# And the reference's history must hold what the simulators made, counted on
# their side: every record sent, less the assignments (one per vehicle at each
# simulator's start, and the reassignments), the invalid readings and the
# repeats (the same reading sent twice). Only when no send failed: a failed
# or unconfirmed record may or may not be on the topics.
made=$(( $(produced_sum sim 2) - $(grep -c '^sim ' "$W/produced") * vehicles - $(produced_sum sim 7) \
  - $(produced_sum sim 5) - $(produced_sum sim 6) ))
ref_rows=$(wc -l <"$W/keys.ref")
if ((sim_failed == 0 && ref_rows != made)); then
  say "FAIL: the simulators made $made distinct valid readings; the reference holds $ref_rows"
  status=1
fi
[[ $hot_passed == "$records" ]] || { say "FAIL: soak.hot stored $hot_passed offsets of $records"; status=1; }
say "history rows: $stored (reference $ref_rows, made by the simulators $made); $(tail -n 1 "$W/verify.out")"
echo "soak: kills=$((hot_kills + cold_kills)) restarts=$((pg_done + kafka_done)) records=$records" \
  "readings=$made bad_records=$bad_records lost=$lost duplicated=$duplicated differences=$differences" \
  "dead_letters=$dead_letters missing_dead_letters=$missing_dead dead_letter_repeats=$dead_letter_repeats" \
  "unplanned_exits=$unplanned_exits" \
  "seed=$seed seconds=$SECONDS"
exit "$status"
