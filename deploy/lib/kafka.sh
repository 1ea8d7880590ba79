# shellcheck shell=bash
# Our single-node Kafka broker (kafka_*): its jars, fetched with Maven at the
# version deploy/kafka/pom.xml pins, and starting, waiting for and stopping
# it.

kafka_version() {
  maven_pom_property "$EIE_REPO_ROOT/deploy/kafka/pom.xml" kafka.version
}

kafka_libs() {
  printf '%s/kafka-dist/%s/libs\n' "$EIE_STATE_DIR" "$(kafka_version)"
}

# Downloads the broker classpath once per version (maven.sh).
kafka_fetch() {
  local version
  version=$(kafka_version)
  [[ -n $version ]] || { eie_die "no <kafka.version> in deploy/kafka/pom.xml"; return 1; }
  maven_fetch_classpath "$EIE_REPO_ROOT/deploy/kafka/pom.xml" "$(kafka_libs)" \
    "kafka_2.13-$version.jar" "Kafka $version"
}

kafka_java() {
  if [[ -n ${JAVA_HOME:-} ]]; then printf '%s\n' "$JAVA_HOME/bin/java"; else printf 'java\n'; fi
}

# Replaces @KEY@ placeholders: kafka__render TEMPLATE OUT KEY VALUE [KEY VALUE...]
kafka__render() {
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
kafka__cluster_id() {
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

kafka__java_args() {
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
  if pid=$(eie_proc_alive "$d/kafka.pid"); then
    eie_log "kafka: already running (pid $pid)"
    return 0
  fi
  libs=$(kafka_libs)
  [[ -d $libs ]] || { eie_die "Kafka classpath missing ($libs); run kafka_fetch"; return 1; }
  java=$(kafka_java)
  command -v "$java" >/dev/null || { eie_die "java not found (apt-get install openjdk-17-jre-headless)"; return 1; }
  if eie_port_listening "$port" || eie_port_listening "$cport"; then
    eie_die "kafka: port $port or $cport is already in use"
    return 1
  fi
  mkdir -p "$d/data" || return 1
  d=$(cd "$d" && pwd)
  kafka__render "$EIE_REPO_ROOT/deploy/kafka/server.properties.in" "$d/server.properties" \
    PORT "$port" CONTROLLER_PORT "$cport" LOG_DIRS "$d/data" || return 1
  kafka__render "$EIE_REPO_ROOT/deploy/kafka/log4j.properties.in" "$d/log4j.properties" \
    LOG_FILE "$d/kafka.log" || return 1
  # The secured profile (kafka_secure_prepare) adds its listeners, TLS, SASL
  # and authorizer settings after the template's: a later key wins. They
  # hold passwords, so the file is the owner's alone.
  local format_args=()
  if [[ -f $d/secure/server.properties.in ]]; then
    chmod 600 "$d/server.properties" &&
      kafka__render "$d/secure/server.properties.in" "$d/secure/server.properties" \
        PORT "$port" CONTROLLER_PORT "$cport" &&
      cat "$d/secure/server.properties" >>"$d/server.properties" &&
      rm -f "$d/secure/server.properties" || return 1
    mapfile -t format_args <"$d/secure/format.args" || return 1
  fi

  local jargs
  mapfile -t jargs < <(kafka__java_args)
  jargs+=("-Dlog4j.configuration=file:$d/log4j.properties" -cp "$libs/*")
  if [[ ! -f $d/data/meta.properties ]]; then
    kafka__cluster_id >"$d/cluster.id"
    if ! "$java" "${jargs[@]}" kafka.tools.StorageTool format -t "$(<"$d/cluster.id")" \
      -c "$d/server.properties" "${format_args[@]}" >>"$d/kafka.stdout" 2>&1; then
      eie_show_tail "$d/kafka.stdout" "$d/kafka.log"
      eie_die "kafka: storage format failed"
      return 1
    fi
  fi
  # Fresh log per start, so readiness only sees this run's lines.
  [[ -f $d/kafka.log ]] && mv -f "$d/kafka.log" "$d/kafka.log.prev"
  eie_proc_start kafka "$d/kafka.pid" "$d/kafka.stdout" \
    "$java" "${jargs[@]}" kafka.Kafka "$d/server.properties" || return 1
  # EIE_KAFKA_NICE: the broker's CPU priority below the API's (eie_proc_nice).
  eie_proc_nice kafka "$(cat "$d/kafka.pid")" "${EIE_KAFKA_NICE:-0}"
}

# kafka_wait_ready DATADIR PORT [TIMEOUT_SECONDS]
kafka_wait_ready() {
  local d=$1 port=$2 timeout=${3:-${EIE_KAFKA_START_TIMEOUT:-120}} i
  for ((i = 0; i < timeout * 5; i++)); do
    if ! eie_proc_alive "$d/kafka.pid" >/dev/null; then
      eie_show_tail "$d/kafka.log" "$d/kafka.stdout"
      eie_die "kafka: exited during startup (logs: $d/kafka.log, $d/kafka.stdout)"
      return 1
    fi
    # The port opens before the broker has joined its own controller quorum;
    # the log line marks the point where clients get served.
    if eie_port_open "$port" && grep -qs 'Kafka Server started' "$d/kafka.log"; then
      eie_log "kafka: ready on 127.0.0.1:$port (pid $(<"$d/kafka.pid"))"
      return 0
    fi
    sleep 0.2
  done
  eie_show_tail "$d/kafka.log" "$d/kafka.stdout"
  eie_proc_stop "$d/kafka.pid" 5
  eie_die "kafka: not ready after ${timeout}s (log: $d/kafka.log)"
}

# kafka_start DATADIR PORT CONTROLLER_PORT
kafka_start() {
  kafka_launch "$1" "$2" "$3" || return 1
  kafka_wait_ready "$1" "$2"
}

# kafka_stop DATADIR
kafka_stop() {
  eie_proc_stop "$1/kafka.pid" "${EIE_KAFKA_STOP_TIMEOUT:-30}"
}

# kafka_running DATADIR: prints the pid if our broker runs.
kafka_running() { eie_proc_alive "$1/kafka.pid"; }
