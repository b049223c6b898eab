#!/usr/bin/env bash
# SIGKILL loop (invariant 7): start a writer, kill it with SIGKILL after a short random delay,
# then check the catalog. Writers alternate between `quiver demo` (a dataset created in one
# commit) and `quiver sql` running many single-statement commits (UPDATE, CREATE BRANCH/TAG).
# After every cycle:
#   * `quiver fsck --repair` must exit 0: no dangling ref, missing object or corruption
#     (a killed demo leaves a half-created dataset, which is repaired; orphans are expected);
#   * every listed dataset must read, and none may be empty (a demo is all or nothing).
# Usage: scripts/crash-loop.sh [cycles]   (QUIVER_BIN: the quiver binary, default target/debug/quiver)
set -uo pipefail
cd "$(dirname "$0")/.."
Q="${QUIVER_BIN:-${CARGO_TARGET_DIR:-target}/debug/quiver}"
CYCLES="${1:-20}"
[ -x "$Q" ] || { echo "crash-loop: no quiver binary at $Q (set QUIVER_BIN)"; exit 2; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
CAT="$WORK/catalog"
q() { "$Q" --catalog "$CAT" "$@"; }
fail() { echo "crash-loop: FAILED at cycle $cycle: $*"; [ -f "$WORK/out" ] && tail -20 "$WORK/out"; exit 1; }

cycle=0
q demo --rows 5000 --dataset base >"$WORK/out" 2>&1 || fail "setting up the base dataset"
killed=0
finished=0
orphans=0
for cycle in $(seq 1 "$CYCLES"); do
  delay="$(( (RANDOM % 950) + 50 ))"
  delay="$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
  if [ $((cycle % 2)) = 1 ]; then
    writer=(demo --rows 15000 --dataset "d$cycle" --seed "$cycle")
  else
    sql=""
    for j in $(seq 1 30); do
      sql+="UPDATE base SET score = $j.0 WHERE sample_id = 'img-$(printf '%08d' $((j * 7 % 1200)))'; "
      [ $((j % 10)) = 0 ] && sql+="CREATE BRANCH b${cycle}_$j FROM base; CREATE TAG 't${cycle}_$j' ON base; "
    done
    writer=(sql -c "$sql")
  fi
  timeout --foreground -s KILL "$delay" "$Q" --catalog "$CAT" "${writer[@]}" >"$WORK/out" 2>&1
  rc=$?
  # 137: SIGKILLed; 124: the delay ran out as the writer was exiting on its own
  if [ "$rc" = 137 ] || [ "$rc" = 124 ]; then
    killed=$((killed + 1))
  elif [ "$rc" = 0 ]; then
    finished=$((finished + 1))
  else
    fail "writer '${writer[0]}' exited with $rc"
  fi
  q fsck --repair --format json >"$WORK/fsck.json" 2>"$WORK/out" \
    || { cat "$WORK/fsck.json"; fail "fsck found dangling refs or corruption after '${writer[0]}' (killed after ${delay}s)"; }
  orphans="$(grep -c '"objects/\|"tmp/' "$WORK/fsck.json" || true)"
  q datasets >"$WORK/datasets" 2>"$WORK/out" || fail "listing datasets"
  if grep -q $'\t0 labels' "$WORK/datasets"; then
    cat "$WORK/datasets"
    fail "a dataset is listed empty: a killed demo became visible"
  fi
  q sql -c "SELECT count(*) FROM base" >"$WORK/out" 2>&1 || fail "reading base"
done
q fsck >"$WORK/out" 2>&1 || fail "final fsck is not clean"
echo "crash-loop: $CYCLES cycles, $killed writers SIGKILLed, $finished finished; fsck clean ($orphans orphans), reads ok"
