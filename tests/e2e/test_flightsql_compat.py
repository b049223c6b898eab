"""What BI tools and drivers expect of a Flight SQL server (issue 17), through the ADBC Flight
SQL driver from PyPI: column names as other engines give them, CREATE/DROP TABLE with honest
semantics, what GetSqlInfo claims, ..."""

import adbc_driver_manager
import pytest

from _helpers import adbc_table


def test_result_columns_named_by_their_sql_text(adbc):
    cur = adbc.cursor()
    try:
        cur.execute("SELECT 1, count(*), max(score) AS top FROM demo AS OF TAG 'v1'")
        assert [d[0] for d in cur.description] == ["1", "count(*)", "top"]
        cur.fetchall()
    finally:
        cur.close()


def _datasets(client):
    return set(client.sql("SELECT dataset FROM quiver.datasets").column(0).to_pylist())


def test_create_and_drop_table(adbc, adbc_ro, client):
    create = ("CREATE TABLE e2e_boxes (sample_id VARCHAR, label_id BIGINT, class VARCHAR, "
              "PRIMARY KEY (sample_id, label_id))")
    with pytest.raises(adbc_driver_manager.Error) as ei:
        adbc_table(adbc_ro, create)
    assert "read-only" in str(ei.value)
    assert "e2e_boxes" not in _datasets(client)

    adbc_table(adbc, create)
    info = client.sql("SELECT group_key, label_key FROM quiver.datasets WHERE dataset = 'e2e_boxes'")
    assert info.to_pylist() == [{"group_key": "sample_id", "label_key": "label_id"}]
    cur = adbc.cursor()
    cur.execute("INSERT INTO e2e_boxes VALUES ('a', 1, 'cat'), ('a', 2, 'dog')")
    cur.close()
    assert adbc_table(adbc, "SELECT count(*) AS n FROM e2e_boxes").column("n").to_pylist() == [2]
    with pytest.raises(adbc_driver_manager.Error) as ei:
        adbc_table(adbc, create)
    assert ei.value.status_code == adbc_driver_manager.AdbcStatusCode.ALREADY_EXISTS, ei.value
    adbc_table(adbc, create.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))
    # a table without a primary key is a keyless dataset (implicit row key)
    adbc_table(adbc, "CREATE TABLE e2e_nokey (a INT, b INT)")
    info = client.sql("SELECT group_key, label_key FROM quiver.datasets WHERE dataset = 'e2e_nokey'")
    assert info.to_pylist() == [{"group_key": "_quiver_row_id", "label_key": "_quiver_label"}]
    with pytest.raises(adbc_driver_manager.Error) as ei:
        adbc_table(adbc, "CREATE TABLE e2e_threekey (a INT, b INT, c INT, PRIMARY KEY (a, b, c))")
    assert "at most two" in str(ei.value)

    for drop in ("DROP TABLE e2e_boxes", "DROP TABLE IF EXISTS e2e_boxes"):
        with pytest.raises(adbc_driver_manager.Error) as ei:
            adbc_table(adbc_ro, drop)
        assert "read-only" in str(ei.value)
    assert "e2e_boxes" in _datasets(client)
    with pytest.raises(adbc_driver_manager.Error) as ei:
        adbc_table(adbc, "DROP TABLE e2e_nope")
    assert ei.value.status_code == adbc_driver_manager.AdbcStatusCode.NOT_FOUND, ei.value
    adbc_table(adbc, "DROP TABLE IF EXISTS e2e_nope")
    adbc_table(adbc, "DROP TABLE e2e_boxes")
    assert "e2e_boxes" not in _datasets(client)
    with pytest.raises(adbc_driver_manager.Error) as ei:
        adbc_table(adbc, "SELECT * FROM e2e_boxes")
    assert ei.value.status_code == adbc_driver_manager.AdbcStatusCode.NOT_FOUND, ei.value


def _labels(rows):
    import pyarrow as pa

    return pa.table({"sample_id": [r[0] for r in rows], "label_id": [r[1] for r in rows],
                     "class": [r[2] for r in rows]})


def _commits(client, dataset):
    return client.sql(f"SELECT count(*) AS n FROM quiver.commits WHERE dataset = '{dataset}'") \
        .column("n")[0].as_py()


