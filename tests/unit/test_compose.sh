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
"$checker" -file "$EIE_SOURCE_DIR/docker-compose.yml" -bin "$EIE_BIN"
