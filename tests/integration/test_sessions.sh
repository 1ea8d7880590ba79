#!/usr/bin/env bash
# Charging sessions (migration 011) with answers worked out by hand: VS charges
# across midnight while moving from meter M5 to M6 (a reading without DC at
# midnight does not end the session), stops, and charges again 20 minutes
# later: two sessions; late readings in the gap then join them into one, and a
# repeated reading changes nothing. VL charges at 0.6 efficiency and 45 °C;
# VN is charging now, past what the store has reached, and is derived on the
# spot for its own route.
source "$(dirname "$0")/lib.sh"
it_setup 2

port=$(it_free_port)
IT_API="http://127.0.0.1:$port"
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 --housekeep-interval-s 1 --session-gap-s 600
it_start api "$EIE_BIN/eie-api" --port "$port"

midnight=$(( $(date -u +%s) / 86400 * 86400 - 86400 ))
t() { it_time "$midnight" "$1"; }
t_s() { date -u -d "@$((midnight + $1))" +%Y-%m-%dT%H:%M:%SZ; } # seconds after midnight
now_min=$(( $(date -u +%s) / 60 * 60 ))
{
    echo "{\"vehicleId\":\"VS\",\"meterId\":\"M5\",\"validFrom\":\"$(t -120)\"}"
    echo "{\"vehicleId\":\"VS\",\"meterId\":\"M6\",\"validFrom\":\"$(t 5)\"}"
    echo "{\"vehicleId\":\"VL\",\"meterId\":\"M7\",\"validFrom\":\"$(t -120)\"}"
    echo "{\"vehicleId\":\"VN\",\"meterId\":\"M8\",\"validFrom\":\"$(it_time "$now_min" -60)\"}"
    for i in $(seq -10 45); do
        if ((i == 0 || (i > 20 && i < 40))); then dc=0 ac=0
        elif ((i <= 20)); then dc=0.45 ac=0.5
        else dc=0.36 ac=0.4; fi
        meter=M5; ((i >= 5)) && meter=M6
        echo "{\"vehicleId\":\"VS\",\"soc\":$((50 + (i + 10) / 2)),\"kwhDeliveredDc\":$dc,\"batteryTemp\":$((30 + (i + 10) % 3)),\"timestamp\":\"$(t "$i")\"}"
        echo "{\"meterId\":\"$meter\",\"kwhConsumedAc\":$ac,\"voltage\":230,\"timestamp\":\"$(t "$i")\"}"
    done
    for i in $(seq 100 109); do
        echo "{\"vehicleId\":\"VL\",\"soc\":$((i - 50)),\"kwhDeliveredDc\":0.3,\"batteryTemp\":45,\"timestamp\":\"$(t "$i")\"}"
        echo "{\"meterId\":\"M7\",\"kwhConsumedAc\":0.5,\"voltage\":230,\"timestamp\":\"$(t "$i")\"}"
    done
    for i in $(seq -5 -1); do
        echo "{\"vehicleId\":\"VN\",\"soc\":$((70 + i)),\"kwhDeliveredDc\":0.2,\"batteryTemp\":25,\"timestamp\":\"$(it_time "$now_min" "$i")\"}"
    done
} >"$IT_DIR/readings.jsonl"
"$EIE_BIN/eie-produce" "$IT_DIR/readings.jsonl" 2>"$IT_DIR/produce.log" || it_fail "eie-produce failed"
it_wait_for "the history" 60 it_sql_equals 137 \
    "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)"
# Sessions may be derived before the hot consumer has stored the assignments:
# those then count as late, and the sessions' energy is derived again.
it_wait_for "the sessions of yesterday, with their meters" 60 it_sql_equals 3 \
    "SELECT count(*) FILTER (WHERE meters <> '{}') FROM charging_session"
it_wait_for "the API" 30 curl -fsS "$IT_API/healthz"


range="from=$(t -60)&to=$(t 180)"
it_get "/v1/vehicles/VS/sessions?$range"
it_check '.items | length == 2' "two sessions before the late readings"
it_check ".items[0].startedAt == \"$(t -10)\" and .items[0].endedAt == \"$(t 20)\" and .items[0].readings == 30 and .items[0].ongoing == false" "across midnight, the DC-less reading at midnight inside"
it_check ".items[0].meterIds == [\"M5\",\"M6\"] and $(it_near .items[0].energyDeliveredDc 13.5) and $(it_near .items[0].energyConsumedAc 15) and $(it_near .items[0].efficiencyRatio 0.9)" "the meter change mid-session"
it_check '.items[0].socFrom == 50 and .items[0].socTo == 65 and .items[0].batteryTempMax == 32 and .items[0].sharedSeconds == 0'
it_check "$(it_near .items[0].batteryTempAvg '929 / 30')" "average battery temperature (30 °C 11 times, 31 °C 9, 32 °C 10)"
it_check ".items[1].startedAt == \"$(t 40)\" and .items[1].readings == 6 and $(it_near .items[1].energyDeliveredDc 2.16) and $(it_near .items[1].energyConsumedAc 2.4)"
it_check '.nextCursor == null'

