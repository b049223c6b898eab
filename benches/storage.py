#!/usr/bin/env python3
"""Driver of `cargo bench --bench storage` (issue 19): Quiver against Lance in one run.

usage: storage.py --quiver-bin BIN --peers PEERS_PY --rows N [--runs R] [--work DIR]
                  [--json OUT] [--sync true|false] [--edit-series auto|0|1]

The table is gen_table(N) of the peer benchmark (PEERS_PY, imported by path, not copied):
13 columns sorted by (sample_id, label_id), plus its 500-label edit set. It is written once
as one Parquet file; then, for each of R runs, from fresh directories:

  Quiver  `quiver import parquet` of that file (a child process: time, peak RSS), bytes on
          disk, then a `quiver serve` over the catalog driven through Flight SQL (ADBC):
          CREATE TAG, CREATE BRANCH, the 500-label UPDATE (time, bytes written), the
          quiver_diff of it (warm server, then first query of a fresh server), the slice
          query as the first query of a fresh server.
  Lance   lance.write_dataset from the same Parquet file (and from the in-memory table, as
          the peer benchmark does), tags.create, create_branch, update, delta (native diff),
          the same on a freshly opened dataset.

Then scans of the tagged (pre-edit) version on the last run's data, R times each,
interleaved: full scan, numeric projection and the peers' slice query, to pyarrow through
DoGet (the repo's Python client) and Flight SQL (ADBC) for Quiver, in-process for Lance,
and DuckDB in-process on the Parquet file.

Optionally (--edit-series; `auto` = only when the server accepts `OPTIMIZE <ds>`): 100
successive 500-label UPDATE commits, the scans again, OPTIMIZE (Lance: compact_files) and
the scans once more.

Prints a markdown table (medians of R runs) and writes every run to --json.
"""
import argparse
import gc
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

DS = "labels"
NUMERIC = ["label_id", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "score"]
EDIT_SERIES_COMMITS = 100


class BenchError(Exception):
    """A failure the harness reports as one clear line (no traceback)."""


def log(msg):
    print(f"[storage.py] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------- peers module
def load_peers(path):
    if not os.path.isfile(path):
        raise BenchError(f"peer benchmark not found at {path}")
    spec = importlib.util.spec_from_file_location("peers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name in ("gen_table", "SLICE_COLS", "CUTOFF_SQL", "EDIT_CLASS", "EDIT_STATE", "N_EDIT",
                 "in_list", "COCO", "STATES", "SEED"):
        if not hasattr(mod, name):
            raise BenchError(f"{path} has no `{name}`: the harness expects the issue-19 peers.py")
    return mod


# ----------------------------------------------------------------- disk usage
def disk_usage(path):
    """(apparent bytes = sum of file sizes, allocated bytes = st_blocks * 512) under path."""
    apparent = blocks = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(root, f))
            except FileNotFoundError:  # removed while walking (a temp file)
                continue
            apparent += st.st_size
            blocks += st.st_blocks * 512
    return apparent, blocks


def catalog_split(cat):
    """Bytes and files of a Quiver catalog by part (see docs/FORMAT.md)."""
    parts = {}
    for root, _dirs, files in os.walk(cat):
        rel = os.path.relpath(root, cat).split(os.sep)
        if rel[:2] == ["objects", "pack"]:
            key = "packs"
        elif rel[:2] in (["objects", "base"], ["objects", "delta"], ["objects", "layout"]):
            key = "layouts, bases, deltas"
        elif rel[:2] == ["objects", "node"]:
            key = "tree nodes (format 1)"
        elif rel[:2] == ["objects", "commit"]:
            key = "commits"
        elif rel[:1] == ["packsums"]:
            key = "pack sums"
        elif len(rel) >= 3 and rel[0] == "datasets" and rel[2] == "packidx":
            key = "pack index (format 1)"
        else:
            key = "other"
        d = parts.setdefault(key, {"bytes": 0, "alloc": 0, "files": 0})
        for f in files:
            try:
                st = os.lstat(os.path.join(root, f))
            except FileNotFoundError:
                continue
            d["bytes"] += st.st_size
            d["alloc"] += st.st_blocks * 512
            d["files"] += 1
    return parts


# ----------------------------------------------------------------- processes
TIME_BIN = "/usr/bin/time"


