# shellcheck shell=bash
# Loopback TCP ports (eie_port_*): finding a free one, telling whether one is
# in use, from /proc so that no extra tools are needed.

# Local ports of all TCP sockets (any state), from /proc so no extra tools.
eie_port__used() {
  local f _sl addr _rest
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r $f ]] || continue
    while read -r _sl addr _rest; do
      [[ $addr == *:* ]] || continue
      printf '%d ' "$((16#${addr##*:}))"
    done <"$f"
  done
}

# eie_port_free [EXCLUDE...]: prints a loopback TCP port nobody uses.
# Picks below the kernel's ephemeral range (32768+) so outgoing connections
# do not grab it between our check and the service binding it; EXCLUDE lists
# ports already handed out but not bound yet.
eie_port_free() {
  local used port i
  used=" $(eie_port__used) $* "
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
eie_port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
