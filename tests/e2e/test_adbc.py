"""Flight SQL through ADBC (adbc-driver-flightsql), as BI tools and notebooks use it."""

import pyarrow as pa
import pytest

from _helpers import adbc_table as _table, scalar, tag_commit
from conftest import DEMO_ROWS


def _one(conn, query, parameters=None):
    cur = conn.cursor()
    try:
        if parameters is None:
            cur.execute(query)
        else:
            cur.execute(query, parameters=parameters)
        rows = cur.fetchall()
    finally:
        cur.close()
    assert len(rows) == 1, rows
    return rows[0][0]




def test_count_as_of_tag(adbc):
    assert _one(adbc, "SELECT count(*) FROM demo AS OF TAG 'v1'") == DEMO_ROWS


def test_create_branch_then_query_plain_sql_name(adbc, client):
    main_count = scalar(client, "SELECT count(*) FROM demo")
    _table(adbc, "CREATE BRANCH relabel FROM demo")
    assert "relabel" in client.sql(
        "SELECT branch FROM quiver.branches WHERE dataset = 'demo'").column(0).to_pylist()
    assert _one(adbc, 'SELECT count(*) FROM "demo@relabel"') == main_count


def test_diff_statement_and_table_function(adbc, client):
    t = _table(adbc, "DIFF demo BETWEEN TAG 'v1' AND BRANCH 'main'")
    assert "change" in t.column_names, t.schema
    assert "sample_id" in t.column_names and "label_id" in t.column_names
    f = _table(adbc, "SELECT * FROM quiver_diff('demo','v1','main')")
    assert "change" in f.column_names
    assert f.num_rows == t.num_rows

    # a known change: two labels edited on a branch show up as exactly two 'modified' rows
    client.create_branch("demo", "adbc-diff", from_ref="tag:v1")
    rows = client.sql("SELECT * FROM demo AS OF TAG 'v1' ORDER BY sample_id, label_id LIMIT 2")
    i = rows.schema.get_field_index("class")
    rows = rows.set_column(i, rows.schema.field(i), pa.array(["diff-class"] * 2, pa.string()))
    client.dataset("demo").write(rows, branch="adbc-diff", message="two edits")
    d = _table(adbc, "DIFF demo BETWEEN TAG 'v1' AND BRANCH 'adbc-diff'")
    assert d.num_rows == 2
    assert set(d.column("change").to_pylist()) == {"modified"}
    assert sorted(zip(d.column("sample_id").to_pylist(), d.column("label_id").to_pylist())) == \
        sorted(zip(rows.column("sample_id").to_pylist(), rows.column("label_id").to_pylist()))
    m = _one(adbc, "SELECT count(*) FROM quiver_diff('demo', 'v1', 'adbc-diff') WHERE change = 'modified'")
    assert m == 2


def test_prepared_statement_with_parameter(adbc):
    literal = _one(adbc, "SELECT count(*) FROM demo AS OF TAG 'v1' WHERE class = 'person'")
    assert literal > 0
    bound = _one(adbc, "SELECT count(*) FROM demo AS OF TAG 'v1' WHERE class = ?", parameters=("person",))
    assert bound == literal
    # the same shape on the head of main, as in a BI tool
    assert _one(adbc, "SELECT count(*) FROM demo WHERE class = ?", parameters=("person",)) == \
        _one(adbc, "SELECT count(*) FROM demo WHERE class = 'person'")
    # re-executed with another value
    other = _one(adbc, "SELECT count(*) FROM demo AS OF TAG 'v1' WHERE class = ?", parameters=("car",))
    assert other == _one(adbc, "SELECT count(*) FROM demo AS OF TAG 'v1' WHERE class = 'car'")


def _table_names(conn):
    objs = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    names = []
    for cat in objs:
        for sch in cat.get("catalog_db_schemas") or []:
            for tbl in sch.get("db_schema_tables") or []:
                names.append(tbl["table_name"])
    return names


def test_get_objects_lists_demo(adbc):
    names = _table_names(adbc)
    assert "demo" in names, names


def test_get_table_schema(adbc):
    schema = adbc.adbc_get_table_schema("demo")
    assert "sample_id" in schema.names and "label_id" in schema.names, schema


def test_get_info_and_catalogs(adbc):
    info = adbc.adbc_get_info()
    assert isinstance(info, dict) and info, info
    # GetCatalogs / GetDbSchemas answer (possibly with one default catalog)
    adbc.adbc_get_objects(depth="catalogs").read_all()
    adbc.adbc_get_objects(depth="db_schemas").read_all()


def test_use_branch_and_begin_are_refused_not_forgotten(adbc, client):
    """A stateless server cannot carry USE BRANCH or BEGIN … COMMIT to the next statement:
    they are refused with what to write instead, never answered OK and then ignored."""
    import adbc_driver_manager

    client.create_branch("demo", "adbc-session", from_ref="tag:v1")
    try:
        main_head = client.commits("demo", branch="main")[0]["id"]
        cur = adbc.cursor()
        for st, needle in [
            ("USE BRANCH \"adbc-session\" ON demo", 'INSERT INTO "demo@branch:adbc-session"'),
            ("BEGIN", "bind many rows of parameters"),
            ("START TRANSACTION", "each statement commits by itself"),
            ("COMMIT", "COMMIT MERGE ON ds"),
            ("ROLLBACK", "has no transaction to undo"),
        ]:
            with pytest.raises(adbc_driver_manager.Error) as ei:
                cur.execute(st)
                cur.fetchall()
            assert ei.value.status_code == adbc_driver_manager.AdbcStatusCode.INVALID_ARGUMENT, st
            assert needle in str(ei.value), (st, str(ei.value))
        # what the error says to do works: the branch named in the statement
        sid = scalar(client, "SELECT min(sample_id) FROM demo AS OF TAG 'v1'")
        cur.execute(f"UPDATE \"demo@branch:adbc-session\" SET class = 'adbc' WHERE sample_id = '{sid}'")
        cur.fetchall()
        cur.close()
        assert scalar(client, "SELECT count(*) FROM \"demo@adbc-session\" WHERE class = 'adbc'") > 0
        assert scalar(client, "SELECT count(*) FROM demo WHERE class = 'adbc'") == 0
        assert client.commits("demo", branch="main")[0]["id"] == main_head
    finally:
        client.delete_branch("demo", "adbc-session")