def vm_hwm(pid):
    """Peak RSS (VmHWM) of a running process in bytes, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def run_child(cmd, out_path):
    """Run cmd to completion; returns (seconds, peak RSS bytes or None, exit code).

    The peak RSS is not taken from this process's wait4 rusage: ru_maxrss of a child started
    by fork/vfork + exec also counts the RSS of this Python process at the fork (the whole
    table at 10M rows). GNU time (/usr/bin/time -f %M) forks from a small process and reports
    its child's own peak; without it, VmHWM of the running child is polled every 10 ms."""
    rss_file = out_path + ".maxrss"
    use_time = os.access(TIME_BIN, os.X_OK)
    if use_time:
        cmd = [TIME_BIN, "-f", "%M", "-o", rss_file, *cmd]
    peak = None
    with open(out_path, "wb") as out:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        while True:
            try:
                rc = p.wait(timeout=0.01)
                break
            except subprocess.TimeoutExpired:
                if not use_time:
                    peak = vm_hwm(p.pid) or peak
        secs = time.perf_counter() - t
    if use_time:
        try:
            with open(rss_file) as f:
                peak = int(f.read().split()[-1]) * 1024
        except (OSError, ValueError, IndexError):
            peak = None
    return secs, peak, rc


def tail(path, n=2000):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")[-n:]
    except OSError:
        return ""


class Server:
    """A `quiver serve` child process on 127.0.0.1 with a free port."""

    LISTEN = re.compile(r"quiver serve: listening on (grpc://\S+)")

    def __init__(self, binary, catalog, sync, log_path, timeout=600):
        self.log_path = log_path
        self.errf = open(log_path, "ab")
        cmd = [binary, "--catalog", catalog, "--sync", sync, "serve", "--addr", "127.0.0.1:0",
               "--no-demo"]
        t = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.errf,
                                     stdin=subprocess.DEVNULL, text=True)
        found = {}

        def reader():
            for line in self.proc.stdout:  # drained until exit so the server never blocks
                m = self.LISTEN.search(line)
                if m and "url" not in found:
                    found["url"] = m.group(1)
                    found["t"] = time.perf_counter()
                    ready.set()
            ready.set()

        ready = threading.Event()
        self.thread = threading.Thread(target=reader, daemon=True)
        self.thread.start()
        if not ready.wait(timeout) or "url" not in found:
            self.kill()
            raise BenchError(f"quiver serve did not start (log {log_path}):\n{tail(log_path)}")
        self.url = found["url"]
        self.startup_s = found["t"] - t
        self.peak_rss = None

    def stop(self):
        if self.proc.poll() is None:
            self.peak_rss = vm_hwm(self.proc.pid)  # its own peak (see run_child)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        self.thread.join(5)
        self.errf.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class FlightSql:
    """One ADBC Flight SQL connection (what BI tools use) to a server."""

    def __init__(self, url):
        import adbc_driver_flightsql.dbapi as flightsql
        self.con = flightsql.connect(url, autocommit=True)

    def query(self, sql):
        cur = self.con.cursor()
        try:
            cur.execute(sql)
            return cur.fetch_arrow_table()
        finally:
            cur.close()

    def try_query(self, sql):
        """(table, None) or (None, error message)."""
        try:
            return self.query(sql), None
        except Exception as e:  # noqa: BLE001  (the driver raises several kinds)
            return None, f"{type(e).__name__}: {e}".splitlines()[0]

    def close(self):
        self.con.close()


def timed(fn):
    gc.collect()
    t = time.perf_counter()
    r = fn()
    return time.perf_counter() - t, r


class Metrics:
    def __init__(self):
        self.runs = {}

    def add(self, key, value):
        self.runs.setdefault(key, []).append(value)

    def med(self, key):
        v = self.runs.get(key)
        return statistics.median(v) if v else None


