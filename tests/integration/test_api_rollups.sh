#!/usr/bin/env bash
# Hourly summaries behind the performance endpoint: the answer is the same
# whether the hours are read raw, dirty or summarised; a late reading for a
# summarised hour counts at once (as soon as the API hears of its commit) and
# after the hour is summarised again; a repeated reading counts once; a report
# whose hours no notice named asks the database nothing, unless the API lost
# the notices' connection.
source "$(dirname "$0")/lib.sh"
it_setup 2

t0=$(( $(date -u +%s) / 60 * 60 ))
t() { it_time "$t0" "$1"; }
# V2 moves from M2 to M3 in the middle of an hour: AC counts from each meter
# only while V2 was on it, through the caches as through the database.
{
    echo "{\"vehicleId\":\"V1\",\"meterId\":\"M1\",\"validFrom\":\"$(t -400)\"}"
    echo "{\"vehicleId\":\"V2\",\"meterId\":\"M2\",\"validFrom\":\"$(t -400)\"}"
    echo "{\"vehicleId\":\"V2\",\"meterId\":\"M3\",\"validFrom\":\"$(t -215)\"}"
} >"$IT_DIR/assignments.jsonl"
for i in $(seq 0 24); do
    for m in 1 2 3; do
        echo "{\"meterId\":\"M$m\",\"kwhConsumedAc\":$((m - 1)).5,\"voltage\":230,\"timestamp\":\"$(t $((-300 + 10 * i)))\"}"
    done
done >"$IT_DIR/meters.jsonl"
for i in $(seq 0 24); do
    for v in 1 2; do
        echo "{\"vehicleId\":\"V$v\",\"soc\":50,\"kwhDeliveredDc\":0.25,\"batteryTemp\":$((20 + 10 * (i % 2))),\"timestamp\":\"$(t $((-300 + 10 * i)))\"}"
    done
done >"$IT_DIR/vehicles.jsonl"

it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 --housekeep-interval-s 1
port=$(it_free_port)
it_start api "$EIE_BIN/eie-api" --port "$port"
it_wait_for "the API" 30 curl -sf "http://127.0.0.1:$port/healthz"

"$EIE_BIN/eie-produce" --type assignment "$IT_DIR/assignments.jsonl" 2>>"$IT_DIR/produce.log" || it_fail "producing assignments"
"$EIE_BIN/eie-produce" --type meter "$IT_DIR/meters.jsonl" 2>>"$IT_DIR/produce.log" || it_fail "producing meter readings"
"$EIE_BIN/eie-produce" --type vehicle "$IT_DIR/vehicles.jsonl" 2>>"$IT_DIR/produce.log" || it_fail "producing vehicle readings"
stored() { it_sql_equals "$1" "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)"; }
it_wait_for "the readings" 60 stored 125

