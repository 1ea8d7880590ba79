#!/usr/bin/env bash
# PostgreSQL secured by configuration alone: a server of the test's own with
# ssl=on, a certificate of a CA made here, and pg_hba that takes the three
# roles only over TLS and with a password (scram-sha-256). The consumer and
# the API connect through DATABASE_URL with sslmode=verify-full and their
# passwords, as eie_writer and eie_reader, and a reading goes through. Then
# what must fail does, with an error that says why: a wrong password, a
# client trusting another CA, a connection without TLS.
source "$(dirname "$0")/lib.sh"
it_own_postgres

it_tls_ca ca || { it_fail "openssl could not make the CA"; exit 1; }
it_tls_ca other-ca
it_tls_cert ca pg-server IP:127.0.0.1,DNS:localhost ||
    { it_fail "openssl could not make the server certificate"; exit 1; }

# The server: its certificate and key in its data directory (the key the
# server user's alone, or it refuses to start), TLS on, and no way in for
# the roles but TLS with a password. The suite's superuser keeps trust, over
# TLS too, for the test's own set-up and checks.
pgdata=$IT_DIR/pg
install -m 644 "$IT_DIR/tls/pg-server.crt" "$pgdata/server.crt"
install -m 600 "$IT_DIR/tls/pg-server.key" "$pgdata/server.key"
if [[ $(id -u) == 0 ]]; then chown postgres:postgres "$pgdata/server.crt" "$pgdata/server.key"; fi
cat >>"$pgdata/postgresql.conf" <<'EOF'
# --- added by test_postgres_secure.sh ---
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
password_encryption = 'scram-sha-256'
EOF
cat >"$pgdata/pg_hba.conf" <<EOF
hostssl all ${EIE_TEST_PGUSER} 127.0.0.1/32 trust
hostssl all eie_owner,eie_writer,eie_reader 127.0.0.1/32 scram-sha-256
EOF
it_own_pg_stop && it_own_pg_start || { it_fail "PostgreSQL did not start with TLS"; exit 1; }

EIE_OWNER_PASSWORD=$(openssl rand -hex 16)
EIE_WRITER_PASSWORD=$(openssl rand -hex 16)
EIE_READER_PASSWORD=$(openssl rand -hex 16)
export EIE_OWNER_PASSWORD EIE_WRITER_PASSWORD EIE_READER_PASSWORD
IT_PG_PARAMS="sslmode=verify-full&sslrootcert=$IT_DIR/tls/ca.crt"
it_setup 1
# The programs below read no password but their URL's.
unset EIE_OWNER_PASSWORD EIE_WRITER_PASSWORD EIE_READER_PASSWORD
it_expect_eq "SCRAM-SHA-256|SCRAM-SHA-256|SCRAM-SHA-256" \
    "$(it_psql -c "SELECT string_agg(split_part(rolpassword, '\$', 1), '|' ORDER BY rolname) FROM pg_authid
                   WHERE rolname IN ('eie_owner', 'eie_writer', 'eie_reader')")" \
    "eie-admin roles stored SCRAM verifiers"

port=$(it_free_port)
it_start hot "$EIE_BIN/eie-consumer" --store hot --linger-ms 50
it_start api "$EIE_BIN/eie-api" --port "$port" --state-cache-ms 0
it_wait_for "the API" 30 curl -fsS "http://127.0.0.1:$port/readyz"
ts=$(it_time "$(date +%s)" -1)
"$EIE_BIN/eie-produce" --type meter - <<<"{\"meterId\":\"M1\",\"kwhConsumedAc\":0.5,\"voltage\":231.5,\"timestamp\":\"$ts\"}" \
    2>>"$IT_DIR/produce.log" || it_fail "producing a reading failed"
it_wait_for "the reading in the hot store" 60 it_sql_equals 1 "SELECT count(*) FROM meter_state"
IT_API=http://127.0.0.1:$port
it_get /v1/meters/M1
it_check '.voltage == 231.5' "the reading through the API"
it_expect_eq "eie_reader|true|eie_writer|true" \
    "$(it_psql -c "SELECT string_agg(DISTINCT usename || '|' || ssl, '|') FROM pg_stat_activity JOIN pg_stat_ssl USING (pid)
                   WHERE usename IN ('eie_writer', 'eie_reader')")" \
    "the consumer is eie_writer, the API eie_reader, both over TLS"

# refused LABEL EXPECTED URL: eie-api with URL says EXPECTED at start (and
# keeps trying, as it does through an outage), and is not ready.
db=${IT_SUPER_URL##*/}
server=127.0.0.1:$EIE_TEST_PGPORT
n_refused=0
refused() {
    local what=$1 expected=$2 url=$3 bad_port
    bad_port=$(it_free_port)
    n_refused=$((n_refused + 1))
    it_start "refused$n_refused" "$EIE_BIN/eie-api" --port "$bad_port" --database-url "$url"
    if it_wait_for "$what: '$expected' in the API's log" 30 grep -qF -- "$expected" "$IT_DIR/refused$n_refused.log"; then
        it_log "ok: $what: refused ($expected)"
    fi
    it_wait_for "$what: the API listening" 30 curl -sS -o /dev/null "http://127.0.0.1:$bad_port/healthz"
    it_expect_eq 503 "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$bad_port/readyz")" "$what: /readyz"
    it_stop "refused$n_refused"
}
reader_password=$(sed -E 's|^postgresql://eie_reader:([^@]*)@.*|\1|' <<<"$IT_READER_URL")
refused "a wrong password" 'password authentication failed for user "eie_reader"' \
    "postgresql://eie_reader:wrong@$server/$db?$IT_PG_PARAMS"
refused "no password" 'no password supplied' \
    "postgresql://eie_reader@$server/$db?$IT_PG_PARAMS"
refused "a client trusting another CA" 'certificate verify failed' \
    "postgresql://eie_reader:$reader_password@$server/$db?sslmode=verify-full&sslrootcert=$IT_DIR/tls/other-ca.crt"
refused "a connection without TLS" 'no encryption' \
    "postgresql://eie_reader:$reader_password@$server/$db?sslmode=disable"
refused "the server's name not in its certificate" 'does not match host name' \
    "postgresql://eie_reader:$reader_password@eie-wrong-name:$EIE_TEST_PGPORT/$db?hostaddr=127.0.0.1&$IT_PG_PARAMS"
# The consumer waits for the database instead, saying why each time.
it_start bad_writer env DATABASE_URL="postgresql://eie_writer:wrong@$server/$db?$IT_PG_PARAMS" \
    "$EIE_BIN/eie-consumer" --store cold
it_wait_for "the consumer's refusal" 30 grep -q 'password authentication failed for user "eie_writer"' "$IT_DIR/bad_writer.log"
it_stop bad_writer
it_stop api
it_stop hot
it_finish
