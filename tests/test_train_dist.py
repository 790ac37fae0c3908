"""Distributed training (zoo.train.dist + the hooks in zoo.train.loop.fit), on the CPU with gloo.

Two processes launched by ``torch.distributed.run`` train a tiny net on a synthetic task; the loss
curve and the weights must equal one process with the same global batch. The conditions that make
that exact up to float rounding: the same data order (a DistributedSampler with the same seed,
``num_replicas=1`` in the single process), no dropout, no BatchNorm (each rank would normalise by
its own half-batch), a dataset length divisible by the world size (no padding).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import zoo
from zoo.train import dist
from zoo.train.loop import fit, read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
PER_RANK_BATCH = 4
WORLD = 2
EPOCHS = 3

# the same net and data in the launched script and here (the script imports this module)
SPEC = {
    "name": "plain",
    "input": {"channels": 1, "size": [8, 8]},
    "stages": [{"type": "conv", "out": 4, "kernel": 3, "padding": 1}, {"type": "relu"}],
    "head": [{"type": "flatten"}, {"type": "linear", "out": 4}],
}


def datasets() -> tuple[TensorDataset, TensorDataset]:
    """A learnable task: each class a fixed random image plus noise; 64 training samples (a
    multiple of the world size), 31 validation ones (an uneven split across ranks)."""
    generator = torch.Generator().manual_seed(0)
    prototypes = torch.randn(4, 1, 8, 8, generator=generator)

    def draw(n: int) -> TensorDataset:
        y = torch.randint(0, 4, (n,), generator=generator)
        return TensorDataset(prototypes[y] + 2.5 * torch.randn(n, 1, 8, 8, generator=generator), y)

    return draw(64), draw(31)


def make_model_and_optimizer() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(1)
    model = zoo.build(SPEC)
    return model, torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)


SCRIPT = textwrap.dedent(
    """
    import gc, json, sys, weakref
    from pathlib import Path
    import torch.distributed
    from torch.utils.data import DataLoader
    import zoo.train.loop as loop
    from zoo.train import dist
    from tests.test_train_dist import PER_RANK_BATCH, datasets, make_model_and_optimizer

    out, log_dir, epochs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    resume = len(sys.argv) > 4
    context = dist.from_env()
    assert context is not None and context.device.type == "cpu" and context.backend == "gloo"
    written = []
    original = loop.write_atomically

    def spy(path, write):  # records which rank writes which file
        written.append(Path(path).name)
        return original(path, write)

    loop.write_atomically = spy
    train, val = datasets()
    model, optimizer = make_model_and_optimizer()
    result = loop.fit(
        model,
        optimizer,
        DataLoader(train, batch_size=PER_RANK_BATCH, sampler=context.train_sampler(train, seed=7)),
        DataLoader(val, batch_size=5, sampler=context.eval_sampler(val)),
        epochs=epochs,
        out_dir=out,
        sync_every=3,
        distributed=context,
        resume=resume,
    )
    group = weakref.ref(torch.distributed.group.WORLD)
    context.close()
    gc.collect()
    tasks = Path("/proc/self/task")  # the native threads still running (Linux)
    threads = [(t / "comm").read_text().strip() for t in tasks.iterdir()] if tasks.exists() else []
    record = {
        "written": written,
        "history": result.history,
        "world": context.world_size,
        "group_freed": group() is None,
        "threads": threads,
    }
    (log_dir / f"rank{context.rank}.json").write_text(json.dumps(record))
    """
)


def launch(tmp_path: Path, nproc: int, out: Path, epochs: int, *extra: str) -> list[dict]:
    """Run the script under torchrun with ``nproc`` CPU processes; each rank's record."""
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    logs = tmp_path / f"logs-{nproc}-{epochs}"
    logs.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
    }
    command = dist.launcher_command(nproc, [str(script), str(out), str(logs), str(epochs), *extra])
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = [json.loads((logs / f"rank{r}.json").read_text()) for r in range(nproc)]
    for record in records:
        # close() freed the process group and ended gloo's threads: one that outlives it meets the
        # interpreter's finalization and, now and then, aborts the rank after a good run (SIGABRT)
        assert record["group_freed"]
        assert not [name for name in record["threads"] if "gloo" in name], record["threads"]
    return records


