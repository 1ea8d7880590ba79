#!/usr/bin/env bash
# Dead letters exactly once per group, across a SIGKILL between their
# acknowledgement and the batch's commit: with PostgreSQL stopped, bad records
# are read and dead-lettered (acknowledged by Kafka) while the batch cannot
# commit; the consumers are killed, PostgreSQL comes back, and the restarted
# consumers read the batch again. Each bad record must still be on the
# dead-letter topic exactly once per group, and bad records read after the
# restart must be dead-lettered as usual.
source "$(dirname "$0")/lib.sh"
# shellcheck source=../lib/stack.sh
source "$EIE_SOURCE_DIR/tests/lib/stack.sh"
it_setup 3

topic="${EIE_TOPIC_PREFIX}vehicle-readings"
dead_topic="${EIE_TOPIC_PREFIX}dead-letters"

# The suite's PostgreSQL is started again whatever happens, for the next tests.
pg_down=0
trap 'rc=$?; set +e; ((pg_down)) && stack_pg_start; (exit $rc); it_cleanup' EXIT

reading() { # VEHICLE SOC
    echo "{\"vehicleId\":\"$1\",\"soc\":$2,\"kwhDeliveredDc\":0.5,\"batteryTemp\":30,\"timestamp\":\"$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:00Z)\"}" |
        "$EIE_BIN/eie-produce" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed"
}
bad() { # NAME...: records that are not readings (bad framing), keyed by NAME,
    # in one go, so that they are likely read into one batch
    printf '%s:not a reading\n' "$@" |
        kcat -P -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$topic" -K: 2>>"$IT_DIR/kcat.log" ||
        it_fail "kcat could not produce $*"
}
high_watermarks() {
    kcat -Q -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$topic:0:-1" -t "$topic:1:-1" -t "$topic:2:-1" \
        2>>"$IT_DIR/kcat.log" | awk '{s += $NF} END {print s + 0}'
}
# Both groups have stored every record of the topic.
all_stored() {
    local end group
    end=$(high_watermarks)
    for group in cold hot; do
        it_sql_equals "$end" "SELECT coalesce(sum(next_offset), 0) FROM sink_offsets
                              WHERE consumer_group = '${EIE_TOPIC_PREFIX}$group' AND topic = '$topic'" ||
            return 1
    done
}
# "DISTINCT REPEATS": the (group, source) pairs on the dead-letter topic, and
# the records beyond the first of each pair.
dead_letters() {
    kcat -C -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$dead_topic" -o beginning -e -q -f '%h\n' 2>>"$IT_DIR/kcat.log" |
        tee "$IT_DIR/dead-letters.txt" | python3 -c '
import collections, re, sys
def header(name, line):
    found = re.findall(r"(?:^|,)" + re.escape(name) + r"=([^,]*)", line)
    return found[-1] if found else None
pairs = collections.Counter()
for line in sys.stdin:
    line = line.rstrip("\n")
    pairs[tuple(header(h, line) for h in ("eie.consumer.group", "eie.source.topic",
                                            "eie.source.partition", "eie.source.offset"))] += 1
print(len(pairs), sum(pairs.values()) - len(pairs))'
}
dead_letters_are() { [[ $(dead_letters) == "$1" ]]; }
# Both groups have published at least one dead letter.
both_dead_lettered() {
    dead_letters >/dev/null &&
        grep -q "eie.consumer.group=${EIE_TOPIC_PREFIX}cold" "$IT_DIR/dead-letters.txt" &&
        grep -q "eie.consumer.group=${EIE_TOPIC_PREFIX}hot" "$IT_DIR/dead-letters.txt"
}

start_cold() { it_start cold "$EIE_BIN/eie-consumer" --store cold --instance-id cold-1 --linger-ms 50; }
start_hot() { it_start hot "$EIE_BIN/eie-consumer" --store hot --instance-id hot-1 --linger-ms 50; }
start_cold
start_hot
reading V1 10
it_wait_for "both groups to store the first reading" 60 all_stored

stack_pg_stop
pg_down=1
it_log "PostgreSQL stopped"
bad bad-a bad-b bad-c
reading V2 20
# Acknowledged by Kafka, while their batches cannot commit. A batch holds the
# next one back until it commits, so there may be fewer than 3 per group if
# the records were read into two batches.
it_wait_for "dead letters from each group" 60 both_dead_lettered
sleep 1
it_log "dead letters published before the kill (pairs, repeats): $(dead_letters)"
for name in cold hot; do
    it_wait_for "$name to fail a commit" 30 grep -q "failed (attempt" "$IT_DIR/$name.log"
done
kill -KILL "$cold_pid" "$hot_pid"
wait "$cold_pid" 2>/dev/null || true
wait "$hot_pid" 2>/dev/null || true
it_log "consumers killed with their batches uncommitted"
stack_pg_start
pg_down=0
it_log "PostgreSQL started again"

start_cold
start_hot
it_wait_for "both groups to store the batch read again" 90 all_stored
it_expect_eq "6 0" "$(dead_letters)" "each bad record dead-lettered once per group after the restart"
it_expect_eq "1|1" "$(it_psql -c "SELECT count(*) FILTER (WHERE vehicle_id = 'V1') || '|' ||
                                          count(*) FILTER (WHERE vehicle_id = 'V2') FROM vehicle_history")" \
    "the good readings stored once"
for name in cold hot; do
    grep -q "already on the dead-letter topic" "$IT_DIR/$name.log" ||
        it_fail "$name did not say it passed over dead letters published before the kill"
done

# Bad records after the restart, the same partitions and later offsets: the
# record of what was published before must not hold back these.
bad bad-d bad-e
reading V3 30
it_wait_for "both groups to store the new records" 60 all_stored
it_wait_for "the new dead letters" 30 dead_letters_are "10 0"
it_expect_eq "10 0" "$(dead_letters)" "5 bad records, each dead-lettered once per group"
it_stop cold
it_stop hot
it_finish
