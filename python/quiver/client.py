"""The Quiver client: Flight for data, DoAction for branches/tags/merges, JSON commands."""

from __future__ import annotations

import json
import os
import time
import weakref
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Sequence

import pyarrow as pa
import pyarrow.flight as flight

from .errors import FLIGHT_ERRORS, QuiverError, from_flight

DEFAULT_URL = "grpc://127.0.0.1:50051"


@contextmanager
def _translated():
    """Re-raise pyarrow/Flight errors as QuiverError subclasses."""
    try:
        yield
    except QuiverError:
        raise
    except FLIGHT_ERRORS as e:  # noqa: B014
        raise from_flight(e) from e


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


_TYPE_PREFIX = "type.googleapis.com/quiver.v1."


def sql_string(value: str) -> str:
    """``value`` as a SQL string literal (quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (quotes doubled; kept exactly as written)."""
    return '"' + str(name).replace('"', '""') + '"'


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def command_bytes(kind: str, obj: Any) -> bytes:
    """A Quiver command as the server reads it: a protobuf ``Any`` whose type URL names the
    message (``ReadCommand``, ``SqlCommand``, ``PutCommand``) and whose value is its JSON."""
    url = (_TYPE_PREFIX + kind).encode("utf-8")
    value = _json_bytes(obj)
    return b"\x0a" + _varint(len(url)) + url + b"\x12" + _varint(len(value)) + value


def _parse_json(buf, what: str) -> Any:
    if buf is None:
        return None
    data = buf.to_pybytes() if hasattr(buf, "to_pybytes") else bytes(buf)
    if not data:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise QuiverError(f"the server sent {what} that is not JSON: {data[:200]!r}") from e


def auth_headers(token: Optional[str]) -> list:
    """The gRPC headers that carry ``token``."""
    if not token:
        return []
    return [(b"authorization", f"Bearer {token}".encode("utf-8"))]


def _as_table(data) -> pa.Table:
    """A pyarrow Table from a Table, RecordBatch(es), pandas DataFrame, dict of columns or any
    Arrow C stream."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, (list, tuple)) and data and all(isinstance(b, pa.RecordBatch) for b in data):
        return pa.Table.from_batches(list(data))
    if hasattr(data, "__arrow_c_stream__") and not isinstance(data, dict):
        try:
            return pa.table(data)
        except Exception:
            pass
    try:  # pandas DataFrame
        import pandas as pd  # noqa: WPS433

        if isinstance(data, pd.DataFrame):
            return pa.Table.from_pandas(data, preserve_index=False)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(data, dict):
        return pa.table(data)
    raise TypeError(f"cannot write {type(data).__name__}: pass a pyarrow Table/RecordBatch or a pandas DataFrame")


def _concat(tables: List[pa.Table], schema: pa.Schema) -> pa.Table:
    tables = [t for t in tables if t is not None]
    if not tables:
        return schema.empty_table()
    if len(tables) == 1:
        return tables[0]
    first = tables[0].schema
    try:
        return pa.concat_tables(tables)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.concat_tables([t.cast(first) for t in tables])


#: Longest a fork waits for gRPC's threads to exit after the channels are closed.
_FORK_SETTLE_TIMEOUT = 30.0

#: A fork stops waiting when no gRPC thread has exited for this long: a channel this module
#: does not own (a raw ``pyarrow.flight.FlightClient``) keeps them alive.
_FORK_STALL_SECONDS = 2.0

#: Name prefixes (Linux thread ``comm``, 15 characters at most) of the threads gRPC runs
#: while a channel is open; they all exit once the last channel is closed.
_GRPC_THREAD_PREFIXES = ("event_engine", "grpc", "lifeguard", "default-executo",
                         "resolver-execut", "timer_manager", "global_timer")

#: Every client with an open gRPC channel in this process (closed before a fork).
_LIVE: "weakref.WeakSet[Client]" = weakref.WeakSet()


def _grpc_threads() -> Optional[int]:
    """How many of this process's threads belong to gRPC; None where the threads cannot be
    listed (no /proc)."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    n = 0
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:  # the thread exited meanwhile
            continue
        if name.startswith(_GRPC_THREAD_PREFIXES):
            n += 1
    return n


