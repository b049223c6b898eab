#!/usr/bin/env python3
"""The first diffs after a commit, through ADBC Flight SQL on a warm server.

usage: diff_after_commit.py QUIVER_BIN CATALOG [RUNS] [--edits N]

CATALOG (a dataset `labels` with a tag `baseline` at its load, e.g. the storage bench's
10M catalog) is hard-linked into a scratch directory per run (`cp -al`: objects are never
rewritten in place; the run's commit adds files). Each run starts `quiver serve`, warms it
with a count, updates N scattered approved labels (default 300) in one UPDATE, then times
`quiver_diff('labels', 'baseline', 'main')` four times: the first call is what the storage
bench reports as the warm diff, the later ones the steady state. Prints every run and the
median of each call.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import storage as sb  # noqa: E402  (the storage bench's server and ADBC helpers)

CALLS = 4


def one_run(binary, catalog, edits):
    work = tempfile.mkdtemp(prefix="quiver-diff-after-commit-")
    cat = os.path.join(work, "catalog")
    subprocess.check_call(["cp", "-al", catalog, cat])
    srv = sb.Server(binary, cat, "true", os.path.join(work, "serve.log"))
    try:
        con = sb.FlightSql(srv.url)
        ids = con.query(
            "SELECT label_id FROM labels WHERE review_state = 'approved' "
            f"AND label_id % 19997 = 3 LIMIT {edits}").column(0).to_pylist()
        con.query("SELECT count(*) FROM labels")
        con.query("UPDATE labels SET class = 'hair drier', review_state = 'rejected' "
                  f"WHERE label_id IN ({','.join(map(str, ids))})")
        sql = "SELECT * FROM quiver_diff('labels', 'baseline', 'main')"
        out = []
        for _ in range(CALLS):
            t = time.perf_counter()
            d = con.query(sql)
            out.append(1000 * (time.perf_counter() - t))
            if d.num_rows != len(ids):
                raise SystemExit(f"quiver_diff gave {d.num_rows} rows, {len(ids)} labels edited")
        con.close()
        return out
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    args = sys.argv[1:]
    edits = 300
    if "--edits" in args:
        i = args.index("--edits")
        edits = int(args[i + 1])
        del args[i:i + 2]
    if len(args) < 2:
        sys.exit(__doc__)
    binary, catalog = args[0], args[1]
    runs = int(args[2]) if len(args) > 2 else 3
    all_runs = []
    for r in range(runs):
        ms = one_run(binary, catalog, edits)
        all_runs.append(ms)
        print(f"run {r}: " + ", ".join(f"{m:.2f}" for m in ms) + " ms")
    for c in range(CALLS):
        med = statistics.median(run[c] for run in all_runs)
        print(f"call {c + 1} after the commit: median {med:.2f} ms")


if __name__ == "__main__":
    main()