def test_adbc_ingest_modes(adbc, adbc_ro, client):
    cur = adbc.cursor()
    try:
        with pytest.raises(adbc_driver_manager.Error) as ei:
            cur.adbc_ingest("e2e_ing", _labels([("a", 1, "cat")]), mode="append")
        assert ei.value.status_code == adbc_driver_manager.AdbcStatusCode.NOT_FOUND, ei.value
        assert cur.adbc_ingest("e2e_ing", _labels([("a", 1, "cat"), ("a", 2, "dog")]),
                               mode="create") == 2
        assert _commits(client, "e2e_ing") == 2  # the creation, then the rows in one commit
        with pytest.raises(adbc_driver_manager.Error) as ei:
            cur.adbc_ingest("e2e_ing", _labels([("b", 1, "cow")]), mode="create")
        assert ei.value.status_code == adbc_driver_manager.AdbcStatusCode.ALREADY_EXISTS, ei.value
        assert cur.adbc_ingest("e2e_ing", _labels([("b", 1, "cow")]), mode="append") == 1
        assert cur.adbc_ingest("e2e_ing", _labels([("c", 1, "owl")]), mode="create_append") == 1
        assert _commits(client, "e2e_ing") == 4
        client.create_tag("e2e_ing", "before-replace")
        assert cur.adbc_ingest("e2e_ing", _labels([("z", 9, "emu")]), mode="replace") == 1
        now = client.sql("SELECT sample_id, label_id, class FROM e2e_ing")
        assert now.to_pylist() == [{"sample_id": "z", "label_id": 9, "class": "emu"}]
        old = client.sql("SELECT count(*) AS n FROM e2e_ing AS OF TAG 'before-replace'")
        assert old.column("n")[0].as_py() == 4  # replace is one more version, not a drop
        assert cur.adbc_ingest("e2e_ing_new", _labels([("a", 1, "cat")]), mode="create_append") == 1
    finally:
        cur.close()

    ro = adbc_ro.cursor()
    try:
        for mode in ("create", "append", "replace", "create_append"):
            with pytest.raises(adbc_driver_manager.Error) as ei:
                ro.adbc_ingest("e2e_ing_ro" if mode == "create" else "e2e_ing",
                               _labels([("r", 1, "ro")]), mode=mode)
            assert "read-only" in str(ei.value), (mode, ei.value)
    finally:
        ro.close()
    assert "e2e_ing_ro" not in _datasets(client)


def test_ingest_of_a_table_without_keys_is_versioned(adbc, client):
    """A DataFrame with no key columns (what pandas to_sql sends) becomes a keyless
    dataset: a generated row key per row, each ingest one commit, DIFF between them."""
    import pyarrow as pa

    rows = pa.table({"city": ["Oslo", "Lima", "Oslo"], "temp": [3.5, 19.0, 4.0]})
    cur = adbc.cursor()
    try:
        assert cur.adbc_ingest("e2e_weather", rows, mode="create") == 3
        client.create_tag("e2e_weather", "first")
        assert cur.adbc_ingest("e2e_weather", rows.slice(0, 1), mode="append") == 1
        cur.execute("SELECT count(*), count(DISTINCT _quiver_row_id) FROM e2e_weather")
        assert cur.fetchone() == (4, 4)
        cur.execute("UPDATE e2e_weather SET temp = temp + 1 WHERE city = 'Lima'")
    finally:
        cur.close()
    d = client.sql("SELECT change, count(*) AS n FROM quiver_diff('e2e_weather', 'first', 'main') "
                   "GROUP BY change ORDER BY change")
    assert d.to_pylist() == [{"change": "added", "n": 1}, {"change": "modified", "n": 1}]
    assert client.sql("SELECT count(*) AS n FROM e2e_ing").column("n")[0].as_py() == 1


