#!/usr/bin/env bash
# The roles of eie-admin roles may do what their programs need (the rest of
# the suite runs the programs as them) and nothing more: the writer creates
# and drops day partitions of the history only through the two functions,
# makes no other object and does not write the migration record; the reader
# writes nothing, may not call those functions, and makes no temporary table.
# eie-admin roles is idempotent, and hands a database migrated by another
# role (before the roles) to eie_owner with the grants.
source "$(dirname "$0")/lib.sh"
it_setup 1

# as ROLE_URL SQL: the first line of what psql says (a value or the error).
as() { { psql "$1" -X -q -At -v ON_ERROR_STOP=1 -c "$2" 2>&1 || true; } | head -n 1; }
# allowed WHAT URL SQL EXPECTED / refused WHAT URL SQL MESSAGE
allowed() { it_expect_eq "$4" "$(as "$2" "$3")" "$1"; }
refused() {
    local out
    out=$(as "$2" "$3")
    [[ $out == *"$4"* ]] && it_log "ok: $1 ($out)" || it_fail "$1: expected '$4', got '$out'"
}
W=$IT_WRITER_URL
R=$IT_READER_URL

allowed "the writer makes a day partition through the function" "$W" \
    "SELECT eie_ensure_day_partition('meter_history', '2026-01-01')" t
allowed "the partition is the owner's, and the writer may write it" "$W" \
    "INSERT INTO meter_history_20260101 VALUES ('M1', '2026-01-01T01:00Z', 1, 230) RETURNING pg_get_userbyid((SELECT relowner FROM pg_class WHERE relname = 'meter_history_20260101'))" eie_owner
allowed "the reader reads it" "$R" "SELECT count(*) FROM meter_history" 1
refused "the writer makes no partition of another table" "$W" \
    "SELECT eie_ensure_day_partition('meter_state', '2026-01-01')" "not a history table"
refused "nor of a table of its own that shadows the history" "$W" \
    "CREATE TEMP TABLE meter_history (LIKE public.meter_history) PARTITION BY RANGE (ts); SET search_path = pg_temp, public; SELECT eie_ensure_day_partition('meter_history', '2026-01-02')" \
    "is not a partitioned table owned by eie_owner"
refused "the writer makes no table" "$W" "CREATE TABLE x (a int)" "permission denied for schema public"
refused "the writer alters no table" "$W" "ALTER TABLE meter_state ADD COLUMN x int" "must be owner"
refused "the writer drops no table" "$W" "DROP TABLE meter_history_20260101" "must be owner"
refused "the writer does not write the migration record" "$W" \
    "DELETE FROM eie_schema_migrations" "permission denied for table eie_schema_migrations"
refused "the reader writes nothing" "$R" "DELETE FROM meter_history" "permission denied for table meter_history"
refused "the reader makes no partition" "$R" \
    "SELECT eie_ensure_day_partition('meter_history', '2026-01-03')" "permission denied for function eie_ensure_day_partition"
refused "the reader drops no day through retention" "$R" \
    "SELECT eie_drop_days_before('meter', '2100-01-01')" "permission denied for function eie_drop_day_partitions_before"
refused "the reader makes no temporary table" "$R" "CREATE TEMP TABLE t (a int)" "permission denied to create temporary tables"
other="it_other_$$"
it_psql -c "CREATE ROLE $other LOGIN" >/dev/null
refused "another role may not connect" "postgresql://$other@${EIE_TEST_PGHOST}:${EIE_TEST_PGPORT}/${IT_SUPER_URL##*/}" \
    "SELECT 1" "permission denied for database"
it_psql -c "DROP ROLE $other" >/dev/null
allowed "the writer drops old days through retention" "$W" "SELECT eie_drop_days_before('meter', '2026-01-02')" 1
it_expect_eq "false|false|false" "$(it_psql -c "SELECT string_agg((rolsuper OR rolcreaterole OR rolcreatedb)::text, '|' ORDER BY rolname)
    FROM pg_roles WHERE rolname IN ('eie_owner', 'eie_writer', 'eie_reader')")" "no role is superuser or creates roles or databases"

status=0
"$EIE_BIN/eie-admin" roles --database-url "$IT_SUPER_URL" 2>>"$IT_DIR/admin.log" || status=$?
it_expect_eq 0 "$status" "eie-admin roles a second time"

# A database migrated by the superuser, as before the roles: handed over.
old="${IT_SUPER_URL}_old"
psql "postgresql://${EIE_TEST_PGUSER}@${EIE_TEST_PGHOST}:${EIE_TEST_PGPORT}/postgres" -X -q \
    -c "CREATE DATABASE \"${old##*/}\"" >/dev/null
"$EIE_BIN/eie-admin" migrate --database-url "$old" 2>>"$IT_DIR/admin.log" || it_fail "migrating as the superuser"
DATABASE_URL=$old it_psql -c "SELECT eie_ensure_day_partition('vehicle_history', '2026-01-01')" >/dev/null
it_expect_eq "${EIE_TEST_PGUSER}" "$(DATABASE_URL=$old it_psql -c "SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',')
    FROM pg_class WHERE relnamespace = 'public'::regnamespace")" "the old database is the superuser's"
"$EIE_BIN/eie-admin" roles --database-url "$old" 2>>"$IT_DIR/admin.log" || it_fail "eie-admin roles on the old database"
it_expect_eq "eie_owner" "$(DATABASE_URL=$old it_psql -c "SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',')
    FROM pg_class WHERE relnamespace = 'public'::regnamespace")" "every relation of the old database is eie_owner's"
it_expect_eq "eie_owner|eie_owner" "$(DATABASE_URL=$old it_psql -c "SELECT (SELECT string_agg(DISTINCT pg_get_userbyid(proowner), ',')
    FROM pg_proc WHERE pronamespace = 'public'::regnamespace) || '|' || (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database())")" \
    "and its functions (those of SECURITY DEFINER above all) and the database itself"
allowed "then the writer writes its old partitions" "${IT_WRITER_URL}_old" \
    "INSERT INTO vehicle_history_20260101 (vehicle_id, ts, soc, kwh_delivered_dc, battery_temp) VALUES ('V1', '2026-01-01T01:00Z', 50, 1, 20) RETURNING vehicle_id" V1
allowed "and makes new ones" "${IT_WRITER_URL}_old" "SELECT eie_ensure_day_partition('vehicle_history', '2026-01-02')" t
it_finish
