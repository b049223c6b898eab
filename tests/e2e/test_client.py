"""The quiver Python client: SQL, reads at refs, DoPut writes, DoAction refs and merges."""

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import quiver
from _helpers import HEX64, branches, keys_of, scalar, sorted_rows, tag_commit, tags
from conftest import DEMO_ROWS


def test_sql_and_datasets(client):
    assert "demo" in client.datasets()
    t = client.sql("SELECT class, count(*) AS n FROM demo AS OF TAG 'v1' GROUP BY class ORDER BY n DESC")
    assert isinstance(t, pa.Table)
    assert t.column_names == ["class", "n"]
    assert sum(t.column("n").to_pylist()) == DEMO_ROWS
    assert scalar(client, "SELECT count(*) FROM \"demo@v1\"") == DEMO_ROWS


def test_to_table_with_filter_equals_sql(client):
    ds = client.dataset("demo").at(tag="v1")
    cols = ["sample_id", "label_id", "score"]
    t = ds.to_table(columns=cols, filter="score > 0.5")
    assert t.column_names == cols
    expected = client.sql("SELECT sample_id, label_id, score FROM demo AS OF TAG 'v1' WHERE score > 0.5")
    assert t.num_rows == expected.num_rows > 0
    assert sorted_rows(t) == sorted_rows(expected)
    assert pc.min(t.column("score")).as_py() > 0.5
    assert ds.commit_id == tag_commit(client, "demo", "v1")


def test_to_batches_and_refs(client):
    v1 = tag_commit(client, "demo", "v1")
    ds = client.dataset("demo").at(tag="v1")
    batches = list(ds.to_batches(columns=["sample_id", "label_id"]))
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    assert sum(b.num_rows for b in batches) == DEMO_ROWS
    assert ds.resolve() == v1
    by_version = client.dataset("demo").at(version=v1[:10]).to_table(columns=["sample_id", "label_id"])
    assert sorted(keys_of(by_version)) == sorted(k for b in batches for k in zip(
        b.column(0).to_pylist(), b.column(1).to_pylist()))
    with pytest.raises(ValueError):
        client.dataset("demo").at(tag="v1", branch="main")
    with pytest.raises(ValueError):
        client.dataset("demo").at()


def _three_rows(client):
    return client.sql("SELECT * FROM demo AS OF TAG 'v1' ORDER BY sample_id, label_id LIMIT 3")


def _with(table: pa.Table, name: str, values) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))


def test_write_upsert_makes_a_commit(client):
    v1 = tag_commit(client, "demo", "v1")
    created = client.create_branch("demo", "py-write", from_ref="tag:v1")
    assert created["name"] == "py-write" and created["commit"] == v1

    rows = _with(_three_rows(client), "class", ["zebra-relabeled"] * 3)
    res = client.dataset("demo").write(rows, branch="py-write", message="relabel three")
    assert HEX64.match(res["commit"]) and res["commit"] != v1
    assert res["rows"] == 3

    log = client.commits("demo", branch="py-write")
    assert log[0]["id"] == res["commit"]
    assert log[0]["message"] == "relabel three"
    assert v1 in log[0]["parents"]
    assert any(c["id"] == v1 for c in log)
    assert len(client.commits("demo", branch="py-write", limit=1)) == 1

    q = "SELECT count(*) FROM demo AS OF BRANCH 'py-write' WHERE class = 'zebra-relabeled'"
    assert scalar(client, q) == 3
    assert scalar(client, "SELECT count(*) FROM demo AS OF BRANCH 'py-write'") == DEMO_ROWS  # upsert
    assert scalar(client, "SELECT count(*) FROM demo AS OF TAG 'v1' WHERE class = 'zebra-relabeled'") == 0
    assert client.dataset("demo").at(branch="py-write").commit_id == res["commit"]