url="http://127.0.0.1:$port/v1/analytics/performance/V1?from=$(t -330)&to=$(t -30)"
metrics() { curl -sf "$url" | jq -c '.metrics'; }
# How many reports came from the API's caches (memory and the window's edges)
# rather than from the database alone.
from_caches() {
    curl -sf "http://127.0.0.1:$port/metrics" |
        awk '/^eie_api_performance_reports_total\{source="caches"\}/ { n = $2 } END { print n + 0 }'
}
# How many of those asked the database nothing: the summaries' and the hot
# store's notices vouched for the caches.
from_memory() {
    curl -sf "http://127.0.0.1:$port/metrics" |
        awk '/^eie_api_performance_reports_from_memory_total / { n = $2 } END { print n + 0 }'
}
# Once the caches have loaded the summaries, a report comes from them.
served_from_caches() {
    local before
    before=$(from_caches)
    metrics >/dev/null
    (($(from_caches) > before))
}
# A report from the caches that gives $1, the answer of command $2. Just after
# a change, a report from the caches may be the older answer (from memory,
# before the API hears the commit's notice), and one that overlaps the reload
# the notice starts asks the database (what it read changed under it): so the
# caches' answer is awaited, not expected of the next report.
caches_answer() {
    local want=$1 before
    shift
    before=$(from_caches)
    [[ $("$@") == "$want" ]] && (($(from_caches) > before))
}
# Says "ok: $1" once the caches give $2, the answer of command $3.
expect_from_caches() {
    local what=$1 want=$2
    shift 2
    if it_wait_for "$what" 30 caches_answer "$want" "$@"; then
        it_log "ok: $what"
    else
        it_log "expected '$want', the last answer '$("$@")'"
    fi
}
# Summarised and clean: the hours closed 15 minutes ago or more (at least the
# first three of the readings' five) summarised, no hour dirty.
summarised() {
    it_sql_equals "0|true" "SELECT (SELECT count(*) FROM hourly_rollup_dirty) || '|' ||
        ((SELECT sum(readings) FROM vehicle_hourly WHERE vehicle_id = 'V1') >= 18 AND
         (SELECT sum(readings) FROM meter_hourly WHERE meter_id = 'M1') >= 18)"
}
it_wait_for "the hours to be summarised" 60 summarised
# The hot consumer may store V1's state before its assignments (another topic,
# and it may join its group after the cold one has stored everything).
it_wait_for "the assignments" 60 it_sql_equals 3 "SELECT count(*) FROM vehicle_meter_assignment"
# The report knows V1 once the hot consumer has stored its state and the API's
# cache has loaded it, which may come after the history: wait for that too
# (a 404 before it was seen once in CI).
it_wait_for "V1 to be known to the API" 30 curl -sf "$url"
expected='{"totalEnergyConsumedAc":12.5,"totalEnergyDeliveredDc":6.25,"efficiencyRatio":0.5,"efficiencyUnavailableReason":null,"avgBatteryTemp":24.8,"meterReadings":25,"vehicleReadings":25,"energyLossKwh":6.25}'
it_expect_eq "$expected" "$(metrics)" "the window's totals from summaries and the minutes at its edges"
it_wait_for "a report from the caches" 30 served_from_caches
it_expect_eq "$expected" "$(metrics)" "the same totals from the caches"
# V2: M2's readings before the move (1.5 kWh each), M3's from it on.
cached=$(from_caches)
v2=$(curl -sf "http://127.0.0.1:$port/v1/analytics/performance/V2?from=$(t -330)&to=$(t -30)" | jq -c '[.meterId, .metrics.totalEnergyConsumedAc, .metrics.meterReadings]')
v2_sql=$(psql "$DATABASE_URL" -X -At -c "SELECT json_build_array('M3', sum(kwh_consumed_ac), count(*)) FROM meter_history
    WHERE (meter_id = 'M2' AND ts >= '$(t -330)' AND ts < '$(t -215)') OR (meter_id = 'M3' AND ts >= '$(t -215)' AND ts < '$(t -30)')" | jq -c .)
it_expect_eq "$v2_sql" "$v2" "a meter change mid-hour"
it_expect_eq "$((cached + 1))" "$(from_caches)" "that report came from the caches"
# Edges that cover most of their hour (55 minutes each): read as the hour's
# summary less the other 5 minutes. h1 is the first whole hour of the readings;
# h1 + 3 h is at least 60 minutes ago, so all three hours are summarised.
h1=$(( (t0 - 300 * 60 + 3599) / 3600 * 3600 ))
w_from=$(it_time "$h1" 5) w_to=$(it_time "$h1" $((2 * 60 + 55)))
long_edges() {
    curl -sf "http://127.0.0.1:$port/v1/analytics/performance/V1?from=$w_from&to=$w_to" |
        jq -c '[.metrics.totalEnergyConsumedAc, .metrics.meterReadings, .metrics.totalEnergyDeliveredDc, .metrics.vehicleReadings]'
}
long_edges_history() {
    psql "$DATABASE_URL" -X -At -c "SELECT json_build_array(
        (SELECT sum(kwh_consumed_ac) FROM meter_history WHERE meter_id = 'M1' AND ts >= '$w_from' AND ts < '$w_to'),
        (SELECT count(*) FROM meter_history WHERE meter_id = 'M1' AND ts >= '$w_from' AND ts < '$w_to'),
        (SELECT sum(kwh_delivered_dc) FROM vehicle_history WHERE vehicle_id = 'V1' AND ts >= '$w_from' AND ts < '$w_to'),
        (SELECT count(*) FROM vehicle_history WHERE vehicle_id = 'V1' AND ts >= '$w_from' AND ts < '$w_to'))" | jq -c .
}
cached=$(from_caches)
it_expect_eq "$(long_edges_history)" "$(long_edges)" "edges of 55 minutes, as summaries less 5 minutes"
it_expect_eq "$((cached + 1))" "$(from_caches)" "that report came from the caches"
raw=$(psql "$DATABASE_URL" -X -At -c "SELECT sum(kwh_consumed_ac) || '|' || count(*) FROM meter_history WHERE meter_id = 'M1' AND ts >= '$(t -330)' AND ts < '$(t -30)'")
it_expect_eq "12.5|25" "$raw" "the history agrees"

