#!/usr/bin/env bash
# Exports (GET /v1/export/*) of a small known dataset, checked line by line:
# VA charges through MA at 0.9 and VB through MB at 0.75, a reading a minute
# for 30 minutes yesterday; the history in CSV and JSON Lines, one device's,
# the sessions and the reports against the JSON routes; the format chosen by
# parameter and by Accept; errors as JSON before anything streams. Then
# 200,000 generated meter readings: a client reading slowly and leaving
# mid-stream leaves no COPY running on the server, its connection back in the
# pool and its export slot free (the API takes one export at a time here),
# and the next export of the same rows comes whole.
source "$(dirname "$0")/lib.sh"
it_setup 2

port=$(it_free_port)
api="http://127.0.0.1:$port"
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start cold "$EIE_BIN/eie-consumer" --store cold --linger-ms 50 --housekeep-interval-s 1 --session-gap-s 600
it_start api "$EIE_BIN/eie-api" --port "$port" --db-pool-size 2 --max-exports 1

base=$(($(date -u +%s) / 86400 * 86400 - 86400 + 3600)) # yesterday 01:00
t() { it_time "$base" "$1"; }
{
    echo "{\"vehicleId\":\"VA\",\"meterId\":\"MA\",\"validFrom\":\"$(t -120)\"}"
    echo "{\"vehicleId\":\"VB\",\"meterId\":\"MB\",\"validFrom\":\"$(t -120)\"}"
    for i in $(seq 0 29); do
        echo "{\"meterId\":\"MA\",\"kwhConsumedAc\":0.5,\"voltage\":230,\"timestamp\":\"$(t "$i")\"}"
        echo "{\"vehicleId\":\"VA\",\"soc\":$((50 + i)),\"kwhDeliveredDc\":0.45,\"batteryTemp\":30,\"timestamp\":\"$(t "$i")\"}"
        echo "{\"meterId\":\"MB\",\"kwhConsumedAc\":0.4,\"voltage\":231.5,\"timestamp\":\"$(t "$i")\"}"
        echo "{\"vehicleId\":\"VB\",\"soc\":$((20 + i)).5,\"kwhDeliveredDc\":0.3,\"batteryTemp\":40.5,\"timestamp\":\"$(t "$i")\"}"
    done
} >"$IT_DIR/readings.jsonl"
"$EIE_BIN/eie-produce" "$IT_DIR/readings.jsonl" 2>"$IT_DIR/produce.log" || it_fail "eie-produce failed"
it_wait_for "the history" 60 it_sql_equals 120 \
    "SELECT (SELECT count(*) FROM meter_history) + (SELECT count(*) FROM vehicle_history)"
it_wait_for "the assignments" 60 it_sql_equals 2 "SELECT count(*) FROM vehicle_meter_assignment"
it_wait_for "the sessions, with the meters' AC" 60 it_sql_equals 2 "SELECT count(*) FROM charging_session WHERE ac_kwh > 0"
it_wait_for "the API" 30 curl -fsS "$api/healthz"