def test_write_fills_missing_nullable_columns_and_casts(client):
    client.create_branch("demo", "py-append", from_ref="tag:v1")
    new = pa.table({
        "sample_id": ["img-new-000001", "img-new-000001"],
        "label_id": pa.array([0, 1], pa.int32()),            # int32 -> int64 server-side
        "image_hash": ["f" * 64, "f" * 64],
        "class": ["cat", "dog"],
        "bbox_x": [0.1, 0.2], "bbox_y": [0.1, 0.2],            # float64 -> float32
        "bbox_w": [0.3, 0.3], "bbox_h": [0.4, 0.4],
        "review_state": ["pending", "pending"],
        "schema_version": ["2.3", "2.3"],
        # score, reviewer, reviewed_at (nullable) left out
    })
    res = client.dataset("demo").write(new, branch="py-append", message="two new labels", mode="append")
    assert res["rows"] == 2
    got = client.sql("SELECT label_id, class, score, reviewer, reviewed_at FROM demo AS OF BRANCH 'py-append' "
                     "WHERE sample_id = 'img-new-000001' ORDER BY label_id")
    assert got.to_pylist() == [
        {"label_id": 0, "class": "cat", "score": None, "reviewer": None, "reviewed_at": None},
        {"label_id": 1, "class": "dog", "score": None, "reviewer": None, "reviewed_at": None},
    ]
    assert scalar(client, "SELECT count(*) FROM demo AS OF BRANCH 'py-append'") == DEMO_ROWS + 2


def test_bad_write_is_refused_and_changes_nothing(client):
    before = branches(client, "demo")
    bad = pa.table({"sample_id": ["x"], "label_id": pa.array([0], pa.int64()), "no_such_column": [1]})
    with pytest.raises(quiver.QuiverError) as ei:
        client.dataset("demo").write(bad, branch="main", message="bad")
    assert isinstance(ei.value, quiver.InvalidArgument), f"{type(ei.value).__name__}: {ei.value}"
    assert str(ei.value)
    with pytest.raises(quiver.QuiverError):
        client.dataset("demo").write(_three_rows(client), branch="no-such-branch", message="x")
    assert branches(client, "demo") == before


def test_branch_and_tag_actions(client):
    v1 = tag_commit(client, "demo", "v1")
    made = client.create_branch("demo", "act-branch", from_ref="tag:v1")
    assert made == {"name": "act-branch", "commit": v1} or (made["name"], made["commit"]) == ("act-branch", v1)
    assert branches(client, "demo")["act-branch"] == v1
    with pytest.raises(quiver.QuiverError) as ei:
        client.create_branch("demo", "act-branch")
    assert "act-branch" in str(ei.value)
    assert client.delete_branch("demo", "act-branch")["deleted"] == "act-branch"
    assert "act-branch" not in branches(client, "demo")

    tagged = client.create_tag("demo", "act-tag", at="tag:v1")
    assert tagged["name"] == "act-tag" and tagged["commit"] == v1
    assert tags(client, "demo")["act-tag"] == v1
    assert scalar(client, "SELECT count(*) FROM demo AS OF TAG 'act-tag'") == DEMO_ROWS
    with pytest.raises(quiver.QuiverError):
        client.create_tag("demo", "act-tag")  # tags never move silently
    client.delete_tag("demo", "act-tag")
    assert "act-tag" not in tags(client, "demo")
    with pytest.raises(quiver.QuiverError) as ei:
        client.sql("SELECT count(*) FROM demo AS OF TAG 'act-tag'")
    assert "act-tag" in str(ei.value)
    with pytest.raises(quiver.QuiverError):
        client.delete_branch("demo", "never-existed")


def test_rename_and_drop_actions(client):
    v1 = tag_commit(client, "demo", "v1")
    client.create_tag("demo", "ren-tag", at="tag:v1")
    assert client.rename_tag("demo", "ren-tag", "ren-tag-2") == {"name": "ren-tag-2", "commit": v1}
    assert "ren-tag" not in tags(client, "demo") and tags(client, "demo")["ren-tag-2"] == v1
    client.delete_tag("demo", "ren-tag-2")
    client.create_branch("demo", "ren-branch", from_ref="tag:v1")
    assert client.rename_branch("demo", "ren-branch", "ren-branch-2")["commit"] == v1
    assert "ren-branch" not in branches(client, "demo")
    client.delete_branch("demo", "ren-branch-2")
    with pytest.raises(quiver.QuiverError) as ei:
        client.rename_branch("demo", "main", "trunk")
    assert "main" in str(ei.value)
    # SQL spelling of the same operations
    client.sql("CREATE TAG 'sql-ren' ON demo AS OF TAG 'v1'")
    client.sql("ALTER TAG 'sql-ren' RENAME TO 'sql-ren-2' ON demo")
    assert tags(client, "demo")["sql-ren-2"] == v1
    client.sql("DROP TAG 'sql-ren-2' ON demo")
    # drop a dataset made for the purpose
    client.sql("CREATE DATASET drop_me (k VARCHAR NOT NULL, l BIGINT NOT NULL) KEY (k, l)")
    assert "drop_me" in client.datasets()
    assert client.drop_dataset("drop_me") == {"dropped": "drop_me"}
    assert "drop_me" not in client.datasets()
    with pytest.raises(quiver.QuiverError) as ei:
        client.drop_dataset("drop_me")
    assert "drop_me" in str(ei.value)


