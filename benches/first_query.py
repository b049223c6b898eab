#!/usr/bin/env python3
"""The slice query as the first statement of a freshly started server, then once more.

usage: first_query.py QUIVER_BIN CATALOG RESTARTS

CATALOG holds dataset `labels` with the columns of `shared/bench/peers`' table (10M rows)
and a tag `baseline` (as for benches/scan_pair.py). For each of RESTARTS rounds: start
`quiver serve --sync true` on a free port, connect ADBC Flight SQL, time the peers' slice
query of the tag (the first statement the server sees), time it again, stop the server.
Prints the medians (and the first's minimum). The row count is checked against the
peers' table at 10M rows (747,257).
"""
import statistics
import subprocess
import sys
import time

import adbc_driver_flightsql.dbapi as flightsql

SLICE = ["sample_id", "label_id", "class", "bbox_x", "bbox_y", "bbox_w", "bbox_h"]
PRED = "review_state = 'approved' AND reviewed_at >= TIMESTAMP '2024-10-01 00:00:00'"
SQL = f"SELECT {', '.join(SLICE)} FROM labels AS OF TAG 'baseline' WHERE {PRED}"
EXPECT = 747257


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    binary, cat, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    first, second = [], []
    for _ in range(n):
        p = subprocess.Popen([binary, "--catalog", cat, "serve", "--addr", "127.0.0.1:0",
                              "--no-demo", "--sync", "true"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            url = p.stdout.readline().strip().rsplit(" ", 1)[-1]
            con = flightsql.connect(url, autocommit=True)

            def query():
                cur = con.cursor()
                try:
                    cur.execute(SQL)
                    return cur.fetch_arrow_table()
                finally:
                    cur.close()

            for times in (first, second):
                t = time.perf_counter()
                rows = query().num_rows
                times.append(time.perf_counter() - t)
                if rows != EXPECT:
                    sys.exit(f"the slice returned {rows} rows, expected {EXPECT}")
            con.close()
        finally:
            p.terminate()
            p.wait()
    print(f"first {statistics.median(first) * 1e3:.1f} ms (min {min(first) * 1e3:.1f}), "
          f"second {statistics.median(second) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
