#!/usr/bin/env python3
"""Train a tiny PyTorch model on labels streamed from a Quiver server.

Pulls tag v1 of dataset `demo` with `to_torch` (the commit is pinned once and recorded in the
lineage log under a run id), reads it with 2 DataLoader workers, and trains a small MLP that
predicts whether a label was approved from its box and score.

    quiver --catalog ./quiver-data serve --addr 127.0.0.1:50051 --demo-rows 100000 &
    python examples/train_pytorch.py grpc://127.0.0.1:50051 --epochs 2
    # then: SELECT * FROM quiver.runs  -> which commit this run trained on

The URL and token can also come from QUIVER_URL / QUIVER_TOKEN.
"""

import argparse
import os
import sys
import time
import uuid

import torch
from torch import nn

import quiver

FEATURES = ["bbox_x", "bbox_y", "bbox_w", "bbox_h", "score"]


def to_xy(batch):
    """One streamed batch -> (features, target). Module-level so spawned workers can load it."""
    x = torch.stack([torch.nan_to_num(batch[c].float(), nan=-1.0) for c in FEATURES], dim=1)
    y = torch.tensor([s == "approved" for s in batch["review_state"]], dtype=torch.float32)
    return x, y


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", nargs="?", default=os.environ.get("QUIVER_URL", quiver.DEFAULT_URL))
    p.add_argument("--token", default=os.environ.get("QUIVER_TOKEN"))
    p.add_argument("--dataset", default="demo")
    p.add_argument("--tag", default="v1")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--run-id", default=None)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    run_id = args.run_id or f"train-{uuid.uuid4().hex[:12]}"
    q = quiver.connect(args.url, token=args.token)
    ds = q.dataset(args.dataset).at(tag=args.tag)
    data = ds.to_torch(columns=FEATURES + ["review_state"], batch_size=args.batch_size,
                       shuffle_seed=args.seed, shards=args.shards, run_id=run_id, transform=to_xy)
    print(f"run {run_id}: {args.dataset}@tag:{args.tag} pinned to commit {data.commit_id[:12]} "
          f"({data.num_shards} shards, {data.total_records} rows)", flush=True)

    # default DataLoader settings: on Linux the workers are forked from this process, which
    # holds a Flight connection; the client closes it before the fork and reopens it after
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=args.workers)

    model = nn.Sequential(nn.Linear(len(FEATURES), 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(args.epochs):
        data.set_epoch(epoch)
        t0 = time.time()
        total, rows, correct = 0.0, 0, 0
        for x, y in loader:
            opt.zero_grad()
            logits = model(x).squeeze(1)
            loss = loss_fn(logits, y)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
            rows += len(y)
            correct += ((logits > 0).float() == y).sum().item()
        if rows == 0:
            print("no rows streamed", file=sys.stderr)
            return 1
        print(f"epoch {epoch}: loss {total / rows:.4f}  accuracy {correct / rows:.3f}  "
              f"rows {rows}  {time.time() - t0:.1f}s", flush=True)
    print(f"done: SELECT * FROM quiver.runs WHERE run_id = '{run_id}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
