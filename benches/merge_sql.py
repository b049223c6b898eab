#!/usr/bin/env python3
"""Three-way merge of 500 + 500 changed labels through Flight SQL (issue 19's merge row).

usage: merge_sql.py QUIVER_BIN CATALOG DATASET ROWS [MERGES]

On a `quiver serve` over CATALOG (a copy: this commits to it), MERGES times (default 6):
CREATE BRANCH from main; an UPDATE of 500 scattered labels on the branch and another of
500 other labels on main; then `MERGE BRANCH … INTO main`, timed through ADBC on the warm
server, with a `SELECT 1` after each as the protocol's floor. DATASET must have integer
`label_id`s 0..ROWS-1 and a `class` and `review_state` column, as the table of
`shared/bench/peers` (imported with `quiver import parquet`).
"""
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import storage as sb  # noqa: E402  (the storage bench's server and ADBC helpers)


def in_list(ids):
    return "label_id IN (" + ",".join(str(i) for i in ids) + ")"


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    binary, catalog, ds, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    merges = int(sys.argv[5]) if len(sys.argv) > 5 else 6
    srv = sb.Server(binary, catalog, "true", os.path.join(catalog, "..", "merge-serve.log"))
    try:
        con = sb.FlightSql(srv.url)
        stamp = int(time.time())
        times, floor = [], []
        for k in range(merges):
            ids = np.random.default_rng(stamp + k).choice(rows, size=1000, replace=False)
            theirs, ours = np.sort(ids[:500]).tolist(), np.sort(ids[500:]).tolist()
            branch = f"m{stamp}_{k}"
            con.query(f"CREATE BRANCH {branch} FROM {ds}")
            con.query(f"UPDATE \"{ds}@branch:{branch}\" SET class = 'zebra' WHERE {in_list(theirs)}")
            con.query(f"UPDATE {ds} SET review_state = 'rejected' WHERE {in_list(ours)}")
            t0 = time.perf_counter()
            res = con.query(f"MERGE BRANCH {branch} INTO main ON {ds}").to_pylist()
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            con.query("SELECT 1")
            floor.append(time.perf_counter() - t0)
            if res[0]["result"] != "merged":
                sys.exit(f"merge {k}: {res}")
        print("merges (ms):", " ".join(f"{t * 1000:.1f}" for t in times))
        print(f"merge median {statistics.median(times) * 1000:.1f} ms; "
              f"SELECT 1 median {statistics.median(floor) * 1000:.2f} ms")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
