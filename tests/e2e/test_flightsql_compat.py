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
    with pytest.raises(adbc_driver_manager.Error) as ei:
        adbc_table(adbc, "CREATE TABLE e2e_nokey (a INT, b INT)")
    assert "PRIMARY KEY of two columns" in str(ei.value)

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
