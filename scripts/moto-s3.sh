#!/usr/bin/env bash
# Start a local S3-compatible server (moto 5.2.5) for quiver-store's S3 tests.
#
# Usage:  eval "$(scripts/moto-s3.sh /tmp/qvenv [bucket])"
#         CARGO_TARGET_DIR=/tmp/target-store cargo test -p quiver-store s3
#         kill "$QUIVER_MOTO_PID"
#
# $1: a python virtualenv (created if missing; moto[server]==5.2.5 and boto3 are installed
#     into it if missing). $2: bucket name (default quiver-test, >= 3 chars).
# Prints `export` lines on stdout (diagnostics go to stderr); the server keeps running in
# the background, logging to $VENV/moto-<port>.log.
set -euo pipefail

VENV="${1:?usage: $0 VENV_DIR [BUCKET]}"
BUCKET="${2:-quiver-test}"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV" >&2
fi
if ! "$PY" -c 'import moto, boto3, flask; assert moto.__version__ == "5.2.5"' 2>/dev/null; then
  "$VENV/bin/pip" install -q 'moto[server]==5.2.5' boto3 >&2
fi

PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
ENDPOINT="http://127.0.0.1:$PORT"
LOG="$VENV/moto-$PORT.log"

nohup setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 </dev/null &
PID=$!

for _ in $(seq 1 100); do
  if curl -s -o /dev/null "$ENDPOINT/moto-api/"; then
    break
  fi
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "moto_server exited; see $LOG" >&2
    exit 1
  fi
  sleep 0.1
done
curl -s -o /dev/null "$ENDPOINT/moto-api/" || { echo "moto_server did not answer on $ENDPOINT" >&2; kill "$PID"; exit 1; }

AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "$PY" - "$ENDPOINT" "$BUCKET" >&2 <<'PYEOF'
import sys, boto3
endpoint, bucket = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
s3.create_bucket(Bucket=bucket)
PYEOF

cat <<EOT
export AWS_ENDPOINT_URL=$ENDPOINT
export AWS_ALLOW_HTTP=true
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export QUIVER_TEST_S3_URL=s3://$BUCKET/quiver
export QUIVER_MOTO_PID=$PID
EOT
