"""Bearer tokens with roles: no token / unknown token are unauthenticated, read-only tokens
read but never write (and a refused write changes nothing)."""

import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import quiver
from _helpers import branches, cmd_descriptor, opts, scalar, tags
from conftest import DEMO_ROWS, RO_TOKEN, RW_TOKEN, adbc_connect


def _state(client):
    settings = client.sql("SELECT branch, protected, checks FROM quiver.branches "
                          "WHERE dataset = 'demo' ORDER BY branch").to_pylist()
    return (branches(client, "demo"), tags(client, "demo"),
            client.commits("demo", branch="main")[0]["id"], settings)


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_without_a_valid_token_everything_is_refused(server, client, token):
    q = quiver.connect(server.url, token=token)
    before = _state(client)
    with pytest.raises(quiver.Unauthenticated):
        q.sql("SELECT count(*) FROM demo AS OF TAG 'v1'")
    with pytest.raises(quiver.Unauthenticated):
        q.dataset("demo").at(tag="v1").to_table()
    with pytest.raises(quiver.Unauthenticated):
        q.datasets()
    with pytest.raises(quiver.Unauthenticated):
        q.dataset("demo").write(client.sql("SELECT * FROM demo LIMIT 1"), branch="main", message="nope")
    with pytest.raises(quiver.Unauthenticated):
        q.create_branch("demo", "anon-branch")
    q.close()

    fc = flight.FlightClient(server.url)
    with pytest.raises(flight.FlightUnauthenticatedError):
        fc.get_flight_info(cmd_descriptor({"dataset": "demo", "ref": "tag:v1"}), opts(token))
    with pytest.raises(flight.FlightUnauthenticatedError):
        list(fc.do_action(flight.Action("quiver.datasets", b"{}"), opts(token)))
    fc.close()
    assert _state(client) == before


def test_adbc_without_token_is_refused(server):
    with pytest.raises(adbc_driver_manager.Error) as ei:
        conn = adbc_connect(server.url, None)
        try:
            cur = conn.cursor()
            cur.execute("SELECT count(*) FROM demo")
            cur.fetchall()
        finally:
            conn.close()
    assert ei.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED, ei.value


def test_read_only_token_reads(ro_client):
    assert scalar(ro_client, "SELECT count(*) FROM demo AS OF TAG 'v1'") == DEMO_ROWS
    assert ro_client.dataset("demo").at(tag="v1").to_table(columns=["sample_id"]).num_rows == DEMO_ROWS
    assert "demo" in ro_client.datasets()
    assert ro_client.commits("demo", branch="main")


def test_read_only_token_cannot_write(server, client, ro_client):
    client.create_tag("demo", "ro-victim", at="tag:v1")
    client.create_branch("demo", "ro-victim-branch", from_ref="tag:v1")
    before = _state(client)
    rows = client.sql("SELECT * FROM demo AS OF TAG 'v1' LIMIT 1")

    with pytest.raises(quiver.PermissionDenied) as ei:
        ro_client.dataset("demo").write(rows, branch="main", message="ro write")
    assert str(ei.value)
    with pytest.raises(quiver.PermissionDenied):
        ro_client.create_branch("demo", "ro-branch")
    with pytest.raises(quiver.PermissionDenied):
        ro_client.create_tag("demo", "ro-tag")
    with pytest.raises(quiver.PermissionDenied):
        ro_client.delete_tag("demo", "ro-victim")
    with pytest.raises(quiver.PermissionDenied):
        ro_client.merge("demo", "tag:v1", target="main")
    with pytest.raises(quiver.PermissionDenied):
        ro_client.sql("CREATE BRANCH ro_sql_branch FROM demo")
    with pytest.raises(quiver.PermissionDenied):
        ro_client.sql("DELETE FROM demo WHERE sample_id = 'no-such-sample'")
    with pytest.raises(quiver.PermissionDenied):
        ro_client.delete_branch("demo", "ro-victim-branch")
    with pytest.raises(quiver.PermissionDenied):
        ro_client.revert("demo", "v1", branch="ro-victim-branch")
    with pytest.raises(quiver.PermissionDenied):
        ro_client.reset("demo", "ro-victim-branch", "~1")
    with pytest.raises(quiver.PermissionDenied):
        ro_client.protect_branch("demo", "ro-victim-branch")
    with pytest.raises(quiver.PermissionDenied):
        ro_client.protect_branch("demo", "main", protected=False)
    with pytest.raises(quiver.PermissionDenied):
        ro_client.add_branch_check("demo", "ro-victim-branch", "c", "SELECT 1 WHERE false")
    with pytest.raises(quiver.PermissionDenied):
        ro_client.drop_branch_check("demo", "ro-victim-branch", "c")
    # a preview reads only: a read-only token may run it
    assert ro_client.merge_preview("demo", "tag:v1", target="ro-victim-branch")["result"] == "up-to-date"

    # raw Flight: DoPut with the ro token is PERMISSION_DENIED (pyarrow: FlightUnauthorizedError)
    fc = flight.FlightClient(server.url)
    desc = cmd_descriptor({"dataset": "demo", "branch": "main", "message": "ro", "mode": "upsert"},
                          kind="PutCommand")
    with pytest.raises(flight.FlightUnauthorizedError):
        writer, reader = fc.do_put(desc, rows.schema, opts(RO_TOKEN))
        writer.write_table(rows)
        writer.done_writing()
        reader.read()
        writer.close()
    fc.close()

    assert _state(client) == before
    assert "ro-branch" not in branches(client, "demo")
    client.delete_tag("demo", "ro-victim")
    client.delete_branch("demo", "ro-victim-branch")


