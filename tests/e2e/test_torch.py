"""PyTorch streaming: DataLoader workers (forked, Linux's default) split the shard endpoints of one
pinned commit; every selected label arrives exactly once; shuffling is deterministic per epoch."""

import datetime
import math
import os
import pickle
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import quiver  # noqa: E402
import quiver.torch_data as qtd  # noqa: E402
from _helpers import keys_of, tag_commit  # noqa: E402
from conftest import DEMO_ROWS  # noqa: E402

NAT = -(2 ** 63)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _loader(data, workers):
    kw = {}
    if workers:
        kw = {"num_workers": workers}  # default start method (fork on Linux)
    return torch.utils.data.DataLoader(data, batch_size=None, **kw)


def _keys(batches):
    out = []
    for b in batches:
        out += list(zip(b["sample_id"], b["label_id"].tolist()))
    return out


def test_dataloader_two_workers_every_label_once(client):
    cols = ["sample_id", "label_id", "class", "score", "reviewed_at"]
    data = client.dataset("demo").at(tag="v1").to_torch(
        columns=cols, shards=4, batch_size=128, shuffle_seed=7, run_id="torch-e2e")
    assert data.num_shards == 4
    assert data.commit_id == tag_commit(client, "demo", "v1")
    pickle.loads(pickle.dumps(data))  # what spawn does: only picklable state

    batches = list(_loader(data, 2))
    assert all(0 < len(b["sample_id"]) <= 128 for b in batches)
    keys = _keys(batches)
    assert len(keys) == len(set(keys)) == DEMO_ROWS
    expected = client.sql(f"SELECT {', '.join(cols)} FROM demo AS OF TAG 'v1'")
    assert set(keys) == set(keys_of(expected))

    # types: numbers -> tensors, strings -> lists of str, timestamps -> int64 microseconds
    b = batches[0]
    assert b["label_id"].dtype == torch.int64
    assert b["score"].dtype == torch.float32
    assert b["reviewed_at"].dtype == torch.int64
    assert isinstance(b["class"], list) and isinstance(b["class"][0], str)
    # and the values are the dataset's values
    want = {}
    for r in expected.to_pylist():
        ts = r["reviewed_at"]
        micros = NAT if ts is None else (ts - EPOCH) // datetime.timedelta(microseconds=1)
        want[(r["sample_id"], r["label_id"])] = (r["class"], r["score"], micros)
    for b in batches:
        for i, k in enumerate(zip(b["sample_id"], b["label_id"].tolist())):
            cls, score, micros = want[k]
            assert b["class"][i] == cls
            got = b["score"][i].item()
            assert (score is None and math.isnan(got)) or (score is not None and abs(got - score) < 1e-6)
            assert b["reviewed_at"][i].item() == micros

    runs = client.sql("SELECT dataset, commit_id, shards FROM quiver.runs WHERE run_id = 'torch-e2e'")
    assert runs.to_pylist() == [{"dataset": "demo", "commit_id": data.commit_id, "shards": 4}]


def test_dataloader_with_filter(client):
    pred = "score > 0.5 AND class <> 'person'"
    data = client.dataset("demo").at(tag="v1").to_torch(
        columns=["sample_id", "label_id", "score"], shards=4, batch_size=128, shuffle_seed=7, filter=pred)
    keys = _keys(_loader(data, 2))
    expected = client.sql(f"SELECT sample_id, label_id FROM demo AS OF TAG 'v1' WHERE {pred}")
    assert 0 < expected.num_rows < DEMO_ROWS
    assert len(keys) == len(set(keys))
    assert set(keys) == set(keys_of(expected))


def test_shuffle_is_deterministic_per_epoch(client):
    data = client.dataset("demo").at(tag="v1").to_torch(
        columns=["sample_id", "label_id"], shards=4, batch_size=100, shuffle_seed=7)
    e0 = _keys(data)
    assert _keys(data) == e0  # same seed, same epoch: same order
    data.set_epoch(1)
    e1 = _keys(data)
    assert e1 != e0 and sorted(e1) == sorted(e0)
    data.set_epoch(0)
    assert _keys(data) == e0
    plain = client.dataset("demo").at(tag="v1").to_torch(columns=["sample_id", "label_id"], shards=4,
                                                          batch_size=100)
    assert sorted(_keys(plain)) == sorted(e0)
    assert all(len(b["sample_id"]) == 100 for b in data)  # 2000 rows: full batches across shards


