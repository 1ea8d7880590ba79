#!/usr/bin/env bash
# eie-admin on its own:
# - topics: what deploy/local.sh runs (no flags) creates the four topics with
#   12 partitions and retention.ms=-1 (history kept for replays), as the
#   broker reports them; --partitions and --retention-ms (or
#   EIE_TOPIC_RETENTION_MS) set others; running it again changes nothing;
# - rollup: on a database whose summaries were never made, brings every hour
#   closed 15 minutes ago up to date at once (and none later), and summarises
#   again an hour a late reading made dirty.
source "$(dirname "$0")/lib.sh"
it_setup 1

# ---- topics, as the broker reports them.
describe_topics() { # PREFIX: "topic partitions retention.ms" per topic
    local prefix=$1 t
    (
        source "$EIE_SOURCE_DIR/deploy/lib.sh"
        "$(eie__java)" -Xmx256m -cp "$(eie_kafka_libs)/*" kafka.admin.ConfigCommand \
            --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --describe --entity-type topics
    ) 2>>"$IT_DIR/admin.log" >"$IT_DIR/configs.txt"
    for t in meter-readings vehicle-readings vehicle-assignments dead-letters; do
        printf '%s %s %s\n' "$t" \
            "$(kcat -L -b "$KAFKA_BOOTSTRAP_SERVERS" -t "$prefix$t" 2>>"$IT_DIR/kcat.log" | sed -nE "s/^ *topic \"$prefix$t\" with ([0-9]+) partitions.*/\1/p")" \
            "$(awk -v t="$prefix$t" '$0 ~ /^Dynamic configs for topic / { cur = $5 } cur == t && $1 ~ /^retention\.ms=/ { sub(/^retention\.ms=/, "", $1); print $1 }' "$IT_DIR/configs.txt")"
    done
}
deploy_prefix="${EIE_TOPIC_PREFIX}deploy."
EIE_TOPIC_PREFIX=$deploy_prefix "$EIE_BIN/eie-admin" topics 2>>"$IT_DIR/admin.log" || it_fail "eie-admin topics failed"
expected=$(printf '%s 12 -1\n' meter-readings vehicle-readings vehicle-assignments dead-letters)
it_expect_eq "$expected" "$(describe_topics "$deploy_prefix")" "deploy's topics: 12 partitions, retention.ms=-1"
other_prefix="${EIE_TOPIC_PREFIX}other."
EIE_TOPIC_PREFIX=$other_prefix "$EIE_BIN/eie-admin" topics --partitions 2 --retention-ms 3600000 2>>"$IT_DIR/admin.log" ||
    it_fail "eie-admin topics --partitions 2 --retention-ms 3600000 failed"
env_prefix="${EIE_TOPIC_PREFIX}env."
EIE_TOPIC_PREFIX=$env_prefix EIE_TOPIC_PARTITIONS=3 EIE_TOPIC_RETENTION_MS=86400000 "$EIE_BIN/eie-admin" topics 2>>"$IT_DIR/admin.log" ||
    it_fail "eie-admin topics from the environment failed"
it_expect_eq "$(printf '%s 2 3600000\n' meter-readings vehicle-readings vehicle-assignments dead-letters)" \
    "$(describe_topics "$other_prefix")" "--partitions 2 --retention-ms 3600000"
it_expect_eq "$(printf '%s 3 86400000\n' meter-readings vehicle-readings vehicle-assignments dead-letters)" \
    "$(describe_topics "$env_prefix")" "EIE_TOPIC_PARTITIONS=3 EIE_TOPIC_RETENTION_MS=86400000"
EIE_TOPIC_PREFIX=$deploy_prefix "$EIE_BIN/eie-admin" topics 2>>"$IT_DIR/admin.log" || it_fail "eie-admin topics is not idempotent"
it_expect_eq "$expected" "$(describe_topics "$deploy_prefix")" "a second run changes nothing"

# ---- rollup.
base=$(( $(date -u +%s) / 600 * 600 ))
t() { it_time "$base" "$1"; }
for m in $(seq -300 10 0); do
    echo "{\"meterId\":\"M1\",\"kwhConsumedAc\":0.5,\"voltage\":230,\"timestamp\":\"$(t "$m")\"}"
    echo "{\"meterId\":\"M2\",\"kwhConsumedAc\":1.25,\"voltage\":230,\"timestamp\":\"$(t "$m")\"}"
    echo "{\"vehicleId\":\"V1\",\"soc\":50,\"kwhDeliveredDc\":0.25,\"batteryTemp\":$((20 + (m / 10) % 3)),\"timestamp\":\"$(t "$m")\"}"