def test_metadata_on_every_surface(client, ro_client):
    """Dataset and column metadata through the Flight actions and through SQL: no commit
    made, read-only tokens refused."""
    head = client.commits("demo", branch="main")[0]["id"]
    m = client.set_metadata("demo", {"owner": "vision-team", "fps": 30})
    assert m["dataset"]["owner"] == "vision-team" and m["dataset"]["fps"] == 30
    m = client.set_metadata("demo", {"unit": "fraction of width"}, column="bbox_x")
    assert m["columns"]["bbox_x"] == {"unit": "fraction of width"}
    # the same entries through SQL
    t = client.sql("SHOW METADATA ON demo")
    rows = {(r["column"], r["key"]): r["value"] for r in t.to_pylist()}
    assert rows[(None, "owner")] == "vision-team" and rows[("bbox_x", "unit")] == "fraction of width"
    client.sql("ALTER DATASET demo SET METADATA 'licence' = 'CC-BY-4.0'")
    assert client.metadata("demo")["dataset"]["licence"] == "CC-BY-4.0"
    m = client.set_metadata("demo", unset=["fps", "licence"])
    assert "fps" not in m["dataset"] and "licence" not in m["dataset"]
    assert client.commits("demo", branch="main")[0]["id"] == head, "metadata makes no commit"
    with pytest.raises(quiver.QuiverError) as ei:
        client.set_metadata("demo", {"a": 1}, column="nope")
    assert "nope" in str(ei.value)
    # read-only: reads work, writes are refused on both routes
    assert ro_client.metadata("demo")["dataset"]["owner"] == "vision-team"
    with pytest.raises(quiver.QuiverError):
        ro_client.set_metadata("demo", {"owner": "mallory"})
    with pytest.raises(quiver.QuiverError):
        ro_client.sql("ALTER DATASET demo SET METADATA 'owner' = 'mallory'")
    assert client.metadata("demo")["dataset"]["owner"] == "vision-team"
    client.set_metadata("demo", unset=["owner"])
    client.set_metadata("demo", column="bbox_x", unset=["unit"])


def test_merge_branch_into_main(client):
    main_before = client.commits("demo", branch="main")[0]["id"]
    client.create_branch("demo", "feat")  # from the head of main
    rows = client.sql("SELECT * FROM demo ORDER BY sample_id, label_id LIMIT 2")
    rows = _with(rows, "class", ["merged-class"] * 2)
    w = client.dataset("demo").write(rows, branch="feat", message="feat edit")

    # a preview says what the merge will do and changes nothing
    preview = client.dataset("demo").merge_preview("feat")
    assert preview["result"] in ("fast-forward", "merged"), preview
    assert preview["conflicts"] == 0 and preview["conflicting_labels"].num_rows == 0
    assert preview["labels_modified"] == 2 and preview["groups_changed"] >= 1, preview
    assert preview["target_commit"] == main_before and preview["source_commit"] == w["commit"]
    assert client.commits("demo", branch="main")[0]["id"] == main_before

    res = client.merge("demo", "feat", target="main", message="merge feat")
    assert res["kind"] in ("fast-forward", "merged"), res
    # "commit" is the merge commit (null for a fast-forward, which creates none); "head" the new head
    new_head = res.get("commit") or res.get("head")
    assert new_head and HEX64.match(new_head), res
    if res["kind"] == "fast-forward":
        assert new_head == w["commit"]
    assert client.commits("demo", branch="main")[0]["id"] == new_head != main_before
    assert scalar(client, "SELECT count(*) FROM demo WHERE class = 'merged-class'") == 2
    assert scalar(client, "SELECT count(*) FROM demo AS OF TAG 'v1' WHERE class = 'merged-class'") == 0

    again = client.merge("demo", "feat", target="main")
    assert again["kind"] == "up-to-date", again
    client.delete_branch("demo", "feat")


def test_merge_conflict_is_surfaced_not_resolved(client):
    # on throw-away branches so that main is never left mid-merge
    try:
        _conflict(client)
    finally:
        for b in ("c-left", "c-right", "c-base"):
            try:
                client.delete_branch("demo", b)
            except quiver.QuiverError:
                pass