def test_distributed_ranks_split_the_endpoints(client, monkeypatch):
    data = client.dataset("demo").at(tag="v1").to_torch(columns=["sample_id", "label_id"], shards=5,
                                                         batch_size=64)
    assert qtd.assigned_endpoints(5, rank=1, world_size=2, worker_id=0, num_workers=1) == [1, 3]
    assert qtd.assigned_endpoints(8, rank=1, world_size=2, worker_id=1, num_workers=2) == [3, 7]
    per_rank = []
    for rank in range(2):
        monkeypatch.setattr(qtd, "world", lambda r=rank: (2, r))
        per_rank.append(_keys(data))
    a, b = set(per_rank[0]), set(per_rank[1])
    assert a and b and not (a & b)
    assert len(a | b) == DEMO_ROWS


def _rank_batches(client, world_size, rank, balance, workers=2, batch_size=64, epoch=0, state=None):
    data = client.dataset("demo").at(tag="v1").to_torch(
        columns=["sample_id", "label_id"], batch_size=batch_size, shuffle_seed=11,
        balance=balance, world_size=world_size, rank=rank)
    data.set_epoch(epoch)
    if state is not None:
        data.load_state_dict(state)
    n = len(data)
    batches = list(_loader(data, workers))
    assert len(batches) == n, (world_size, rank, balance, len(batches), n)
    return batches


@pytest.mark.parametrize("world_size", [2, 3, 5])
def test_ddp_ranks_get_equal_batch_counts_and_every_label_once(client, world_size):
    """Simulated DDP: every rank yields the same number of batches (DDP hangs otherwise),
    and with balance="even" (padding off) every label arrives exactly once per epoch."""
    everything = set(keys_of(client.sql("SELECT sample_id, label_id FROM demo AS OF TAG 'v1'")))
    for epoch in (0, 1):
        per_rank = [_rank_batches(client, world_size, r, "even", epoch=epoch) for r in range(world_size)]
        counts = {len(b) for b in per_rank}
        assert len(counts) == 1, [len(b) for b in per_rank]
        keys = [k for b in per_rank for k in _keys(b)]
        assert len(keys) == len(set(keys)) == DEMO_ROWS
        assert set(keys) == everything
        assert all(0 < len(b["sample_id"]) <= 64 for r in per_rank for b in r)
    # the shard order is shuffled per epoch: rank 0 reads other labels in epoch 1
    r0 = [set(_keys(_rank_batches(client, world_size, 0, "even", epoch=e))) for e in (0, 1)]
    assert r0[0] != r0[1]