# A late reading for a summarised hour, and a repeat (other value) of a reading.
# The cold consumer's housekeeping, every second so far, would summarise the
# late hour again within a second, racing the report below: until that
# report, it runs hourly.
it_stop cold
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 --housekeep-interval-s 3600
late=$(t -185)
printf '%s\n' "{\"meterId\":\"M1\",\"kwhConsumedAc\":0.5,\"voltage\":230,\"timestamp\":\"$late\"}" \
    "{\"meterId\":\"M1\",\"kwhConsumedAc\":4,\"voltage\":230,\"timestamp\":\"$(t -200)\"}" |
    "$EIE_BIN/eie-produce" --type meter - 2>>"$IT_DIR/produce.log" || it_fail "producing the late reading"
printf '%s\n' "{\"vehicleId\":\"V1\",\"soc\":50,\"kwhDeliveredDc\":0.25,\"batteryTemp\":30,\"timestamp\":\"$late\"}" |
    "$EIE_BIN/eie-produce" --type vehicle - 2>>"$IT_DIR/produce.log" || it_fail "producing the late reading"
# Both late readings, and the repeat read past (the cold group's offsets cover
# all 128 readings): the report below counts each of them.
late_stored() {
    it_sql_equals "1|1|128" "SELECT (SELECT count(*) FROM meter_history WHERE ts = '$late') || '|' ||
        (SELECT count(*) FROM vehicle_history WHERE vehicle_id = 'V1' AND ts = '$late') || '|' ||
        (SELECT sum(next_offset) FROM sink_offsets WHERE consumer_group = '${EIE_TOPIC_PREFIX}cold')"
}
it_wait_for "the late meter and vehicle readings" 60 late_stored
expected='{"totalEnergyConsumedAc":13,"totalEnergyDeliveredDc":6.5,"efficiencyRatio":0.5,"efficiencyUnavailableReason":null,"avgBatteryTemp":25,"meterReadings":26,"vehicleReadings":26,"energyLossKwh":6.5}'
# The API hears of the commit within milliseconds (the summaries' notices):
# the report counts the readings from then on.
counts() { [[ $(metrics) == "$expected" ]]; }
it_wait_for "the late readings counted" 2 counts
it_expect_eq "$expected" "$(metrics)" "a late reading counts at once"
summarised_again() {
    it_sql_equals "0|true" "SELECT (SELECT count(*) FROM hourly_rollup_dirty) || '|' ||
        ((SELECT readings FROM meter_hourly WHERE meter_id = 'M1' AND hour = date_trunc('hour', '$late'::timestamptz, 'UTC')) =
         (SELECT count(*) FROM meter_history WHERE meter_id = 'M1' AND date_trunc('hour', ts, 'UTC') = date_trunc('hour', '$late'::timestamptz, 'UTC')))"
}
# Once the caches know the hour dirty, the report comes from them again, with
# that hour read from the history (while the database alone had it dirty, from
# the database).
it_wait_for "a report from the caches with the late hour dirty" 30 served_from_caches
it_expect_eq "$expected" "$(metrics)" "the dirty hour read raw, the other hours from the caches"
# The late hour's own rows: the repeat, 15 minutes earlier, marks its hour too,
# which is another hour when an hour's start falls between the two.
it_expect_eq 2 "$(it_psql -c "SELECT count(*) FROM hourly_rollup_dirty WHERE hour = date_trunc('hour', '$late'::timestamptz, 'UTC')")" \
    "the late hour was still dirty then (both streams)"
it_stop cold
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 --housekeep-interval-s 1
it_wait_for "the late hour to be summarised again" 60 summarised_again
it_expect_eq "$expected" "$(metrics)" "and the same once its hour is summarised again"
expect_from_caches "and from the caches once they reloaded that hour" "$expected" metrics

