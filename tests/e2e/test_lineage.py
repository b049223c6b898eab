"""The lineage graph end to end: a trainer streams tag v1 under a run id, registers the model it
trained, uploads the model's predictions, and a BI client (ADBC Flight SQL) walks from the
model back to the reviewers of its training labels in one query.

Everything is based on tag v1 (other tests move branch main of demo) and uses names no other
test uses, so the tests here do not depend on the order the session runs them in.
"""

import datetime

import pyarrow as pa
import pytest

import quiver
from _helpers import adbc_table as _adbc_table, tag_commit
from conftest import DEMO_ROWS

RUN = "run-lineage-e2e"
MODEL = "m-e2e"
N_PREDICTED = 50

LINEAGE_QUERY = (
    "SELECT l.sample_id, l.label_id, l.reviewer, l.reviewed_at, p.score "
    f"FROM quiver_lineage_of_model('{MODEL}') l "
    "JOIN quiver.predictions p ON p.model = l.model AND p.sample_id = l.sample_id "
    "ORDER BY p.score, l.sample_id, l.label_id LIMIT 500"
)




def _score(i: int) -> float:
    """Distinct, deterministic scores in (0, 1), not in sample order."""
    return ((i * 37) % N_PREDICTED) / N_PREDICTED + 0.005