def test_pandas_to_sql_over_adbc(adbc, client):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"sample_id": ["p1", "p1", "p2"], "label_id": [1, 2, 1],
                       "score": [0.5, 0.25, 1.0]})
    assert df.to_sql("e2e_pandas", adbc, index=False) == 3
    more = pd.DataFrame({"sample_id": ["p3"], "label_id": [1], "score": [0.75]})
    more.to_sql("e2e_pandas", adbc, index=False, if_exists="append")
    t = client.sql("SELECT sample_id, label_id, score FROM e2e_pandas ORDER BY sample_id, label_id")
    assert t.column("sample_id").to_pylist() == ["p1", "p1", "p2", "p3"]
    back = pd.read_sql("SELECT count(*) AS n FROM e2e_pandas", adbc)
    assert int(back["n"][0]) == 4


def test_parameters_many_rows_and_inserts(adbc, adbc_ro, client):
    import pyarrow as pa

    adbc_table(adbc, "CREATE TABLE e2e_params (sample_id VARCHAR, label_id BIGINT, class VARCHAR, "
                     "PRIMARY KEY (sample_id, label_id))")
    before = _commits(client, "e2e_params")
    cur = adbc.cursor()
    try:
        cur.executemany("INSERT INTO e2e_params VALUES (?, ?, ?)",
                        [("a", 1, "cat"), ("a", 2, "dog"), ("b", 1, "it's")])
        assert _commits(client, "e2e_params") == before + 1  # three rows, one commit
        cur.execute("INSERT INTO e2e_params (sample_id, label_id, class) VALUES (?, ?, ?)",
                    ("c", 1, "cow"))
        assert _commits(client, "e2e_params") == before + 2
        rows = client.sql("SELECT sample_id, label_id, class FROM e2e_params "
                          "ORDER BY sample_id, label_id").to_pylist()
        assert [r["class"] for r in rows] == ["cat", "dog", "it's", "cow"]
        cur.executemany("UPDATE e2e_params SET class = ? WHERE sample_id = ?",
                        [("A", "a"), ("B", "b")])
        assert _commits(client, "e2e_params") == before + 3
        # a query bound to several rows: the results of every row
        cur.execute("SELECT label_id FROM e2e_params WHERE sample_id = ?",
                    pa.record_batch({"s": ["a", "c"]}))
        assert sorted(r[0] for r in cur.fetchall()) == [1, 1, 2]
        cur.execute("SELECT class FROM e2e_params WHERE sample_id = ? AND label_id = ?", ("a", 2))
        assert cur.fetchall() == [("A",)]
    finally:
        cur.close()
    ro = adbc_ro.cursor()
    try:
        with pytest.raises(adbc_driver_manager.Error) as ei:
            ro.executemany("INSERT INTO e2e_params VALUES (?, ?, ?)", [("r", 1, "ro")])
        assert "read-only" in str(ei.value)
    finally:
        ro.close()
    assert _commits(client, "e2e_params") == before + 3


def test_get_schema_of_statements_and_tables(adbc, client):
    cur = adbc.cursor()
    try:
        q = "SELECT sample_id, count(*), max(score) FROM demo AS OF TAG 'v1' GROUP BY sample_id"
        schema = cur.adbc_execute_schema(q)
        assert schema.names == ["sample_id", "count(*)", "max(score)"]
        cur.execute(q)
        assert cur.fetch_arrow_table().schema.names == schema.names
        # the schema of a write is asked for without running it (the driver prepares the
        # statement: a write has no result schema before it runs)
        assert len(cur.adbc_execute_schema("CREATE BRANCH from_get_schema FROM demo")) == 0
        assert "from_get_schema" not in client.sql(
            "SELECT branch FROM quiver.branches WHERE dataset = 'demo'").column(0).to_pylist()
    finally:
        cur.close()
    table = adbc.adbc_get_table_schema("demo")
    assert table.names == client.sql("SELECT * FROM demo LIMIT 1").schema.names
    objects = adbc.adbc_get_objects(depth="columns", table_name_filter="demo").read_all()
    assert objects.num_rows >= 1


def _pb_string(field: int, value: bytes) -> bytes:
    """One length-delimited protobuf field (enough for the two messages below)."""
    n, out = len(value), bytearray([field << 3 | 2])
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out) + value