# The sums of settled edges are remembered (api/edge_memo.c): asked again, the
# 55-minute window's 5-minute edges come from memory. A late reading inside
# one of them changes its hour's summary and the edge alike; a remembered
# edge from before would count it once too often.
expect_from_caches "the 55-minute window again, from the caches" "$(long_edges_history)" long_edges
# Once a refresh has read the hours after the last notice that named them
# (the late hour's), the report asks the database nothing.
from_memory_alone() {
    local before
    before=$(from_memory)
    [[ $(long_edges) == "$(long_edges_history)" ]] && (($(from_memory) == before + 1))
}
it_wait_for "the same report asking the database nothing" 10 from_memory_alone &&
    it_log "ok: its edges remembered: the same report asking the database nothing"
in_edge=$(date -u -d "@$((h1 + 150))" +%Y-%m-%dT%H:%M:%SZ)
echo "{\"meterId\":\"M1\",\"kwhConsumedAc\":0.75,\"voltage\":230,\"timestamp\":\"$in_edge\"}" |
    "$EIE_BIN/eie-produce" --type meter - 2>>"$IT_DIR/produce.log" || it_fail "producing the reading in an edge"
echo "{\"vehicleId\":\"V1\",\"soc\":50,\"kwhDeliveredDc\":0.125,\"batteryTemp\":30,\"timestamp\":\"$in_edge\"}" |
    "$EIE_BIN/eie-produce" --type vehicle - 2>>"$IT_DIR/produce.log" || it_fail "producing the reading in an edge"
edge_reading_summarised() {
    it_sql_equals "0|2" "SELECT (SELECT count(*) FROM hourly_rollup_dirty) || '|' ||
        ((SELECT count(*) FROM meter_hourly WHERE meter_id = 'M1' AND hour = to_timestamp($h1)
             AND readings = (SELECT count(*) FROM meter_history WHERE meter_id = 'M1' AND ts >= to_timestamp($h1) AND ts < to_timestamp($h1 + 3600))
             AND EXISTS (SELECT FROM meter_history WHERE meter_id = 'M1' AND ts = '$in_edge')) +
         (SELECT count(*) FROM vehicle_hourly WHERE vehicle_id = 'V1' AND hour = to_timestamp($h1)
             AND readings = (SELECT count(*) FROM vehicle_history WHERE vehicle_id = 'V1' AND ts >= to_timestamp($h1) AND ts < to_timestamp($h1 + 3600))
             AND EXISTS (SELECT FROM vehicle_history WHERE vehicle_id = 'V1' AND ts = '$in_edge')))"
}
it_wait_for "the reading in the edge, its hour summarised again" 60 edge_reading_summarised
expect_from_caches "a reading inside a remembered edge counts once, from the caches" "$(long_edges_history)" long_edges
it_wait_for "the reading counted once asking the database nothing" 10 from_memory_alone &&
    it_log "ok: and once from memory alone"