# ----------------------------------------------------------------- the benchmark
class Bench:
    def __init__(self, a, peers):
        self.a = a
        self.p = peers
        self.m = Metrics()
        self.notes = []
        self.bin = a.quiver_bin
        self.sync = a.sync
        self.work = a.work

    def q(self, *args):
        return [self.bin, "--sync", self.sync, *args]

    # -- data
    def prepare(self):
        t0 = time.perf_counter()
        self.table, self.edit_ids, self.info = self.p.gen_table(self.a.rows)
        self.gen_s = time.perf_counter() - t0
        self.parquet = os.path.join(self.work, "labels.parquet")
        pq.write_table(self.table, self.parquet)
        self.parquet_bytes = os.path.getsize(self.parquet)
        p = self.p
        self.pred = (f"review_state = 'approved' AND reviewed_at >= TIMESTAMP '{p.CUTOFF_SQL}'")
        self.update_sql = (f"UPDATE {DS} SET class = '{p.EDIT_CLASS}', review_state = '{p.EDIT_STATE}' "
                           f"WHERE {p.in_list(self.edit_ids)}")
        log(f"{self.a.rows:,} rows, {self.info['samples']:,} samples; Parquet file "
            f"{self.parquet_bytes / 1e6:.1f} MB; generated in {self.gen_s:.1f} s")

    # -- Quiver lifecycle, one run
    def quiver_run(self, r, keep):
        m, p = self.m, self.p
        cat = os.path.join(self.work, f"quiver_r{r}")
        shutil.rmtree(cat, ignore_errors=True)
        out = os.path.join(self.work, f"quiver_import_r{r}.log")
        secs, rss, rc = run_child(self.q("--catalog", cat, "import", "parquet", self.parquet,
                                         "--dataset", DS, "-m", "bench import"), out)
        if rc != 0:
            raise BenchError(f"quiver import parquet failed (exit {rc}):\n{tail(out)}")
        m.add("q_import_s", secs)
        if rss is not None:
            m.add("q_import_rss", rss)
        app, alloc = disk_usage(cat)
        m.add("q_load_bytes", app)
        m.add("q_load_alloc", alloc)
        split = catalog_split(cat)
        m.add("q_load_split", split)
        log(f"run {r}: quiver import {secs:.2f} s, peak RSS {fmt_b(rss)}, {fmt_b(app)} on disk")

        srv = Server(self.bin, cat, self.sync, os.path.join(self.work, f"serve_r{r}.log"))
        m.add("q_serve_startup_s", srv.startup_s)
        con = None
        try:
            con = FlightSql(srv.url)
            n = con.query(f"SELECT count(*) AS n FROM {DS}").column(0)[0].as_py()  # warms the server
            if n != self.a.rows:
                raise BenchError(f"quiver has {n} rows after the import, expected {self.a.rows}")
            t, _ = timed(lambda: con.query(f"CREATE TAG 'baseline' ON {DS}"))
            m.add("q_tag_s", t)
            b0 = disk_usage(cat)
            t, _ = timed(lambda: con.query(f"CREATE BRANCH experiment FROM {DS} AS OF TAG 'baseline'"))
            m.add("q_branch_s", t)
            b1 = disk_usage(cat)
            m.add("q_branch_bytes", b1[0] - b0[0])
            t, res = timed(lambda: con.query(self.update_sql))
            b2 = disk_usage(cat)
            m.add("q_edit_s", t)
            m.add("q_edit_bytes", b2[0] - b1[0])
            m.add("q_edit_alloc", b2[1] - b1[1])
            m.add("q_edit_result", str(res.to_pylist()[:1]))
            diff_sql = f"SELECT * FROM quiver_diff('{DS}', 'baseline', 'main')"
            t, d = timed(lambda: con.query(diff_sql))
            self.check_diff(d)
            m.add("q_diff_warm_s", t)
            t, d = timed(lambda: con.query(diff_sql))
            self.check_diff(d)
            m.add("q_diff_warm2_s", t)
        finally:
            if con is not None:
                con.close()
            srv.stop()
        if srv.peak_rss:
            m.add("q_serve_rss", srv.peak_rss)

        # the diff as the first query of a freshly started server
        srv = Server(self.bin, cat, self.sync, os.path.join(self.work, f"serve_r{r}.log"))
        try:
            con = FlightSql(srv.url)
            t, d = timed(lambda: con.query(diff_sql))
            self.check_diff(d)
            m.add("q_diff_fresh_s", t)
            con.close()
        finally:
            srv.stop()

        # the slice query as the first query after a restart
        srv = Server(self.bin, cat, self.sync, os.path.join(self.work, f"serve_r{r}.log"))
        m.add("q_serve_startup_s", srv.startup_s)
        try:
            con = FlightSql(srv.url)
            t, s = timed(lambda: con.query(self.slice_sql("AS OF TAG 'baseline'")))
            if s.num_rows != self.info["expect_slice_rows_old"]:
                raise BenchError(f"quiver slice query returned {s.num_rows} rows, expected "
                                 f"{self.info['expect_slice_rows_old']}")
            m.add("q_first_slice_s", t)
            s = con.query(self.slice_sql(""))
            if s.num_rows != self.info["expect_slice_rows_new"]:
                raise BenchError(f"quiver slice query at main returned {s.num_rows} rows, expected "
                                 f"{self.info['expect_slice_rows_new']}")
            con.close()
        except BaseException:
            srv.stop()
            raise
        if keep:
            self.server, self.cat = srv, cat
        else:
            srv.stop()
            if srv.peak_rss:
                m.add("q_serve_rss", srv.peak_rss)
            shutil.rmtree(cat, ignore_errors=True)

    def slice_sql(self, asof):
        cols = ", ".join(self.p.SLICE_COLS)
        return f"SELECT {cols} FROM {DS} {asof} WHERE {self.pred}"

    def check_diff(self, d):
        p = self.p
        if d.num_rows != p.N_EDIT:
            raise BenchError(f"quiver_diff returned {d.num_rows} rows, expected {p.N_EDIT}")
        for col in ("change", "old_class", "new_class", "old_review_state", "new_review_state"):
            if col not in d.column_names:
                raise BenchError(f"quiver_diff has no column {col}: {d.column_names}")
        if set(d.column("change").to_pylist()) != {"modified"} \
                or set(d.column("new_class").to_pylist()) != {p.EDIT_CLASS} \
                or set(d.column("new_review_state").to_pylist()) != {p.EDIT_STATE} \
                or set(d.column("old_review_state").to_pylist()) != {"approved"} \
                or sorted(d.column("label_id").to_pylist()) != sorted(self.edit_ids):
            raise BenchError("quiver_diff rows do not match the 500 edits (old/new values)")

    # -- Lance lifecycle, one run (as peers.bench_lance does it)
    def lance_run(self, r, keep):
        import lance
        m, p = self.m, self.p
        mem = os.path.join(self.work, f"lance_mem_r{r}")
        shutil.rmtree(mem, ignore_errors=True)
        t, _ = timed(lambda: lance.write_dataset(self.table, mem, enable_stable_row_ids=True))
        m.add("l_write_mem_s", t)
        shutil.rmtree(mem, ignore_errors=True)

        path = os.path.join(self.work, f"lance_r{r}")
        shutil.rmtree(path, ignore_errors=True)
        src = pads.dataset(self.parquet, format="parquet")
        t, ds = timed(lambda: lance.write_dataset(src, path, enable_stable_row_ids=True))
        m.add("l_write_s", t)
        app, alloc = disk_usage(path)
        m.add("l_load_bytes", app)
        m.add("l_load_alloc", alloc)
        v_old = ds.version
        self.lance_v_old = v_old
        t, _ = timed(lambda: ds.tags.create("baseline", v_old))
        m.add("l_tag_s", t)
        b0 = disk_usage(path)
        t, _ = timed(lambda: ds.create_branch("experiment", "baseline"))
        m.add("l_branch_s", t)
        b1 = disk_usage(path)
        m.add("l_branch_bytes", b1[0] - b0[0])
        t, res = timed(lambda: ds.update({"class": f"'{p.EDIT_CLASS}'", "review_state": f"'{p.EDIT_STATE}'"},
                                         where=p.in_list(self.edit_ids)))
        if res["num_rows_updated"] != p.N_EDIT:
            raise BenchError(f"lance update changed {res['num_rows_updated']} rows, expected {p.N_EDIT}")
        b2 = disk_usage(path)
        m.add("l_edit_s", t)
        m.add("l_edit_bytes", b2[0] - b1[0])
        m.add("l_edit_alloc", b2[1] - b1[1])
        v_new = ds.version

        def native_diff(d):
            dl = d.delta(begin_version=v_old, end_version=v_new)
            up = dl.get_updated_rows().read_all()
            ins = dl.get_inserted_rows().read_all()
            dele = dl.get_deleted_row_ids().read_all()
            if (up.num_rows, ins.num_rows, dele.num_rows) != (p.N_EDIT, 0, 0):
                raise BenchError(f"lance delta: {up.num_rows} updated, {ins.num_rows} inserted, "
                                 f"{dele.num_rows} deleted; expected {p.N_EDIT}, 0, 0")
            return up
        t, _ = timed(lambda: native_diff(ds))
        m.add("l_diff_warm_s", t)
        t, _ = timed(lambda: native_diff(lance.dataset(path)))
        m.add("l_diff_fresh_s", t)
        t, s = timed(lambda: lance.dataset(path, version="baseline").to_table(
            columns=p.SLICE_COLS, filter=self.pred))
        if s.num_rows != self.info["expect_slice_rows_old"]:
            raise BenchError(f"lance slice returned {s.num_rows} rows")
        m.add("l_first_slice_s", t)
        del ds
        if keep:
            self.lance_path = path
        else:
            shutil.rmtree(path, ignore_errors=True)

    # -- scans of the tagged version
    def scans(self, label, quiver_ref, lance_version, expect_slice, with_duckdb):
        """R interleaved runs of full / numeric / slice for every reader; keys scan_<label>_*."""
        import duckdb
        import lance
        import quiver
        client = quiver.connect(self.server.url)
        con = FlightSql(self.server.url)
        n = self.a.rows
        kind, name = quiver_ref.split(":", 1)
        asof = "" if kind == "branch" and name == "main" else \
            f"AS OF {'TAG' if kind == 'tag' else 'BRANCH'} '{name}'"
        cols_n, cols_s = ", ".join(NUMERIC), ", ".join(self.p.SLICE_COLS)
        lds = lambda: lance.dataset(self.lance_path, version=lance_version)  # noqa: E731
        pqf = self.parquet
        readers = {
            ("full", "q_doget"): lambda: client.dataset(DS).at(**{kind: name}).to_table(),
            ("full", "q_sql"): lambda: con.query(f"SELECT * FROM {DS} {asof}"),
            ("full", "lance"): lambda: lds().to_table(),
            ("numeric", "q_doget"): lambda: client.dataset(DS).at(**{kind: name}).to_table(columns=NUMERIC),
            ("numeric", "q_sql"): lambda: con.query(f"SELECT {cols_n} FROM {DS} {asof}"),
            ("numeric", "lance"): lambda: lds().to_table(columns=NUMERIC),
            ("slice", "q_doget"): lambda: client.dataset(DS).at(**{kind: name}).to_table(
                columns=self.p.SLICE_COLS, filter=self.pred),
            ("slice", "q_sql"): lambda: con.query(f"SELECT {cols_s} FROM {DS} {asof} WHERE {self.pred}"),
            ("slice", "lance"): lambda: lds().to_table(columns=self.p.SLICE_COLS, filter=self.pred),
        }
        duck = None
        if with_duckdb:
            duck = duckdb.connect()
            readers.update({
                ("full", "duckdb"): lambda: duck.sql(f"SELECT * FROM read_parquet('{pqf}')").to_arrow_table(),
                ("numeric", "duckdb"): lambda: duck.sql(
                    f"SELECT {cols_n} FROM read_parquet('{pqf}')").to_arrow_table(),
                ("slice", "duckdb"): lambda: duck.sql(
                    f"SELECT {cols_s} FROM read_parquet('{pqf}') WHERE {self.pred}").to_arrow_table(),
            })
        try:
            for _ in range(self.a.runs):
                for (op, who), fn in readers.items():
                    t, tab = timed(fn)
                    want = expect_slice if op == "slice" else n
                    if want is not None and tab.num_rows != want:
                        raise BenchError(f"{op} scan by {who} returned {tab.num_rows} rows, expected {want}")
                    if op == "slice" and want is None:
                        self.m.add(f"scan_{label}_{op}_{who}_rows", tab.num_rows)
                    self.m.add(f"scan_{label}_{op}_{who}_s", t)
                    self.m.add(f"scan_{label}_{op}_{who}_bytes", tab.nbytes)
                    del tab
        finally:
            con.close()
            client.close()
            if duck is not None:
                duck.close()

    # -- optional: 100 commits, then OPTIMIZE
    def optimize_supported(self):
        probe = os.path.join(self.work, "probe")
        shutil.rmtree(probe, ignore_errors=True)
        out = os.path.join(self.work, "probe.log")
        _s, _r, rc = run_child(self.q("--catalog", probe, "sql", "-c",
                                      "CREATE DATASET p (a BIGINT NOT NULL, b INT NOT NULL) KEY (a, b); "
                                      "INSERT INTO p VALUES (1, 1); OPTIMIZE p"), out)
        shutil.rmtree(probe, ignore_errors=True)
        return rc == 0, tail(out, 400).strip().splitlines()[-1:] or [""]

    def edit_series(self):
        import lance
        m, p = self.m, self.p
        ok, why = self.optimize_supported()
        if not ok:
            msg = f"OPTIMIZE {DS} refused by this build ({why[0][:200]})"
            if self.a.edit_series == "auto":
                self.notes.append(f"Step 8 skipped: {msg}.")
                log(f"edit series skipped: {msg}")
                return
            self.notes.append(f"Step 8: {msg}; the 100-commit scans are measured, OPTIMIZE is not.")
        log(f"edit series: {EDIT_SERIES_COMMITS} commits of {p.N_EDIT} edits each")
        con = FlightSql(self.server.url)
        ds = lance.dataset(self.lance_path)
        n = self.a.rows
        try:
            for k in range(EDIT_SERIES_COMMITS):
                ids = np.sort(np.random.default_rng(p.SEED + 100 + k).choice(n, size=p.N_EDIT, replace=False))
                cls, st = p.COCO[k % len(p.COCO)], p.STATES[k % len(p.STATES)]
                where = p.in_list(ids.tolist())
                t, _ = timed(lambda: con.query(
                    f"UPDATE {DS} SET class = '{cls}', review_state = '{st}' WHERE {where}"))
                m.add("series_q_commit_s", t)
                t, _ = timed(lambda: ds.update({"class": f"'{cls}'", "review_state": f"'{st}'"}, where=where))
                m.add("series_l_commit_s", t)
            self.series_bytes_q = disk_usage(self.cat)
            self.series_bytes_l = disk_usage(self.lance_path)
            ql = con.query(self.slice_sql("")).num_rows
            ll = lance.dataset(self.lance_path).to_table(columns=["label_id"], filter=self.pred).num_rows
            if ql != ll:
                raise BenchError(f"after the edit series the slice has {ql} rows in Quiver, {ll} in Lance")
            self.series_slice_rows = ql
            # the long-range diff: the tag at the load against main after every commit
            # (Quiver: across the background folds; twice, the second one reported)
            diff_sql = f"SELECT * FROM quiver_diff('{DS}', 'baseline', 'main')"
            con.query(diff_sql)
            t, d = timed(lambda: con.query(diff_sql))
            m.add("series_q_diff_s", t)
            m.add("series_q_diff_rows", d.num_rows)
            last = lance.dataset(self.lance_path)

            def lance_diff():
                dl = last.delta(begin_version=self.lance_v_old, end_version=last.version)
                return dl.get_updated_rows().read_all().num_rows
            lance_diff()
            t, n_l = timed(lance_diff)
            m.add("series_l_diff_s", t)
            m.add("series_l_diff_rows", n_l)
        finally:
            con.close()
        self.scans("series", "branch:main", None, self.series_slice_rows, with_duckdb=False)
        if not ok:
            return
        con = FlightSql(self.server.url)
        try:
            b0 = disk_usage(self.cat)
            t, _ = timed(lambda: con.query(f"OPTIMIZE {DS}"))
            m.add("opt_q_s", t)
            m.add("opt_q_bytes_delta", disk_usage(self.cat)[0] - b0[0])
        finally:
            con.close()
        b0 = disk_usage(self.lance_path)
        t, _ = timed(lambda: lance.dataset(self.lance_path).optimize.compact_files())
        m.add("opt_l_s", t)
        m.add("opt_l_bytes_delta", disk_usage(self.lance_path)[0] - b0[0])
        self.scans("optimized", "branch:main", None, self.series_slice_rows, with_duckdb=False)
        # OPTIMIZE … FULL: every chunk an edit touched rewritten, no delta left
        con = FlightSql(self.server.url)
        try:
            b0 = disk_usage(self.cat)
            t, full = timed(lambda: con.try_query(f"OPTIMIZE {DS} FULL"))
            if full[1] is None:
                m.add("optfull_q_s", t)
                m.add("optfull_q_bytes_delta", disk_usage(self.cat)[0] - b0[0])
            else:
                self.notes.append(f"OPTIMIZE {DS} FULL refused by this build ({full[1][:200]})")
        finally:
            con.close()
        if "optfull_q_s" in m.runs:
            self.scans("optfull", "branch:main", None, self.series_slice_rows, with_duckdb=False)

    def run(self):
        self.server = None
        self.prepare()
        runs = self.a.runs
        try:
            for r in range(runs):
                last = r == runs - 1
                self.quiver_run(r, keep=last)
                self.lance_run(r, keep=last)
            log("scans of the tagged version")
            self.scans("old", "tag:baseline", "baseline", self.info["expect_slice_rows_old"], True)
            if self.a.edit_series != "0":
                self.edit_series()
        finally:
            if self.server is not None:  # the last run's server, kept for the scans
                self.server.stop()
                if self.server.peak_rss:
                    self.m.add("q_serve_rss", self.server.peak_rss)

    # ----------------------------------------------------------------- report
    def render(self):
        import duckdb
        import lance
        m, n, R = self.m, self.a.rows, self.a.runs
        med = m.med
        out = []
        out.append(f"### Storage: Quiver vs Lance, {n:,} labels ({self.info['samples']:,} samples), "
                   f"medians of {R} run(s)\n")
        out.append(f"Quiver `{self.bin}` (--sync {self.sync}); pylance {lance.__version__}, "
                   f"duckdb {duckdb.__version__}, pyarrow {pa.__version__}, python "
                   f"{platform.python_version()}; {os.cpu_count()} CPUs. Source: one Parquet file of "
                   f"{fmt_b(self.parquet_bytes)} (Arrow table {fmt_b(self.info['arrow_bytes'])}). "
                   f"Ratio = Quiver / Lance of the first figure (time or bytes: > 1 means Quiver "
                   f"slower or larger). OS page cache warm throughout.\n")
        out.append("| # | operation | Quiver | Lance | Quiver/Lance | note |")
        out.append("|---|---|---|---|---|---|")

        def row(num, op, q, l, note="", unit="s"):
            qs = "N/A" if q is None else (fmt_s(q) if unit == "s" else fmt_b(q))
            ls = "N/A" if l is None else (fmt_s(l) if unit == "s" else fmt_b(l))
            ratio = f"{q / l:.2f}" if q is not None and l else "N/A"
            out.append(f"| {num} | {op} | {qs} | {ls} | {ratio} | {note} |")

        def rate(s):
            return f"{fmt_rate(n / s)} rows/s" if s else "N/A"

        qi, li = med("q_import_s"), med("l_write_s")
        row(1, "import of the Parquet file (one commit / write_dataset)", qi, li,
            f"Quiver {rate(qi)}, peak RSS {fmt_b(med('q_import_rss'))} (`quiver import parquet`, a child "
            f"process); Lance {rate(li)} from the same file; Lance from the in-memory table "
            f"{fmt_s(med('l_write_mem_s'))} ({rate(med('l_write_mem_s'))})")
        row(2, "bytes on disk after the load (file sizes)", med("q_load_bytes"), med("l_load_bytes"),
            self.split_note(), unit="b")
        row(2, "  allocated on disk (st_blocks, like `du`)", med("q_load_alloc"), med("l_load_alloc"),
            "small files cost a whole block", unit="b")
        row(3, f"commit of {self.p.N_EDIT} scattered label edits (UPDATE … WHERE label_id IN …)",
            med("q_edit_s"), med("l_edit_s"), "Quiver through Flight SQL on a warm server")
        row(3, "  bytes written by that commit", med("q_edit_bytes"), med("l_edit_bytes"),
            f"allocated: Quiver {fmt_b(med('q_edit_alloc'))}, Lance {fmt_b(med('l_edit_alloc'))}", unit="b")
        row(4, "diff of the edits with old and new values, warm", med("q_diff_warm_s"), med("l_diff_warm_s"),
            f"`quiver_diff` over Flight SQL (second call {fmt_s(med('q_diff_warm2_s'))}) vs `delta()` "
            f"updated rows on the open dataset")
        row(4, "  the same as first query of a fresh server / fresh open", med("q_diff_fresh_s"),
            med("l_diff_fresh_s"), "Lance: `lance.dataset()` + `delta()`")
        row(5, "tag create", med("q_tag_s"), med("l_tag_s"), "`CREATE TAG` on a warm server vs `tags.create`")
        row(5, "branch create (from the tag)", med("q_branch_s"), med("l_branch_s"),
            f"bytes: Quiver +{fmt_b(med('q_branch_bytes'))}, Lance +{fmt_b(med('l_branch_bytes'))}")
        row(6, "slice query as first query after a server restart", med("q_first_slice_s"),
            med("l_first_slice_s"),
            f"server start to listening: {fmt_s(med('q_serve_startup_s'))} (not included); Lance: "
            f"`lance.dataset()` + filtered `to_table`")
        self.scan_rows(out, row, "old", 7, "tagged version", with_duckdb=True)
        if "series_q_commit_s" in m.runs:
            row(8, f"{EDIT_SERIES_COMMITS} successive {self.p.N_EDIT}-edit commits: median commit",
                med("series_q_commit_s"), med("series_l_commit_s"),
                f"after them: Quiver {fmt_b(self.series_bytes_q[0])}, Lance {fmt_b(self.series_bytes_l[0])} on disk")
            if "series_q_diff_s" in m.runs:
                row(8, "diff of the tag at the load against main after them, old and new values, warm",
                    med("series_q_diff_s"), med("series_l_diff_s"),
                    f"`quiver_diff` over Flight SQL: {int(med('series_q_diff_rows')):,} labels changed; "
                    f"Lance `delta()` updated rows: {int(med('series_l_diff_rows')):,} (rows rewritten, "
                    f"whatever their values)")
            self.scan_rows(out, row, "series", 8, f"main after {EDIT_SERIES_COMMITS} commits", False)
            if "opt_q_s" in m.runs:
                row(8, "OPTIMIZE / compact_files", med("opt_q_s"), med("opt_l_s"),
                    f"bytes: Quiver {fmt_b(med('opt_q_bytes_delta'))}, Lance {fmt_b(med('opt_l_bytes_delta'))}")
                self.scan_rows(out, row, "optimized", 8, "main after OPTIMIZE", False)
            if "optfull_q_s" in m.runs:
                row(8, "then OPTIMIZE … FULL (every touched chunk rewritten)", med("optfull_q_s"),
                    med("opt_l_s"), f"bytes: Quiver {fmt_b(med('optfull_q_bytes_delta'))}; ratio to "
                    f"Lance's compact_files")
                self.scan_rows(out, row, "optfull", 8, "main after OPTIMIZE FULL", False)
        out.append("")
        if med("q_serve_rss"):
            out.append(f"- `quiver serve` peak RSS (largest of the servers of this run): "
                       f"{fmt_b(max(m.runs['q_serve_rss']))}")
        out.append(f"- data generation {fmt_s(self.gen_s)}; all runs of every figure are in the JSON file")
        for note in self.notes:
            out.append(f"- {note}")
        out.append("")
        return "\n".join(out)

    def split_note(self):
        split = self.m.runs["q_load_split"][-1]
        total = sum(d["bytes"] for d in split.values()) or 1
        packs = split.get("packs", {"bytes": 0, "files": 0})
        other = {k: d for k, d in split.items() if k != "packs"}
        parts = ", ".join(f"{k} {fmt_b(d['bytes'])} in {plural(d['files'], 'file')}" for k, d in sorted(other.items()))
        return (f"Quiver: objects/pack {fmt_b(packs['bytes'])} ({packs['bytes'] / total:.1%}, "
                f"{plural(packs['files'], 'file')}), everything else {fmt_b(total - packs['bytes'])} "
                f"({(total - packs['bytes']) / total:.1%}: {parts})")

    def scan_rows(self, out, row, label, num, what, with_duckdb):
        med, n = self.m.med, self.a.rows
        for op, title in (("full", "full scan"), ("numeric", "numeric projection"), ("slice", "slice query")):
            key = f"scan_{label}_{op}"
            lance_s = med(f"{key}_lance_s")
            for who, how in (("q_doget", "DoGet (Python client)"), ("q_sql", "Flight SQL (ADBC)")):
                s = med(f"{key}_{who}_s")
                b = med(f"{key}_{who}_bytes")
                note = f"{fmt_rate(n / s)} rows/s, {b / s / 1e6:.0f} MB/s of Arrow" if op != "slice" and s else ""
                if op == "slice":
                    rows = med(f"{key}_{who}_rows")
                    note = f"{int(rows if rows is not None else self.slice_rows(label)):,} rows"
                duck = med(f"{key}_duckdb_s")
                if with_duckdb and duck and s:
                    if who == "q_doget":
                        note += f"; DuckDB in process on the Parquet file: {fmt_s(duck)}"
                    note += f"; Quiver/DuckDB {s / duck:.2f}"
                row(num, f"{title}, {what}, to pyarrow: Quiver {how}", s, lance_s, note)

    def slice_rows(self, label):
        return self.info["expect_slice_rows_old"] if label == "old" else self.series_slice_rows

    def dump(self, path):
        res = {"rows": self.a.rows, "runs": self.a.runs, "sync": self.sync, "quiver_bin": self.bin,
               "info": self.info, "parquet_bytes": self.parquet_bytes, "gen_s": self.gen_s,
               "notes": self.notes, "metrics": self.m.runs}
        with open(path, "w") as f:
            json.dump(res, f, indent=1, default=str)


