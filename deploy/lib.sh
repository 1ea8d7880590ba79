# shellcheck shell=bash
# Shared shell functions for deploy/local.sh, tests/run.sh, tests/lib/stack.sh
# and the bench scripts. Source it; it sets no shell options of its own.
#
# Process rule: we only ever stop processes we started, by the pid we
# recorded, and only while /proc/PID/cmdline still matches what we started
# (pids get reused). Never by name.
#
# Caution for callers under `set -e`: bash ignores `set -e` inside a function
# called from an `if`/`||` context, so these functions return explicitly on
# every failure that matters.

EIE_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${EIE_STATE_DIR:=$EIE_REPO_ROOT/.state}"
export EIE_STATE_DIR

EIE_APT_PACKAGES=(
  build-essential cmake pkg-config
  librdkafka-dev libavro-dev libulfius-dev libjansson-dev libpq-dev libcmocka-dev libsodium-dev
  clang libfuzzer-14-dev libclang-rt-14-dev
  openjdk-17-jre-headless maven
  curl jq kcat python3 python3-venv bc time ca-certificates procps npm
  prometheus
)

# ---------------------------------------------------------------- messages

eie_log() { printf '%s\n' "$*" >&2; }
eie_warn() { printf 'warning: %s\n' "$*" >&2; }
eie_die() {
  printf 'error: %s\n' "$*" >&2
  return 1
}

eie_is_root() { [[ $(id -u) -eq 0 ]]; }

# Prints the last lines of each existing file, for failure reports.
eie_show_tail() {
  local f
  for f in "$@"; do
    [[ -s $f ]] || continue
    printf -- '--- last lines of %s ---\n' "$f" >&2
    tail -n "${EIE_TAIL_LINES:-30}" "$f" >&2
  done
}

# ---------------------------------------------------------------- packages

# Prints the names among "$@" that dpkg does not report as installed.
eie__missing_packages() {
  local installed
  installed=" $(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null |
    awk '$2 == "installed" { printf "%s ", $1 }' || true) "
  local p
  for p in "$@"; do
    [[ $installed == *" $p "* ]] && continue
    # NodeSource's nodejs bundles npm and conflicts with Debian's npm package.
    [[ $p == npm ]] && command -v npm >/dev/null && continue
    printf '%s\n' "$p"
  done
}

# Any PostgreSQL server version will do; only a missing one triggers an install.
eie__pg_server_installed() {
  [[ -n ${EIE_PG_BINDIR:-} ]] || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
    command -v initdb >/dev/null
}