# While the sinks catch up on other hours, the caches still vouch for the
# hours a report uses: each hour's own stamp, not only the newest change of
# any, is compared with the database's. A second API that reloads its caches
# once a minute shows it between two of its reloads: an hour outside the
# window summarised again leaves the window's report to the caches; one inside
# it sends the report to the database, with the new reading counted.
port2=$(it_free_port)
it_start api2 "$EIE_BIN/eie-api" --port "$port2" --state-cache-ms 60000
started=$SECONDS
port=$port2
url="http://127.0.0.1:$port/v1/analytics/performance/V1?from=$w_from&to=$w_to"
it_wait_for "the second API's caches" 30 served_from_caches
it_expect_eq "$(long_edges_history)" "$(long_edges)" "the second API: the 55-minute window from its caches"
summarised_with() {
    it_sql_equals "0|1" "SELECT (SELECT count(*) FROM hourly_rollup_dirty) || '|' ||
        (SELECT count(*) FROM meter_hourly WHERE meter_id = 'M1' AND hour = date_trunc('hour', '$1'::timestamptz, 'UTC')
             AND readings = (SELECT count(*) FROM meter_history WHERE meter_id = 'M1'
                 AND date_trunc('hour', ts, 'UTC') = date_trunc('hour', '$1'::timestamptz, 'UTC'))
             AND EXISTS (SELECT FROM meter_history WHERE meter_id = 'M1' AND ts = '$1'))"
}
# A late reading of M1 at $1 (seconds since 1970), stored and its hour
# summarised again.
late_meter_reading() {
    local at
    at=$(date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ)
    echo "{\"meterId\":\"M1\",\"kwhConsumedAc\":0.25,\"voltage\":230,\"timestamp\":\"$at\"}" |
        "$EIE_BIN/eie-produce" --type meter - 2>>"$IT_DIR/produce.log" || it_fail "producing the reading at $at"
    it_wait_for "the reading at $at, its hour summarised again" 60 summarised_with "$at"
}
late_meter_reading $((h1 - 1800)) # the hour before the window's
cached=$(from_caches)
memory=$(from_memory)
it_expect_eq "$(long_edges_history)" "$(long_edges)" "another hour summarised again: the same answer"
it_expect_eq "$((cached + 1))" "$(from_caches)" "and from the caches, before they reloaded"
it_expect_eq "$((memory + 1))" "$(from_memory)" "asking the database nothing: the notice named another hour"
# An hour 48 hours before one of the window's has the same place in the
# cache's ring (--rollup-cache-hours, 48): a backfill of older days leaves the
# window's hours as they were.
late_meter_reading $((h1 + 5400 - 48 * 3600))
memory=$(from_memory)
it_expect_eq "$(long_edges_history)" "$(long_edges)" "an hour 48 hours before the window's middle one summarised again: the same answer"
it_expect_eq "$((memory + 1))" "$(from_memory)" "asking the database nothing: the notice named an hour two days older"
# An assignment is trusted as soon as the hot store announces its commit, not
# at the second API's next refresh a minute later (while the sinks drain a
# backlog, assignments keep coming). V1 stays on M1: the reports stay as they
# were.
reassigned=$(t -10)
echo "{\"vehicleId\":\"V1\",\"meterId\":\"M1\",\"validFrom\":\"$reassigned\"}" |
    "$EIE_BIN/eie-produce" --type assignment - 2>>"$IT_DIR/produce.log" || it_fail "producing the assignment"
it_wait_for "the assignment stored" 60 it_sql_equals 1 \
    "SELECT count(*) FROM vehicle_meter_assignment WHERE vehicle_id = 'V1' AND valid_from = '$reassigned'"
it_wait_for "a report from the second API's caches after the assignment" 5 served_from_caches
it_expect_eq "$(long_edges_history)" "$(long_edges)" "the same answer after the assignment"
# Deaf to the notices (their connection lost), the second API vouches for
# nothing by itself until a refresh that began after it listened again: the
# reports still come from its caches, each checked by a statement.
if ((SECONDS - started < 45)); then
    listeners="SELECT pid FROM pg_stat_activity WHERE application_name = 'eie-api summary notices'"
    deaf=$(it_psql -c "SELECT string_agg(pid::text, ',') FROM ($listeners) l")
    it_psql -c "SELECT pg_terminate_backend(pid) FROM ($listeners) l" >/dev/null
    # Both APIs listen again at once, on new connections.
    it_wait_for "the APIs to notice the lost connections" 10 it_sql_equals 2 \
        "SELECT count(*) FROM ($listeners) l WHERE pid <> ALL('{$deaf}'::int[])"
    cached=$(from_caches)
    memory=$(from_memory)
    it_expect_eq "$(long_edges_history)" "$(long_edges)" "deaf to the notices: the same answer"
    it_expect_eq "$((cached + 1))" "$(from_caches)" "from the caches"
    it_expect_eq "$memory" "$(from_memory)" "checked by the database, not vouched for by deaf caches"
fi
late_meter_reading $((h1 + 5400)) # the window's middle hour
edges_counted() { [[ $(long_edges) == "$(long_edges_history)" ]]; }
it_wait_for "the new reading counted" 2 edges_counted
cached=$(from_caches)
it_expect_eq "$(long_edges_history)" "$(long_edges)" "an hour of the window summarised again: its new reading counts"
# Past its first minute the second API may have reloaded that hour, and then
# answers from its caches, rightly.
if ((SECONDS - started < 55)); then
    it_expect_eq "$cached" "$(from_caches)" "and the report came from the database, the cache's hour being older"
else
    it_log "the second API's caches may have reloaded (after $((SECONDS - started)) s): where the report came from is not checked"
fi
it_finish
