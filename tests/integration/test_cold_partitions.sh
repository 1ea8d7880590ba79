#!/usr/bin/env bash
# Day partitions of the cold history: prepared ahead of time, created on demand
# for late or early readings (which must not fail a batch), and dropped whole
# once older than the retention.
source "$(dirname "$0")/lib.sh"
it_setup 1

day() { date -u -d "$1" +%Y%m%d; }
at() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
partitions() { it_psql -c "SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '$1'::regclass"; }

it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 --partitions-ahead-days 2
{
    for when in "-5 days" "-1 day" "-1 min"; do
        echo "{\"meterId\":\"M1\",\"kwhConsumedAc\":1,\"voltage\":230,\"timestamp\":\"$(at "$when")\"}"
        echo "{\"vehicleId\":\"V1\",\"soc\":50,\"kwhDeliveredDc\":0.9,\"batteryTemp\":30,\"timestamp\":\"$(at "$when")\"}"
    done
    # Early by four minutes: allowed, and it may fall on tomorrow.
    echo "{\"vehicleId\":\"V2\",\"soc\":50,\"kwhDeliveredDc\":0.9,\"batteryTemp\":30,\"timestamp\":\"$(at "+4 min")\"}"
} >"$IT_DIR/readings.jsonl"
"$EIE_BIN/eie-produce" "$IT_DIR/readings.jsonl" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed"
it_wait_for "7 history rows" 60 it_sql_equals 7 \
    "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)"

for table in meter_history vehicle_history; do
    parts=" $(partitions $table) "
    for d in "-5 days" "-1 day" "now" "+1 day" "+2 days"; do
        [[ $parts == *" ${table}_$(day "$d") "* ]] || it_fail "$table has no partition for $d: $parts"
    done
done
it_stop cold

# Restarted with a retention of 2 days: the day 5 days back goes, the rest stays.
it_start cold2 "$EIE_BIN/eie-consumer" --store cold --retention-days 2
it_wait_for "the old day partitions to be dropped" 60 it_sql_equals 0 \
    "SELECT count(*) FROM pg_class WHERE relname IN ('meter_history_$(day '-5 days')', 'vehicle_history_$(day '-5 days')')"
it_expect_eq 5 "$(it_psql -c "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)")" \
    "readings within the retention are kept"
grep -q "retention: dropped 1 day partition(s) of meter_history" "$IT_DIR/cold2.log" || it_fail "the drop was not logged"
it_stop cold2
it_finish
