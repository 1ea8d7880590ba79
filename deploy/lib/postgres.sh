# shellcheck shell=bash
# Our PostgreSQL server (pg_*): initdb on first use, start, stop, databases.

# Prints the directory holding initdb/pg_ctl/postgres (EIE_PG_BINDIR wins).
pg_bindir() {
  if [[ -n ${EIE_PG_BINDIR:-} ]]; then
    printf '%s\n' "$EIE_PG_BINDIR"
    return 0
  fi
  local initdb=/usr/lib/postgresql/15/bin/initdb
  if [[ ! -x $initdb ]]; then
    initdb=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1 || true)
  fi
  if [[ -z $initdb ]]; then
    initdb=$(command -v initdb) || { eie_die "PostgreSQL server not found (apt-get install postgresql-15)"; return 1; }
  fi
  dirname "$initdb"
}

# The server refuses to run as root, so as root we run it as `postgres`,
# from / because that user may not be allowed into the current directory.
pg__exec() {
  if eie_is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# Creates DATADIR owned by the user that will run the server.
pg__prepare_dir() {
  local d=$1 parent
  parent=$(dirname "$d")
  mkdir -p "$parent" || return 1
  if ! eie_is_root; then
    mkdir -p "$d" && chmod 700 "$d"
    return
  fi
  id postgres >/dev/null 2>&1 || { eie_die "user 'postgres' does not exist (apt-get install postgresql-15)"; return 1; }
  if ! (cd / && runuser -u postgres -- test -x "$parent"); then
    eie_die "user 'postgres' cannot reach $parent (a parent directory is not searchable by others).
  Put the state elsewhere, e.g.: EIE_STATE_DIR=/var/tmp/eie-state"
    return 1
  fi
  install -d -m 700 -o postgres -g postgres "$d"
}

# Settings appended once after initdb. Trust auth on loopback only: this is a
# local dev/test database, never reachable from another host.
pg__conf() {
  local d=$1 sockdir=$1
  # Unix socket paths are limited to 107 bytes; deep state dirs go TCP-only.
  ((${#d} + 20 < 107)) || sockdir=""
  cat <<EOF

# --- added by deploy/lib/postgres.sh ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '${sockdir//\'/\'\'}'
max_connections = 200
EOF
  if [[ ${EIE_PG_FAST:-0} == 1 ]]; then
    cat <<'EOF'
# Throwaway test data: durability traded for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  fi
}

pg__init() {
  local d=$1 bin=$2 out extra=()
  [[ ${EIE_PG_FAST:-0} == 1 ]] && extra=(--no-sync)
  if ! out=$(pg__exec "$bin/initdb" -D "$d" -U eie --auth=trust -E UTF8 --locale=C \
    "${extra[@]}" 2>&1); then
    printf '%s\n' "$out" >&2
    eie_die "postgres: initdb failed for $d"
    return 1
  fi
  pg__conf "$d" >>"$d/postgresql.conf"
}

# pg_running DATADIR: prints the postmaster pid if it runs.
pg_running() {
  local pid
  [[ -s $1/postmaster.pid ]] || return 1
  read -r pid <"$1/postmaster.pid" || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *postgres* ]] || return 1
  printf '%s\n' "$pid"
}

# Server settings for a steady ingest, given at every start (so a data
# directory made before them gets them too): tens of thousands of readings a
# second write about 35 MB of WAL a second, so with the default max_wal_size
# of 1 GB a checkpoint came every 15 s, and the full-page images that follow
# each one stalled the sinks for seconds (the API's state p99 tripled).
# EIE_PG_OPTIONS replaces them.
PG_SERVER_OPTIONS=${EIE_PG_OPTIONS:--c max_wal_size=8GB -c wal_compression=lz4}

# pg_start DATADIR PORT: initdb on first use, start, wait until it accepts
# connections. Callable again after pg_stop on the same DATADIR.
# EIE_PG_NICE: the server's CPU priority below the API's (eie_proc_nice).
pg_start() {
  local d=$1 port=$2 bin pid i
  bin=$(pg_bindir) || return 1
  if pid=$(pg_running "$d"); then
    eie_log "postgres: already running (pid $pid)"
    return 0
  fi
  pg__prepare_dir "$d" || return 1
  d=$(cd "$d" && pwd)
  if [[ ! -s $d/PG_VERSION ]]; then
    pg__init "$d" "$bin" || return 1
  fi
  if eie_port_listening "$port"; then
    eie_die "postgres: port $port is already in use"
    return 1
  fi
  if ! pg__exec "$bin/pg_ctl" -D "$d" -l "$d/postgres.log" -o "-p $port $PG_SERVER_OPTIONS" -w -t 60 start >/dev/null; then
    eie_show_tail "$d/postgres.log"
    eie_die "postgres: failed to start (log: $d/postgres.log)"
    return 1
  fi
  for ((i = 0; i < 150; i++)); do
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U eie -d postgres; then
      pid=$(pg_running "$d")
      eie_log "postgres: ready on 127.0.0.1:$port (pid $pid)"
      eie_proc_nice postgres "$pid" "${EIE_PG_NICE:-0}"
      return
    fi
    sleep 0.2
  done
  eie_show_tail "$d/postgres.log"
  eie_die "postgres: started but not accepting connections on port $port"
}

# pg_stop DATADIR: fast shutdown (aborts open transactions, clean checkpoint).
pg_stop() {
  local d=$1 bin pid
  pid=$(pg_running "$d") || return 0
  bin=$(pg_bindir) || return 1
  if ! pg__exec "$bin/pg_ctl" -D "$d" -m fast -w -t 60 stop >/dev/null; then
    eie_warn "postgres: pg_ctl stop failed; sending SIGQUIT to pid $pid"
    kill -QUIT "$pid" 2>/dev/null || true
  fi
  eie_log "postgres: stopped (pid $pid)"
}

# pg_create_db PORT DBNAME: creates DBNAME owned by eie unless it exists.
# SQL goes through stdin because psql expands :'var' there, not in -c.
pg_create_db() {
  local port=$1 db=$2 bin exists psql
  bin=$(pg_bindir) || return 1
  psql=("$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U eie -d postgres -tA -v ON_ERROR_STOP=1 -v db="$db")
  exists=$("${psql[@]}" <<<"SELECT 1 FROM pg_database WHERE datname = :'db';") || return 1
  [[ $exists == 1 ]] && return 0
  "${psql[@]}" <<<'CREATE DATABASE :"db" OWNER eie;' || return 1
  eie_log "postgres: created database $db"
}

# pg_require_passwords DATADIR PORT PASSWORD: from now on every TCP connection
# to the server needs a password (scram-sha-256), and the superuser eie has
# PASSWORD; set while initdb's trust still lets eie in, once (a marker line
# in pg_hba.conf says it was done). For deploy/local.sh: the test servers keep
# trust, reachable from loopback only and thrown away.
PG__PASSWORDS_MARKER='# eie: passwords required'
pg_require_passwords() {
  local d=$1 port=$2 password=$3 bin
  bin=$(pg_bindir) || return 1
  pg_passwords_required "$d" && return 0
  # psql expands :'pw' from stdin only; the server stores the SCRAM verifier.
  "$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U eie -d postgres -v ON_ERROR_STOP=1 -v pw="$password" \
    <<<"SET password_encryption = 'scram-sha-256'; ALTER ROLE eie PASSWORD :'pw';" ||
    { eie_die "postgres: cannot set the password of eie"; return 1; }
  printf '%s\n%s\n' "$PG__PASSWORDS_MARKER" 'host all all 127.0.0.1/32 scram-sha-256' |
    pg__exec tee "$d/pg_hba.conf" >/dev/null || return 1
  pg__exec "$bin/pg_ctl" -D "$d" reload >/dev/null || { eie_die "postgres: reload failed"; return 1; }
  eie_log "postgres: passwords required from now on (scram-sha-256)"
}

# pg_passwords_required DATADIR: true once pg_require_passwords did its work.
pg_passwords_required() {
  [[ -s $1/PG_VERSION ]] && pg__exec grep -qxF "$PG__PASSWORDS_MARKER" "$1/pg_hba.conf"
}
