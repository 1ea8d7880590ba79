#!/usr/bin/env bash
# eie-admin migrate is idempotent: on a new database the first run applies
# every migration; a second run applies none ("0 migrations applied now"),
# exits 0, and leaves the schema and the migration records as they were.
source "$(dirname "$0")/lib.sh"
psql "postgresql://${EIE_TEST_PGUSER}@${EIE_TEST_PGHOST}:${EIE_TEST_PGPORT}/postgres" -X -q \
    -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"${DATABASE_URL##*/}\"" >/dev/null
migrations=$(find "$EIE_SOURCE_DIR/schemas/sql" -name '*.sql' | wc -l)

# The schema as PostgreSQL holds it: tables, columns, indexes, functions, triggers.
schema() {
    it_psql -c "SELECT table_name || '.' || column_name || ' ' || data_type FROM information_schema.columns
                    WHERE table_schema = 'public' ORDER BY 1" \
        -c "SELECT indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1" \
        -c "SELECT p.proname || ' ' || md5(p.prosrc) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname = 'public' ORDER BY 1" \
        -c "SELECT tgname || ' ' || tgrelid::regclass FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1"
}
records() { it_psql -c "SELECT name || ' ' || applied_at FROM eie_schema_migrations ORDER BY 1"; }

status=0
"$EIE_BIN/eie-admin" migrate 2>"$IT_DIR/first.log" || status=$?
it_expect_eq 0 "$status" "first migrate: exit status"
grep -q "($migrations migrations applied now)" "$IT_DIR/first.log" ||
    it_fail "first migrate did not apply all $migrations migrations: $(cat "$IT_DIR/first.log")"
it_expect_eq "$migrations" "$(it_psql -c "SELECT count(*) FROM eie_schema_migrations")" "every migration recorded"
schema >"$IT_DIR/schema-1.txt"
records >"$IT_DIR/records-1.txt"
[[ -s $IT_DIR/schema-1.txt ]] || it_fail "no schema after the first migrate"

status=0
"$EIE_BIN/eie-admin" migrate 2>"$IT_DIR/second.log" || status=$?
it_expect_eq 0 "$status" "second migrate: exit status"
grep -q "(0 migrations applied now)" "$IT_DIR/second.log" ||
    it_fail "second migrate applied something: $(cat "$IT_DIR/second.log")"
schema >"$IT_DIR/schema-2.txt"
records >"$IT_DIR/records-2.txt"
diff "$IT_DIR/schema-1.txt" "$IT_DIR/schema-2.txt" >&2 || it_fail "the second migrate changed the schema"
diff "$IT_DIR/records-1.txt" "$IT_DIR/records-2.txt" >&2 || it_fail "the second migrate changed the migration records"
it_finish
