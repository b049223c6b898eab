#!/usr/bin/env python3
"""Two server builds side by side on the storage bench's reads of the tagged version:
numeric projection, full scan and slice query, each through ADBC Flight SQL and through the
Python client's DoGet, alternating A and B run by run (the order flips every run).

usage: scan_pair.py QUIVER_BIN_A QUIVER_BIN_B CATALOG RUNS [READ,…] [--duckdb PARQUET]

CATALOG holds dataset `labels` with the columns of `shared/bench/peers`' table and a tag
`baseline` (e.g. `quiver import parquet labels.parquet --dataset labels`, then
`CREATE TAG 'baseline' ON labels`). READ names a subset of numeric_adbc, full_adbc,
slice_adbc, numeric_doget, full_doget, slice_doget. Prints per read the median of A and B
and the median (min–max) of the per-run ratio B/A; both servers run at once, on one
catalog (reads only). With `--duckdb PARQUET` (the Parquet file the catalog was imported
from), DuckDB reads the same columns and rows from it in this process in every run, and
each read also prints A's and B's median ratio to DuckDB's.
"""
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import storage as sb  # noqa: E402  (the storage bench's server and ADBC helpers)
import quiver  # noqa: E402

NUMERIC = sb.NUMERIC
SLICE = ["sample_id", "label_id", "class", "bbox_x", "bbox_y", "bbox_w", "bbox_h"]
PRED = "review_state = 'approved' AND reviewed_at >= TIMESTAMP '2024-10-01 00:00:00'"


def reads(con, client):
    tagged = lambda: client.dataset("labels").at(tag="baseline")  # noqa: E731
    asof = "FROM labels AS OF TAG 'baseline'"
    return {
        "numeric_adbc": lambda: con.query(f"SELECT {', '.join(NUMERIC)} {asof}"),
        "full_adbc": lambda: con.query(f"SELECT * {asof}"),
        "slice_adbc": lambda: con.query(f"SELECT {', '.join(SLICE)} {asof} WHERE {PRED}"),
        "numeric_doget": lambda: tagged().to_table(columns=NUMERIC),
        "full_doget": lambda: tagged().to_table(),
        "slice_doget": lambda: tagged().to_table(columns=SLICE, filter=PRED),
    }


def duck_reads(parquet):
    import duckdb
    con = duckdb.connect()
    src = f"FROM read_parquet('{parquet}')"
    sql = {
        "numeric": f"SELECT {', '.join(NUMERIC)} {src}",
        "full": f"SELECT * {src}",
        "slice": f"SELECT {', '.join(SLICE)} {src} WHERE {PRED}",
    }
    return {n: (lambda q=q: con.sql(q).to_arrow_table()) for n, q in sql.items()}


def main():
    args = sys.argv[1:]
    parquet = None
    if "--duckdb" in args:
        i = args.index("--duckdb")
        if i + 1 >= len(args):
            sys.exit(__doc__)
        parquet = args[i + 1]
        del args[i:i + 2]
    if len(args) < 4:
        sys.exit(__doc__)
    bin_a, bin_b, cat, runs = args[0], args[1], args[2], int(args[3])
    only = args[4].split(",") if len(args) > 4 else None
    duck = duck_reads(parquet) if parquet else None
    a = sb.Server(bin_a, cat, "true", os.path.join(cat, "..", "scan_pair_a.log"))
    b = sb.Server(bin_b, cat, "true", os.path.join(cat, "..", "scan_pair_b.log"))
    try:
        ra = reads(sb.FlightSql(a.url), quiver.connect(a.url))
        rb = reads(sb.FlightSql(b.url), quiver.connect(b.url))
        names = [n for n in ra if only is None or n in only]
        unknown = set(only or []) - set(ra)
        if unknown:
            sys.exit(f"unknown reads: {', '.join(sorted(unknown))} (known: {', '.join(ra)})")
        times = {}
        for r in range(runs):
            for n in names:
                order = (("A", ra), ("B", rb)) if r % 2 == 0 else (("B", rb), ("A", ra))
                for who, rd in order:
                    t, tab = sb.timed(rd[n])
                    times.setdefault((n, who), []).append(t)
                    del tab
                if duck is not None:
                    t, tab = sb.timed(duck[n.rsplit("_", 1)[0]])
                    times.setdefault((n, "DuckDB"), []).append(t)
                    del tab
        for n in names:
            ta, tb = times[(n, "A")], times[(n, "B")]
            ratios = sorted(y / x for x, y in zip(ta, tb))
            line = (f"{n:14s} A {statistics.median(ta) * 1e3:7.1f} ms  B {statistics.median(tb) * 1e3:7.1f} ms"
                    f"  B/A {statistics.median(ratios):.3f} ({ratios[0]:.2f}-{ratios[-1]:.2f})")
            if duck is not None:
                td = times[(n, "DuckDB")]
                da = statistics.median(x / d for x, d in zip(ta, td))
                db = statistics.median(x / d for x, d in zip(tb, td))
                line += f"  DuckDB {statistics.median(td) * 1e3:7.1f} ms  A/DuckDB {da:.2f}  B/DuckDB {db:.2f}"
            print(line)
    finally:
        a.stop()
        b.stop()


if __name__ == "__main__":
    main()
