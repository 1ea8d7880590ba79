# shellcheck shell=bash
# Messages for people and the few checks every part needs (eie_*): sourced
# first by deploy/lib.sh.

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
