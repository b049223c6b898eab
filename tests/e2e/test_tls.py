"""TLS: `quiver serve --tls-cert/--tls-key` serves grpc+tls; a client that trusts the
certificate reads over it, and a plaintext client is refused."""
import re
import shutil
import subprocess
import time

import pyarrow.flight as fl
import pytest

from _helpers import cmd_descriptor
from conftest import quiver_bin

LISTEN = re.compile(r"listening on (grpc\+tls://[^\s]+)")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    proc = subprocess.Popen(
        [str(quiver_bin()), "--catalog", str(d / "cat"), "serve", "--addr", "127.0.0.1:0",
         "--demo-rows", "300", "--tls-cert", str(cert), "--tls-key", str(key)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = None
    deadline = time.time() + 60
    while time.time() < deadline and url is None:
        line = proc.stdout.readline()
        if not line:
            break
        m = LISTEN.search(line)
        if m:
            url = m.group(1)
    if url is None:
        proc.kill()
        pytest.fail("TLS server did not start")
    yield url, cert.read_bytes()
    proc.terminate()
    proc.wait(timeout=10)


def test_tls_reads_with_trusted_certificate(tls_server):
    url, cert = tls_server
    c = fl.connect(url, tls_root_certs=cert)
    info = c.get_flight_info(cmd_descriptor({"sql": "SELECT count(*) AS n FROM demo AS OF TAG 'v1'"}))
    t = c.do_get(info.endpoints[0].ticket).read_all()
    assert t.column("n").to_pylist() == [300]


def test_plaintext_client_is_refused_by_tls_server(tls_server):
    url, _ = tls_server
    plain = url.replace("grpc+tls://", "grpc://")
    c = fl.connect(plain)
    with pytest.raises(fl.FlightError):
        c.get_flight_info(
            cmd_descriptor({"sql": "SELECT 1"}),
            fl.FlightCallOptions(timeout=5))