def _wait_for_grpc_threads_to_exit() -> None:
    """Block until gRPC's threads are gone (or ``_FORK_SETTLE_TIMEOUT`` passed).

    A forked child inherits the memory of every thread but runs only the forking one: a
    gRPC thread caught mid-teardown leaves its locks held in the child, which then hangs
    on its first call. The threads exit a few milliseconds after the last channel closes;
    the fork waits for that event, not for a guessed delay."""
    if _grpc_threads() is None:  # pragma: no cover - no /proc: fork is not the default there
        time.sleep(0.1)
        return
    now = time.monotonic()
    deadline, last_change = now + _FORK_SETTLE_TIMEOUT, now
    left = _grpc_threads()
    while left and now < deadline and now - last_change < _FORK_STALL_SECONDS:
        time.sleep(0.002)
        now, n = time.monotonic(), _grpc_threads()
        if n != left:
            left, last_change = n, now


def _close_channels_before_fork() -> None:
    """gRPC state does not survive ``fork()``: a child that inherits a live channel (and
    its threads) hangs on its first call, and so would a DataLoader worker forked by
    Linux's default start method. Every client closes its channel before a fork and opens
    a new one on its next call, in the parent and in the child alike."""
    closed = False
    for c in list(_LIVE):
        closed |= c._drop_channel()
    if closed:  # (threads of channels this module did not open may never exit: no wait)
        _wait_for_grpc_threads_to_exit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_close_channels_before_fork)


#: The location Flight uses for "the server that answered GetFlightInfo".
REUSE_CONNECTION = "arrow-flight-reuse-connection:"


def endpoint_location(endpoint: flight.FlightEndpoint) -> Optional[str]:
    """The first location an endpoint names (a replica to DoGet it from), or None."""
    for loc in endpoint.locations:
        uri = loc.uri
        return uri.decode("utf-8") if isinstance(uri, bytes) else str(uri)
    return None