eie_install_packages() {
  [[ ${EIE_SKIP_INSTALL:-0} == 1 ]] && return 0
  if ! command -v dpkg-query >/dev/null; then
    eie_warn "not a Debian-like system; install the equivalents of: ${EIE_APT_PACKAGES[*]} postgresql"
    return 0
  fi
  local missing=()
  mapfile -t missing < <(eie__missing_packages "${EIE_APT_PACKAGES[@]}")
  eie__pg_server_installed || missing+=(postgresql-15)
  ((${#missing[@]} > 0)) || return 0

  if ! eie_is_root; then
    eie_die "missing packages: ${missing[*]}
  install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    return 1
  fi
  eie_log "installing packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
  # Debian 12 ships postgresql-15; elsewhere take the distribution default.
  if [[ " ${missing[*]} " == *" postgresql-15 "* ]] && ! apt-cache show postgresql-15 >/dev/null 2>&1; then
    missing=("${missing[@]/postgresql-15/postgresql}")
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    return 1
}

# ---------------------------------------------------------------- kafka dist

eie_kafka_version() {
  sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' \
    "$EIE_REPO_ROOT/deploy/kafka/pom.xml" | head -n 1
}

eie_kafka_libs() {
  printf '%s/kafka-dist/%s/libs\n' "$EIE_STATE_DIR" "$(eie_kafka_version)"
}

# Downloads the broker classpath once per version. The download lands in a
# temp dir and is renamed into place, so an interrupted or concurrent fetch
# never leaves a half-filled libs/ behind.
eie_fetch_kafka() {
  local version dist libs tmp
  version=$(eie_kafka_version)
  [[ -n $version ]] || { eie_die "no <kafka.version> in deploy/kafka/pom.xml"; return 1; }
  dist="$EIE_STATE_DIR/kafka-dist/$version"
  libs="$dist/libs"
  [[ -f $libs/kafka_2.13-$version.jar ]] && return 0
  command -v mvn >/dev/null || { eie_die "mvn not found (apt-get install maven)"; return 1; }

  mkdir -p "$dist" || return 1
  tmp=$(mktemp -d "$dist/.fetch.XXXXXX") || return 1
  # Work on a copy of the pom so Maven leaves nothing in the source tree.
  cp "$EIE_REPO_ROOT/deploy/kafka/pom.xml" "$tmp/pom.xml"
  eie_log "kafka: fetching Kafka $version with Maven (first time only)"
  # Quiet on success; on failure show Maven's words (it colours even with -B).
  if ! mvn -q -B -f "$tmp/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$tmp/libs" -DincludeScope=runtime </dev/null >"$tmp/mvn.log" 2>&1; then
    sed 's/\x1b\[[0-9;]*m//g' "$tmp/mvn.log" | tail -n 40 >&2
    rm -rf "$tmp"
    eie_die "Maven could not fetch Kafka $version"
    return 1
  fi
  # -T: fail rather than nest the dir when a concurrent fetch already won.
  if ! mv -T "$tmp/libs" "$libs" 2>/dev/null && [[ ! -f $libs/kafka_2.13-$version.jar ]]; then
    rm -rf "$tmp"
    eie_die "could not install the Kafka classpath into $libs"
    return 1
  fi
  rm -rf "$tmp"
}

# ---------------------------------------------------------------- swagger ui

eie_swagger_ui_version() {
  local v=""
  read -r v <"$EIE_REPO_ROOT/deploy/swagger-ui.version" 2>/dev/null || true
  printf '%s\n' "$v"
}

# Fetches the npm package swagger-ui-dist at the version pinned in
# deploy/swagger-ui.version once, and prints the directory holding its files,
# for eie-api's --swagger-ui-dir (EIE_SWAGGER_UI_DIR). Unpacked in a temp dir
# and renamed into place, like eie_fetch_kafka.
eie_fetch_swagger_ui() {
  local version dir tmp tarball f
  version=$(eie_swagger_ui_version)
  [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    { eie_die "no version (such as 5.35.0) in deploy/swagger-ui.version"; return 1; }
  dir="$EIE_STATE_DIR/swagger-ui/$version"
  if [[ ! -f $dir/swagger-ui-bundle.js ]]; then
    command -v npm >/dev/null || { eie_die "npm not found (apt-get install npm)"; return 1; }
    mkdir -p "$EIE_STATE_DIR/swagger-ui" || return 1
    tmp=$(mktemp -d "$EIE_STATE_DIR/swagger-ui/.fetch.XXXXXX") || return 1
    eie_log "swagger-ui: fetching swagger-ui-dist $version with npm (first time only)"
    if ! (cd "$tmp" && npm pack --silent --pack-destination "$tmp" "swagger-ui-dist@$version") \
      </dev/null >"$tmp/npm.log" 2>&1; then
      tail -n 40 "$tmp/npm.log" >&2
      rm -rf "$tmp"
      eie_die "npm could not fetch swagger-ui-dist $version"
      return 1
    fi
    tarball=$(compgen -G "$tmp/swagger-ui-dist-*.tgz" | head -n 1 || true)
    if [[ -z $tarball ]] || ! tar -xzf "$tarball" -C "$tmp" package; then
      rm -rf "$tmp"
      eie_die "could not unpack swagger-ui-dist $version"
      return 1
    fi
    for f in swagger-ui.css swagger-ui-bundle.js swagger-ui-standalone-preset.js; do
      if [[ ! -s $tmp/package/$f ]]; then
        rm -rf "$tmp"
        eie_die "swagger-ui-dist $version has no $f"
        return 1
      fi
    done
    # -T: fail rather than nest the dir when a concurrent fetch already won.
    if ! mv -T "$tmp/package" "$dir" 2>/dev/null && [[ ! -f $dir/swagger-ui-bundle.js ]]; then
      rm -rf "$tmp"
      eie_die "could not install Swagger UI into $dir"
      return 1
    fi
    rm -rf "$tmp"
  fi
  printf '%s\n' "$dir"
}

# ---------------------------------------------------------------- build

# eie_build BUILD_DIR [extra cmake args...]; BUILD_DIR is relative to the repo.
eie_build() {
  local dir=$1
  shift
  [[ $dir == /* ]] || dir="$EIE_REPO_ROOT/$dir"
  [[ -f $EIE_REPO_ROOT/CMakeLists.txt ]] || { eie_die "no CMakeLists.txt in $EIE_REPO_ROOT"; return 1; }
  local args=("$@")
  [[ " $* " == *" -DCMAKE_BUILD_TYPE="* ]] || args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "${args[@]}")
  mkdir -p "$dir" || return 1
  eie_log "build: configuring $dir"
  # Configure output is noise unless it fails; compiler output stays visible.
  if ! cmake -S "$EIE_REPO_ROOT" -B "$dir" "${args[@]}" >"$dir/eie-configure.log" 2>&1; then
    EIE_TAIL_LINES=60 eie_show_tail "$dir/eie-configure.log"
    eie_die "cmake configure failed (full log: $dir/eie-configure.log)"
    return 1
  fi
  eie_log "build: compiling $dir"
  cmake --build "$dir" -j "${EIE_BUILD_JOBS:-$(nproc)}" || { eie_die "build failed in $dir"; return 1; }
}

# ---------------------------------------------------------------- ports

# Local ports of all TCP sockets (any state), from /proc so no extra tools.
eie__used_ports() {
  local f _sl addr _rest
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r $f ]] || continue
    while read -r _sl addr _rest; do
      [[ $addr == *:* ]] || continue
      printf '%d ' "$((16#${addr##*:}))"
    done <"$f"
  done
}

# eie_free_port [EXCLUDE...]: prints a loopback TCP port nobody uses.
# Picks below the kernel's ephemeral range (32768+) so outgoing connections
# do not grab it between our check and the service binding it; EXCLUDE lists
# ports already handed out but not bound yet.
eie_free_port() {
  local used port i
  used=" $(eie__used_ports) $* "
  for ((i = 0; i < 500; i++)); do
    port=$((20000 + RANDOM % 12000))
    [[ $used == *" $port "* ]] && continue
    printf '%s\n' "$port"
    return 0
  done
  eie_die "no free TCP port found"
}

# True if something listens on PORT (any local address).
eie_port_listening() {
  local hex
  printf -v hex '%04X' "$1"
  grep -qsE "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:[0-9A-F]+ 0A " /proc/net/tcp /proc/net/tcp6
}

# True if a TCP connection to 127.0.0.1:PORT succeeds right now.
eie_tcp_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------- processes

# eie_pidfile_alive PIDFILE: prints the pid and succeeds only if that process
# is alive and its cmdline is byte-for-byte what eie_start_bg started (a
# zombie's cmdline is empty, so it counts as gone).
eie_pidfile_alive() {
  local pidfile=$1 pid
  [[ -s $pidfile && -s $pidfile.cmdline ]] || return 1
  read -r pid <"$pidfile" || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # Through a pipe: cmp -s trusts the 0 size that /proc files report.
  cmp -s <(cat "/proc/$pid/cmdline" 2>/dev/null) "$pidfile.cmdline" || return 1
  printf '%s\n' "$pid"
}

# True while PID exists and is not a zombie.
eie__pid_exists() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# eie_start_bg NAME PIDFILE LOGFILE CMD...: starts CMD detached, appending
# stdout+stderr to LOGFILE; does nothing if our process from PIDFILE is alive.
# CMD must be a binary, or a script run as `bash SCRIPT ...`: the kernel
# rewrites a #! script's cmdline, which would defeat eie_pidfile_alive.
# EIE_START_SAME_SESSION=1 keeps CMD in the caller's session (see bench/api.sh).
eie_start_bg() {
  local name=$1 pidfile=$2 logfile=$3 pid="" i launcher=(setsid)
  shift 3
  [[ ${EIE_START_SAME_SESSION:-0} == 1 ]] && launcher=()
  if pid=$(eie_pidfile_alive "$pidfile"); then
    eie_log "$name: already running (pid $pid)"
    return 0
  fi
  command -v "$1" >/dev/null || { eie_die "$name: command not found: $1"; return 1; }
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")" || return 1
  rm -f "$pidfile"
  printf '%s\0' "$@" >"$pidfile.cmdline"
  printf '=== %s start: %s\n' "$(date '+%F %T')" "$*" >>"$logfile"
  # setsid: its own session, so Ctrl-C or closing the terminal that ran us
  # does not reach it. The wrapper writes its own pid before exec, which is
  # right whether or not setsid had to fork.
  # shellcheck disable=SC2016 # expanded by the inner bash
  "${launcher[@]}" bash -c 'echo "$$" >"$0.tmp" && mv -f "$0.tmp" "$0" && exec "$@"' \
    "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 &
  # Not a job of the caller: no "Killed" notices when we stop it later.
  disown "$!" 2>/dev/null || true
  # Wait until the exec happened (cmdline matches) or the process died.
  for ((i = 0; i < 100; i++)); do
    eie_pidfile_alive "$pidfile" >/dev/null && return 0
    if [[ -s $pidfile ]]; then
      read -r pid <"$pidfile" || true
      if [[ -n $pid ]] && ! eie__pid_exists "$pid"; then break; fi
    fi
    sleep 0.05
  done
  eie_show_tail "$logfile"
  eie_die "$name: failed to start (log: $logfile)"
}

# eie_stop_pidfile PIDFILE [TIMEOUT_SECONDS]: TERM, wait, then KILL.
eie_stop_pidfile() {
  local pidfile=$1 timeout=${2:-20} pid i name
  name=$(basename "$pidfile" .pid)
  if ! pid=$(eie_pidfile_alive "$pidfile"); then
    rm -f "$pidfile" "$pidfile.cmdline"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    eie_pidfile_alive "$pidfile" >/dev/null || break
    sleep 0.1
  done
  if eie_pidfile_alive "$pidfile" >/dev/null; then
    eie_warn "$name (pid $pid) ignored SIGTERM for ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      eie_pidfile_alive "$pidfile" >/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$pidfile" "$pidfile.cmdline"
  eie_log "$name: stopped (pid $pid)"
}

# ---------------------------------------------------------------- kafka

eie__java() {
  if [[ -n ${JAVA_HOME:-} ]]; then printf '%s\n' "$JAVA_HOME/bin/java"; else printf 'java\n'; fi
}

# Replaces @KEY@ placeholders: eie__render TEMPLATE OUT KEY VALUE [KEY VALUE...]
eie__render() {
  local text out=$2
  text=$(<"$1")
  shift 2
  while (($# >= 2)); do
    text=${text//"@$1@"/"$2"}
    shift 2
  done
  printf '%s\n' "$text" >"$out"
}

# A KRaft cluster id is 16 random bytes in URL-safe base64 without padding.
# Done in bash to save a JVM start (kafka.tools.StorageTool random-uuid).
# Like Kafka's own, never one that starts with '-': the storage tool's
# argument parser takes "-t -xyz" for a missing value (one id in 64 did, and
# failed a CI run).
eie__kafka_cluster_id() {
  local hex esc id i
  while :; do
    hex=$(tr -d '-' </proc/sys/kernel/random/uuid)
    esc=""
    for ((i = 0; i < 32; i += 2)); do esc+="\\x${hex:i:2}"; done
    # shellcheck disable=SC2059 # the format is the escaped bytes on purpose
    id=$(printf "$esc" | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id != -* ]] && break
  done
  printf '%s\n' "$id"
}

eie__kafka_java_args() {
  local heap jvm
  read -ra heap <<<"${EIE_KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
  read -ra jvm <<<"${EIE_KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
  printf '%s\n' "${heap[@]}" "${jvm[@]}"
}

# kafka_launch DATADIR PORT CONTROLLER_PORT: formats (first time) and starts
# the broker without waiting; kafka_wait_ready waits. Split so callers can
# start PostgreSQL while the JVM boots.
kafka_launch() {
  local d=$1 port=$2 cport=$3 libs java pid
  if pid=$(eie_pidfile_alive "$d/kafka.pid"); then
    eie_log "kafka: already running (pid $pid)"
    return 0
  fi
  libs=$(eie_kafka_libs)
  [[ -d $libs ]] || { eie_die "Kafka classpath missing ($libs); run eie_fetch_kafka"; return 1; }
  java=$(eie__java)
  command -v "$java" >/dev/null || { eie_die "java not found (apt-get install openjdk-17-jre-headless)"; return 1; }
  if eie_port_listening "$port" || eie_port_listening "$cport"; then
    eie_die "kafka: port $port or $cport is already in use"
    return 1
  fi
  mkdir -p "$d/data" || return 1
  d=$(cd "$d" && pwd)
  eie__render "$EIE_REPO_ROOT/deploy/kafka/server.properties.in" "$d/server.properties" \
    PORT "$port" CONTROLLER_PORT "$cport" LOG_DIRS "$d/data" || return 1
  eie__render "$EIE_REPO_ROOT/deploy/kafka/log4j.properties.in" "$d/log4j.properties" \
    LOG_FILE "$d/kafka.log" || return 1

  local jargs
  mapfile -t jargs < <(eie__kafka_java_args)
  jargs+=("-Dlog4j.configuration=file:$d/log4j.properties" -cp "$libs/*")
  if [[ ! -f $d/data/meta.properties ]]; then
    eie__kafka_cluster_id >"$d/cluster.id"
    if ! "$java" "${jargs[@]}" kafka.tools.StorageTool format -t "$(<"$d/cluster.id")" \
      -c "$d/server.properties" >>"$d/kafka.stdout" 2>&1; then
      eie_show_tail "$d/kafka.stdout" "$d/kafka.log"
      eie_die "kafka: storage format failed"
      return 1
    fi
  fi
  # Fresh log per start, so readiness only sees this run's lines.
  [[ -f $d/kafka.log ]] && mv -f "$d/kafka.log" "$d/kafka.log.prev"
  eie_start_bg kafka "$d/kafka.pid" "$d/kafka.stdout" \
    "$java" "${jargs[@]}" kafka.Kafka "$d/server.properties"
}

# kafka_wait_ready DATADIR PORT [TIMEOUT_SECONDS]
kafka_wait_ready() {
  local d=$1 port=$2 timeout=${3:-${EIE_KAFKA_START_TIMEOUT:-120}} i
  for ((i = 0; i < timeout * 5; i++)); do
    if ! eie_pidfile_alive "$d/kafka.pid" >/dev/null; then
      eie_show_tail "$d/kafka.log" "$d/kafka.stdout"
      eie_die "kafka: exited during startup (logs: $d/kafka.log, $d/kafka.stdout)"
      return 1
    fi
    # The port opens before the broker has joined its own controller quorum;
    # the log line marks the point where clients get served.
    if eie_tcp_open "$port" && grep -qs 'Kafka Server started' "$d/kafka.log"; then
      eie_log "kafka: ready on 127.0.0.1:$port (pid $(<"$d/kafka.pid"))"
      return 0
    fi
    sleep 0.2
  done
  eie_show_tail "$d/kafka.log" "$d/kafka.stdout"
  eie_stop_pidfile "$d/kafka.pid" 5
  eie_die "kafka: not ready after ${timeout}s (log: $d/kafka.log)"
}

# kafka_start DATADIR PORT CONTROLLER_PORT
kafka_start() {
  kafka_launch "$1" "$2" "$3" || return 1
  kafka_wait_ready "$1" "$2"
}

# kafka_stop DATADIR
kafka_stop() {
  eie_stop_pidfile "$1/kafka.pid" "${EIE_KAFKA_STOP_TIMEOUT:-30}"
}

# kafka_running DATADIR: prints the pid if our broker runs.
kafka_running() { eie_pidfile_alive "$1/kafka.pid"; }

# ---------------------------------------------------------------- postgresql

# Prints the directory holding initdb/pg_ctl/postgres (EIE_PG_BINDIR wins).
eie_pg_bindir() {
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
eie__pg_exec() {
  if eie_is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# Creates DATADIR owned by the user that will run the server.
eie__pg_prepare_dir() {
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
eie__pg_conf() {
  local d=$1 sockdir=$1
  # Unix socket paths are limited to 107 bytes; deep state dirs go TCP-only.
  ((${#d} + 20 < 107)) || sockdir=""
  cat <<EOF

# --- added by deploy/lib.sh ---
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

eie__pg_init() {
  local d=$1 bin=$2 out extra=()
  [[ ${EIE_PG_FAST:-0} == 1 ]] && extra=(--no-sync)
  if ! out=$(eie__pg_exec "$bin/initdb" -D "$d" -U eie --auth=trust -E UTF8 --locale=C \
    "${extra[@]}" 2>&1); then
    printf '%s\n' "$out" >&2
    eie_die "postgres: initdb failed for $d"
    return 1
  fi
  eie__pg_conf "$d" >>"$d/postgresql.conf"
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

# pg_start DATADIR PORT: initdb on first use, start, wait until it accepts
# connections. Callable again after pg_stop on the same DATADIR.
pg_start() {
  local d=$1 port=$2 bin pid i
  bin=$(eie_pg_bindir) || return 1
  if pid=$(pg_running "$d"); then
    eie_log "postgres: already running (pid $pid)"
    return 0
  fi
  eie__pg_prepare_dir "$d" || return 1
  d=$(cd "$d" && pwd)
  if [[ ! -s $d/PG_VERSION ]]; then
    eie__pg_init "$d" "$bin" || return 1
  fi
  if eie_port_listening "$port"; then
    eie_die "postgres: port $port is already in use"
    return 1
  fi
  if ! eie__pg_exec "$bin/pg_ctl" -D "$d" -l "$d/postgres.log" -o "-p $port" -w -t 60 start >/dev/null; then
    eie_show_tail "$d/postgres.log"
    eie_die "postgres: failed to start (log: $d/postgres.log)"
    return 1
  fi
  for ((i = 0; i < 150; i++)); do
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U eie -d postgres; then
      eie_log "postgres: ready on 127.0.0.1:$port (pid $(pg_running "$d"))"
      return 0
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
  bin=$(eie_pg_bindir) || return 1
  if ! eie__pg_exec "$bin/pg_ctl" -D "$d" -m fast -w -t 60 stop >/dev/null; then
    eie_warn "postgres: pg_ctl stop failed; sending SIGQUIT to pid $pid"
    kill -QUIT "$pid" 2>/dev/null || true
  fi
  eie_log "postgres: stopped (pid $pid)"
}

# pg_create_db PORT DBNAME: creates DBNAME owned by eie unless it exists.
# SQL goes through stdin because psql expands :'var' there, not in -c.
pg_create_db() {
  local port=$1 db=$2 bin exists psql
  bin=$(eie_pg_bindir) || return 1
  psql=("$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U eie -d postgres -tA -v ON_ERROR_STOP=1 -v db="$db")
  exists=$("${psql[@]}" <<<"SELECT 1 FROM pg_database WHERE datname = :'db';") || return 1
  [[ $exists == 1 ]] && return 0
  "${psql[@]}" <<<'CREATE DATABASE :"db" OWNER eie;' || return 1
  eie_log "postgres: created database $db"
}
