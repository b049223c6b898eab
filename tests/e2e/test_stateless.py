"""A stateless Flight SQL service: tickets and prepared-statement handles carry what the
server needs, so two `quiver serve` processes on one catalog answer each other's tickets, and
a restart loses nothing. Tickets of statements that wrote never write again, whoever replays
them.

Flight SQL messages are built by hand (protobuf `Any`), to split GetFlightInfo and DoGet
across servers as a load balancer would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from _helpers import opts
from conftest import LISTEN_RE, RO_TOKEN, RW_TOKEN, quiver_bin

SQL = "type.googleapis.com/arrow.flight.protocol.sql."
ROWS = 300


# --- a little protobuf: enough for the Flight SQL messages used here -----------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, value: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(value)) + value


def _fields(buf: bytes) -> dict:
    """Length-delimited fields of a message (the only kind these messages use)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        assert key & 7 == 2, f"unexpected wire type in {buf!r}"
        n, i = _read_varint(buf, i)
        out[key >> 3] = buf[i:i + n]
        i += n
    return out


def _read_varint(buf: bytes, i: int):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def _any(name: str, value: bytes) -> bytes:
    return _field(1, (SQL + name).encode()) + _field(2, value)


def statement(query: str) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(_any("CommandStatementQuery", _field(1, query.encode())))


def prepared(handle: bytes) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(_any("CommandPreparedStatementQuery", _field(1, handle)))


def prepare(client: flight.FlightClient, token: str, query: str) -> bytes:
    body = _any("ActionCreatePreparedStatementRequest", _field(1, query.encode()))
    results = list(client.do_action(flight.Action("CreatePreparedStatement", body), opts(token)))
    result = _fields(_fields(results[0].body.to_pybytes())[2])
    return result[1]


def bind(client: flight.FlightClient, token: str, handle: bytes, params: pa.Table) -> bytes:
    """DoPut parameters to a prepared query; the handle that carries them."""
    writer, reader = client.do_put(prepared(handle), params.schema, opts(token))
    writer.write_table(params)
    writer.done_writing()
    meta = reader.read()
    writer.close()
    return _fields(meta.to_pybytes()).get(1, handle)


# --- servers -------------------------------------------------------------------------------

class Serve:
    """One `quiver serve` process on `catalog`."""

    def __init__(self, root: Path, catalog: Path, tokens: Path, name: str, demo_rows=None,
                 extra=()):
        cmd = [str(quiver_bin()), "--catalog", str(catalog), "serve", "--addr", "127.0.0.1:0",
               "--tokens", str(tokens), *extra]
        if demo_rows:
            cmd += ["--demo-rows", str(demo_rows)]
        self.log = root / f"{name}.stderr.log"
        self._err = open(self.log, "wb")
        env = {k: v for k, v in os.environ.items() if k not in ("QUIVER_TOKENS", "QUIVER_CATALOG")}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err,
                                     stdin=subprocess.DEVNULL, cwd=str(root), env=env, text=True,
                                     bufsize=1)
        found = threading.Event()
        self.url = None

        def pump():
            for line in self.proc.stdout:
                m = LISTEN_RE.search(line)
                if m and not found.is_set():
                    self.url = f"grpc://127.0.0.1:{int(m.group(2))}"
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(60):
            self.stop()
            pytest.fail(f"{name} did not start: {self.log.read_text(errors='replace')[-2000:]}",
                        pytrace=False)
        self.client = flight.FlightClient(self.url)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("stateless")
    tokens = root / "tokens.txt"
    tokens.write_text(f"{RW_TOKEN} rw\n{RO_TOKEN} ro\n")
    cat = root / "catalog"
    first = Serve(root, cat, tokens, "seed", demo_rows=ROWS)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if count(first, RO_TOKEN, "SELECT count(*) FROM demo AS OF TAG 'v1'") == ROWS:
                break
        except flight.FlightError:
            time.sleep(0.25)
    first.stop()
    return root, cat, tokens


@pytest.fixture()
def pair(catalog):
    root, cat, tokens = catalog
    a = Serve(root, cat, tokens, "a")
    b = Serve(root, cat, tokens, "b")
    yield a, b, (root, cat, tokens)
    for s in (a, b):
        if s.proc.poll() is None:
            s.stop()