def test_read_only_token_via_adbc(server, client, adbc_ro):
    before = _state(client)
    cur = adbc_ro.cursor()
    cur.execute("SELECT count(*) FROM demo AS OF TAG 'v1'")
    assert cur.fetchone()[0] == DEMO_ROWS
    with pytest.raises(adbc_driver_manager.Error) as ei:
        cur.execute("CREATE BRANCH ro_adbc FROM demo")
        cur.fetchall()
    assert ei.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHORIZED, ei.value
    cur.close()
    assert _state(client) == before
    assert "ro_adbc" not in branches(client, "demo")


def test_basic_auth_handshake_returns_a_bearer_header(server):
    fc = flight.FlightClient(server.url)
    key, value = fc.authenticate_basic_token("trainer", RW_TOKEN)
    assert key.lower() == b"authorization"
    assert value.startswith(b"Bearer ")
    o = flight.FlightCallOptions(headers=[(key, value)])
    info = fc.get_flight_info(cmd_descriptor({"dataset": "demo", "ref": "tag:v1"}), o)
    assert fc.do_get(info.endpoints[0].ticket, o).read_all().num_rows == DEMO_ROWS
    with pytest.raises(flight.FlightUnauthenticatedError):
        fc.authenticate_basic_token("trainer", "wrong-password")
    fc.close()

    q = quiver.connect(server.url).authenticate_basic("trainer", RO_TOKEN)
    assert scalar(q, "SELECT count(*) FROM demo AS OF TAG 'v1'") == DEMO_ROWS
    with pytest.raises(quiver.PermissionDenied):
        q.create_branch("demo", "basic-ro")
    q.close()


@pytest.mark.parametrize("user", ["usr", "us", "u"])
def test_adbc_username_password_login(server, user):
    """The ADBC driver sends Basic credentials as unpadded base64: user names of 3, 2 and 1
    characters give "user:token" credentials needing 0, 1 and 2 padding characters."""
    import base64

    import adbc_driver_flightsql.dbapi as flightsql

    plain = f"{user}:{RO_TOKEN}".encode()
    padding = len(base64.b64encode(plain)) - len(base64.b64encode(plain).rstrip(b"="))
    assert padding == {"usr": 0, "us": 1, "u": 2}[user]
    conn = flightsql.connect(server.url, db_kwargs={"username": user, "password": RO_TOKEN},
                             autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*) AS n FROM demo AS OF TAG 'v1'")
        assert cur.fetchall() == [(DEMO_ROWS,)]
        with pytest.raises(adbc_driver_manager.Error) as ei:  # the role of the token holds
            cur.execute("CREATE BRANCH adbc_basic_never FROM demo")
        assert "read-only" in str(ei.value)
        cur.close()
    finally:
        conn.close()


def test_adbc_wrong_password_is_refused(server):
    import adbc_driver_flightsql.dbapi as flightsql

    with pytest.raises(adbc_driver_manager.Error) as ei:
        conn = flightsql.connect(server.url, db_kwargs={"username": "u", "password": "wrong-pass"},
                                 autocommit=True)
        conn.close()
    assert ei.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED, ei.value