# Late readings in the gap (20 -> 29:30 -> 33:30 -> 40, each within 10
# minutes) join the two; a repeat of minute 10 with another value changes nothing.
{
    echo "{\"vehicleId\":\"VS\",\"soc\":80.5,\"kwhDeliveredDc\":0.27,\"batteryTemp\":33,\"timestamp\":\"$(t_s $((29 * 60 + 30)))\"}"
    echo "{\"meterId\":\"M6\",\"kwhConsumedAc\":0.3,\"voltage\":230,\"timestamp\":\"$(t_s $((29 * 60 + 30)))\"}"
    echo "{\"vehicleId\":\"VS\",\"soc\":80.7,\"kwhDeliveredDc\":0.27,\"batteryTemp\":29,\"timestamp\":\"$(t_s $((33 * 60 + 30)))\"}"
    echo "{\"meterId\":\"M6\",\"kwhConsumedAc\":0.3,\"voltage\":230,\"timestamp\":\"$(t_s $((33 * 60 + 30)))\"}"
    echo "{\"vehicleId\":\"VS\",\"soc\":70,\"kwhDeliveredDc\":9.9,\"batteryTemp\":99,\"timestamp\":\"$(t 10)\"}"
} >"$IT_DIR/late.jsonl"
"$EIE_BIN/eie-produce" "$IT_DIR/late.jsonl" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce (late) failed"
it_wait_for "the late readings to join the sessions" 60 it_sql_equals "1|38" \
    "SELECT count(*) || '|' || max(readings) FROM charging_session WHERE vehicle_id = 'VS'"
it_get "/v1/vehicles/VS/sessions?$range"
it_check ".items | length == 1" "one session after the late readings"
it_check ".items[0].startedAt == \"$(t -10)\" and .items[0].endedAt == \"$(t 45)\" and .items[0].readings == 38"
it_check "$(it_near .items[0].energyDeliveredDc 16.2) and $(it_near .items[0].energyConsumedAc 18) and $(it_near .items[0].efficiencyRatio 0.9) and .items[0].batteryTempMax == 33" "the repeat counted once, with its first value"

# VN: charging now, beyond the store; derived on the spot, ongoing.
it_get "/v1/vehicles/VN/sessions?window=2h"
it_check "(.items | length) == 1 and .items[0].ongoing == true and .items[0].readings == 5 and .items[0].meterIds == [\"M8\"]" "the session under way"
it_get /v1/vehicles/NOPE/sessions 404
it_get "/v1/vehicles/VS/sessions?cursor=abc" 400
it_get "/v1/vehicles/VS/sessions?window=31d" 400

# The fleet: the store's sessions, filtered and paged.
it_get "/v1/sessions?$range"
it_check '[.items[].vehicleId] == ["VS","VL"] and (.completeUntil | type) == "string"' "the fleet's sessions, oldest first"
it_check "$(it_near '.items[1].efficiencyRatio' 0.6) and .items[1].batteryTempMax == 45"
it_get "/v1/sessions?$range&efficiencyBelow=0.85"
it_check '[.items[].vehicleId] == ["VL"]' "low efficiency"
it_get "/v1/sessions?$range&batteryTempAbove=40"
it_check '[.items[].vehicleId] == ["VL"]' "high temperature"
it_get "/v1/sessions?$range&meterId=M6"
it_check '[.items[].vehicleId] == ["VS"]' "by meter"
it_get "/v1/sessions?$range&limit=1"
it_check '[.items[].vehicleId] == ["VS"] and (.nextCursor | type) == "string"' "first page"
cursor=$(jq -r .nextCursor <<<"$body")
it_get "/v1/sessions?$range&limit=1&cursor=$cursor"
it_check '[.items[].vehicleId] == ["VL"] and .nextCursor == null' "second page"
it_get "/v1/sessions?cursor=12" 400
it_get "/v1/sessions?efficiencyBelow=2" 400
# Once the last assignments are over a minute old (stamps moved back, as if
# that minute had passed), housekeeping rounds leave the sessions alone: the
# look-back for late assignments does not redo the same minute at every round
# (migration 018). Each redo rewrites the sessions' rows (a new xmin).
moved_at=$(it_psql -c "UPDATE vehicle_meter_assignment SET stored_at = stored_at - interval '10 minutes'" \
    -c "UPDATE charging_session_state SET assignments_seen = assignments_seen - interval '10 minutes'" \
    -c "SELECT extract(epoch FROM clock_timestamp())")
