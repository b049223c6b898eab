#!/usr/bin/env python3
"""A 500-label edit on a fresh copy, Quiver against Lance, paired round by round (issue 19's
commit row, as the storage bench takes it: the first UPDATE of a freshly started server).

usage: commit_pair.py QUIVER_BIN[,QUIVER_BIN…] CATALOG DATASET PARQUET ROUNDS [WORK]

Each round picks 500 random `label_id`s (seeded by the round), then, for each binary:
copies CATALOG (a catalog holding DATASET as `quiver import parquet` made it from PARQUET)
to WORK, starts `quiver serve --sync true` on the copy, runs `SELECT count(*)`,
`CREATE TAG`, `CREATE BRANCH` (as the storage bench does before its edit) and times
`UPDATE … SET class, review_state WHERE label_id IN (…)` through ADBC Flight SQL. Then
Lance: a copy of a Lance dataset written once from PARQUET (kept in WORK), opened, tagged,
branched, and `update()` with the same predicate, timed in this process. Prints each
round and the medians; the ratio to read is Quiver / Lance of the same round. Needs
`lance` and the ADBC Flight SQL driver (the bench venv of benches/storage.py).
"""
import os
import shutil
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import storage as sb  # noqa: E402  (the storage bench's server and ADBC helpers)

EDIT = "class = 'hair drier', review_state = 'rejected'"


def in_list(ids):
    return "label_id IN (" + ",".join(str(i) for i in ids) + ")"


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    bins = sys.argv[1].split(",")
    catalog, ds, parquet, rounds = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    work = sys.argv[6] if len(sys.argv) > 6 else "/tmp/quiver-commit-pair"
    os.makedirs(work, exist_ok=True)
    import lance
    import pyarrow.dataset as pads

    pristine = os.path.join(work, "lance_pristine")
    if not os.path.exists(pristine):
        lance.write_dataset(pads.dataset(parquet), pristine)
    rows = lance.dataset(pristine).count_rows()
    times = {b: [] for b in bins}
    times["lance"] = []
    for r in range(rounds):
        ids = np.sort(np.random.default_rng(100 + r).choice(rows, size=500, replace=False))
        pred = in_list(ids.tolist())
        for b in bins:
            cat = os.path.join(work, "catalog")
            shutil.rmtree(cat, ignore_errors=True)
            shutil.copytree(catalog, cat)
            srv = sb.Server(b, cat, "true", os.path.join(work, "serve.log"))
            try:
                con = sb.FlightSql(srv.url)
                con.query(f"SELECT count(*) FROM {ds}")
                con.query(f"CREATE TAG 'baseline' ON {ds}")
                con.query(f"CREATE BRANCH experiment FROM {ds} AS OF TAG 'baseline'")
                t0 = time.perf_counter()
                con.query(f"UPDATE {ds} SET {EDIT} WHERE {pred}")
                times[b].append(time.perf_counter() - t0)
                con.close()
            finally:
                srv.stop()
        copy = os.path.join(work, "lance_copy")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(pristine, copy)
        lds = lance.dataset(copy)
        lds.tags.create("baseline", lds.version)
        lds.create_branch("experiment", "baseline")
        t0 = time.perf_counter()
        out = lds.update({"class": "'hair drier'", "review_state": "'rejected'"}, where=pred)
        times["lance"].append(time.perf_counter() - t0)
        if out["num_rows_updated"] != 500:
            sys.exit(f"lance updated {out['num_rows_updated']} rows, expected 500")
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()),
              flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print("medians: " + ", ".join(f"{k} {v:.3f} s" for k, v in med.items()))
    for b in bins:
        ratios = [q / l for q, l in zip(times[b], times["lance"])]
        print(f"{b} / lance per round: " + ", ".join(f"{x:.2f}" for x in ratios)
              + f" (median {statistics.median(ratios):.2f})")


if __name__ == "__main__":
    main()
