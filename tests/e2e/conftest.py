"""End-to-end fixtures: one real `quiver serve` process for the whole session.

The server binary comes from $QUIVER_BIN (default $CARGO_TARGET_DIR/debug/quiver,
CARGO_TARGET_DIR default ~/.cache/quiver/target). It serves a fresh catalog in a temporary
directory with a demo dataset of 2000 labels (tagged v1) and two tokens: RW_TOKEN (role rw)
and RO_TOKEN (role ro).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RW_TOKEN = "rw-secret-7f3a"
RO_TOKEN = "ro-secret-19bc"
DEMO_ROWS = 2000
try:  # the package under test, installed (pip install -e python) or straight from the tree
    import quiver  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(REPO / "python"))

LISTEN_RE = re.compile(r"quiver serve: listening on (grpc(?:\+tls)?://[^\s:]+:(\d+))")


def quiver_bin() -> Path:
    if os.environ.get("QUIVER_BIN"):
        return Path(os.environ["QUIVER_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/quiver/target")
    return Path(target) / "debug" / "quiver"


class Server:
    def __init__(self, proc: subprocess.Popen, url: str, port: int, catalog: Path, log: Path,
                 lines: list):
        self.proc = proc
        self.url = url
        self.port = port
        self.catalog = catalog
        self.log = log
        self.stdout_lines = lines
        self.rw_token = RW_TOKEN
        self.ro_token = RO_TOKEN

    def stderr_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    binary = quiver_bin()
    if not binary.exists():
        pytest.fail(f"quiver binary not found at {binary}: build it (cargo build -p quiver-cli) "
                    "or set QUIVER_BIN", pytrace=False)
    root = tmp_path_factory.mktemp("quiver-e2e")
    catalog = root / "catalog"
    tokens = root / "tokens.txt"
    tokens.write_text(
        "# e2e tokens: <token> <role>\n"
        f"{RW_TOKEN} rw\n"
        "\n"
        f"{RO_TOKEN} ro  \n"
    )
    log = root / "server.stderr.log"
    cmd = [str(binary), "--catalog", str(catalog), "serve", "--addr", "127.0.0.1:0",
           "--tokens", str(tokens), "--demo-rows", str(DEMO_ROWS)]
    errf = open(log, "wb")
    env = {k: v for k, v in os.environ.items() if k not in ("QUIVER_TOKENS", "QUIVER_CATALOG")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL,
                            cwd=str(root), env=env, text=True, bufsize=1)
    lines: list = []
    found = threading.Event()
    url_port: dict = {}

    def pump():
        # keep draining stdout so the server never blocks on a full pipe
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            m = LISTEN_RE.search(line)
            if m and not found.is_set():
                url_port["url"], url_port["port"] = m.group(1), int(m.group(2))
                found.set()

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    deadline = time.time() + 60
    while not found.is_set() and time.time() < deadline and proc.poll() is None:
        found.wait(0.2)
    if not found.is_set():
        proc.kill()
        proc.wait()
        errf.close()
        pytest.fail("quiver serve did not print 'quiver serve: listening on grpc://…' within 60 s "
                    f"(exit code {proc.returncode});\ncommand: {' '.join(cmd)}\nstdout:\n"
                    + "\n".join(lines) + "\nstderr:\n" + log.read_text(errors="replace")[-4000:],
                    pytrace=False)
    port = url_port["port"]
    srv = Server(proc, f"grpc://127.0.0.1:{port}", port, catalog, log, lines)
    _wait_for_demo(srv)
    yield srv

    if proc.poll() is not None:
        errf.close()
        pytest.fail(f"the server died during the tests (exit code {proc.returncode}); stderr:\n"
                    + srv.stderr_tail(), pytrace=False)
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        errf.close()
        pytest.fail("quiver serve did not exit within 10 s of SIGTERM", pytrace=False)
    errf.close()
    t.join(timeout=5)
    assert code in (0, -signal.SIGTERM, 128 + signal.SIGTERM), \
        f"quiver serve exited with {code} after SIGTERM; stderr:\n{srv.stderr_tail()}"


def _wait_for_demo(srv: Server, timeout: float = 60.0) -> None:
    """The demo dataset (and its tag v1) may be created right after the listening line."""
    import quiver

    q = quiver.connect(srv.url, token=RW_TOKEN)
    deadline = time.time() + timeout
    last = None
    try:
        while time.time() < deadline:
            try:
                if "demo" in q.datasets():
                    q.dataset("demo").at(tag="v1").resolve()
                    return
            except quiver.QuiverError as e:
                last = e
            time.sleep(0.25)
    finally:
        q.close()
    pytest.fail(f"demo dataset with tag v1 not ready after {timeout} s: {last!r}\n"
                + srv.stderr_tail(), pytrace=False)


@pytest.fixture(scope="session")
def url(server) -> str:
    return server.url


@pytest.fixture(scope="session")
def client(server):
    import quiver

    q = quiver.connect(server.url, token=RW_TOKEN)
    yield q
    q.close()


@pytest.fixture(scope="session")
def ro_client(server):
    import quiver

    q = quiver.connect(server.url, token=RO_TOKEN)
    yield q
    q.close()


def adbc_connect(url: str, token: str | None):
    import adbc_driver_flightsql.dbapi as flightsql

    db_kwargs = {}
    if token is not None:
        db_kwargs["adbc.flight.sql.authorization_header"] = f"Bearer {token}"
    return flightsql.connect(url, db_kwargs=db_kwargs, autocommit=True)


@pytest.fixture()
def adbc(server):
    conn = adbc_connect(server.url, RW_TOKEN)
    yield conn
    conn.close()


@pytest.fixture()
def adbc_ro(server):
    conn = adbc_connect(server.url, RO_TOKEN)
    yield conn
    conn.close()


def pytest_report_header(config):
    return f"quiver binary: {quiver_bin()}"
