"""Per-statement latency of a warm `quiver serve` through ADBC Flight SQL.

Starts `quiver serve` on an existing catalog holding a dataset, then times `SELECT 1`,
`CREATE TAG` and `CREATE BRANCH` (each `--runs` times, one statement per call, fresh
names) and prints the median and minimum of each, in milliseconds:

    PYTHONPATH=python ~/.cache/quiver/bench-venv/bin/python benches/statements.py \
        --quiver-bin target/release/quiver --catalog /tmp/qsb/quiver_r0 --dataset labels

The tags and branches it creates stay in the catalog (names `lat<epoch>t<i>`,
`lat<epoch>b<i>`).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import storage as sb  # noqa: E402  (the storage benchmark's server and ADBC helpers)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quiver-bin", required=True)
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--dataset", default="labels")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--sync", default="true")
    a = ap.parse_args()
    srv = sb.Server(a.quiver_bin, a.catalog, a.sync, os.path.join(a.catalog, "..", "statements-serve.log"))
    con = sb.FlightSql(srv.url)
    try:
        con.query("SELECT 1")
        stamp = int(time.time())
        for what, sql in [
            ("SELECT 1", "SELECT 1"),
            ("CREATE TAG", f"CREATE TAG 'lat{stamp}t{{i}}' ON {a.dataset}"),
            ("CREATE BRANCH", f"CREATE BRANCH lat{stamp}b{{i}} FROM {a.dataset}"),
        ]:
            times = []
            for i in range(a.runs):
                t0 = time.perf_counter()
                con.query(sql.format(i=i))
                times.append(time.perf_counter() - t0)
            times.sort()
            print(f"{what:<14} median {times[len(times) // 2] * 1e3:7.2f} ms   "
                  f"min {times[0] * 1e3:7.2f} ms   ({a.runs} runs)")
    finally:
        con.close()
        srv.stop()


if __name__ == "__main__":
    main()
