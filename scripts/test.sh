#!/usr/bin/env bash
# Runs every Quiver test on a fresh machine: installs what the tests need, starts the local
# S3-compatible server for the object-store tests, runs the Rust tests (unit, integration,
# sqllogictest files under sql/), stops the server, then runs a SIGKILL crash loop checked by
# `quiver fsck` (scripts/crash-loop.sh) and the end-to-end tests of `quiver serve` with real
# Python clients (scripts/e2e.sh), then `cargo fmt --check` and `cargo clippy -D warnings`.
#
# Caches outside the clone (reused between runs; delete them to start clean):
#   $QUIVER_CACHE (default ~/.cache/quiver): target/ (cargo build output), venv/ (Python)
set -euo pipefail
cd "$(dirname "$0")/.."

# every step is announced with the time since the start, so a slow run shows where it went
step() { printf 'test.sh: [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

CACHE="${QUIVER_CACHE:-$HOME/.cache/quiver}"
mkdir -p "$CACHE"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
export CARGO_TERM_COLOR=never
export CARGO_INCREMENTAL=0

# mold links the big test binaries several times faster; install it when we can.
if ! command -v mold >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get install -y -qq mold >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq mold >/dev/null 2>&1; }) || true
fi
if command -v mold >/dev/null 2>&1; then
  export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-fuse-ld=mold"
  echo "test.sh: linking with mold"
fi

# Python tools for the tests (moto's S3 server), in a venv kept in the cache.
VENV="$CACHE/venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi

# The real public dataset of the import tests: scikit-learn's bundled load_digits images,
# written as PNGs + COCO JSON (shipped inside the package; nothing is downloaded at run time).
if "$VENV/bin/python" -c "import sklearn, PIL" >/dev/null 2>&1 \
  || "$VENV/bin/pip" install -q scikit-learn pillow; then
  DIGITS="$CACHE/digits"
  if [ -f "$DIGITS/annotations.json" ] || "$VENV/bin/python" scripts/make_digits.py "$DIGITS"; then
    export QUIVER_DIGITS_DIR="$DIGITS"
    echo "test.sh: load_digits dataset at $QUIVER_DIGITS_DIR"
  fi
else
  echo "test.sh: could not install scikit-learn; the load_digits import test will be skipped" >&2
fi

MOTO_PID=""
cleanup() { [ -n "$MOTO_PID" ] && kill "$MOTO_PID" 2>/dev/null || true; }
trap cleanup EXIT
# the S3 tests are #[ignore]d in a plain `cargo test` (shown as ignored, never as passed);
# with a server they run through --include-ignored
IGNORED=""
if eval "$(scripts/moto-s3.sh "$VENV")"; then
  MOTO_PID="${QUIVER_MOTO_PID:-}"
  IGNORED="--include-ignored"
  echo "test.sh: S3 tests run against $AWS_ENDPOINT_URL"
else
  echo "test.sh: could not start the local S3 server; S3 tests SKIPPED (listed as ignored)" >&2
fi

status=0
step "building and running the Rust tests (target dir $CARGO_TARGET_DIR)"
cargo test --workspace --no-fail-fast -- $IGNORED 2>&1 || status=$?

step "building the quiver binary (crash loop, end-to-end tests)"
cargo build -p quiver-cli 2>&1 || status=$?

# Crash safety: 20 writers SIGKILLed at random points, each followed by `quiver fsck`.
step "SIGKILL crash loop"
QUIVER_BIN="$CARGO_TARGET_DIR/debug/quiver" scripts/crash-loop.sh 20 || status=$?

# End-to-end: a real `quiver serve` process driven by pyarrow Flight, ADBC Flight SQL, the
# Python client (python/) and PyTorch DataLoader workers; installs its Python packages
# (torch included) into the cached venv on first use.
step "end-to-end tests of the Flight server"
QUIVER_BIN="$CARGO_TARGET_DIR/debug/quiver" scripts/e2e.sh || status=$?

# Formatting and lints, as the repository's rules state them (clippy reuses the dependency
# metadata of the builds above where it can).
step "cargo fmt --check and cargo clippy"
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all --check 2>&1 || { echo "test.sh: cargo fmt --check failed (run cargo fmt)" >&2; status=1; }
else
  echo "test.sh: SKIPPED cargo fmt --check (rustfmt is not installed: rustup component add rustfmt)" >&2
fi
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --workspace --all-targets -- -D warnings 2>&1 || status=$?
else
  echo "test.sh: SKIPPED cargo clippy (clippy is not installed: rustup component add clippy)" >&2
fi
step "done (exit $status)"
exit $status