# get PATH [STATUS [CURL ARGS...]]: the body in $IT_DIR/body, headers in $IT_DIR/headers.
get() {
    local path=$1 want=${2:-200} status
    shift
    (($# == 0)) || shift
    status=$(curl -sS -D "$IT_DIR/headers" -o "$IT_DIR/body" -w '%{http_code}' "$@" "$api$path")
    [[ $status == "$want" ]] || it_fail "GET $path: status $status, expected $want: $(head -c 300 "$IT_DIR/body")"
}
header() { sed -n "s/^$1: \(.*\)\r$/\1/Ip" "$IT_DIR/headers"; }

range="from=$(t -60)&to=$(t 180)"
stamp() { date -u -d "$1" +%Y%m%dT%H%M%SZ; }
file_range="$(stamp "$(t -60)")_$(stamp "$(t 180)")"

# The meters' history in CSV, by meter then time, to the line.
{
    echo "meterId,timestamp,kwhConsumedAc,voltage"
    for i in $(seq 0 29); do x=$(t "$i"); echo "MA,${x%Z}.000Z,0.5,230"; done
    for i in $(seq 0 29); do x=$(t "$i"); echo "MB,${x%Z}.000Z,0.4,231.5"; done
} >"$IT_DIR/meters.csv"
get "/v1/export/history?kind=meter&$range"
cmp -s "$IT_DIR/meters.csv" "$IT_DIR/body" || it_fail "meter history CSV differs: $(diff "$IT_DIR/meters.csv" "$IT_DIR/body" | head -5)"
it_expect_eq "text/csv; charset=utf-8; header=present" "$(header Content-Type)" "CSV content type"
it_expect_eq "attachment; filename=\"meter-history_$file_range.csv\"" "$(header Content-Disposition)" "CSV file name"
it_expect_eq "chunked" "$(header Transfer-Encoding)" "streamed, not sized in advance"

# The same rows in JSON Lines, by format= and by Accept.
to_csv='[.meterId, .timestamp, (.kwhConsumedAc | tostring), (.voltage | tostring)] | join(",")'
for how in "format=jsonl" "accept"; do
    if [[ $how == accept ]]; then
        get "/v1/export/history?kind=meter&$range" 200 -H "Accept: text/csv;q=0.5, application/x-ndjson"
    else
        get "/v1/export/history?kind=meter&$range&format=jsonl" 200 -H "Accept: text/csv"
    fi
    it_expect_eq "application/x-ndjson" "$(header Content-Type)" "JSON Lines content type ($how)"
    it_expect_eq 60 "$(wc -l <"$IT_DIR/body")" "JSON Lines rows ($how)"
    diff -q <(tail -n +2 "$IT_DIR/meters.csv") <(jq -r "$to_csv" "$IT_DIR/body") >/dev/null ||
        it_fail "meter history JSON Lines ($how) differs from the CSV: $(head -2 "$IT_DIR/body")"
done
get "/v1/export/history?kind=meter&$range" 200 -H "Accept: application/jsonl"
it_expect_eq "application/jsonl" "$(header Content-Type)" "the JSON Lines type asked for"
it_expect_eq "attachment; filename=\"meter-history_$file_range.jsonl\"" "$(header Content-Disposition)" "JSON Lines file name"

# One vehicle's history, against the database.
get "/v1/export/history?kind=vehicle&deviceId=VB&$range&format=jsonl"
it_expect_eq 30 "$(jq -s 'length' "$IT_DIR/body")" "VB's readings"
it_expect_eq "$(it_psql -c "SELECT string_agg(soc::text || '/' || battery_temp, ' ' ORDER BY ts) FROM vehicle_history WHERE vehicle_id = 'VB'")" \
    "$(jq -rs 'map("\(.soc)/\(.batteryTemp)") | join(" ")' "$IT_DIR/body")" "VB's state of charge and temperatures"
it_expect_eq '["VB"]' "$(jq -cs 'map(.vehicleId) | unique' "$IT_DIR/body")" "only VB"

# Sessions: the rows GET /v1/sessions gives, field by field but the times' form.
get "/v1/export/sessions?$range&format=jsonl"
jq -cs 'map(del(.startedAt, .endedAt))' "$IT_DIR/body" >"$IT_DIR/export_sessions.json"
get "/v1/sessions?$range"
it_expect_eq "$(jq -c '.items | map(del(.startedAt, .endedAt))' "$IT_DIR/body")" \
    "$(cat "$IT_DIR/export_sessions.json")" "sessions as /v1/sessions gives them"
get "/v1/export/sessions?$range&efficiencyBelow=0.85"
it_expect_eq 2 "$(wc -l <"$IT_DIR/body")" "sessions below 0.85: a header and VB's"
it_expect_eq "VB,$(x=$(t 0); echo "${x%Z}").000Z,$(x=$(t 29); echo "${x%Z}").000Z,false,1740,30,\"[\"\"MB\"\"]\",9,12,9,0.75,0,20.5,49.5,40.5,40.5" \
    "$(tail -n 1 "$IT_DIR/body")" "VB's session in CSV"

# Reports: a row per vehicle with the performance report's figures.
get "/v1/export/reports?$range"
it_expect_eq "vehicleId,from,to,totalEnergyConsumedAc,totalEnergyDeliveredDc,efficiencyRatio,energyLossKwh,sharedEnergyDeliveredDc,allEnergyDeliveredDc" \
    "$(head -n 1 "$IT_DIR/body")" "reports header"
it_expect_eq 3 "$(wc -l <"$IT_DIR/body")" "a report per vehicle"
get "/v1/export/reports?$range&format=jsonl"
cp "$IT_DIR/body" "$IT_DIR/reports.jsonl"
for v in VA VB; do
    get "/v1/analytics/performance/$v?$range"
    it_expect_eq "$(jq -c '.metrics | [.totalEnergyConsumedAc, .totalEnergyDeliveredDc, .efficiencyRatio]' "$IT_DIR/body")" \
        "$(jq -c "select(.vehicleId == \"$v\") | [.totalEnergyConsumedAc, .totalEnergyDeliveredDc, .efficiencyRatio]" "$IT_DIR/reports.jsonl")" \
        "$v's report as the performance route gives it"
done

# Errors, as JSON, before anything streams.
for bad in "kind=wind&$range" "kind=meter&window=31d" "kind=meter&from=$(t 0)" "kind=meter&$range&format=xml" \
    "kind=meter&$range&deviceId=" "$range"; do
    get "/v1/export/history?$bad" 400
    it_expect_eq invalid_parameter "$(jq -r .error.code "$IT_DIR/body")" "400 for $bad"
done
get "/v1/export/sessions?$range&efficiencyBelow=2" 400
get "/v1/export/reports?from=$(t 0)&to=$(t -60)" 400
get "/v1/export/reports?$range" 406 -H "Accept: application/json"
it_expect_eq not_acceptable "$(jq -r .error.code "$IT_DIR/body")" "406 for an Accept of JSON only"
get "/v1/export/reports?$range&format=csv" 200 -H "Accept: application/json"

# 200,000 meter readings over two days, written straight into the store.
bulk_day=$(($(date -u +%s) / 86400 - 5))
bulk_from=$(it_time $((bulk_day * 86400)) 0)
bulk_to=$(it_time $((bulk_day * 86400)) 2880)
it_psql -c "SELECT eie_ensure_day_partition('meter_history', (date '1970-01-01' + $bulk_day + d))
            FROM generate_series(0, 1) d" >/dev/null
it_psql -c "INSERT INTO meter_history
            SELECT 'BULK' || lpad(i::text, 3, '0'), '$bulk_from'::timestamptz + m * interval '1 minute', 0.125, 230
            FROM generate_series(1, 100) i, generate_series(0, 1999) m"
bulk="/v1/export/history?kind=meter&from=$bulk_from&to=$bulk_to"

# A client that reads slowly, then leaves mid-stream. In JSON Lines, 19 MB,
# more than the sockets between the API and the client hold.
rc=0
curl -sS --limit-rate 50k --max-time 3 -o "$IT_DIR/partial.jsonl" "$api$bulk&format=jsonl" 2>/dev/null || rc=$?
it_expect_eq 28 "$rc" "the slow client left mid-stream (curl's timeout)"
partial=$(wc -l <"$IT_DIR/partial.jsonl")
((partial > 0 && partial < 200000)) || it_fail "the slow client got $partial lines, expected part of 200,000"
copy_running="SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY%' AND state <> 'idle'"
it_wait_for "the export's COPY to end on the server" 10 it_sql_equals 0 "$copy_running"
it_expect_eq "idle|ROLLBACK" "$(it_psql -c "SELECT state || '|' || query FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'eie-api' AND query = 'ROLLBACK'")" \
    "the export's connection idle again, its transaction rolled back"
curl -fsS "$api/metrics" >"$IT_DIR/metrics.txt" || it_fail "GET /metrics failed"
grep -q '^eie_api_exports_total{route="/v1/export/history",outcome="client_gone"} 1$' "$IT_DIR/metrics.txt" ||
    it_fail "no client_gone export counted: $(grep exports "$IT_DIR/metrics.txt")"
grep -q '^eie_api_exports_running 0$' "$IT_DIR/metrics.txt" || it_fail "an export slot is still taken"

# The slot and the connection are free: the whole export, then the JSON routes.
get "$bulk"
it_expect_eq 200001 "$(wc -l <"$IT_DIR/body")" "the whole bulk export after the one abandoned"
it_expect_eq "BULK100,$(it_time $((bulk_day * 86400)) 1999 | sed 's/Z$/.000Z/'),0.125,230" "$(tail -n 1 "$IT_DIR/body")" "its last row"
for i in 1 2 3; do get "/v1/sessions?$range"; done
it_expect_eq 0 "$(it_psql -c "$copy_running")" "no COPY left running"

it_stop api
it_stop hot
it_stop cold
it_finish
