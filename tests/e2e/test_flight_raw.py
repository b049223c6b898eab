"""Plain pyarrow.flight against the trainer protocol: shards pinned to one commit, bad
tickets, run_id lineage."""

import json

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import quiver
from _helpers import HEX64, cmd_descriptor, keys_of, opts, scalar, sql_keys, tag_commit
from conftest import DEMO_ROWS, RW_TOKEN


@pytest.fixture(scope="module")
def fc(server):
    c = flight.FlightClient(server.url)
    yield c
    c.close()


def _info(fc, cmd, token=RW_TOKEN):
    return fc.get_flight_info(cmd_descriptor(cmd), opts(token))


def test_trainer_descriptor_four_shards_pinned_and_complete(fc, client):
    info = _info(fc, {"dataset": "demo", "ref": "tag:v1", "shards": 4})
    assert len(info.endpoints) == 4

    metas = [json.loads(ep.app_metadata) for ep in info.endpoints]
    assert [m["shard"] for m in metas] == [0, 1, 2, 3]
    assert all(m["shards"] == 4 for m in metas)
    commits = {m["commit"] for m in metas}
    assert len(commits) == 1, f"endpoints pinned to different commits: {commits}"
    commit = commits.pop()
    assert HEX64.match(commit), commit

    top = json.loads(info.app_metadata)
    assert top["dataset"] == "demo"
    assert top["commit"] == commit
    assert commit == tag_commit(client, "demo", "v1")

    tables = [fc.do_get(ep.ticket, opts(RW_TOKEN)).read_all() for ep in info.endpoints]
    keys = [k for t in tables for k in keys_of(t)]
    assert len(keys) == len(set(keys)), "a label was streamed by two shards"
    expected = sql_keys(client, "SELECT sample_id, label_id FROM demo AS OF TAG 'v1'")
    assert len(expected) == DEMO_ROWS
    assert set(keys) == expected
    assert info.total_records == len(expected)
    # every shard carries the advertised schema (all columns: no projection was asked)
    for t in tables:
        assert t.schema.remove_metadata().equals(info.schema.remove_metadata())
    assert "sample_id" in info.schema.names and "review_state" in info.schema.names


def test_projection_and_filter_shards(fc, client):
    cols = ["sample_id", "label_id", "score"]
    info = _info(fc, {"dataset": "demo", "ref": "tag:v1", "columns": cols,
                      "filter": "score > 0.5", "shards": 3})
    assert info.schema.names == cols
    assert len(info.endpoints) == 3
    t = pa.concat_tables([fc.do_get(ep.ticket, opts(RW_TOKEN)).read_all() for ep in info.endpoints])
    assert t.column_names == cols
    keys = keys_of(t)
    assert len(keys) == len(set(keys))
    expected = sql_keys(client, "SELECT sample_id, label_id FROM demo AS OF TAG 'v1' WHERE score > 0.5")
    assert set(keys) == expected
    assert 0 < len(expected) < DEMO_ROWS
    # with a filter total_records is an upper bound (or -1 when unknown)
    assert info.total_records == -1 or info.total_records >= len(expected)


def test_tickets_stay_pinned_after_the_branch_moves(fc, client):
    client.create_branch("demo", "pin-test", from_ref="tag:v1")
    info = _info(fc, {"dataset": "demo", "ref": "branch:pin-test", "shards": 2})
    old_commit = json.loads(info.app_metadata)["commit"]

    new_rows = client.sql("SELECT * FROM demo AS OF TAG 'v1' ORDER BY sample_id, label_id LIMIT 1")
    new_rows = new_rows.set_column(new_rows.schema.get_field_index("sample_id"), "sample_id",
                                   pa.array(["img-pinned-new"], new_rows.schema.field("sample_id").type))
    res = client.dataset("demo").write(new_rows, branch="pin-test", message="move pin-test", mode="append")
    assert res["commit"] != old_commit

    old = pa.concat_tables([fc.do_get(ep.ticket, opts(RW_TOKEN)).read_all() for ep in info.endpoints])
    assert old.num_rows == DEMO_ROWS
    assert "img-pinned-new" not in old.column("sample_id").to_pylist()

    info2 = _info(fc, {"dataset": "demo", "ref": "pin-test", "shards": 2})
    assert json.loads(info2.app_metadata)["commit"] == res["commit"]
    new = pa.concat_tables([fc.do_get(ep.ticket, opts(RW_TOKEN)).read_all() for ep in info2.endpoints])
    assert new.num_rows == DEMO_ROWS + 1
    client.delete_branch("demo", "pin-test")