@pytest.mark.parametrize("world_size", [3, 5])
def test_pad_and_drop_balance(client, world_size):
    pad = [_rank_batches(client, world_size, r, "pad", workers=0, batch_size=100) for r in range(world_size)]
    assert len({len(b) for b in pad}) == 1
    rows = [sum(len(b["sample_id"]) for b in r) for r in pad]
    assert rows == [math.ceil(DEMO_ROWS / world_size)] * world_size
    keys = [k for r in pad for k in _keys(r)]
    assert len(set(keys)) == DEMO_ROWS and len(keys) - DEMO_ROWS < world_size
    drop = [_rank_batches(client, world_size, r, "drop", workers=0, batch_size=100) for r in range(world_size)]
    rows = [sum(len(b["sample_id"]) for b in r) for r in drop]
    assert rows == [DEMO_ROWS // world_size] * world_size
    keys = [k for r in drop for k in _keys(r)]
    assert len(keys) == len(set(keys)) and DEMO_ROWS - len(keys) < world_size


def test_resume_mid_epoch_with_state_dict(client):
    full = _rank_batches(client, 3, 1, "even", workers=2, epoch=2)
    assert len(full) > 5
    state = {"epoch": 2, "batches_done": 5}
    rest = _rank_batches(client, 3, 1, "even", workers=2, epoch=2, state=state)
    # the same batches as the uninterrupted epoch after its first 5 (the DataLoader starts
    # its round over the workers afresh, so their order may differ)
    as_set = lambda bs: sorted(tuple(_keys([b])) for b in bs)  # noqa: E731
    assert as_set(rest) == as_set(full[5:])
    # in one process the order is the same too
    one = _rank_batches(client, 3, 1, "even", workers=0, epoch=2)
    assert _keys(_rank_batches(client, 3, 1, "even", workers=0, epoch=2, state=state)) == _keys(one[5:])
    data = client.dataset("demo").at(tag="v1").to_torch(columns=["label_id"], world_size=3, rank=1)
    data.load_state_dict(state)
    assert data.state_dict() == state and data.state_dict(batches_done=7)["batches_done"] == 7
    data.set_epoch(3)
    assert data.state_dict() == {"epoch": 3, "batches_done": 0}
    with pytest.raises(ValueError):
        client.dataset("demo").at(tag="v1").to_torch(balance="sideways")
    with pytest.raises(ValueError):
        client.dataset("demo").at(tag="v1").to_torch(world_size=2, rank=2)


def test_balance_arithmetic():
    for n in (0, 1, 7, 10, 2000, 2001):
        for w in (1, 2, 3, 5, 8):
            for bs in (1, 3, 64):
                even = [qtd.batch_sizes(n, w, r, "even", bs) for r in range(w)]
                assert len({len(s) for s in even}) == 1
                assert sum(map(sum, even)) == n and all(0 <= x <= bs for s in even for x in s)
                covered = sorted(i for r in range(w) for a, b in qtd.rank_rows(n, w, r, "even") for i in range(a, b))
                assert covered == list(range(n))
                pad = [qtd.rank_rows(n, w, r, "pad") for r in range(w)]
                if n:
                    assert {sum(b - a for a, b in p) for p in pad} == {math.ceil(n / w)}
                for k in (1, 2, 4):
                    blocks = qtd.worker_blocks(len(even[0]), k)
                    assert sum(b - a for a, b in blocks) == len(even[0])
                    assert sum(qtd.consumed_per_worker(3, blocks)) == min(3, len(even[0]))


def _xy(batch):
    return torch.stack([batch["bbox_w"], batch["bbox_h"]], dim=1), batch["label_id"]


def test_transform(client):
    data = client.dataset("demo").at(tag="v1").to_torch(columns=["bbox_w", "bbox_h", "label_id"],
                                                         shards=2, batch_size=500, transform=_xy)
    n = 0
    for x, y in data:
        assert x.shape == (len(y), 2) and x.dtype == torch.float32
        n += len(y)
    assert n == DEMO_ROWS


def test_client_and_dataset_pickle_without_their_channel(client, server):
    """What spawn/forkserver workers receive: address and credentials, never a channel."""
    ds = client.dataset("demo").at(tag="v1")
    ds.to_table(columns=["label_id"])  # the channel is open in this process
    state = client.__getstate__()
    assert not any(isinstance(v, quiver.client.flight.FlightClient) for v in state.values())
    copy = pickle.loads(pickle.dumps(ds))
    assert copy.client._conn is None  # opened lazily on the first call of its process
    assert copy.to_table(columns=["label_id"]).num_rows == DEMO_ROWS
    ro = pickle.loads(pickle.dumps(quiver.connect(server.url, token=server.ro_token)))
    with pytest.raises(quiver.PermissionDenied):
        ro.sql("CREATE BRANCH never_made FROM demo")  # the credentials travelled too


def test_no_grpc_thread_survives_the_before_fork_hook(server):
    """A fork happens only once gRPC's threads have exited: a child that inherits one
    mid-teardown hangs on its first call (observed with a fixed 0 s wait). Run in a fresh
    interpreter: other tests' raw pyarrow clients keep gRPC's threads alive here."""
    code = f"""
import quiver, quiver.client as qc
q = quiver.connect({server.url!r}, token={server.rw_token!r})
q.sql("SELECT 1")
n = qc._grpc_threads()
if n is None:
    print("no /proc")
    raise SystemExit(0)
assert n > 0, n                      # the channel's threads, recognized by name
qc._close_channels_before_fork()
assert qc._grpc_threads() == 0, qc._grpc_threads()
assert q.sql("SELECT 1 AS one").column("one").to_pylist() == [1]  # reopened lazily
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    if "no /proc" in r.stdout:
        pytest.skip("no /proc/self/task")
    assert "ok" in r.stdout


def test_before_fork_hook_gives_up_on_channels_it_does_not_own(server):
    """A raw pyarrow FlightClient keeps gRPC's threads alive: the hook stops waiting once
    none exits for a while, instead of holding every fork for its whole timeout (here an
    hour: the subprocess's 60 s timeout catches a wait for it)."""
    code = f"""
import pyarrow.flight as flight, quiver, quiver.client as qc
qc._FORK_SETTLE_TIMEOUT, qc._FORK_STALL_SECONDS = 3600.0, 0.5
raw = flight.FlightClient({server.url!r})
list(raw.list_actions(flight.FlightCallOptions(headers=qc.auth_headers({server.rw_token!r}))))
q = quiver.connect({server.url!r}, token={server.rw_token!r})
q.sql("SELECT 1")
qc._close_channels_before_fork()
assert qc._grpc_threads() != 0  # the raw client's threads are still there
assert q.sql("SELECT 1 AS one").column("one").to_pylist() == [1]
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 0, f"stdout:\\n{r.stdout}\\nstderr:\\n{r.stderr}"
    assert "ok" in r.stdout
