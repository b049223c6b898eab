"""The examples run against the test server."""

import os
import subprocess
import sys

import pytest

from conftest import REPO, RW_TOKEN


def _run(args, timeout=180):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "python") + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, *args], cwd=str(REPO), env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_train_pytorch_example(server, client):
    pytest.importorskip("torch")
    r = _run(["examples/train_pytorch.py", server.url, "--token", RW_TOKEN, "--epochs", "1",
              "--workers", "2", "--batch-size", "256", "--run-id", "example-train"])
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "epoch 0: loss" in r.stdout, r.stdout
    runs = client.sql("SELECT dataset, ref, commit_id FROM quiver.runs WHERE run_id = 'example-train'")
    assert runs.num_rows == 1
    assert runs.column("dataset")[0].as_py() == "demo"


def test_bi_adbc_example(server):
    r = _run(["examples/bi_adbc.py", server.url, "--token", RW_TOKEN])
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "== Reviewers and approved labels per class" in r.stdout
    assert "person" in r.stdout