def single_process(out: Path, epochs: int, resume: bool = False) -> list[dict]:
    """The reference: one process, the same sampler order (num_replicas=1), the global batch."""
    train, val = datasets()
    model, optimizer = make_model_and_optimizer()
    sampler = DistributedSampler(train, num_replicas=1, rank=0, shuffle=True, seed=7)
    loader = DataLoader(train, batch_size=PER_RANK_BATCH * WORLD, sampler=sampler)
    result = fit(
        model,
        optimizer,
        loader,
        DataLoader(val, batch_size=5),
        epochs=epochs,
        out_dir=out,
        sync_every=3,
        resume=resume,
    )
    return result.history


def assert_same_history(a: list[dict], b: list[dict]) -> None:
    assert [row["epoch"] for row in a] == [row["epoch"] for row in b]
    for left, right in zip(a, b, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert left[key] == pytest.approx(right[key], rel=1e-5, abs=1e-6), key


def assert_same_weights(a: Path, b: Path) -> float:
    left, right = read_checkpoint(a)["model"], read_checkpoint(b)["model"]
    assert left.keys() == right.keys()  # the unwrapped model: no "module." prefix
    worst = max(float((left[k] - right[k]).abs().max()) for k in left)
    assert worst < 1e-5
    return worst


def test_two_processes_equal_one_with_the_global_batch(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    ranks = launch(tmp_path, WORLD, out, EPOCHS)
    reference = single_process(tmp_path / "single", EPOCHS)
    # every rank reports the same, global metrics
    assert_same_history(ranks[0]["history"], reference)
    assert_same_history(ranks[1]["history"], reference)
    assert reference[-1]["val_acc"] > 0.5  # it learned something: the comparison means something
    assert_same_weights(out / "last.pt", tmp_path / "single" / "last.pt")
    # only rank 0 wrote files
    assert ranks[1]["written"] == []
    assert {"last.pt", "best.pt", "metrics.csv", "metrics.jsonl"} <= set(ranks[0]["written"])
    assert read_checkpoint(out / "last.pt")["world_size"] == WORLD
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == EPOCHS


def test_resume_with_another_world_size(tmp_path: Path) -> None:
    # 2 epochs on 2 processes, then the 3rd in a single plain process (global batch kept)
    out = tmp_path / "run"
    launch(tmp_path, WORLD, out, 2)
    history = single_process(out, EPOCHS, resume=True)
    reference = single_process(tmp_path / "single", EPOCHS)
    assert_same_history(history, reference)
    assert_same_weights(out / "last.pt", tmp_path / "single" / "last.pt")


def test_from_env_without_the_launcher_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in dist.LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert dist.from_env() is None
    assert not dist.launched()


def test_shard_sampler_covers_each_sample_once() -> None:
    shards = [list(dist.ShardSampler(31, rank, 4)) for rank in range(4)]
    assert sorted(i for shard in shards for i in shard) == list(range(31))
    assert [len(dist.ShardSampler(31, rank, 4)) for rank in range(4)] == [8, 8, 8, 7]


def test_launcher_command() -> None:
    command = dist.launcher_command(2, ["-m", "zoo", "train", "x.yaml"])
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc-per-node=2" in command
    assert command[-4:] == ["-m", "zoo", "train", "x.yaml"]
    with pytest.raises(Exception, match="nproc-per-node"):
        dist.launcher_command(0, [])


def test_mid_epoch_resume_step_follows_the_global_batch() -> None:
    from zoo.train.loop import _resumed_step

    context = dist.Distributed(0, 4, 0, torch.device("cpu"), "gloo")
    loader = DataLoader(datasets()[0], batch_size=2)  # global batch 8, as 2 ranks x 4 had
    saved = {"world_size": 2, "step": 3, "partial": {"seen": 24}}  # 3 steps x 8 samples
    assert _resumed_step(saved, loader, context) == 3
    assert _resumed_step({**saved, "world_size": 4, "step": 5}, loader, context) == 5
    with pytest.raises(Exception, match="global batch"):  # 24 samples is not a multiple of 4x4
        _resumed_step(saved, DataLoader(datasets()[0], batch_size=4), context)
