#!/usr/bin/env bash
# Day partitions of the cold history: prepared ahead of time for exactly
# --partitions-ahead-days days after today (5 here, not the default 3), created
# on demand for late or early readings (which must not fail a batch), and
# dropped whole once older than the retention: --retention-days 2 keeps today
# and the 2 days before it, and drops the day before those, with its hourly
# summaries.
source "$(dirname "$0")/lib.sh"
it_setup 1

day() { date -u -d "$1" +%Y%m%d; }
# Noon of a day relative to today, so that no reading sits near a day's edge.
noon() { date -u -d "$(date -u -d "$1" +%F) 12:00" +%Y-%m-%dT%H:%M:%SZ; }
at() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
partitions() { it_psql -c "SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '$1'::regclass"; }
# expected TABLE DAY...: the partition names of those days, sorted, one line
expected() {
    local table=$1 d
    shift
    for d in "$@"; do echo "${table}_$(day "$d")"; done | sort -u | tr '\n' ' ' | sed 's/ $//'
}

it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 --partitions-ahead-days 5 --housekeep-interval-s 1
{
    for when in "-3 days" "-2 days" "-1 day"; do
        echo "{\"meterId\":\"M1\",\"kwhConsumedAc\":1,\"voltage\":230,\"timestamp\":\"$(noon "$when")\"}"
        echo "{\"vehicleId\":\"V1\",\"soc\":50,\"kwhDeliveredDc\":0.9,\"batteryTemp\":30,\"timestamp\":\"$(noon "$when")\"}"
    done
    echo "{\"meterId\":\"M1\",\"kwhConsumedAc\":1,\"voltage\":230,\"timestamp\":\"$(at "-1 min")\"}"
    echo "{\"vehicleId\":\"V1\",\"soc\":50,\"kwhDeliveredDc\":0.9,\"batteryTemp\":30,\"timestamp\":\"$(at "-1 min")\"}"
    # Early by four minutes: allowed, and it may fall on tomorrow.
    echo "{\"vehicleId\":\"V2\",\"soc\":50,\"kwhDeliveredDc\":0.9,\"batteryTemp\":30,\"timestamp\":\"$(at "+4 min")\"}"
} >"$IT_DIR/readings.jsonl"
"$EIE_BIN/eie-produce" "$IT_DIR/readings.jsonl" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed"
it_wait_for "9 history rows" 60 it_sql_equals 9 \
    "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)"

# The readings' days on demand, and today to today + 5 ahead: no more, no fewer.
days=("-3 days" "-2 days" "-1 day" now "+1 day" "+2 days" "+3 days" "+4 days" "+5 days")
for table in meter_history vehicle_history; do
    it_expect_eq "$(expected "$table" "${days[@]}")" "$(partitions "$table")" \
        "$table: the readings' days and exactly 5 days ahead"
done
# The hours of the old days are summarised (closed for more than 15 minutes).
it_wait_for "the old days' hours summarised" 30 it_sql_equals 3 \
    "SELECT count(*) FROM meter_hourly WHERE hour < date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
it_stop cold

# Restarted with a retention of 2 days: the day 3 days back goes, the day 2
# days back (the boundary) stays, and so does everything after it.
it_start cold2 "$EIE_BIN/eie-consumer" --store cold --retention-days 2 --housekeep-interval-s 1
it_wait_for "the oldest day partitions to be dropped" 60 it_sql_equals 0 \
    "SELECT count(*) FROM pg_class WHERE relname IN ('meter_history_$(day '-3 days')', 'vehicle_history_$(day '-3 days')')"
for table in meter_history vehicle_history; do
    it_expect_eq "$(expected "$table" "${days[@]:1}")" "$(partitions "$table")" \
        "$table: the day 3 days back dropped, the day 2 days back kept"
done
it_expect_eq "7|$(noon '-2 days')" "$(it_psql -c "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history) || '|' || to_char(min(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM vehicle_history")" \
    "readings within the retention are kept, the boundary day's included"
it_expect_eq "$(noon '-2 days')" "$(it_psql -c "SELECT to_char(min(hour) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM meter_hourly")" \
    "the dropped day's hourly summaries went with it"
grep -q "retention: dropped 1 day partition(s) of meter_history" "$IT_DIR/cold2.log" || it_fail "the drop was not logged"
it_stop cold2
it_finish