def fmt_b(x):
    if x is None:
        return "N/A"
    for u, s in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(x) >= s:
            return f"{x / s:.2f} {u}"
    return f"{x:.0f} B"


def plural(n, word):
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def fmt_rate(x):
    return f"{x / 1e6:.2f} M" if x < 10e6 else f"{x / 1e6:.1f} M"


def fmt_s(x):
    if x is None:
        return "N/A"
    return f"{x:.3f} s" if x >= 0.1 else f"{x * 1000:.1f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quiver-bin", required=True)
    ap.add_argument("--peers", required=True, help="path of peers.py (gen_table)")
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", required=True, help="scratch directory (emptied and used)")
    ap.add_argument("--json", help="write every run's figures here")
    ap.add_argument("--sync", default="true", choices=["true", "false"])
    ap.add_argument("--edit-series", default="auto", choices=["auto", "0", "1"])
    a = ap.parse_args()
    if a.rows < 1000 or a.runs < 1:
        print("storage.py: --rows must be at least 1000 and --runs at least 1", file=sys.stderr)
        return 2
    try:
        peers = load_peers(a.peers)
        os.makedirs(a.work, exist_ok=True)
        b = Bench(a, peers)
        b.run()
        print(b.render(), flush=True)
        if a.json:
            b.dump(a.json)
            log(f"all runs written to {a.json}")
    except BenchError as e:
        print(f"storage.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
