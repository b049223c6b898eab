#!/usr/bin/env python3
"""The slice query of the storage bench as the first query of a freshly started server,
then again (warm): wall time through ADBC Flight SQL and the server's CPU time.

usage: first_query.py QUIVER_BIN[,QUIVER_BIN…] CATALOG DATASET ROUNDS

For each round and each binary (alternating): `quiver serve --sync true` on CATALOG, a
`SELECT 1` (connects; reads nothing), then the storage bench's slice query
(`review_state = 'approved' AND reviewed_at >= …`, seven columns) `AS OF TAG 'baseline'`
twice. CATALOG needs DATASET with the columns of `shared/bench/peers`' table and a tag
`baseline`. The server's CPU time is read from /proc/PID/stat (user + system) around each
query (Linux).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import storage as sb  # noqa: E402  (the storage bench's server and ADBC helpers)

COLS = "sample_id, label_id, class, bbox_x, bbox_y, bbox_w, bbox_h"
CUTOFF = "2024-10-01 00:00:00"  # peers.CUTOFF_SQL


def cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return 1000.0 * ticks / os.sysconf("SC_CLK_TCK")


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    bins, catalog, ds, rounds = sys.argv[1].split(","), sys.argv[2], sys.argv[3], int(sys.argv[4])
    cutoff = os.environ.get("QUIVER_BENCH_CUTOFF", CUTOFF)
    sql = (f"SELECT {COLS} FROM {ds} AS OF TAG 'baseline' "
           f"WHERE review_state = 'approved' AND reviewed_at >= TIMESTAMP '{cutoff}'")
    for r in range(rounds):
        for b in bins:
            srv = sb.Server(b, catalog, "true", os.path.join(catalog, "..", "first-serve.log"))
            try:
                con = sb.FlightSql(srv.url)
                con.query("SELECT 1")
                out = []
                for _ in range(2):
                    c0, t0 = cpu_ms(srv.proc.pid), time.perf_counter()
                    t = con.query(sql)
                    t1 = time.perf_counter()
                    time.sleep(0.05)  # let the server finish the stream's last writes
                    out.append(f"{1000 * (t1 - t0):.0f} ms (server CPU "
                               f"{cpu_ms(srv.proc.pid) - c0:.0f} ms)")
                print(f"round {r} {b}: first {out[0]}, again {out[1]}, {t.num_rows} rows",
                      flush=True)
                con.close()
            finally:
                srv.stop()


if __name__ == "__main__":
    main()
