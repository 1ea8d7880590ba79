#!/usr/bin/env bash
# The producer and simulator on their unhappy paths: bad lines are reported with
# their line numbers and make the exit status non-zero while good lines still
# go; --strict stops at the first; an unreachable broker means records are not
# acknowledged, said so, exit non-zero. And every program's usage errors exit 2.
source "$(dirname "$0")/lib.sh"
it_setup 1

expect_status() { # EXPECTED DESCRIPTION CMD...
    local expected=$1 what=$2 status=0
    shift 2
    "$@" >"$IT_DIR/out.txt" 2>"$IT_DIR/err.txt" || status=$?
    it_expect_eq "$expected" "$status" "$what: exit status"
}
consumed() { # TOPIC_SUFFIX: messages on a topic
    kcat -C -b "$KAFKA_BOOTSTRAP_SERVERS" -t "${EIE_TOPIC_PREFIX}$1" -o beginning -e -q -f '%k\n' | wc -l
}

ts=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)
cat >"$IT_DIR/mixed.jsonl" <<JSON
{"meterId":"M1","kwhConsumedAc":0.5,"voltage":230,"timestamp":"$ts"}
{"meterId":"M1","kwhConsumedAc":0.5,"voltage":230,
{"vehicleId":"V1","soc":150,"kwhDeliveredDc":0.4,"batteryTemp":30,"timestamp":"$ts"}

{"vehicleId":"V1","soc":50,"kwhDeliveredDc":0.4,"batteryTemp":30,"timestamp":"$ts"}
JSON
expect_status 1 "a file with bad lines" "$EIE_BIN/eie-produce" "$IT_DIR/mixed.jsonl"
grep -q "mixed.jsonl:2: rejected: not JSON" "$IT_DIR/err.txt" || it_fail "line 2 not reported: $(cat "$IT_DIR/err.txt")"
grep -q "mixed.jsonl:3: rejected: soc: 150 is outside 0..100" "$IT_DIR/err.txt" || it_fail "line 3 not reported"
grep -q "4 read, 2 sent, 2 acknowledged, 2 rejected, 0 failed, 0 unconfirmed" "$IT_DIR/err.txt" ||
    it_fail "summary: $(tail -n 1 "$IT_DIR/err.txt")"
it_expect_eq 1 "$(consumed meter-readings)" "the good meter line was produced"
it_expect_eq 1 "$(consumed vehicle-readings)" "the good vehicle line was produced"

expect_status 1 "--strict" "$EIE_BIN/eie-produce" --strict "$IT_DIR/mixed.jsonl"
grep -q "2 read, 1 sent, 1 acknowledged, 1 rejected" "$IT_DIR/err.txt" || it_fail "--strict did not stop at line 2"

expect_status 0 "good lines on stdin" "$EIE_BIN/eie-produce" --type vehicle - <<<"{\"vehicleId\":\"V2\",\"soc\":1,\"kwhDeliveredDc\":0,\"batteryTemp\":1,\"timestamp\":\"$ts\"}"
expect_status 1 "a meter line given as --type vehicle" "$EIE_BIN/eie-produce" --type vehicle - <<<"{\"meterId\":\"M1\",\"kwhConsumedAc\":0.5,\"voltage\":230,\"timestamp\":\"$ts\"}"
grep -q "vehicleId: missing" "$IT_DIR/err.txt" || it_fail "--type vehicle: $(cat "$IT_DIR/err.txt")"
expect_status 1 "a missing file" "$EIE_BIN/eie-produce" "$IT_DIR/nope.jsonl"
grep -q "cannot open" "$IT_DIR/err.txt" || it_fail "missing file not named"

# CSV: a header naming the fields, quoting, bad rows reported by line.
cat >"$IT_DIR/vehicles.csv" <<CSV
vehicleId,soc,kwhDeliveredDc,batteryTemp,timestamp
V3,55.5,0.25,31,$ts
"V,4",60,0.3,30.5,$(date +%s)000
V5,abc,0.3,30,$ts
V6,50,0.3
CSV
expect_status 1 "a CSV file with bad rows" "$EIE_BIN/eie-produce" "$IT_DIR/vehicles.csv"
grep -q "vehicles.csv:4: rejected: soc: must be a number" "$IT_DIR/err.txt" || it_fail "CSV line 4: $(cat "$IT_DIR/err.txt")"
grep -q "vehicles.csv:5: rejected: 3 fields where the header names 5" "$IT_DIR/err.txt" || it_fail "CSV line 5 not reported"
grep -q "4 read, 2 sent, 2 acknowledged, 2 rejected" "$IT_DIR/err.txt" || it_fail "CSV summary: $(tail -n 1 "$IT_DIR/err.txt")"
printf 'vehicleId,meterId,validFrom\nV3,M3,%s\n' "$ts" | "$EIE_BIN/eie-produce" --format csv - 2>"$IT_DIR/err.txt" ||
    it_fail "CSV assignments from stdin: $(cat "$IT_DIR/err.txt")"
it_expect_eq "V,4 V1 V2 V3" "$(kcat -C -b "$KAFKA_BOOTSTRAP_SERVERS" -t "${EIE_TOPIC_PREFIX}vehicle-readings" -o beginning -e -q -f '%k\n' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')" \
    "vehicle readings on the topic, keyed by id (quoted CSV field kept whole)"
expect_status 2 "eie-produce --format xml" "$EIE_BIN/eie-produce" --format xml

# Nothing listens on port 1: the record is never acknowledged.
expect_status 1 "an unreachable broker" "$EIE_BIN/eie-produce" -b 127.0.0.1:1 \
    -X message.timeout.ms=2000 --flush-timeout-ms 5000 - <<<"{\"vehicleId\":\"V2\",\"soc\":1,\"kwhDeliveredDc\":0,\"batteryTemp\":1,\"timestamp\":\"$ts\"}"
grep -q "1 record was not acknowledged" "$IT_DIR/err.txt" || it_fail "unacknowledged record not reported: $(tail -n 2 "$IT_DIR/err.txt")"

# The simulator: n vehicles, n meters, n assignments, all acknowledged.
expect_status 0 "eie-simulate --ticks 2" "$EIE_BIN/eie-simulate" --vehicles 7 --interval-s 1 --ticks 2 --reassign-rate 0
it_expect_eq $((1 + 7)) "$(consumed vehicle-assignments)" "simulated assignments (and the CSV one)"
# 2 from the files above (line 1 went out twice), 7 meters x 2 intervals.
it_expect_eq $((2 + 14)) "$(consumed meter-readings)" "simulated meter readings"

# Usage errors: exit 2 and a message naming the setting.
expect_status 2 "eie-produce --type bogus" "$EIE_BIN/eie-produce" --type bogus
grep -q -- "--type" "$IT_DIR/err.txt" || it_fail "--type not named"
expect_status 2 "eie-produce -X unknown" "$EIE_BIN/eie-produce" -X no.such.property=1
expect_status 2 "eie-consumer without --store" "$EIE_BIN/eie-consumer"
expect_status 2 "eie-consumer --batch-size 0" "$EIE_BIN/eie-consumer" --store cold --batch-size 0
grep -q -- "--batch-size" "$IT_DIR/err.txt" || it_fail "--batch-size not named"
expect_status 2 "eie-consumer --writers 9" "$EIE_BIN/eie-consumer" --store cold --writers 9
grep -q -- "--writers" "$IT_DIR/err.txt" || it_fail "--writers not named"
EIE_BATCH_SIZE=lots expect_status 2 "EIE_BATCH_SIZE=lots" "$EIE_BIN/eie-consumer" --store cold
grep -q "EIE_BATCH_SIZE" "$IT_DIR/err.txt" || it_fail "EIE_BATCH_SIZE not named"
expect_status 2 "eie-api --port 70000" "$EIE_BIN/eie-api" --port 70000
expect_status 2 "eie-simulate --vehicles 0" "$EIE_BIN/eie-simulate" --vehicles 0
expect_status 2 "eie-simulate --chargers-per-meter 0" "$EIE_BIN/eie-simulate" --chargers-per-meter 0
grep -q -- "--chargers-per-meter" "$IT_DIR/err.txt" || it_fail "--chargers-per-meter not named"
EIE_SIM_CHARGERS_PER_METER=bank expect_status 2 "EIE_SIM_CHARGERS_PER_METER=bank" "$EIE_BIN/eie-simulate"
grep -q "EIE_SIM_CHARGERS_PER_METER" "$IT_DIR/err.txt" || it_fail "EIE_SIM_CHARGERS_PER_METER not named"
expect_status 2 "eie-simulate: a bank larger than the fleet" "$EIE_BIN/eie-simulate" --vehicles 3 --chargers-per-meter 4
grep -q -- "--chargers-per-meter (EIE_SIM_CHARGERS_PER_METER) '4': more chargers than the 3 vehicles (--vehicles, EIE_SIM_VEHICLES) to fill them" "$IT_DIR/err.txt" ||
    it_fail "a bank larger than the fleet: $(cat "$IT_DIR/err.txt")"
expect_status 2 "eie-admin bogus" "$EIE_BIN/eie-admin" bogus
for prog in eie-produce eie-simulate eie-consumer eie-api eie-admin; do
    expect_status 0 "$prog --help" "$EIE_BIN/$prog" --help
    grep -q "Usage: $prog" "$IT_DIR/out.txt" || it_fail "$prog --help prints no usage"
done
grep -q -- "--chargers-per-meter" <("$EIE_BIN/eie-simulate" --help) || it_fail "eie-simulate --help lacks --chargers-per-meter"
it_finish
