#!/usr/bin/env bash
# End-to-end tests of the Flight server with real clients: starts `quiver serve` on a fresh
# catalog (demo dataset, tokens) and drives it from Python — pyarrow.flight, ADBC Flight SQL,
# the quiver client (python/), PyTorch DataLoader workers and the examples/.
#
#   QUIVER_BIN      the quiver binary to test (default $CARGO_TARGET_DIR/debug/quiver)
#   QUIVER_CACHE    cache root (default ~/.cache/quiver): venv/ and target/
#   extra arguments go to pytest, e.g.  scripts/e2e.sh -k torch -x
#
# This script does not build the binary: run `cargo build -p quiver-cli` first.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${QUIVER_CACHE:-$HOME/.cache/quiver}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
export QUIVER_BIN="${QUIVER_BIN:-$CARGO_TARGET_DIR/debug/quiver}"
if [ ! -x "$QUIVER_BIN" ]; then
  echo "e2e.sh: no quiver binary at $QUIVER_BIN (build it with: cargo build -p quiver-cli, or set QUIVER_BIN)" >&2
  exit 2
fi

VENV="$CACHE/venv"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
fi
if ! "$PY" -c "import pyarrow.flight, adbc_driver_flightsql.dbapi, adbc_driver_manager, pandas, pytest" >/dev/null 2>&1; then
  echo "e2e.sh: installing pyarrow, adbc-driver-flightsql, adbc-driver-manager, pandas, pytest into $VENV"
  "$PY" -m pip install -q pyarrow adbc-driver-flightsql adbc-driver-manager pandas pytest
fi
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "e2e.sh: installing torch (CPU) into $VENV"
  "$PY" -m pip install -q torch
fi
"$PY" -m pip install -q -e python

echo "e2e.sh: testing $QUIVER_BIN"
exec "$PY" -m pytest -q -p no:cacheprovider tests/e2e "$@"
