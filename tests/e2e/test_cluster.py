"""`quiver serve --cluster`: Flight SQL clients (ADBC, the quiver client) get the same
answers from a server whose queries run on a Ballista cluster (one scheduler, two
executors, all `quiver cluster` processes on loopback) as from a plain server on the
same catalog; trainer reads (DoGet) are still served by the server itself."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import LISTEN_RE, RW_TOKEN, adbc_connect, quiver_bin

QUERIES = [
    "SELECT class, count(*) AS n, round(avg(score), 4) AS s FROM demo GROUP BY class ORDER BY class",
    "SELECT sample_id, label_id, class FROM demo WHERE score > 0.8 ORDER BY sample_id, label_id",
    "SELECT count(*) AS n FROM demo AS OF TAG 'v1'",
    "SELECT a.sample_id, a.label_id, a.class AS old, b.class AS new "
    "FROM demo AS OF TAG 'v1' a JOIN demo b USING (sample_id, label_id) "
    "WHERE a.class <> b.class ORDER BY 1, 2",
    "SELECT change, count(*) AS n FROM quiver_diff('demo', 'v1', 'main') GROUP BY change ORDER BY 1",
]


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _wait_port(port: int, proc: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited: {log.read_text(errors='replace')[-2000:]}", pytrace=False)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{what} did not listen on {port}", pytrace=False)


class Procs:
    def __init__(self, root: Path):
        self.root = root
        self.procs: list[subprocess.Popen] = []
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("QUIVER_TOKENS", "QUIVER_CATALOG", "QUIVER_CLUSTER")}

    def start(self, name: str, args: list[str], stdout=subprocess.DEVNULL):
        log = self.root / f"{name}.log"
        err = open(log, "wb")
        p = subprocess.Popen([str(quiver_bin()), *args], stdout=stdout, stderr=err,
                             stdin=subprocess.DEVNULL, cwd=str(self.root), env=self.env,
                             text=True, bufsize=1)
        self.procs.append(p)
        return p, log

    def serve(self, name: str, catalog: Path, tokens: Path, extra: list[str]) -> str:
        p, log = self.start(name, ["--catalog", str(catalog), "serve", "--addr", "127.0.0.1:0",
                                   "--tokens", str(tokens), "--no-demo", *extra],
                            stdout=subprocess.PIPE)
        found, url = threading.Event(), {}

        def pump():
            for line in p.stdout:
                m = LISTEN_RE.search(line)
                if m and not found.is_set():
                    url["url"] = f"grpc://127.0.0.1:{int(m.group(2))}"
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(60):
            pytest.fail(f"{name} did not start: {log.read_text(errors='replace')[-2000:]}",
                        pytrace=False)
        return url["url"]

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    catalog = root / "catalog"
    tokens = root / "tokens.txt"
    tokens.write_text(f"{RW_TOKEN} rw\n")
    q = [str(quiver_bin()), "--catalog", str(catalog), "--sync", "false"]
    subprocess.run(q + ["quickstart", "--rows", "3000"], check=True, capture_output=True)
    subprocess.run(q + ["sql", "-c",
                        "UPDATE demo SET class = 'dog' WHERE label_id = 1 AND sample_id LIKE '%3'; "
                        "DELETE FROM demo WHERE label_id = 2"], check=True, capture_output=True)
    procs = Procs(root)
    try:
        sched = _free_port()
        p, log = procs.start("scheduler", ["cluster", "scheduler", "--port", str(sched)])
        _wait_port(sched, p, "the scheduler", log)
        for i in range(2):
            flight_port, grpc_port = _free_port(), _free_port()
            p, log = procs.start(f"executor{i}", [
                "cluster", "executor", "--scheduler", f"127.0.0.1:{sched}",
                "--port", str(flight_port), "--grpc-port", str(grpc_port),
                "--concurrent-tasks", "2", "--work-dir", str(root)])
            _wait_port(flight_port, p, f"executor {i}", log)
        plain = procs.serve("plain", catalog, tokens, [])
        distributed = procs.serve("distributed", catalog, tokens,
                                  ["--cluster", f"127.0.0.1:{sched}"])
        yield plain, distributed, root
    finally:
        procs.stop()


@pytest.mark.parametrize("query", QUERIES)
def test_adbc_answers_match_a_single_server(servers, query):
    plain, distributed, _ = servers
    tables = []
    for url in (plain, distributed):
        conn = adbc_connect(url, RW_TOKEN)
        try:
            cur = conn.cursor()
            cur.execute(query)
            tables.append(cur.fetch_arrow_table())
        finally:
            conn.close()
    assert tables[0].num_rows > 0
    assert tables[1].equals(tables[0]), (query, tables[0].num_rows, tables[1].num_rows)


def test_the_cluster_ran_the_queries(servers):
    _, distributed, root = servers
    conn = adbc_connect(distributed, RW_TOKEN)
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM demo AS OF TAG 'v1'")
        assert cur.fetchone()[0] == 3000
    finally:
        conn.close()
    logs = "".join((root / f"executor{i}.log").read_text(errors="replace") for i in range(2))
    assert "Execute task" in logs, logs[-2000:]


def test_trainer_reads_and_writes_stay_on_the_server(servers):
    import quiver

    _, distributed, _ = servers
    q = quiver.connect(distributed, token=RW_TOKEN)
    try:
        t = q.dataset("demo").at(tag="v1").to_table(columns=["label_id"])
        assert t.num_rows == 3000
        q.sql("CREATE TAG 'cluster-e2e' ON demo")
        n = q.sql("SELECT count(*) AS n FROM demo AS OF TAG 'cluster-e2e'").column("n")[0].as_py()
        assert n == q.sql("SELECT count(*) AS n FROM demo").column("n")[0].as_py()
    finally:
        q.close()