def read(srv: Serve, token: str, info: flight.FlightInfo) -> pa.Table:
    return pa.concat_tables(srv.client.do_get(ep.ticket, opts(token)).read_all()
                            for ep in info.endpoints)


def count(srv: Serve, token: str, query: str) -> int:
    info = srv.client.get_flight_info(statement(query), opts(token))
    return read(srv, token, info).column(0)[0].as_py()


def commits(srv: Serve) -> int:
    return count(srv, RO_TOKEN, "SELECT count(*) FROM quiver.commits WHERE dataset = 'demo'")


# --- tests ---------------------------------------------------------------------------------

def test_flight_info_of_one_server_is_read_through_another_and_after_a_restart(pair):
    a, b, (root, cat, tokens) = pair
    q = "SELECT sample_id, label_id FROM demo ORDER BY sample_id, label_id"
    info = a.client.get_flight_info(statement(q), opts(RO_TOKEN))
    expected = read(a, RO_TOKEN, info)
    assert expected.num_rows > 0
    assert read(b, RO_TOKEN, info).equals(expected)
    # main moves on; the ticket still reads the commit it was planned on
    deleted = count(a, RW_TOKEN, "DELETE FROM demo WHERE label_id = 1")
    assert deleted > 0
    assert count(b, RO_TOKEN, "SELECT count(*) FROM demo") == expected.num_rows - deleted
    a.stop()
    a2 = Serve(root, cat, tokens, "a2")
    try:
        assert read(a2, RO_TOKEN, info).equals(expected)
        assert read(b, RO_TOKEN, info).equals(expected), "read any number of times"
    finally:
        a2.stop()


def test_prepared_statement_survives_a_restart(pair):
    a, b, (root, cat, tokens) = pair
    handle = prepare(a.client, RO_TOKEN, "SELECT count(*) FROM demo AS OF TAG 'v1' WHERE label_id >= ?")
    bound = bind(a.client, RO_TOKEN, handle, pa.table({"$1": pa.array([0], pa.int64())}))
    a.stop()
    a2 = Serve(root, cat, tokens, "a2")
    try:
        for srv in (a2, b):
            info = srv.client.get_flight_info(prepared(bound), opts(RO_TOKEN))
            assert read(srv, RO_TOKEN, info).column(0)[0].as_py() == ROWS
        # the unbound handle still works too: with a parameter of its own
        rebound = bind(b.client, RO_TOKEN, handle, pa.table({"$1": pa.array([10**9], pa.int64())}))
        info = a2.client.get_flight_info(prepared(rebound), opts(RO_TOKEN))
        assert read(a2, RO_TOKEN, info).column(0)[0].as_py() == 0
    finally:
        a2.stop()


def test_replayed_ticket_of_a_write_does_not_write_again(pair):
    a, b, _ = pair
    before = commits(a)
    info = a.client.get_flight_info(statement("CREATE TAG 'replay-once' ON demo"), opts(RW_TOKEN))
    first = read(a, RW_TOKEN, info)
    for srv in (a, b, a, b):
        assert read(srv, RW_TOKEN, info).equals(first)
    # CREATE TAG run twice would fail: the replays only repeated its result
    tags = count(b, RO_TOKEN, "SELECT count(*) FROM quiver.tags WHERE tag = 'replay-once'")
    assert tags == 1
    before = commits(a)
    info = a.client.get_flight_info(statement("DELETE FROM demo WHERE label_id = 2"), opts(RW_TOKEN))
    n = read(a, RW_TOKEN, info).column(0)[0].as_py()
    for srv in (a, b, b):
        assert read(srv, RW_TOKEN, info).column(0)[0].as_py() == n
    assert commits(b) == before + 1


