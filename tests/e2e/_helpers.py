"""Small helpers shared by the e2e tests."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.flight as flight

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def opts(token):
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    return flight.FlightCallOptions(headers=headers)


def cmd_descriptor(obj, kind=None) -> flight.FlightDescriptor:
    """A Quiver command descriptor: SqlCommand for {"sql"}, else ReadCommand (or `kind`)."""
    from quiver.client import command_bytes

    kind = kind or ("SqlCommand" if "sql" in obj else "ReadCommand")
    return flight.FlightDescriptor.for_command(command_bytes(kind, obj))


def keys_of(table: pa.Table):
    """(sample_id, label_id) pairs of a table, as a list (duplicates kept)."""
    return list(zip(table.column("sample_id").to_pylist(), table.column("label_id").to_pylist()))


def sql_keys(client, query: str) -> set:
    t = client.sql(query)
    keys = keys_of(t)
    assert len(keys) == len(set(keys)), f"duplicate keys in SQL result of {query!r}"
    return set(keys)


def scalar(client, query: str):
    t = client.sql(query)
    assert t.num_rows == 1, f"{query!r} returned {t.num_rows} rows"
    return t.column(0)[0].as_py()


def tag_commit(client, dataset: str, tag: str) -> str:
    t = client.sql(f"SELECT commit_id FROM quiver.tags WHERE dataset = '{dataset}' AND tag = '{tag}'")
    assert t.num_rows == 1, t
    return t.column(0)[0].as_py()


def branches(client, dataset: str) -> dict:
    t = client.sql(f"SELECT branch, commit_id FROM quiver.branches WHERE dataset = '{dataset}'")
    return dict(zip(t.column("branch").to_pylist(), t.column("commit_id").to_pylist()))


def tags(client, dataset: str) -> dict:
    t = client.sql(f"SELECT tag, commit_id FROM quiver.tags WHERE dataset = '{dataset}'")
    return dict(zip(t.column("tag").to_pylist(), t.column("commit_id").to_pylist()))


def sorted_rows(table: pa.Table, keys=("sample_id", "label_id")):
    return table.sort_by([(k, "ascending") for k in keys]).to_pylist()


def adbc_table(conn, query) -> pa.Table:
    """Run one statement over ADBC and return its rows."""
    cur = conn.cursor()
    try:
        cur.execute(query)
        return cur.fetch_arrow_table()
    finally:
        cur.close()
