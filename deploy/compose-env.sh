#!/usr/bin/env bash
# Writes the .env that docker-compose.yml reads: .env.example's settings with
# a random password for each PostgreSQL role and the caller's user and group
# ids (the API runs as them, to read the key file they own); makes the key
# folder with an empty key file. What is already there is left as it is, so
# running this twice is safe.
#
#   ./deploy/compose-env.sh [FILE]     FILE: default .env beside docker-compose.yml
#   EIE_KEYS_DIR=DIR                   the key folder to write into a new file
#                                      (default .env.example's, ./keys)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case ${1:-} in
    -h | --help)
        sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    -*)
        echo "compose-env.sh: unknown option '$1' (see --help)" >&2
        exit 2
        ;;
esac
[[ $# -le 1 ]] || { echo "compose-env.sh: one file at most (see --help)" >&2; exit 2; }
file=${1:-$root/.env}

if [[ -e $file ]]; then
    echo "compose-env.sh: $file is already there; left as it is"
else
    # 128 bits, as hex: safe in a URL and in a shell word.
    random_password() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
    umask 077
    tmp=$file.tmp.$$
    trap 'rm -f "$tmp"' EXIT
    while IFS= read -r line; do
        case $line in
            EIE_*_PASSWORD=) line+=$(random_password) ;;
            EIE_UID=) line+=$(id -u) ;;
            EIE_GID=) line+=$(id -g) ;;
            EIE_KEYS_DIR=*) line=EIE_KEYS_DIR=${EIE_KEYS_DIR:-${line#EIE_KEYS_DIR=}} ;;
        esac
        printf '%s\n' "$line"
    done <"$root/.env.example" >"$tmp"
    mv "$tmp" "$file"
    trap - EXIT
    echo "compose-env.sh: wrote $file (passwords for eie, eie_owner, eie_writer, eie_reader)"
fi

# The key folder, relative to the compose file as docker compose reads it.
keys_dir=$(sed -n 's/^EIE_KEYS_DIR=//p' "$file" | tail -n 1)
keys_dir=${keys_dir:-./keys}
[[ $keys_dir == /* ]] || keys_dir=$root/${keys_dir#./}
mkdir -p "$keys_dir"
chmod 700 "$keys_dir"
# Empty at first: the API starts, and answers writes 401 until a key is made.
if [[ ! -e $keys_dir/api-keys ]]; then
    (umask 077 && : >"$keys_dir/api-keys")
    echo "compose-env.sh: made an empty key file $keys_dir/api-keys (README, With Docker: making a key)"
fi