def test_read_only_token_cannot_write_with_a_writers_ticket(pair):
    a, b, _ = pair
    before = commits(a)
    info = a.client.get_flight_info(statement("DELETE FROM demo WHERE label_id = 3"), opts(RW_TOKEN))
    assert commits(a) == before + 1
    # the read-only caller gets the writer's result rows and changes nothing
    for srv in (a, b):
        read(srv, RO_TOKEN, info)
    assert commits(b) == before + 1
    # a ticket forged to carry a write is refused for either token, and writes nothing
    forged = b'QVT1{"kind":"read","sql":"DELETE FROM demo WHERE label_id = 4"}'
    ticket = flight.Ticket(_any("TicketStatementQuery", _field(1, forged)))
    for token in (RO_TOKEN, RW_TOKEN):
        with pytest.raises(pa.ArrowInvalid) as e:  # INVALID_ARGUMENT
            b.client.do_get(ticket, opts(token)).read_all()
        assert "a ticket only reads" in str(e.value)
    # and the read-only token cannot mint a writing ticket in the first place
    with pytest.raises(flight.FlightUnauthorizedError):
        a.client.get_flight_info(statement("DELETE FROM demo WHERE label_id = 4"), opts(RO_TOKEN))
    assert commits(a) == before + 1


def test_garbage_ticket_and_handle_are_invalid_argument(pair):
    a, _, _ = pair
    for body in (b"", b"garbage", b"QVT1{", b'QVT1{"kind":"rows","ipc":"AAAA"}'):
        ticket = flight.Ticket(_any("TicketStatementQuery", _field(1, body)))
        with pytest.raises(pa.ArrowInvalid):  # INVALID_ARGUMENT
            a.client.do_get(ticket, opts(RO_TOKEN)).read_all()
    with pytest.raises(pa.ArrowInvalid):
        a.client.get_flight_info(prepared(b"QVP1 not json"), opts(RO_TOKEN))


def test_trainer_reads_spread_their_shards_over_replicas(pair):
    """`quiver serve --replica URL …`: the shards of a trainer read name the replicas as
    their locations (shard i on replica i mod n); the client reads each shard from the
    replica it names, so a read planned on one server is served by others."""
    import quiver

    _, b, (root, cat, tokens) = pair
    a = Serve(root, cat, tokens, "replicas-a", extra=["--replica", b.url, "--replica", "grpc://127.0.0.1:9"])
    try:
        q = quiver.connect(a.url, token=RO_TOKEN)
        info = q.dataset("demo").at(tag="v1").flight_info(shards=4)
        locations = [ep.locations[0].uri.decode() for ep in info.endpoints]
        assert locations == [b.url, "grpc://127.0.0.1:9", b.url, "grpc://127.0.0.1:9"]
        # shards 0 and 2 come from b (a may be gone); 1 and 3 name a dead address
        a.stop()
        got = [q.read_ticket(ep.ticket, quiver.client.endpoint_location(ep))
               for ep in info.endpoints[0::2]]
        rows = sum(batch.num_rows for batches in got for batch in batches)
        assert rows > 0
        with pytest.raises(quiver.QuiverError):
            list(q.read_ticket(info.endpoints[1].ticket, quiver.client.endpoint_location(info.endpoints[1])))
        q.close()
    finally:
        if a.proc.poll() is None:
            a.stop()


def test_torch_and_table_reads_follow_replica_locations(pair):
    import quiver

    _, b, (root, cat, tokens) = pair
    a = Serve(root, cat, tokens, "replicas-a2", extra=["--replica", b.url])
    try:
        q = quiver.connect(a.url, token=RO_TOKEN)
        total = q.sql("SELECT count(*) AS n FROM demo AS OF TAG 'v1'").column("n")[0].as_py()
        pinned = q.dataset("demo").at(tag="v1")
        info = pinned.flight_info(columns=["label_id"], shards=3)
        data = quiver.torch_data.QuiverIterableDataset.from_flight_info(
            info, url=a.url, token=RO_TOKEN, batch_size=64) if _has_torch() else None
        a.stop()  # every shard names b: the reads below never reach a
        table = q._read_info(info)
        assert table.num_rows == total
        if data is not None:
            assert sum(len(batch["label_id"]) for batch in data) == total
        q.close()
    finally:
        if a.proc.poll() is None:
            a.stop()


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
        import quiver.torch_data  # noqa: F401
    except ImportError:
        return False
    return True
