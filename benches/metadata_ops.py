#!/usr/bin/env python3
"""Latency of small statements on a warm server: tag and branch creation, the diff of a
tagged version against main, and `SELECT 1` as the protocol's floor; through the Python
client (`quiver.Client`: one DoAction for a tag or branch, GetFlightInfo + DoGet for SQL)
and through ADBC Flight SQL.

usage: metadata_ops.py QUIVER_BIN CATALOG DATASET [N] [--sync true|false]

CATALOG is copied to a temporary directory first (tags and branches are created in the
copy). DATASET needs a tag `baseline`; the diff is `quiver_diff(DATASET, 'baseline',
'main')`. Prints the median (min–max) of N calls (default 25) of each.
"""
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import storage as sb  # noqa: E402  (the storage bench's server and ADBC helpers)
import quiver  # noqa: E402


def timed(f, n):
    ts = []
    for i in range(n):
        t0 = time.perf_counter()
        f(i)
        ts.append(1000 * (time.perf_counter() - t0))
    return f"{statistics.median(ts):.2f} ms ({min(ts):.2f}-{max(ts):.2f})"


def main():
    args = [a for a in sys.argv[1:]]
    sync = "true"
    if "--sync" in args:
        i = args.index("--sync")
        sync = args[i + 1]
        del args[i:i + 2]
    if len(args) < 3:
        sys.exit(__doc__)
    binary, catalog, ds = args[0], args[1], args[2]
    n = int(args[3]) if len(args) > 3 else 25
    work = tempfile.mkdtemp(prefix="quiver-metadata-ops-")
    cat = os.path.join(work, "catalog")
    shutil.copytree(catalog, cat)
    srv = sb.Server(binary, cat, sync, os.path.join(work, "serve.log"))
    try:
        diff = f"SELECT * FROM quiver_diff('{ds}', 'baseline', 'main')"
        c = quiver.Client(srv.url)
        c.datasets()
        print(f"--sync {sync}, Python client")
        print("  list datasets (DoAction)", timed(lambda i: c.datasets(), n))
        print("  create tag              ", timed(lambda i: c.create_tag(ds, f"t{i}"), n))
        print("  create branch           ", timed(lambda i: c.create_branch(ds, f"b{i}", "baseline"), n))
        print("  SELECT 1                ", timed(lambda i: c.sql("SELECT 1"), n))
        print("  diff (quiver_diff)      ", timed(lambda i: c.sql(diff), n))
        c.close()
        con = sb.FlightSql(srv.url)
        con.query("SELECT 1")
        print(f"--sync {sync}, ADBC Flight SQL")
        print("  SELECT 1                ", timed(lambda i: con.query("SELECT 1"), n))
        print("  CREATE TAG              ", timed(lambda i: con.query(f"CREATE TAG 'a{i}' ON {ds}"), n))
        print("  CREATE BRANCH           ", timed(
            lambda i: con.query(f"CREATE BRANCH ab{i} FROM {ds} AS OF TAG 'baseline'"), n))
        print("  diff (quiver_diff)      ", timed(lambda i: con.query(diff), n))
        con.close()
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
