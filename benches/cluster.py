#!/usr/bin/env python3
"""Distributed SQL against one process: the same queries through `quiver sql` (one
process) and `quiver sql --cluster` with one and with two executors, on one catalog, in one
run. Wall time of each whole CLI process, median of --runs, ratios to the single process.

    cargo build --release -p quiver-cli
    ~/.cache/quiver/venv/bin/python benches/cluster.py --quiver-bin target/release/quiver \
        --rows 10000000 --work /tmp/qcluster --runs 3 --adbc

The catalog is the demo dataset (13 columns, string keys) with a tag v1 and, on main,
an UPDATE of 1% of the labels and a DELETE of 1%, so scans read row selections."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUERIES = {
    "aggregate by class (main)":
        "SELECT class, count(*) AS n, avg(score) AS s FROM demo GROUP BY class ORDER BY class",
    "slice (main)":
        "SELECT count(*), sum(label_id) FROM demo WHERE class = 'person' AND score > 0.5",
    "join of two versions (v1 vs main)":
        "SELECT count(*) FROM demo AS OF TAG 'v1' a JOIN demo b USING (sample_id, label_id) "
        "WHERE a.class <> b.class",
    "count distinct samples (v1)":
        "SELECT count(DISTINCT sample_id) FROM demo AS OF TAG 'v1'",
}


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port: int) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port}")


def run(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return dt, r.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quiver-bin", required=True)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--work", default="/tmp/qcluster")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--adbc", action="store_true",
                    help="also time the server path: ADBC through quiver serve and serve --cluster")
    a = ap.parse_args()
    q = str(Path(a.quiver_bin).resolve())
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cat = str(work / "catalog")
    base = [q, "--catalog", cat, "--sync", "false"]
    dt, _ = run(base + ["demo", "--rows", str(a.rows)])
    print(f"demo dataset of {a.rows:,} labels: {dt:.1f} s", flush=True)
    run(base + ["sql", "-c", "CREATE TAG 'v1' ON demo; "
                "UPDATE demo SET class = 'dog' WHERE label_id = 1 AND sample_id LIKE '%17'; "
                "DELETE FROM demo WHERE label_id = 2 AND sample_id LIKE '%3'"])

    procs: list[subprocess.Popen] = []

    def start(args: list[str]) -> subprocess.Popen:
        p = subprocess.Popen([q, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, cwd=str(work))
        procs.append(p)
        return p

    def stop_all() -> None:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        procs.clear()

    def cluster(executors: int) -> str:
        sched = free_port()
        start(["cluster", "scheduler", "--port", str(sched)])
        wait_port(sched)
        for _ in range(executors):
            fp, gp = free_port(), free_port()
            start(["cluster", "executor", "--scheduler", f"127.0.0.1:{sched}", "--port", str(fp),
                   "--grpc-port", str(gp), "--work-dir", str(work)])
            wait_port(fp)
        time.sleep(1)
        return f"127.0.0.1:{sched}"

    def serve(extra: list[str]) -> str:
        p = subprocess.Popen([q, "--catalog", cat, "serve", "--addr", "127.0.0.1:0", "--no-demo",
                              *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, cwd=str(work), text=True)
        procs.append(p)
        for line in p.stdout:
            if "listening on grpc://" in line:
                return "grpc://" + line.split("grpc://")[1].split()[0]
        sys.exit("quiver serve did not start")

    def adbc_times(url: str, sql: str) -> tuple[list[float], str]:
        import adbc_driver_flightsql.dbapi as flightsql
        conn = flightsql.connect(url, autocommit=True)
        try:
            cur = conn.cursor()
            cur.execute(sql)
            first = cur.fetch_arrow_table()  # warm
            times = []
            for _ in range(a.runs):
                t = time.perf_counter()
                cur.execute(sql)
                cur.fetch_arrow_table()
                times.append(time.perf_counter() - t)
            return times, first.to_pandas().to_csv(index=False)
        finally:
            conn.close()

    results: dict[str, dict[str, float]] = {name: {} for name in QUERIES}

    def table(title: str, labels: list[str]) -> None:
        """A markdown table of `labels` (the first is the baseline), with ratios to it."""
        head = " | ".join(f"{lb} | ratio" for lb in labels[1:])
        print(f"\n| {title} | {labels[0]} | {head} |")
        print("|---" * (2 * len(labels)) + "|")
        for name, r in results.items():
            one = r[labels[0]]
            cells = " | ".join(f"{r[lb]:.3f} s | {r[lb] / one:.2f}" for lb in labels[1:])
            print(f"| {name} | {one:.3f} s | {cells} |")
    answers: dict[str, str] = {}
    setups = [("one process", None), ("cluster, 1 executor", 1), ("cluster, 2 executors", 2)]
    for label, executors in setups:
        extra = []
        if executors:
            extra = ["--cluster", cluster(executors)]
        try:
            for name, sql in QUERIES.items():
                cmd = base + ["sql", *extra, "--format", "csv", "-c", sql]
                run(cmd)  # warm: file cache, executors' catalog handles
                times = []
                for _ in range(a.runs):
                    dt, out = run(cmd)
                    times.append(dt)
                if name in answers and answers[name] != out:
                    sys.exit(f"{label} answers {name} differently:\n{out}\nvs\n{answers[name]}")
                answers[name] = out
                results[name][label] = statistics.median(times)
                print(f"{label:22} {name:36} {statistics.median(times):7.3f} s "
                      f"(min {min(times):.3f}, max {max(times):.3f})", flush=True)
        finally:
            stop_all()

    if a.adbc:
        # the server path: a warm `quiver serve` (ADBC Flight SQL) against a warm
        # `quiver serve --cluster` over one and two executors
        for label, executors in [("serve", None), ("serve --cluster, 1 executor", 1),
                                 ("serve --cluster, 2 executors", 2)]:
            extra = ["--cluster", cluster(executors)] if executors else []
            try:
                url = serve(extra)
                for name, sql in QUERIES.items():
                    times, _ = adbc_times(url, sql)
                    results[name][label] = statistics.median(times)
                    print(f"{label:30} {name:36} {statistics.median(times):7.3f} s "
                          f"(min {min(times):.3f}, max {max(times):.3f})", flush=True)
            finally:
                stop_all()
        table(f"query at {a.rows:,} labels, ADBC",
              ["serve", "serve --cluster, 1 executor", "serve --cluster, 2 executors"])

    table(f"query at {a.rows:,} labels",
          ["one process", "cluster, 1 executor", "cluster, 2 executors"])

if __name__ == "__main__":
    os.environ.pop("QUIVER_CLUSTER", None)
    main()
