# shellcheck shell=bash
# Background processes we start and stop (eie_proc_*), each known by a pid
# file and the exact command line it was started with.

# eie_proc_alive PIDFILE: prints the pid and succeeds only if that process
# is alive and its cmdline is byte-for-byte what eie_proc_start started (a
# zombie's cmdline is empty, so it counts as gone).
eie_proc_alive() {
  local pidfile=$1 pid
  [[ -s $pidfile && -s $pidfile.cmdline ]] || return 1
  read -r pid <"$pidfile" || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # Through a pipe: cmp -s trusts the 0 size that /proc files report.
  cmp -s <(cat "/proc/$pid/cmdline" 2>/dev/null) "$pidfile.cmdline" || return 1
  printf '%s\n' "$pid"
}

# True while PID exists and is not a zombie.
eie_proc__exists() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# eie_proc_start NAME PIDFILE LOGFILE CMD...: starts CMD detached, appending
# stdout+stderr to LOGFILE; does nothing if our process from PIDFILE is alive.
# CMD must be a binary, or a script run as `bash SCRIPT ...`: the kernel
# rewrites a #! script's cmdline, which would defeat eie_proc_alive.
# EIE_START_SAME_SESSION=1 keeps CMD in the caller's session (see bench/api.sh).
eie_proc_start() {
  local name=$1 pidfile=$2 logfile=$3 pid="" i launcher=(setsid)
  shift 3
  [[ ${EIE_START_SAME_SESSION:-0} == 1 ]] && launcher=()
  if pid=$(eie_proc_alive "$pidfile"); then
    eie_log "$name: already running (pid $pid)"
    return 0
  fi
  command -v "$1" >/dev/null || { eie_die "$name: command not found: $1"; return 1; }
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")" || return 1
  rm -f "$pidfile"
  printf '%s\0' "$@" >"$pidfile.cmdline"
  # Logs are appended to across starts; past 64 MB the old one becomes
  # LOG.prev, so that a log does not fill the disk (bench/api.sh's access log
  # grew by some 2 GB a run).
  if [[ -f $logfile ]] && (($(stat -c %s "$logfile") > 64 * 1024 * 1024)); then
    mv -f "$logfile" "$logfile.prev" || return 1
  fi
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
    eie_proc_alive "$pidfile" >/dev/null && return 0
    if [[ -s $pidfile ]]; then
      read -r pid <"$pidfile" || true
      if [[ -n $pid ]] && ! eie_proc__exists "$pid"; then break; fi
    fi
    sleep 0.05
  done
  eie_show_tail "$logfile"
  eie_die "$name: failed to start (log: $logfile)"
}

# eie_proc_nice NAME PID N: CPU priority below others (nice N, 0 to 19) for a
# process we started in a session of its own (eie_proc_start, pg_ctl): its
# session's autogroup weight, which is what the kernel weighs against other
# sessions, and its threads' nice value (threads and children started later
# take it from them). lib/priority.h explains why, for our own programs, which
# take EIE_NICE themselves. 0 changes nothing.
eie_proc_nice() {
  local name=$1 pid=$2 n=$3 task
  [[ $n =~ ^(1?[0-9])$ ]] || { eie_die "$name: nice must be 0 to 19, not '$n'"; return 2; }
  ((n > 0)) || return 0
  for task in /proc/"$pid"/task/*; do
    renice -n "$n" -p "${task##*/}" >/dev/null 2>&1 || true
  done
  if [[ -w /proc/$pid/autogroup ]]; then
    echo "$n" >"/proc/$pid/autogroup" || { eie_die "$name: could not set nice $n for its session"; return 1; }
  fi
  eie_log "$name: nice $n (pid $pid)"
}

# eie_proc_stop PIDFILE [TIMEOUT_SECONDS]: TERM, wait, then KILL.
eie_proc_stop() {
  local pidfile=$1 timeout=${2:-20} pid i name
  name=$(basename "$pidfile" .pid)
  if ! pid=$(eie_proc_alive "$pidfile"); then
    rm -f "$pidfile" "$pidfile.cmdline"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    eie_proc_alive "$pidfile" >/dev/null || break
    sleep 0.1
  done
  if eie_proc_alive "$pidfile" >/dev/null; then
    eie_warn "$name (pid $pid) ignored SIGTERM for ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      eie_proc_alive "$pidfile" >/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$pidfile" "$pidfile.cmdline"
  eie_log "$name: stopped (pid $pid)"
}