class Client:
    """A connection to a Quiver server.

    Create it with :func:`quiver.connect`. Every call carries the bearer token (if any)
    as the ``authorization`` header. The gRPC channel is opened lazily per process: it is
    closed before a ``fork()`` (DataLoader workers, multiprocessing) and reopened on the
    next call, so a client survives fork, spawn and forkserver alike.
    """

    def __init__(self, url: str = DEFAULT_URL, token: Optional[str] = None, **flight_kwargs):
        self.url = url
        self.token = token
        self._flight_kwargs = dict(flight_kwargs)
        self._conn: Optional[flight.FlightClient] = None
        self._pid = os.getpid()
        self._flight  # connect now: a bad URL fails here, not on the first call
        self._options = flight.FlightCallOptions(headers=auth_headers(token))
        self._headers = auth_headers(token)

    def __getstate__(self) -> dict:
        """What a pickle carries (spawn/forkserver workers): the address and credentials,
        never the channel, which belongs to the process that opened it."""
        return {"url": self.url, "token": self.token, "flight_kwargs": self._flight_kwargs,
                "headers": self._headers}

    def __setstate__(self, state: dict) -> None:
        self.url = state["url"]
        self.token = state["token"]
        self._flight_kwargs = dict(state["flight_kwargs"])
        self._headers = list(state["headers"])
        self._options = flight.FlightCallOptions(headers=self._headers)
        self._conn = None  # opened on the first call in this process
        self._pid = os.getpid()

    # ------------------------------------------------------------------ plumbing
    @property
    def _flight(self) -> flight.FlightClient:
        """This process's channel, opened on first use (after a fork, a new one)."""
        if self._conn is None or self._pid != os.getpid():
            with _translated():
                self._conn = flight.FlightClient(self.url, **self._flight_kwargs)
            self._pid = os.getpid()
            _LIVE.add(self)
        return self._conn

    def _drop_channel(self) -> bool:
        """Close this process's channel, if open; whether one was."""
        conn, self._conn = self._conn, None
        _LIVE.discard(self)
        if conn is None or self._pid != os.getpid():
            return False
        try:
            conn.close()
        except Exception:  # pragma: no cover - closing is best effort
            pass
        return True

    @property
    def flight_client(self) -> flight.FlightClient:
        """The underlying ``pyarrow.flight.FlightClient`` of this process."""
        return self._flight

    @property
    def call_options(self) -> flight.FlightCallOptions:
        """Call options carrying the authorization header."""
        return self._options

    def close(self) -> None:
        """Close the channel (a later call opens a new one), and those of the replicas."""
        self._drop_channel()
        for peer in self.__dict__.get("_peers", {}).values():
            peer._drop_channel()

    def at_location(self, location: Optional[str]) -> "Client":
        """The client of the server an endpoint names as its location (a replica of the
        catalog, see ``quiver serve --replica``), with this client's credentials; this
        client when the endpoint names none."""
        if not location or location == self.url or location.startswith(REUSE_CONNECTION):
            return self
        peers = self.__dict__.setdefault("_peers", {})
        peer = peers.get(location)
        if peer is None:
            peer = Client.__new__(Client)
            peer.__setstate__({**self.__getstate__(), "url": location})
            peers[location] = peer
        return peer

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"quiver.Client({self.url!r}{', token=***' if self.token else ''})"

    def get_flight_info(self, command: dict) -> flight.FlightInfo:
        """GetFlightInfo of a read (``{"dataset", …}``) or SQL (``{"sql"}``) command."""
        kind = "SqlCommand" if "sql" in command else "ReadCommand"
        desc = flight.FlightDescriptor.for_command(command_bytes(kind, command))
        with _translated():
            return self._flight.get_flight_info(desc, self._options)

    def read_ticket(self, ticket, location: Optional[str] = None) -> Iterator[pa.RecordBatch]:
        """DoGet one ticket (from the server ``location`` names, if given); yields its
        record batches."""
        if not isinstance(ticket, flight.Ticket):
            ticket = flight.Ticket(ticket)
        at = self.at_location(location)
        with _translated():
            reader = at._flight.do_get(ticket, at._options)
            for chunk in reader:
                if chunk.data is not None:
                    yield chunk.data

    def _read_info_batches(self, info: flight.FlightInfo) -> Iterator[pa.RecordBatch]:
        for endpoint in info.endpoints:
            yield from self.read_ticket(endpoint.ticket, endpoint_location(endpoint))

    def _read_info(self, info: flight.FlightInfo) -> pa.Table:
        tables = []
        with _translated():
            for endpoint in info.endpoints:
                at = self.at_location(endpoint_location(endpoint))
                reader = at._flight.do_get(endpoint.ticket, at._options)
                tables.append(reader.read_all())
        return _concat(tables, info.schema)

    def action(self, action_type: str, body: Optional[dict] = None) -> Any:
        """DoAction with a JSON body; returns the first result's body parsed as JSON."""
        act = flight.Action(action_type, _json_bytes(body if body is not None else {}))
        with _translated():
            results = list(self._flight.do_action(act, self._options))
        if not results:
            return None
        return _parse_json(results[0].body, f"a {action_type} result")

    def put(self, command: dict, data) -> Any:
        """DoPut ``data`` (see :meth:`Dataset.write` for accepted types) under a JSON command
        descriptor; returns the first PutResult's app_metadata parsed as JSON."""
        table = _as_table(data)
        desc = flight.FlightDescriptor.for_command(command_bytes("PutCommand", command))
        with _translated():
            writer, meta_reader = self._flight.do_put(desc, table.schema, self._options)
            try:
                writer.write_table(table)
                writer.done_writing()
                buf = meta_reader.read()
            finally:
                writer.close()
        return _parse_json(buf, "a DoPut result")

    # ------------------------------------------------------------------ SQL
    def sql(self, query: str) -> pa.Table:
        """Run one Quiver SQL statement; returns the whole result as a ``pyarrow.Table``."""
        info = self.get_flight_info({"sql": query})
        return self._read_info(info)

    def sql_batches(self, query: str) -> Iterator[pa.RecordBatch]:
        """Run one Quiver SQL statement; yields its record batches as they arrive."""
        info = self.get_flight_info({"sql": query})
        return self._read_info_batches(info)

    # ------------------------------------------------------------------ datasets
    def dataset(self, name: str) -> "Dataset":
        """A handle on dataset ``name`` at the head of branch ``main``."""
        from .dataset import Dataset

        return Dataset(self, name)

    def datasets(self) -> List[str]:
        """Names of the catalog's datasets."""
        return list(self.action("quiver.datasets", {}) or [])

    # ------------------------------------------------------------------ refs
    def create_branch(self, dataset: str, name: str, from_ref: Optional[str] = None) -> dict:
        """Create branch ``name`` at ``from_ref`` (default: head of main). Returns {name, commit}."""
        body = {"dataset": dataset, "name": name}
        if from_ref is not None:
            body["from"] = from_ref
        return self.action("quiver.create_branch", body)

    def delete_branch(self, dataset: str, name: str) -> dict:
        return self.action("quiver.delete_branch", {"dataset": dataset, "name": name})

    def create_tag(self, dataset: str, name: str, at: Optional[str] = None) -> dict:
        """Create immutable tag ``name`` at ``at`` (default: head of main). Returns {name, commit}."""
        body = {"dataset": dataset, "name": name}
        if at is not None:
            body["at"] = at
        return self.action("quiver.create_tag", body)

    def delete_tag(self, dataset: str, name: str) -> Any:
        return self.action("quiver.delete_tag", {"dataset": dataset, "name": name})

    def rename_branch(self, dataset: str, name: str, to: str) -> dict:
        """Rename branch ``name`` to ``to`` (not main). Returns {name, commit}."""
        return self.action("quiver.rename_branch", {"dataset": dataset, "name": name, "to": to})

    def rename_tag(self, dataset: str, name: str, to: str) -> dict:
        """Rename tag ``name`` to ``to``. Returns {name, commit}."""
        return self.action("quiver.rename_tag", {"dataset": dataset, "name": name, "to": to})

    def drop_dataset(self, dataset: str) -> dict:
        """Drop a dataset: its refs go at once, its data stays until ``quiver gc``."""
        return self.action("quiver.drop_dataset", {"dataset": dataset})

    def metadata(self, dataset: str) -> dict:
        """Dataset and column metadata (not versioned): {"dataset": {key: value},
        "columns": {column: {key: value}}}."""
        return self.action("quiver.metadata", {"dataset": dataset})

    def set_metadata(self, dataset: str, values: Optional[dict] = None, *,
                     column: Optional[str] = None, unset: Sequence[str] = ()) -> dict:
        """Set ``values`` (key -> JSON value) and remove the keys in ``unset``, on the
        dataset or on one ``column``; no commit is made. Returns the metadata."""
        body: dict = {"dataset": dataset, "set": dict(values or {}), "unset": list(unset)}
        if column is not None:
            body["column"] = column
        return self.action("quiver.set_metadata", body)

    def commits(self, dataset: str, branch: str = "main", limit: Optional[int] = None) -> List[dict]:
        """History of ``branch``, newest first: dicts with id, parents, message, author, timestamp."""
        body: dict = {"dataset": dataset, "branch": branch}
        if limit is not None:
            body["limit"] = int(limit)
        return list(self.action("quiver.commits", body) or [])

    def merge(self, dataset: str, source: str, target: str = "main",
              message: Optional[str] = None) -> dict:
        """Merge ref ``source`` into branch ``target``.

        Returns the server's dict: ``kind`` is one of fast-forward, merged, conflicts,
        up-to-date; ``commit`` the new head (or None); ``conflicts`` the number of conflicts.
        """
        body = {"dataset": dataset, "source": source, "target": target}
        if message is not None:
            body["message"] = message
        return self.action("quiver.merge", body)

    def merge_preview(self, dataset: str, source: str, target: str = "main") -> dict:
        """What merging ref ``source`` into branch ``target`` would do now, without doing it:
        no commit, no pending merge, no ref moves (SQL ``MERGE … PREVIEW`` and
        ``quiver_merge_preview``).

        Returns a dict: ``result`` (up-to-date, fast-forward, merged or conflicts, as
        :meth:`merge` would answer), ``target_commit``, ``source_commit``, ``base_commit``,
        the clean changes (``groups_changed``, ``groups_label_merged``, ``labels_added``,
        ``labels_removed``, ``labels_modified``), the number of ``conflicts`` and
        ``conflicting_labels``: a ``pyarrow.Table`` with one row per conflicting label (its
        keys, ``kind`` and the ``base_*``, ``ours_*``, ``theirs_*`` values).
        """
        on = f"INTO {sql_ident(target)} ON {sql_ident(dataset)}"
        rows = self.sql(f"MERGE {sql_string(source)} {on} PREVIEW").to_pylist()
        if not rows:  # pragma: no cover - the statement always answers one row
            raise QuiverError(f"merge preview of {source!r} into {target!r} returned nothing")
        out = dict(rows[0])
        args = ", ".join(sql_string(a) for a in (dataset, source, target))
        out["conflicting_labels"] = self.sql(f"SELECT * FROM quiver_merge_preview({args})")
        return out

    def revert(self, dataset: str, commit: str, branch: str = "main",
               message: Optional[str] = None) -> dict:
        """Undo the changes of ``commit`` (a commit id or prefix, ``~n`` on ``branch``, a tag,
        or a branch's head) with a new commit on ``branch`` (SQL ``REVERT``). Labels a later
        commit changed too are conflicts: nothing is committed and the
        :class:`~quiver.errors.Conflict` raised names them.

        Returns ``{"result": "reverted" | "up-to-date", "branch", "commit_id",
        "reverted_commit", "groups_changed"}``.
        """
        q = f"REVERT {sql_string(commit)} ON {sql_ident(dataset)} BRANCH {sql_ident(branch)}"
        if message is not None:
            q += f" MESSAGE {sql_string(message)}"
        return self.sql(q).to_pylist()[0]

    def reset(self, dataset: str, branch: str, to: str, message: Optional[str] = None) -> dict:
        """Give ``branch`` the content of version ``to`` with one new commit (SQL
        ``RESET BRANCH``): its content hash equals ``to``'s and every earlier commit keeps
        its id.

        Returns ``{"result": "reset" | "up-to-date", "branch", "commit_id", "content_hash",
        "groups_changed"}``.
        """
        q = f"RESET BRANCH {sql_ident(branch)} ON {sql_ident(dataset)} TO {sql_string(to)}"
        if message is not None:
            q += f" MESSAGE {sql_string(message)}"
        return self.sql(q).to_pylist()[0]

    def erase(self, dataset: str, where: str, reason: Optional[str] = None) -> dict:
        """Erase the labels matching the SQL predicate ``where`` from every version of
        ``dataset`` (SQL ``ERASE FROM … WHERE … REASON …``): old commits, branches, tags
        and the before-images commits keep. Erased labels keep their keys; their other
        values read NULL (``'<erased>'`` and 0 in NOT NULL columns). Commit ids, content
        hashes and diffs do not change. ``reason`` is recorded (see :meth:`erasures`).

        Returns ``{"dataset", "erasure_id", "versions", "packs_scanned", "packs_rewritten",
        "rows_erased", "labels_erased"}``.
        """
        q = f"ERASE FROM {sql_ident(dataset)} WHERE {where}"
        if reason is not None:
            q += f" REASON {sql_string(reason)}"
        return self.sql(q).to_pylist()[0]

    def erasures(self, dataset: Optional[str] = None) -> pa.Table:
        """Every erased label (of ``dataset``, or of every dataset), newest first:
        ``dataset``, ``erasure_id``, ``group_key``, ``label_key``, ``erased_at``,
        ``author``, ``reason``, ``filter``, ``packs`` (SQL ``quiver.erasures``)."""
        q = "SELECT * FROM quiver.erasures"
        if dataset is not None:
            q += f" WHERE dataset = {sql_string(dataset)}"
        return self.sql(q)

    def erase_asset(self, hash: str, reason: Optional[str] = None) -> dict:
        """Erase an asset (an image): its bytes are deleted although labels still name
        it, and reads of it (``quiver_asset``) fail saying when, by whom and why. Returns
        the tombstone: ``{"hash", "erased_at", "author", "reason", "size"}``."""
        body = {"hash": hash}
        if reason is not None:
            body["reason"] = reason
        return self.action("quiver.erase_asset", body)

    def label_history(self, dataset: str, group, label=None, ref: Optional[str] = None) -> pa.Table:
        """Every commit that changed the labels of sample ``group`` (only label ``label`` of
        it, when given), newest first, along the first-parent history of ``ref`` (default:
        main): ``commit_id``, ``timestamp``, ``author``, ``message``, ``operation``, the keys,
        ``change`` (added, modified, removed) and the ``old_*`` / ``new_*`` values
        (SQL ``quiver_history``)."""
        def literal(v):
            if v is None:
                return "NULL"
            if isinstance(v, bool) or not isinstance(v, (int, str)):
                raise TypeError(f"a key is an int or a str, not {type(v).__name__}")
            return str(v) if isinstance(v, int) else sql_string(v)

        args = [sql_string(dataset), literal(group)]
        if label is not None or ref is not None:
            args.append(literal(label))
        if ref is not None:
            args.append(sql_string(ref))
        return self.sql(f"SELECT * FROM quiver_history({', '.join(args)})")

    def protect_branch(self, dataset: str, branch: str, protected: bool = True) -> dict:
        """Protect ``branch`` (it then changes only by merges: every direct write — SQL, DoPut,
        :meth:`Dataset.write`, imports — is refused) or, with ``protected=False``, lift the
        protection. Returns ``{"dataset", "branch", "protected", "checks"}``."""
        word = "SET" if protected else "UNSET"
        q = f"ALTER BRANCH {sql_ident(branch)} ON {sql_ident(dataset)} {word} PROTECTED"
        return self.sql(q).to_pylist()[0]

    def add_branch_check(self, dataset: str, branch: str, name: str, query: str) -> dict:
        """Add pre-merge check ``name`` to ``branch``: ``query`` (SQL, reading the dataset by
        its name) must return no rows on the result of every merge into the branch, or the
        merge is refused naming the check and some of its rows."""
        q = (f"ALTER BRANCH {sql_ident(branch)} ON {sql_ident(dataset)} "
             f"ADD CHECK {sql_ident(name)} AS {sql_string(query)}")
        return self.sql(q).to_pylist()[0]

    def drop_branch_check(self, dataset: str, branch: str, name: str) -> dict:
        """Remove pre-merge check ``name`` from ``branch``."""
        q = f"ALTER BRANCH {sql_ident(branch)} ON {sql_ident(dataset)} DROP CHECK {sql_ident(name)}"
        return self.sql(q).to_pylist()[0]

    # ------------------------------------------------------------------ lineage
    def register_model(self, model: str, run_id: str, message: Optional[str] = None) -> dict:
        """Register ``model`` as the product of training run ``run_id`` (a run recorded when a
        trainer read with ``run_id=``). Models are immutable: registering a name twice fails.

        Returns the server's ``{"model", "run_id", "registered_at"}``.
        """
        body = {"model": model, "run_id": run_id}
        if message is not None:
            body["message"] = message
        return self.action("quiver.register_model", body)

    def write_predictions(self, model: str, data) -> dict:
        """Upload predictions of registered ``model`` (DoPut). ``data`` (pyarrow Table or
        RecordBatch, pandas DataFrame, dict of columns) has ``sample_id`` (string) and optionally
        ``class`` (string) and ``score`` (float). Predictions live outside the label versions
        (``quiver.predictions``) and join with any version on ``sample_id``.

        Returns the server's ``{"model", "batch_id", "rows"}``.
        """
        result = self.put({"predictions": model}, data)
        return result if result is not None else {}

    # ------------------------------------------------------------------ auth
    def authenticate_basic(self, username: str, password: str) -> "Client":
        """Flight handshake with Basic auth; switches this client to the returned bearer header."""
        with _translated():
            key, value = self._flight.authenticate_basic_token(username, password)
        if isinstance(value, bytes):
            text = value.decode("utf-8")
        else:
            text = str(value)
        if text.lower().startswith("bearer "):
            self.token = text[7:]
        self._headers = [(key, value if isinstance(value, bytes) else value.encode())]
        self._options = flight.FlightCallOptions(headers=self._headers)
        return self


def connect(url: str = DEFAULT_URL, token: Optional[str] = None, **flight_kwargs) -> Client:
    """Connect to a Quiver server (``grpc://host:port`` or ``grpc+tls://host:port``).

    ``token`` is sent as ``authorization: Bearer <token>`` on every call. Extra keyword
    arguments go to ``pyarrow.flight.FlightClient`` (e.g. ``tls_root_certs``).
    """
    return Client(url, token=token, **flight_kwargs)