versions="SELECT string_agg(vehicle_id || '@' || xmin, ',' ORDER BY vehicle_id, started_at)
          FROM charging_session WHERE vehicle_id IN ('VS', 'VL')"
rounds_after() { it_sql_equals t "SELECT assignments_read_at > to_timestamp($moved_at) + interval '$1 seconds' FROM charging_session_state"; }
# A round under way during the move may still rewrite them; those that
# start after it must not.
it_wait_for "a housekeeping round after the stamps moved" 30 rounds_after 0
rows_before=$(it_psql -c "$versions")
it_wait_for "three more housekeeping rounds" 30 rounds_after 4
it_expect_eq "$rows_before" "$(it_psql -c "$versions")" \
    "the sessions after housekeeping rounds with no new assignments (derived again: a new xmin)"
# A late assignment still counts: VL on M9 from minute 90, before its session
# (minutes 100 to 109), and M9 reported nothing.
echo "{\"vehicleId\":\"VL\",\"meterId\":\"M9\",\"validFrom\":\"$(t 90)\"}" >"$IT_DIR/late_assignment.jsonl"
"$EIE_BIN/eie-produce" "$IT_DIR/late_assignment.jsonl" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce (late assignment) failed"
it_wait_for "the late assignment in VL's session" 60 it_sql_equals "{M9}|0" \
    "SELECT meters::text || '|' || ac_kwh FROM charging_session WHERE vehicle_id = 'VL'"

# The pass over late assignments goes at most max_hours of their time per
# call (migration 019): calls by hand of an hour each, the cold consumer
# stopped. VS on M9 from minute -10 and VL on M10 from minute 95: the first
# call takes VS's session in (minutes -10 to 45) but not yet VL's (100 to
# 109), and goes on from minute 50 at the next; VS on M11 from minute -5,
# stored meanwhile, takes the pass back (to minute -10: the minute of
# look-back takes the first assignments in again); a call of more hours
# finishes. (M5 stays: VS's session starts as M5's period ends.)
it_stop cold
late_pass() { # FILE MAX_HOURS: stores the assignments in FILE, then one call
    local before
    before=$(it_psql -c "SELECT count(*) FROM vehicle_meter_assignment")
    "$EIE_BIN/eie-produce" "$1" 2>>"$IT_DIR/produce.log" || it_fail "eie-produce ($1) failed"
    it_wait_for "the assignments of $1 stored" 30 it_sql_equals "$((before + $(wc -l <"$1")))" \
        "SELECT count(*) FROM vehicle_meter_assignment"
    it_psql -c "SELECT eie_refresh_sessions((SELECT gap FROM charging_session_state), $2)" >/dev/null
}
sessions_state() { # what the sessions of VS and VL are on, and where the pass goes on
    it_psql -c "SELECT (SELECT string_agg(vehicle_id || ':' || array_to_string(ARRAY(SELECT unnest(meters) ORDER BY 1), '+'), ' ' ORDER BY vehicle_id)
                        FROM charging_session WHERE vehicle_id IN ('VS', 'VL'))
                       || ' from ' || coalesce(to_char(assignments_redo_from AT TIME ZONE 'UTC', 'HH24:MI'), 'none')
                FROM charging_session_state"
}
hhmm() { date -u -d "$(t "$1")" +%H:%M; }
printf '%s\n' "{\"vehicleId\":\"VS\",\"meterId\":\"M9\",\"validFrom\":\"$(t -10)\"}" \
    "{\"vehicleId\":\"VL\",\"meterId\":\"M10\",\"validFrom\":\"$(t 95)\"}" >"$IT_DIR/backfill_1.jsonl"
late_pass "$IT_DIR/backfill_1.jsonl" 1
it_expect_eq "VL:M9 VS:M5+M6+M9 from $(hhmm 50)" "$(sessions_state)" "after an hour of the pass"
echo "{\"vehicleId\":\"VS\",\"meterId\":\"M11\",\"validFrom\":\"$(t -5)\"}" >"$IT_DIR/backfill_2.jsonl"
late_pass "$IT_DIR/backfill_2.jsonl" 1
it_expect_eq "VL:M9 VS:M11+M5+M6+M9 from $(hhmm 50)" "$(sessions_state)" "after an assignment for an earlier time"
it_psql -c "SELECT eie_refresh_sessions((SELECT gap FROM charging_session_state), 100000)" >/dev/null
it_expect_eq "VL:M10 VS:M11+M5+M6+M9 from none" "$(sessions_state)" "once the pass is through"
it_finish
