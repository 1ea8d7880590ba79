# shellcheck shell=bash
# Java classpaths from Maven Central (maven_*): a pom's pinned property, and
# its runtime dependencies copied into a folder, for the broker (kafka.sh) and
# the benchmark's Kafka Connect worker (bench/kafka_connect.sh).

# maven_pom_property POM NAME: the value of <NAME> in POM.
maven_pom_property() {
  sed -n "s:.*<$2>\([^<]*\)</$2>.*:\1:p" "$1" | head -n 1
}

# maven_fetch_classpath POM LIBS JAR WHAT: POM's runtime dependencies into
# LIBS, unless LIBS/JAR (the one that names the version) is there. The download lands in a temp dir beside LIBS and is
# renamed into place, so an interrupted or concurrent fetch never leaves a
# half-filled LIBS behind.
maven_fetch_classpath() {
  local pom=$1 libs=$2 jar=$3 what=$4 tmp
  [[ -f $libs/$jar ]] && return 0
  command -v mvn >/dev/null || { eie_die "mvn not found (apt-get install maven)"; return 1; }
  mkdir -p "$(dirname "$libs")" || return 1
  tmp=$(mktemp -d "$(dirname "$libs")/.fetch.XXXXXX") || return 1
  # Work on a copy of the pom so Maven leaves nothing in the source tree.
  cp "$pom" "$tmp/pom.xml"
  eie_log "fetching $what with Maven (first time only)"
  # Quiet on success; on failure show Maven's words (it colours even with -B).
  if ! mvn -q -B -f "$tmp/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$tmp/libs" -DincludeScope=runtime </dev/null >"$tmp/mvn.log" 2>&1; then
    sed 's/\x1b\[[0-9;]*m//g' "$tmp/mvn.log" | tail -n 40 >&2
    rm -rf "$tmp"
    eie_die "Maven could not fetch $what"
    return 1
  fi
  # -T: fail rather than nest the dir when a concurrent fetch already won.
  if ! mv -T "$tmp/libs" "$libs" 2>/dev/null && [[ ! -f $libs/$jar ]]; then
    rm -rf "$tmp"
    eie_die "could not install the classpath of $what into $libs"
    return 1
  fi
  rm -rf "$tmp"
}
