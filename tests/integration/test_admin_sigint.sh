#!/usr/bin/env bash
# SIGINT of eie-admin verify and rollup while their statement waits on the
# server (here for a lock another session holds): each stops within seconds
# with status 1 and says it was interrupted, and its statement is cancelled
# on the server too, not left to run (or wait) there after the program is gone.
source "$(dirname "$0")/lib.sh"
it_setup 1

# Locks what verify reads (the history) and what rollup takes first (its
# progress rows) for longer than the test lasts (60 s, so that a test killed
# half-way leaves no lock for long); ended by the test.
PGAPPNAME=it-locker it_start locker psql "$DATABASE_URL" -X -q -c \
    "BEGIN; LOCK vehicle_history, hourly_rollup IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60); COMMIT"
backends() { # APPLICATION_NAME [WAIT_EVENT_TYPE]
    it_psql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1' AND datname = current_database()
                AND ('${2:-}' = '' OR wait_event_type = '${2:-}')"
}
lock_held() {
    [[ $(it_psql -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                     WHERE a.application_name = 'it-locker' AND a.datname = current_database()
                     AND l.mode = 'AccessExclusiveLock'
                     AND l.granted AND l.relation IN ('vehicle_history'::regclass, 'hourly_rollup'::regclass)") == 2 ]]
}
it_wait_for "the locks" 30 lock_held
locked() { [[ $(backends it-locker) == 1 && $(backends "$1" Lock) -ge 1 ]]; }
gone() { [[ $(backends "$1") == 0 ]]; }

interrupt() { # NAME APPLICATION_NAME MESSAGE: NAME is running eie-admin
    local var="${1//-/_}_pid" i status=0
    it_wait_for "$1 to wait on the lock" 30 locked "$2" || return 0
    local sent=$SECONDS
    kill -INT "${!var}"
    for ((i = 0; i < 100; i++)); do kill -0 "${!var}" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "${!var}" 2>/dev/null; then
        it_fail "$1 did not stop within 10 s of SIGINT"
        kill -KILL "${!var}"
    fi
    wait "${!var}" || status=$?
    it_log "$1 stopped $((SECONDS - sent)) s after SIGINT"
    it_expect_eq 1 "$status" "$1 after SIGINT: exit status"
    grep -q "interrupted: $3" "$IT_DIR/$1.log" || it_fail "$1 did not say it was interrupted: $(tail -n 3 "$IT_DIR/$1.log")"
    it_wait_for "$1's statement to end on the server" 3 gone "$2"
}

it_start verify "$EIE_BIN/eie-admin" verify --against "$DATABASE_URL"
interrupt verify "eie-admin verify" "the comparison under way was cancelled"
it_start rollup "$EIE_BIN/eie-admin" rollup
interrupt rollup "eie-admin" "the rollup under way was cancelled"

it_psql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'it-locker'
            AND datname = current_database()" >/dev/null
it_finish
