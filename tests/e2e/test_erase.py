"""Erasure through the Python client and Flight SQL: labels erased from every version,
commit ids unchanged, quiver.erasures, assets, read-only tokens refused, and a server that
cached packs another process erased."""

import subprocess

import pytest

import quiver
from conftest import quiver_bin

COLS = "sample_id VARCHAR NOT NULL, label_id BIGINT NOT NULL, image_hash VARCHAR NOT NULL, class VARCHAR NOT NULL, reviewer VARCHAR"


def _rows(client, q):
    return sorted(tuple(r.values()) for r in client.sql(q).to_pylist())


def _setup(client, name):
    client.sql(f"CREATE DATASET {name} ({COLS}) KEY (sample_id, label_id)")
    client.sql(
        f"INSERT INTO {name} VALUES ('img-1', 0, 'h1', 'cat', 'ana'), ('img-1', 1, 'h1', 'dog', 'ana'), "
        "('img-2', 0, 'h2', 'owl', 'bo'), ('img-3', 0, 'h3', 'cat', 'ana')"
    )
    client.create_tag(name, "v1")
    client.sql(f"UPDATE {name} SET reviewer = 'cy' WHERE reviewer = 'ana'")
    client.sql(f"DELETE FROM {name} WHERE sample_id = 'img-3'")


def test_erase_from_every_version(client, adbc):
    _setup(client, "er_py")
    before = client.commits("er_py")
    r = client.erase("er_py", "sample_id IN ('img-1', 'img-3')", reason="request 5")
    assert r["dataset"] == "er_py" and r["labels_erased"] == 3 and r["packs_rewritten"] >= 2
    assert client.commits("er_py") == before
    erased = ("<erased>", "<erased>", None)
    for ref in ["AS OF TAG 'v1'", ""]:
        rows = _rows(client, f"SELECT sample_id, label_id, image_hash, class, reviewer FROM er_py {ref}")
        for row in rows:
            if row[0] == "img-2":
                assert row[2:] in [("h2", "owl", "bo")]
            else:
                assert row[2:] == erased, (ref, row)
        assert any(row[0] == "img-3" for row in rows) == (ref != "")
    # Flight SQL clients (ADBC) read the same
    with adbc.cursor() as cur:
        cur.execute("SELECT count(*) FROM er_py AS OF TAG 'v1' WHERE class = '<erased>'")
        assert cur.fetchone()[0] == 3
    t = client.erasures("er_py")
    assert sorted(zip(t.column("group_key").to_pylist(), t.column("label_key").to_pylist())) == [
        ("img-1", "0"), ("img-1", "1"), ("img-3", "0")]
    assert set(t.column("reason").to_pylist()) == {"request 5"}
    with pytest.raises(quiver.errors.InvalidArgument, match="subqueries are not supported"):
        client.erase("er_py", "sample_id IN (SELECT sample_id FROM er_py)")


def test_read_only_tokens_cannot_erase(client, ro_client):
    _setup(client, "er_ro")
    with pytest.raises(quiver.errors.PermissionDenied):
        ro_client.erase("er_ro", "true")
    with pytest.raises(quiver.errors.PermissionDenied):
        ro_client.erase_asset("0" * 64)
    assert _rows(client, "SELECT class FROM er_ro AS OF TAG 'v1' WHERE sample_id = 'img-2'") == [("owl",)]


def test_erase_asset_says_so(server, client):
    img = server.catalog.parent / "face.png"
    img.write_bytes(b"a face")
    out = subprocess.run([str(quiver_bin()), "--catalog", str(server.catalog), "assets", "put", str(img)],
                         capture_output=True, text=True, check=True)
    h = out.stdout.strip()
    assert client.sql(f"SELECT quiver_asset('{h}') AS a").column("a").to_pylist() == [b"a face"]
    t = client.erase_asset(h, reason="subject asked")
    assert t["hash"] == h and t["size"] == 6 and t["reason"] == "subject asked"
    with pytest.raises(quiver.errors.QuiverError, match=f"asset {h} was erased on .*subject asked"):
        client.sql(f"SELECT quiver_asset('{h}') AS a")
    assert h in client.sql("SELECT hash FROM quiver.erased_assets").column("hash").to_pylist()


def test_server_with_cached_packs_reads_an_erasure_made_elsewhere(server, client):
    _setup(client, "er_cli")
    q = "SELECT sample_id, label_id, class FROM er_cli AS OF TAG 'v1'"
    assert ("img-2", 0, "owl") in _rows(client, q)  # the server caches the packs
    out = subprocess.run([str(quiver_bin()), "--catalog", str(server.catalog), "erase", "--dataset", "er_cli",
                          "--where", "sample_id = 'img-2'", "--reason", "from the CLI"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rows = None
    for _ in range(4):
        try:
            rows = _rows(client, q)
            break
        except quiver.errors.QuiverError as e:  # at most once per pack it had cached
            assert "rewritten by an erasure" in str(e), e
    assert rows is not None
    assert ("img-2", 0, "<erased>") in rows and ("img-2", 0, "owl") not in rows
