#!/usr/bin/env python3
"""`quiver import parquet` of one Parquet file by one or more builds, interleaved run by run
with Lance's `write_dataset` of the same file (as benches/storage.py measures Lance's
import), from fresh directories every time.

usage: import_pair.py PARQUET QUIVER_BIN[,QUIVER_BIN…] RUNS [--work DIR]

PARQUET is the peers' label table (e.g. `peers.gen_table(10_000_000)` written with
pyarrow.parquet.write_table). Prints each run's times, then per build the median, the
minimum and the ratio of Lance's median time to the build's (Quiver's write rate as a
fraction of Lance's: the issue's target is >= 0.5).
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

import lance
import pyarrow.dataset as pads


def main():
    args = sys.argv[1:]
    work = "/tmp/quiver-import-pair"
    if "--work" in args:
        i = args.index("--work")
        work = args[i + 1]
        del args[i:i + 2]
    if len(args) != 3:
        sys.exit(__doc__)
    src, bins, runs = args[0], args[1].split(","), int(args[2])
    os.makedirs(work, exist_ok=True)
    cat, lpath = os.path.join(work, "catalog"), os.path.join(work, "lance")
    times = {b: [] for b in bins}
    times["lance"] = []
    for r in range(runs):
        for b in bins:
            shutil.rmtree(cat, ignore_errors=True)
            t = time.perf_counter()
            subprocess.run([b, "--catalog", cat, "import", "parquet", src, "--dataset", "labels"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[b].append(time.perf_counter() - t)
        shutil.rmtree(lpath, ignore_errors=True)
        t = time.perf_counter()
        lance.write_dataset(pads.dataset(src, format="parquet"), lpath, enable_stable_row_ids=True)
        times["lance"].append(time.perf_counter() - t)
        print(r, {k: round(v[-1], 3) for k, v in times.items()}, flush=True)
    lance_med = statistics.median(times["lance"])
    for k, v in times.items():
        med = statistics.median(v)
        print(f"{k}: median {med:.3f} s, min {min(v):.3f} s, rate / Lance's {lance_med / med:.3f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
