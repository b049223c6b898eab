#!/usr/bin/env bash
# arrow-adbc's own test suites against `quiver serve` (docs/CONFORMANCE.md): the Python Flight
# SQL tests (python/adbc_driver_flightsql/tests) and the C validation suite (c/validation,
# with Quiver's quirks in tests/adbc-validation/), through the Flight SQL driver of the
# adbc-driver-flightsql wheel. Not part of CI: it needs an arrow-adbc checkout, which CI
# cannot fetch. Each suite gets its own fresh catalog and server.
#
#   scripts/adbc-conformance.sh ARROW_ADBC_CHECKOUT [python|c|all] [extra args for the runner]
#
#   QUIVER_BIN   the quiver binary (default $CARGO_TARGET_DIR/debug/quiver)
#   QUIVER_CACHE cache root (default ~/.cache/quiver): venv/ is the Python venv of e2e.sh
#   WORK         scratch directory (default a new mktemp -d): catalogs, logs, the C build
#
# Get the pinned checkout from a clone of https://github.com/apache/arrow-adbc with e.g.
#   git -C arrow-adbc archive apache-arrow-adbc-24 c python/adbc_driver_flightsql/tests \
#       ':(exclude)c/vendor/sqlite3' | tar -x -C /tmp/adbc-src
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

ADBC="${1:?usage: $0 ARROW_ADBC_CHECKOUT [python|c|all] [args]}"
WHAT="${2:-all}"
shift $(( $# >= 2 ? 2 : 1 ))
ADBC="$(cd "$ADBC" && pwd)"

CACHE="${QUIVER_CACHE:-$HOME/.cache/quiver}"
QUIVER_BIN="${QUIVER_BIN:-${CARGO_TARGET_DIR:-$CACHE/target}/debug/quiver}"
PY="$CACHE/venv/bin/python"
[ -x "$QUIVER_BIN" ] || { echo "$0: no quiver binary at $QUIVER_BIN (cargo build -p quiver-cli)" >&2; exit 2; }
[ -x "$PY" ] || { echo "$0: no venv at $CACHE/venv (run scripts/e2e.sh once)" >&2; exit 2; }
WORK="${WORK:-$(mktemp -d)}"
mkdir -p "$WORK"
TOKEN="conformance-rw-token"

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT

# start_server NAME: a fresh catalog under $WORK/NAME; sets URI
start_server() {
  local dir="$WORK/$1"
  rm -rf "$dir" && mkdir -p "$dir"
  "$QUIVER_BIN" --catalog "$dir/catalog" serve --addr 127.0.0.1:0 --tokens-env "$TOKEN:rw:adbc" \
    --demo-rows 1000 >"$dir/stdout.log" 2>"$dir/stderr.log" &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    URI="$(grep -o 'grpc://[0-9.]*:[0-9]*' "$dir/stdout.log" 2>/dev/null | head -1 || true)"
    [ -n "$URI" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/stderr.log" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$URI" ] || { echo "$0: quiver serve did not start" >&2; exit 1; }
  echo "adbc-conformance: quiver serve at $URI (logs in $dir)"
}

rc=0
if [ "$WHAT" = python ] || [ "$WHAT" = all ]; then
  "$PY" -c "import google.protobuf" 2>/dev/null || "$PY" -m pip install -q protobuf
  start_server python
  # The Dremio and GizmoSQL fixtures are generic "a Flight SQL server with a user name and
  # password"; ADBC_TEST_FLIGHTSQL_URI (arrow-adbc's own Go test server) is left unset.
  ADBC_DREMIO_FLIGHTSQL_URI="$URI" ADBC_DREMIO_FLIGHTSQL_USER=adbc \
  ADBC_DREMIO_FLIGHTSQL_PASS="$TOKEN" \
  ADBC_GIZMOSQL_URI="$URI" ADBC_GIZMOSQL_USER=adbc ADBC_GIZMOSQL_PASSWORD="$TOKEN" \
    "$PY" -m pytest -p no:cacheprovider -rA "$ADBC/python/adbc_driver_flightsql/tests" "$@" \
    || rc=$?
  stop_server
fi

if [ "$WHAT" = c ] || [ "$WHAT" = all ]; then
  LIB="$("$PY" -c 'import adbc_driver_flightsql, pathlib; print(next(pathlib.Path(adbc_driver_flightsql.__file__).parent.glob("libadbc_driver_flightsql.so")))')"
  cmake -S "$REPO/tests/adbc-validation" -B "$WORK/c-build" -DADBC_SOURCE_DIR="$ADBC" \
    -DADBC_DRIVER_LIB="$LIB" >/dev/null
  cmake --build "$WORK/c-build" -j"$(nproc)"
  start_server c
  QUIVER_ADBC_URI="$URI" QUIVER_ADBC_USER=adbc QUIVER_ADBC_PASSWORD="$TOKEN" \
    "$WORK/c-build/quiver-adbc-validation" "$@" || rc=$?
  stop_server
fi
exit $rc