def test_ref_forms(fc, client):
    v1 = tag_commit(client, "demo", "v1")
    for ref in ("tag:v1", "v1", f"version:{v1[:12]}", v1[:12]):
        info = _info(fc, {"dataset": "demo", "ref": ref})
        assert json.loads(info.app_metadata)["commit"] == v1, ref
        assert len(info.endpoints) == 1  # shards default to 1
    main = json.loads(_info(fc, {"dataset": "demo"}).app_metadata)["commit"]
    assert main == json.loads(_info(fc, {"dataset": "demo", "ref": "branch:main"}).app_metadata)["commit"]


@pytest.mark.parametrize("bad", [b"{not json", b"\x00\x01garbage"])
def test_bad_ticket_is_invalid_argument_and_server_survives(fc, client, bad):
    with pytest.raises((flight.FlightError, pa.ArrowException)) as ei:
        fc.do_get(flight.Ticket(bad), opts(RW_TOKEN)).read_all()
    assert isinstance(ei.value, pa.ArrowInvalid), \
        f"expected INVALID_ARGUMENT (pyarrow ArrowInvalid), got {type(ei.value).__name__}: {ei.value}"
    assert "ticket" in str(ei.value).lower(), str(ei.value)

    with pytest.raises(quiver.InvalidArgument) as qe:
        list(client.read_ticket(bad))
    assert "ticket" in str(qe.value).lower()

    # the server still answers
    assert scalar(client, "SELECT count(*) FROM demo AS OF TAG 'v1'") == DEMO_ROWS


@pytest.mark.parametrize("cmd", [b"not json at all", b'{"dataset": "demo"}',
                                 {"dataset": 5}, {"shards": 2}, {"dataset": "demo", "x": 1}])
def test_bad_descriptor_is_invalid_argument(fc, client, cmd):
    # untyped bytes (JSON included: Quiver commands are typed messages) and bad typed ones
    desc = flight.FlightDescriptor.for_command(cmd) if isinstance(cmd, bytes) else cmd_descriptor(cmd)
    with pytest.raises(pa.ArrowInvalid):
        fc.get_flight_info(desc, opts(RW_TOKEN))
    assert scalar(client, "SELECT count(*) FROM demo AS OF TAG 'v1'") == DEMO_ROWS


def test_unknown_dataset_and_ref_name_what_was_wrong(client):
    with pytest.raises(quiver.QuiverError) as ei:
        client.dataset("no_such_dataset").to_table()
    assert "no_such_dataset" in str(ei.value)
    assert isinstance(ei.value, (quiver.NotFound, quiver.InvalidArgument)), type(ei.value)
    with pytest.raises(quiver.QuiverError) as ei:
        client.dataset("demo").at(tag="no_such_tag").to_table()
    assert "no_such_tag" in str(ei.value)


def test_run_id_is_recorded_in_lineage(fc, client):
    info = _info(fc, {"dataset": "demo", "ref": "tag:v1", "shards": 2, "run_id": "run-raw-42"})
    commit = json.loads(info.app_metadata)["commit"]
    runs = client.sql("SELECT * FROM quiver.runs WHERE run_id = 'run-raw-42'")
    assert runs.num_rows == 1
    row = runs.to_pylist()[0]
    assert row["dataset"] == "demo"
    assert row["commit_id"] == commit
    assert row["commit_id"] == tag_commit(client, "demo", "v1")
