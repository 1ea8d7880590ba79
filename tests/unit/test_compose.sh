#!/usr/bin/env bash
# docker-compose.yml as README.md promises it (`docker compose up --build`),
# without a Docker engine: tests/compose/ loads the file with compose-go, the
# loader of Docker Compose itself, and checks the services, their commands,
# start order, ports and variables against the programs' --help (see
# tests/compose/main.go). Go builds the checker into the build dir, fetching
# compose-go through the Go module proxy the first time. No services.
set -uo pipefail

: "${EIE_BIN:?EIE_BIN is not set}"
: "${EIE_SOURCE_DIR:?EIE_SOURCE_DIR is not set}"
: "${EIE_BUILD_DIR:?EIE_BUILD_DIR is not set}"

# The Go installation of go.dev/dl lives in /usr/local/go, often off PATH.
go=$(command -v go || true)
[[ -z $go && -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go
if [[ -z $go ]]; then
    echo "FAIL: go not found: checking docker-compose.yml needs Go 1.24 or newer" \
        "(tests/compose/go.mod) on PATH or in /usr/local/go/bin" >&2
    exit 1
fi

checker=$EIE_BUILD_DIR/compose-check/eie-compose-check
# Go keeps its module and build caches under HOME; without one, in the build dir.
if [[ -z ${HOME:-} ]]; then
    export GOPATH=$EIE_BUILD_DIR/compose-check/go GOCACHE=$EIE_BUILD_DIR/compose-check/cache
fi
if ! (cd "$EIE_SOURCE_DIR/tests/compose" && "$go" build -buildvcs=false -o "$checker" .); then
    echo "FAIL: could not build tests/compose with $("$go" version) (above: why)" >&2
    exit 1
fi

# The env file as a user makes it (deploy/compose-env.sh), with its key folder
# in a temporary place rather than the source tree.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! EIE_KEYS_DIR=$work/keys "$EIE_SOURCE_DIR/deploy/compose-env.sh" "$work/env" >"$work/first.log"; then
    echo "FAIL: deploy/compose-env.sh failed: $(cat "$work/first.log")" >&2
    exit 1
fi
fail=0
[[ -f $work/keys/api-keys && $(stat -c %a "$work/keys/api-keys") == 600 ]] ||
    { echo "FAIL: compose-env.sh made no key file of mode 0600 in $work/keys" >&2; fail=1; }
[[ $(stat -c %a "$work/env") == 600 ]] ||
    { echo "FAIL: the env file has mode $(stat -c %a "$work/env"), not 0600: it holds passwords" >&2; fail=1; }
# Twice: the file and its passwords stay.
cp "$work/env" "$work/env.first"
EIE_KEYS_DIR=$work/keys "$EIE_SOURCE_DIR/deploy/compose-env.sh" "$work/env" >/dev/null &&
    cmp -s "$work/env" "$work/env.first" ||
    { echo "FAIL: a second run of compose-env.sh changed the env file (or failed)" >&2; fail=1; }
# The real env file and keys stay out of git; the example is committed.
if git -C "$EIE_SOURCE_DIR" rev-parse --git-dir >/dev/null 2>&1; then
    for path in .env keys/api-keys; do
        git -C "$EIE_SOURCE_DIR" check-ignore --no-index -q "$path" ||
            { echo "FAIL: git does not ignore $path" >&2; fail=1; }
    done
    ! git -C "$EIE_SOURCE_DIR" check-ignore --no-index -q .env.example ||
        { echo "FAIL: git ignores .env.example" >&2; fail=1; }
fi
"$checker" -file "$EIE_SOURCE_DIR/docker-compose.yml" -env-file "$work/env" -bin "$EIE_BIN" || fail=1
exit $fail
