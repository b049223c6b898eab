#!/usr/bin/env python3
"""Commits back to back through one server, then what they left on disk: the storage
bench's edit series (UPDATE of 500 scattered labels per commit) without the Lance commits
between them, so background folds race the commits as hard as they can.

usage: edit_series.py QUIVER_BIN CATALOG ROWS COMMITS

CATALOG holds dataset `labels` (ROWS labels with the columns of `shared/bench/peers`'
table, e.g. from `quiver import parquet`); it is changed. Prints the commits' median
time, then the objects in the catalog (base records: one per import or fold that rewrote
chunks) and its bytes on disk, after a 5 s pause for a fold still running.
"""
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import storage as sb  # noqa: E402  (the storage bench's server and ADBC helpers)


def count(cat, kind):
    return sum(len(fs) for _, _, fs in os.walk(os.path.join(cat, "objects", kind)))


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    binary, cat, n, commits = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    srv = sb.Server(binary, cat, "true", os.path.join(cat, "..", "edit_series.log"))
    try:
        con = sb.FlightSql(srv.url)
        times = []
        for k in range(commits):
            ids = np.sort(np.random.default_rng(20261223 + k).choice(n, size=500, replace=False))
            where = f"label_id IN ({', '.join(map(str, ids.tolist()))})"
            t, _ = sb.timed(lambda: con.query(
                f"UPDATE labels SET class = 'c{k % 80}', review_state = 's{k % 3}' WHERE {where}"))
            times.append(t)
        print(f"{commits} commits, median {sorted(times)[len(times) // 2] * 1e3:.0f} ms")
        time.sleep(5)
        rows = con.query("SELECT count(*) FROM labels").column(0)[0].as_py()
        if rows != n:
            sys.exit(f"the dataset has {rows} labels after the series, expected {n}")
        con.close()
    finally:
        srv.stop()
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(cat) for f in fs)
    print(f"base records {count(cat, 'base')}, layouts {count(cat, 'layout')}, "
          f"deltas {count(cat, 'delta')}, packs {count(cat, 'pack')}; {size / 1e6:.1f} MB on disk")


if __name__ == "__main__":
    main()
