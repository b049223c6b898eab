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


def _readme_torch_snippet() -> str:
    """The README's PyTorch block, verbatim but for the server address and token."""
    text = (REPO / "README.md").read_text()
    blocks = text.split("```python\n")[1:]
    code = next(b.split("```")[0] for b in blocks if "to_torch(" in b)
    return code


def test_readme_torch_snippet_runs_with_the_default_start_method(server):
    """Linux's default start method is fork: a DataLoader forked from a process holding a
    Flight connection must not hang (gRPC state does not survive fork)."""
    pytest.importorskip("torch")
    code = _readme_torch_snippet()
    default = 'quiver.connect("grpc://127.0.0.1:50051")'
    assert default in code, code
    code = code.replace(default, f'quiver.connect("{server.url}", token="{RW_TOKEN}")')
    code += "\nprint('batches done')\n"
    r = _run(["-c", code], timeout=120)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "batches done" in r.stdout


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_to_torch_under_every_start_method(server, method, tmp_path):
    pytest.importorskip("torch")
    code = f'''
import multiprocessing, quiver, torch
def main():
    q = quiver.connect("{server.url}", token="{RW_TOKEN}")
    q.sql("SELECT 1")                                  # a live channel before the workers start
    data = q.dataset("demo").at(tag="v1").to_torch(columns=["label_id"], batch_size=512, shards=4)
    ctx = multiprocessing.get_context("{method}")
    n = sum(len(b["label_id"]) for b in torch.utils.data.DataLoader(
        data, batch_size=None, num_workers=2, multiprocessing_context=ctx))
    total = q.sql("SELECT count(*) AS n FROM demo AS OF TAG 'v1'").column("n")[0].as_py()
    assert n == total, (n, total)
    print("rows", n)
if __name__ == "__main__":
    main()
'''
    script = tmp_path / f"torch_{method}.py"
    script.write_text(code)
    r = _run([str(script)], timeout=120)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "rows" in r.stdout
