# shellcheck shell=bash
# Shared shell functions for deploy/local.sh, tests/run.sh, tests/lib/stack.sh
# and the bench scripts. Source it; it sets no shell options of its own.
# It sources the parts in deploy/lib/, one prefix per part:
#   messages.sh   eie_log, eie_warn, eie_die, eie_is_root, eie_show_tail
#   packages.sh   eie_pkg_*   Debian packages, Swagger UI assets
#   build.sh      eie_build   CMake builds
#   ports.sh      eie_port_*  free and listening loopback ports
#   processes.sh  eie_proc_*  background processes by pid file
#   maven.sh      maven_*     classpaths from Maven Central
#   kafka.sh      kafka_*     the broker's jars, start, stop
#   kafka_secure.sh kafka_secure_* its secured profile: TLS, SCRAM users, ACLs
#   postgres.sh   pg_*        the PostgreSQL server, start, stop, databases
# A name with two underscores after its prefix (pg__init) is the part's own.
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

# shellcheck source-path=SCRIPTDIR
for eie__part in messages packages build ports processes maven kafka kafka_secure postgres; do
  # shellcheck source=/dev/null
  source "$EIE_REPO_ROOT/deploy/lib/$eie__part.sh" || return 1
done
unset eie__part