def _conflict(client):
    client.create_branch("demo", "c-base", from_ref="tag:v1")
    client.create_branch("demo", "c-left", from_ref="c-base")
    client.create_branch("demo", "c-right", from_ref="c-base")
    one = client.sql("SELECT * FROM demo AS OF TAG 'v1' ORDER BY sample_id, label_id LIMIT 1")
    client.dataset("demo").write(_with(one, "class", ["left-class"]), branch="c-left", message="left")
    client.dataset("demo").write(_with(one, "class", ["right-class"]), branch="c-right", message="right")

    first = client.merge("demo", "c-left", target="c-base")
    assert first["kind"] in ("fast-forward", "merged"), first
    head = client.commits("demo", branch="c-base")[0]["id"]
    # the preview lists the conflicting label and records nothing: the merge below would
    # refuse to start over a pending merge
    preview = client.merge_preview("demo", "c-right", target="c-base")
    assert preview["result"] == "conflicts" and preview["conflicts"] == 1, preview
    labels = preview["conflicting_labels"]
    assert labels.num_rows == 1
    assert labels.column("kind")[0].as_py() == "both_modified"
    assert labels.column("ours_class")[0].as_py() == "left-class"
    assert labels.column("theirs_class")[0].as_py() == "right-class"
    assert client.commits("demo", branch="c-base")[0]["id"] == head
    second = client.merge("demo", "c-right", target="c-base", message="should conflict")
    assert second["kind"] == "conflicts", second
    assert second["conflicts"] >= 1
    # nothing resolved silently: the target still has the left value and did not move
    assert client.commits("demo", branch="c-base")[0]["id"] == head
    sid, lid = one.column("sample_id")[0].as_py(), one.column("label_id")[0].as_py()
    assert scalar(client, f"SELECT class FROM demo AS OF BRANCH 'c-base' "
                          f"WHERE sample_id = '{sid}' AND label_id = {lid}") == "left-class"


def test_revert_and_reset_are_new_commits(client):
    client.create_branch("demo", "undo", from_ref="tag:v1")
    try:
        ds = client.dataset("demo")
        one = client.sql("SELECT * FROM demo AS OF TAG 'v1' ORDER BY sample_id, label_id LIMIT 1")
        sid, lid = one.column("sample_id")[0].as_py(), one.column("label_id")[0].as_py()
        where = f"sample_id = '{sid}' AND label_id = {lid}"
        edit = ds.write(_with(one, "class", ["py-reverted"]), branch="undo", message="to revert")
        ds.write(_with(one, "score", [0.5]), branch="undo", message="later, same label")
        history = [c["id"] for c in client.commits("demo", branch="undo")]

        # a later commit changed the same label: refused, named, nothing committed
        with pytest.raises(quiver.QuiverError) as ei:
            ds.revert(edit["commit"], branch="undo")
        assert "conflicts with later commits" in str(ei.value) and sid in str(ei.value)
        assert [c["id"] for c in client.commits("demo", branch="undo")] == history

        # reset: the content of v1 as a new commit, same content hash, history kept
        r = client.reset("demo", "undo", "v1", message="back to v1")
        assert r["result"] == "reset" and r["branch"] == "undo" and HEX64.match(r["commit_id"]), r
        v1_hash = scalar(client, "SELECT c.content_hash FROM quiver.commits c JOIN quiver.tags t "
                                 "ON c.commit_id = t.commit_id WHERE t.dataset = 'demo' AND t.tag = 'v1'")
        assert r["content_hash"] == v1_hash
        after = [c["id"] for c in client.commits("demo", branch="undo")]
        assert after[0] == r["commit_id"] and after[1:] == history
        assert scalar(client, f"SELECT class FROM \"demo@undo\" WHERE {where}") == \
            one.column("class")[0].as_py()

        # revert of a commit whose labels nothing touched since
        w = ds.write(_with(one, "class", ["py-again"]), branch="undo", message="again")
        rv = ds.revert(w["commit"][:12], branch="undo", message="undo again")
        assert rv["result"] == "reverted" and rv["reverted_commit"] == w["commit"], rv
        assert scalar(client, f"SELECT class FROM \"demo@undo\" WHERE {where}") == \
            one.column("class")[0].as_py()
        assert ds.revert(w["commit"], branch="undo")["result"] == "up-to-date"
    finally:
        client.delete_branch("demo", "undo")