done >"$IT_DIR/readings.jsonl"
"$EIE_BIN/eie-produce" "$IT_DIR/readings.jsonl" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce failed"
# Its own housekeeping only once, at its start, long before it matters here.
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 --housekeep-interval-s 86400
it_wait_for "93 history rows" 60 it_sql_equals 93 \
    "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)"
# As if loaded while no cold consumer ran: no summaries, nothing marked.
it_psql -c "TRUNCATE meter_hourly, vehicle_hourly, hourly_rollup_dirty" \
    -c "UPDATE hourly_rollup SET summarised_until = NULL"
# The summaries that should exist: every hour closed 15 minutes ago, from the history.
summaries_differ() {
    it_psql -c "WITH cutoff AS (SELECT date_trunc('hour', now() - interval '15 minutes', 'UTC') AS c),
        m AS (SELECT meter_id, date_trunc('hour', ts, 'UTC') AS hour, count(*) AS readings, sum(kwh_consumed_ac) AS kwh
              FROM meter_history, cutoff WHERE ts < c GROUP BY 1, 2),
        v AS (SELECT vehicle_id, date_trunc('hour', ts, 'UTC') AS hour, count(*) AS readings, sum(kwh_delivered_dc) AS kwh, sum(battery_temp) AS temp
              FROM vehicle_history, cutoff WHERE ts < c GROUP BY 1, 2)
        SELECT (SELECT count(*) FROM ((SELECT * FROM m EXCEPT SELECT meter_id, hour, readings, kwh_consumed_ac FROM meter_hourly)
                                      UNION ALL (SELECT meter_id, hour, readings, kwh_consumed_ac FROM meter_hourly EXCEPT SELECT * FROM m)) d)
             + (SELECT count(*) FROM ((SELECT * FROM v EXCEPT SELECT vehicle_id, hour, readings, kwh_delivered_dc, battery_temp_sum FROM vehicle_hourly)
                                      UNION ALL (SELECT vehicle_id, hour, readings, kwh_delivered_dc, battery_temp_sum FROM vehicle_hourly EXCEPT SELECT * FROM v)) d)"
}
it_expect_eq 0 "$(it_psql -c "SELECT count(*) FROM meter_hourly")" "no summaries before eie-admin rollup"
"$EIE_BIN/eie-admin" rollup 2>>"$IT_DIR/admin.log" || it_fail "eie-admin rollup failed"
grep -q "hourly summaries up to date" "$IT_DIR/admin.log" || it_fail "eie-admin rollup did not report"
it_expect_eq 0 "$(summaries_differ)" "after eie-admin rollup: every closed hour summarised, exactly"
it_expect_eq "true|true" "$(it_psql -c "SELECT (SELECT count(DISTINCT hour) >= 4 FROM meter_hourly) || '|' ||
    (SELECT bool_and(summarised_until = date_trunc('hour', now() - interval '15 minutes', 'UTC')) FROM hourly_rollup)")" \
    "at least four hours summarised, up to the hour closed 15 minutes ago"

# A late reading for a summarised hour marks it dirty; rollup summarises it again.
late=$(t -295)
"$EIE_BIN/eie-produce" - <<<"{\"meterId\":\"M1\",\"kwhConsumedAc\":2,\"voltage\":230,\"timestamp\":\"$late\"}" 2>>"$IT_DIR/produce.log" ||
    it_fail "producing the late reading failed"
it_wait_for "the late reading stored" 60 it_sql_equals 1 "SELECT count(*) FROM meter_history WHERE ts = '$late'"
it_expect_eq 1 "$(it_psql -c "SELECT count(*) FROM hourly_rollup_dirty")" "the late reading's hour is dirty"
"$EIE_BIN/eie-admin" rollup 2>>"$IT_DIR/admin.log" || it_fail "eie-admin rollup failed"
it_expect_eq "0|0" "$(summaries_differ)|$(it_psql -c "SELECT count(*) FROM hourly_rollup_dirty")" \
    "after eie-admin rollup: the dirty hour summarised again, none dirty"
it_stop cold
it_finish