@pytest.fixture(scope="module")
def trained(client):
    """Train (stream v1 under RUN), register MODEL, write its predictions. Runs once."""
    torch = pytest.importorskip("torch")
    v1 = tag_commit(client, "demo", "v1")
    data = client.dataset("demo").at(tag="v1").to_torch(
        columns=["sample_id", "label_id", "class", "score"], shards=2, batch_size=256,
        shuffle_seed=11, run_id=RUN)
    assert data.commit_id == v1
    seen = []
    for batch in torch.utils.data.DataLoader(data, batch_size=None, num_workers=0):
        seen += list(zip(batch["sample_id"], batch["label_id"].tolist()))
    assert len(seen) == len(set(seen)) == DEMO_ROWS

    reg = client.register_model(MODEL, RUN, message="lineage e2e detector")
    assert reg["model"] == MODEL and reg["run_id"] == RUN, reg
    registered_at = datetime.datetime.fromisoformat(reg["registered_at"].replace("Z", "+00:00"))
    assert registered_at.tzinfo is not None

    samples = sorted({s for s, _ in seen})
    step = max(1, len(samples) // N_PREDICTED)
    picked = samples[::step][:N_PREDICTED]
    assert len(picked) == N_PREDICTED
    preds = {s: _score(i) for i, s in enumerate(picked)}
    table = pa.table({
        "sample_id": pa.array(picked, pa.string()),
        "class": pa.array(["person"] * len(picked), pa.string()),
        "score": pa.array([preds[s] for s in picked], pa.float64()),
    })
    put = client.write_predictions(MODEL, table)
    assert put["model"] == MODEL and put["rows"] == N_PREDICTED and put["batch_id"], put
    return {"v1": v1, "preds": preds, "batch_id": put["batch_id"], "samples": samples,
            "registered": reg}


def test_lineage_query_over_adbc_matches_v1_labels_joined_with_predictions(trained, adbc, client):
    got = _adbc_table(adbc, LINEAGE_QUERY)
    assert got.column_names == ["sample_id", "label_id", "reviewer", "reviewed_at", "score"]

    # computed independently: the labels at tag v1 (quiver client, not ADBC) joined here
    labels = client.sql("SELECT sample_id, label_id, reviewer, reviewed_at FROM demo AS OF TAG 'v1'")
    assert labels.num_rows == DEMO_ROWS
    preds = trained["preds"]
    expected = [dict(r, score=preds[r["sample_id"]]) for r in labels.to_pylist()
                if r["sample_id"] in preds]
    expected.sort(key=lambda r: (r["score"], r["sample_id"], r["label_id"]))
    expected = expected[:500]
    assert len(expected) >= N_PREDICTED

    rows = got.to_pylist()
    assert len(rows) == len(expected)
    assert rows == expected
    # the point of the query: reviewers and review times of the training labels are there
    assert any(r["reviewer"] is not None for r in rows)
    assert any(r["reviewed_at"] is not None for r in rows)


def test_run_model_and_edges_are_recorded(trained, client):
    v1 = trained["v1"]
    runs = client.sql(f"SELECT * FROM quiver.runs WHERE run_id = '{RUN}'").to_pylist()
    assert len(runs) == 1, runs
    assert runs[0]["commit_id"] == v1
    assert runs[0]["dataset"] == "demo"
    assert runs[0]["shards"] == 2

    models = client.sql(f"SELECT model, run_id, message FROM quiver.models WHERE model = '{MODEL}'")
    assert models.to_pylist() == [{"model": MODEL, "run_id": RUN, "message": "lineage e2e detector"}]

    edges = client.sql("SELECT from_kind, from_id, relation, to_kind, to_id, dataset FROM quiver.lineage "
                       "WHERE from_kind <> 'commit'").to_pylist()

    def has(**kw):
        return any(all(e[k] == v for k, v in kw.items()) for e in edges)
    assert has(from_kind="model", from_id=MODEL, relation="trained_by", to_kind="run", to_id=RUN), edges
    assert has(from_kind="predictions", from_id=trained["batch_id"], relation="predicted_by",
               to_kind="model", to_id=MODEL), edges
    assert has(from_kind="run", from_id=RUN, relation="consumed", to_kind="commit", to_id=v1,
               dataset="demo"), edges

    stored = client.sql(f"SELECT sample_id, score, batch_id FROM quiver.predictions WHERE model = '{MODEL}'")
    assert stored.num_rows == N_PREDICTED
    assert set(stored.column("batch_id").to_pylist()) == {trained["batch_id"]}
    assert dict(zip(stored.column("sample_id").to_pylist(), stored.column("score").to_pylist())) == \
        trained["preds"]


def test_models_trained_on_a_v1_sample(trained, client):
    sample = next(iter(sorted(trained["preds"])))
    n_labels = client.sql(f"SELECT count(*) AS n FROM demo AS OF TAG 'v1' WHERE sample_id = '{sample}'")
    t = client.sql(f"SELECT model, run_id, commit_id, labels FROM quiver_models_trained_on('demo', '{sample}')")
    rows = [r for r in t.to_pylist() if r["model"] == MODEL]
    assert rows == [{"model": MODEL, "run_id": RUN, "commit_id": trained["v1"],
                     "labels": n_labels.column(0)[0].as_py()}], t.to_pylist()
    none = client.sql("SELECT model FROM quiver_models_trained_on('demo', 'no-such-sample-lineage')")
    assert MODEL not in none.column("model").to_pylist()


def test_to_table_with_run_id_records_the_run(client):
    run = "run-lineage-e2e-table"
    t = client.dataset("demo").at(tag="v1").to_table(columns=["sample_id", "label_id"],
                                                      filter="score > 0.5", run_id=run)
    assert t.num_rows > 0
    runs = client.sql(f"SELECT commit_id, filter, columns FROM quiver.runs WHERE run_id = '{run}'").to_pylist()
    assert len(runs) == 1, runs
    assert runs[0]["commit_id"] == tag_commit(client, "demo", "v1")
    assert runs[0]["filter"] == "score > 0.5"


def test_register_model_with_unknown_run_fails(client):
    with pytest.raises(quiver.QuiverError) as ei:
        client.register_model("m-e2e-orphan", "nope")
    assert "training run 'nope' does not exist" in str(ei.value)
    assert isinstance(ei.value, (quiver.NotFound, quiver.InvalidArgument)), type(ei.value)
    assert client.sql("SELECT model FROM quiver.models WHERE model = 'm-e2e-orphan'").num_rows == 0


def test_register_model_twice_fails(trained, client):
    with pytest.raises(quiver.QuiverError) as ei:
        client.register_model(MODEL, RUN)
    assert f"model '{MODEL}' already exists" in str(ei.value)
    assert isinstance(ei.value, (quiver.AlreadyExists, quiver.InvalidArgument)), type(ei.value)


def test_write_predictions_for_unknown_model_fails(client):
    with pytest.raises(quiver.QuiverError) as ei:
        client.write_predictions("nope", {"sample_id": ["img-000001"], "score": [0.5]})
    assert "model 'nope' does not exist" in str(ei.value)
    assert isinstance(ei.value, (quiver.NotFound, quiver.InvalidArgument)), type(ei.value)
    assert client.sql("SELECT count(*) FROM quiver.predictions WHERE model = 'nope'").column(0)[0].as_py() == 0


def test_write_predictions_refuses_unknown_columns(trained, client):
    with pytest.raises(quiver.InvalidArgument) as ei:
        client.write_predictions(MODEL, {"sample_id": ["img-000001"], "bbox": [0.5]})
    assert "unknown column 'bbox'" in str(ei.value)


def test_read_only_token_cannot_register_or_predict(trained, ro_client, client):
    with pytest.raises(quiver.PermissionDenied):
        ro_client.register_model("m-e2e-ro", RUN)
    assert client.sql("SELECT model FROM quiver.models WHERE model = 'm-e2e-ro'").num_rows == 0
    with pytest.raises(quiver.PermissionDenied):
        ro_client.write_predictions(MODEL, {"sample_id": ["img-000001"], "score": [0.5]})
    # a read-only token still reads the lineage
    assert ro_client.sql(f"SELECT count(*) FROM quiver.models WHERE model = '{MODEL}'").column(0)[0].as_py() == 1