def test_label_history(client):
    client.create_branch("demo", "hist", from_ref="tag:v1")
    try:
        ds = client.dataset("demo")
        one = client.sql("SELECT * FROM demo AS OF TAG 'v1' ORDER BY sample_id, label_id LIMIT 1")
        sid, lid = one.column("sample_id")[0].as_py(), one.column("label_id")[0].as_py()
        w = ds.write(_with(one, "class", ["hist-class"]), branch="hist", message="history edit")
        t = ds.label_history(sid, lid, ref="hist")
        assert t.num_rows >= 2
        first = t.slice(0, 1).to_pylist()[0]
        assert first["commit_id"] == w["commit"] and first["change"] == "modified"
        assert first["message"] == "history edit" and first["new_class"] == "hist-class"
        assert first["old_class"] == one.column("class")[0].as_py()
        assert t.column("change")[t.num_rows - 1].as_py() == "added"
        # the whole sample, at main: the edit is not there
        main = client.label_history("demo", sid)
        assert w["commit"] not in main.column("commit_id").to_pylist()
        with pytest.raises(quiver.QuiverError) as ei:
            client.label_history("demo", sid, ref="no-such-branch")
        assert "no-such-branch" in str(ei.value)
    finally:
        client.delete_branch("demo", "hist")


def test_protected_branch_takes_only_merges_that_pass_its_checks(client, adbc):
    client.create_branch("demo", "gold", from_ref="tag:v1")
    client.create_branch("demo", "gold-dev", from_ref="tag:v1")
    try:
        ds = client.dataset("demo")
        r = client.protect_branch("demo", "gold")
        assert r["protected"] == "true", r
        head = client.commits("demo", branch="gold")[0]["id"]
        one = client.sql("SELECT * FROM demo AS OF TAG 'v1' ORDER BY sample_id, label_id LIMIT 1")
        sid = one.column("sample_id")[0].as_py()
        # every surface's direct write is refused, naming the branch and what to do
        with pytest.raises(quiver.Conflict) as ei:  # DoPut (FAILED_PRECONDITION)
            ds.write(_with(one, "class", ["direct"]), branch="gold")
        assert "branch 'gold' of dataset 'demo' is protected" in str(ei.value)
        assert "merge it into 'gold'" in str(ei.value)
        with pytest.raises(quiver.QuiverError, match="is protected"):
            client.sql(f"DELETE FROM \"demo@branch:gold\" WHERE sample_id = '{sid}'")
        cur = adbc.cursor()
        with pytest.raises(Exception, match="is protected"):
            cur.execute(f"UPDATE \"demo@branch:gold\" SET class = 'x' WHERE sample_id = '{sid}'")
            cur.fetchall()
        cur.close()
        with pytest.raises(quiver.QuiverError, match="is protected"):
            client.reset("demo", "gold", "~0")
        with pytest.raises(quiver.QuiverError, match="is protected"):
            client.delete_branch("demo", "gold")
        assert client.commits("demo", branch="gold")[0]["id"] == head

        # a check refuses a merge whose result has offending rows (the merge action here)
        client.add_branch_check("demo", "gold", "no_unicorns",
                                "SELECT sample_id, label_id, class FROM demo WHERE class = 'unicorn'")
        checks = client.sql("SELECT branch, \"check\" FROM quiver.branch_checks WHERE dataset = 'demo'")
        assert ("gold", "no_unicorns") in list(zip(*[c.to_pylist() for c in checks.columns]))
        ds.write(_with(one, "class", ["unicorn"]), branch="gold-dev", message="bad")
        with pytest.raises(quiver.Conflict) as ei:
            client.merge("demo", "gold-dev", target="gold")
        assert "pre-merge check 'no_unicorns' returned 1 rows" in str(ei.value)
        assert sid in str(ei.value)
        assert client.commits("demo", branch="gold")[0]["id"] == head
        ds.write(_with(one, "class", ["pegasus"]), branch="gold-dev", message="fixed")
        merged = client.merge("demo", "gold-dev", target="gold")
        assert merged["kind"] == "fast-forward", merged
        assert client.commits("demo", branch="gold")[0]["id"] != head

        client.drop_branch_check("demo", "gold", "no_unicorns")
        assert client.protect_branch("demo", "gold", protected=False)["protected"] == "false"
    finally:
        for b in ("gold", "gold-dev"):
            try:
                client.protect_branch("demo", b, protected=False)
                client.delete_branch("demo", b)
            except quiver.QuiverError:
                pass