def test_get_schema_over_raw_flight(server):
    import pyarrow.flight as flight

    from _helpers import cmd_descriptor, opts

    q = "SELECT 1, class FROM demo LIMIT 1"
    statement = _pb_string(1, q.encode())  # CommandStatementQuery.query
    any_msg = _pb_string(1, b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery") \
        + _pb_string(2, statement)
    fc = flight.FlightClient(server.url)
    try:
        for desc in (flight.FlightDescriptor.for_command(any_msg), cmd_descriptor({"sql": q})):
            result = fc.get_schema(desc, opts(server.ro_token))
            assert result.schema.names == ["1", "class"]
    finally:
        fc.close()


def test_keyless_table_shows_the_columns_it_was_created_with(adbc):
    """A table created without a primary key (SQL or bulk ingest) has an implicit row key;
    like PostgreSQL's system columns it is not among `SELECT *`, positional INSERT values,
    GetTableSchema or GetObjects columns, and stays readable by name (found by arrow-adbc's
    C validation suite: SqlBind, SqlQueryEmpty, MetadataGetObjectsColumns, …)."""
    import pyarrow as pa

    adbc_table(adbc, "CREATE TABLE e2e_plain (int64s BIGINT, strings TEXT)")
    cur = adbc.cursor()
    try:
        cur.execute("INSERT INTO e2e_plain VALUES (42, 'foo'), (-42, NULL), (NULL, '')")
        cur.execute("INSERT INTO e2e_plain VALUES (?, ?)", (7, "bound"))
        cur.execute("SELECT * FROM e2e_plain ORDER BY int64s NULLS FIRST")
        assert [d[0] for d in cur.description] == ["int64s", "strings"]
        assert cur.fetchall() == [(None, ""), (-42, None), (7, "bound"), (42, "foo")]
        cur.execute("SELECT * FROM e2e_plain WHERE 1=0")
        assert len(cur.description) == 2
        cur.fetchall()
        cur.execute("SELECT count(DISTINCT _quiver_row_id) FROM e2e_plain")
        assert cur.fetchone() == (4,)
        # a copy between keyless tables: SELECT * brings the implicit key along
        adbc_table(adbc, "CREATE TABLE e2e_plain_copy (int64s BIGINT, strings TEXT)")
        cur.execute("INSERT INTO e2e_plain_copy SELECT * FROM e2e_plain")
        cur.execute("INSERT INTO e2e_plain_copy SELECT int64s + 1, strings FROM e2e_plain")
        cur.execute("SELECT count(*) FROM e2e_plain_copy")
        assert cur.fetchone() == (8,)
        assert cur.adbc_ingest("e2e_plain_ing", pa.table({"v": [1, 2]}), mode="create") == 2
        cur.execute("SELECT * FROM e2e_plain_ing")
        assert [d[0] for d in cur.description] == ["v"]
        cur.fetchall()
    finally:
        cur.close()
    assert adbc.adbc_get_table_schema("e2e_plain").names == ["int64s", "strings"]
    objs = adbc.adbc_get_objects(depth="columns", table_name_filter="e2e_plain").read_all()
    cols = [c["column_name"] for cat in objs.to_pylist() for s in cat["catalog_db_schemas"]
            for t in s["db_schema_tables"] if t["table_name"] == "e2e_plain"
            for c in t["table_columns"]]
    assert cols == ["int64s", "strings"]


def test_ingest_of_a_type_datasets_cannot_store_is_a_user_error(adbc, client):
    """A month-day-nano interval has no Parquet type: the ingest is refused as
    INVALID_ARGUMENT naming the column, not an INTERNAL Parquet error after the dataset was
    begun (found by arrow-adbc's validation test SqlIngestInterval)."""
    import pyarrow as pa

    t = pa.table({"col": pa.array([None, pa.MonthDayNano([1, 2, 3])],
                                  pa.month_day_nano_interval())})
    cur = adbc.cursor()
    try:
        with pytest.raises(adbc_driver_manager.Error) as ei:
            cur.adbc_ingest("e2e_interval", t, mode="create")
    finally:
        cur.close()
    assert ei.value.status_code == adbc_driver_manager.AdbcStatusCode.INVALID_ARGUMENT, ei.value
    assert "column 'col'" in str(ei.value) and "e2e_interval" in str(ei.value), ei.value
    assert "e2e_interval" not in _datasets(client)
