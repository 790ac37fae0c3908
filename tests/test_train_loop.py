"""The training loop (zoo.train.loop): it learns, its metrics are right, its resume is exact.

Everything runs on the CPU on a small learnable synthetic task (each class a fixed random image
plus noise), with a net built by zoo from a spec dict, in a couple of seconds.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import time

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import zoo
from zoo.errors import ZooError
from zoo.files import Interrupted
from zoo.train import loop
from zoo.train.loop import (
    CHECKPOINT_FORMAT,
    METRIC_FIELDS,
    Callbacks,
    Progress,
    evaluate,
    fit,
    read_checkpoint,
    seed_everything,
)

CLASSES = 4
SIZE = 8

SPEC = {
    "name": "tiny",
    "input": {"channels": 1, "size": [SIZE, SIZE]},
    "stages": [
        {"type": "conv", "out": 8, "kernel": 3, "padding": 1},
        {"type": "batchnorm"},
        {"type": "relu"},
        {"type": "maxpool", "kernel": 2, "stride": 2},
    ],
    "head": [
        {"type": "flatten"},
        {"type": "dropout", "p": 0.2},  # draws from the RNG: resume must restore it
        {"type": "linear", "out": CLASSES},
    ],
}

# no batchnorm and no dropout: train and eval mode compute the same function
PLAIN_SPEC = {
    "name": "plain",
    "input": {"channels": 1, "size": [SIZE, SIZE]},
    "stages": [{"type": "conv", "out": 4, "kernel": 3, "padding": 1}, {"type": "relu"}],
    "head": [{"type": "flatten"}, {"type": "linear", "out": CLASSES}],
}


def synthetic(samples: int, seed: int) -> TensorDataset:
    """Each class is a fixed random 1x8x8 template; a sample is its template plus noise."""
    templates = torch.randn(CLASSES, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, CLASSES, (samples,), generator=generator)
    noise = torch.randn(samples, 1, SIZE, SIZE, generator=generator)
    return TensorDataset(templates[labels] + 0.8 * noise, labels)


def loaders(batch: int = 32) -> tuple[DataLoader, DataLoader]:
    train = DataLoader(synthetic(200, 1), batch_size=batch, shuffle=True, num_workers=0)
    val = DataLoader(synthetic(100, 2), batch_size=64, shuffle=False, num_workers=0)
    return train, val


def setup(seed: int = 0, epochs: int = 3, spec: dict = SPEC):
    """Model, optimizer, one-cycle scheduler (per step) and loaders, all from ``seed``."""
    seed_everything(seed)
    model = zoo.build(spec)
    train, val = loaders()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=2e-2, total_steps=epochs * len(train)
    )
    return model, optimizer, scheduler, train, val


WALL_CLOCK = ("seconds", "images_per_s", "data_wait")


def timeless(history: list[dict]) -> list[dict]:
    """The metrics that must repeat exactly (wall-clock ones cannot)."""
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK} for row in history]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


class SlowLoader:
    """``loader``'s batches, each ``delay`` seconds late: an input pipeline slower than the step."""

    def __init__(self, loader: DataLoader, delay: float):
        self.loader, self.delay = loader, delay

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            time.sleep(self.delay)
            yield batch


def test_data_wait_is_the_share_of_the_epoch_spent_waiting_for_batches(tmp_path):
    model, optimizer, _, train, _ = setup(epochs=1)
    fast = fit(model, optimizer, train, epochs=1, out_dir=tmp_path / "fast")
    slow = fit(model, optimizer, SlowLoader(train, 0.05), epochs=1, out_dir=tmp_path / "slow")
    # 7 steps of a few milliseconds each against 7 waits of 50 ms
    assert 0 <= fast.history[0]["data_wait"] < slow.history[0]["data_wait"] - 0.2
    assert 0.6 < slow.history[0]["data_wait"] <= 1.0
    assert slow.history[0]["seconds"] >= 7 * 0.05


def straight_run(tmp_path, epochs: int = 3):
    model, optimizer, scheduler, train, val = setup(epochs=epochs)
    result = fit(
        model, optimizer, train, val, epochs=epochs, scheduler=scheduler, out_dir=tmp_path / "a",
        label_smoothing=0.1, clip_grad_norm=5.0,
    )  # fmt: skip
    return model, result


def test_learns_and_writes_its_files(tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "_PROGRESS_SECONDS", math.inf)  # progress by steps only, here
    seen: list[Progress] = []
    epochs_seen: list[dict] = []

    class Record(Callbacks):
        def on_progress(self, progress: Progress) -> None:
            seen.append(progress)

        def on_epoch(self, metrics: dict) -> None:
            epochs_seen.append(metrics)

    model, optimizer, scheduler, train, val = setup(epochs=4)
    spec, recipe = {"name": "tiny"}, {"optimizer": "adamw"}
    result = fit(
        model, optimizer, train, val, epochs=4, scheduler=scheduler, out_dir=tmp_path,
        callbacks=Record(), spec=spec, recipe=recipe, sync_every=3,
    )  # fmt: skip
    final = result.history[-1]
    assert final["val_acc"] > 0.9, result.history  # chance is 0.25
    assert final["train_acc"] > 0.8
    assert result.history[0]["train_loss"] > final["train_loss"]
    assert result.best_metric == "val_acc"
    assert result.best_value == max(row["val_acc"] for row in result.history)
    assert epochs_seen == result.history
    # progress every 3 steps of 7 (steps 3, 6) and once at each epoch's end
    assert [(p.epoch, p.step) for p in seen[:3]] == [(1, 3), (1, 6), (1, 7)]
    assert seen[-1].eta_s == pytest.approx(0.0, abs=1e-6) and seen[0].eta_s > 0
    assert all(p.images_per_s > 0 for p in seen)

    with open(tmp_path / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(METRIC_FIELDS) and len(rows) == 4
    assert float(rows[-1]["val_acc"]) == final["val_acc"]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == result.history
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    last = read_checkpoint(tmp_path / "last.pt")
    best = read_checkpoint(tmp_path / "best.pt")
    assert last["format"] == CHECKPOINT_FORMAT and last["epoch"] == 4 and last["step"] == 0
    assert last["spec"] == spec and last["recipe"] == recipe
    assert best["epoch"] == result.best_epoch
    assert_same_weights(last["model"], model.state_dict())
    assert {"python", "torch", "numpy"} <= set(last["rng"])
    # a plain torch.load, no zoo, no pickled classes
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 4


def test_training_metrics_come_from_the_trained_forward(tmp_path):
    """With lr=0 the weights never move, so the loop's training loss and accuracy must equal an
    evaluation over the same samples: weighted by batch size (200 = 6 * 32 + 8), divided by the
    samples seen."""
    seed_everything(0)
    model = zoo.build(PLAIN_SPEC)
    train, _ = loaders(batch=32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    result = fit(model, optimizer, train, epochs=1, out_dir=tmp_path)
    reference = evaluate(model, train)
    row = result.history[0]
    assert row["train_loss"] == pytest.approx(reference.loss, rel=1e-6)
    assert row["train_acc"] == reference.accuracy
    assert row["val_acc"] is None and result.best_metric == "train_acc"


def test_evaluate_per_class_and_confusion():
    class Fixed(torch.nn.Module):
        """Predicts class 0 for every input whose first pixel is positive, else class 2."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            first = x.flatten(1)[:, 0]
            logits = torch.zeros(x.shape[0], 3)
            logits[first > 0, 0] = 1.0
            logits[first <= 0, 2] = 1.0
            return logits

    x = torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0]).view(5, 1, 1, 1)
    y = torch.tensor([0, 0, 0, 2, 2])
    model = Fixed().train()
    result = evaluate(model, DataLoader(TensorDataset(x, y), batch_size=2))
    assert result.samples == 5
    assert result.accuracy == pytest.approx(3 / 5)
    assert result.per_class == [pytest.approx(2 / 3), None, pytest.approx(1 / 2)]
    assert result.confusion == [[2, 0, 1], [0, 0, 0], [1, 0, 1]]
    assert model.training  # restored


def test_resume_is_exact(tmp_path):
    """3 epochs straight == 2 epochs, then resume for the third: bitwise weights and metrics."""
    straight, full = straight_run(tmp_path, epochs=3)

    model, optimizer, scheduler, train, val = setup(epochs=3)
    options = dict(
        scheduler=scheduler, out_dir=tmp_path / "b", label_smoothing=0.1, clip_grad_norm=5.0
    )
    fit(model, optimizer, train, val, epochs=2, **options)
    # a fresh process: other weights, other RNG state, new optimizer and scheduler
    seed_everything(123)
    model, optimizer, scheduler, train, val = setup(seed=99, epochs=3)
    options["scheduler"] = scheduler
    resumed = fit(model, optimizer, train, val, epochs=3, resume=True, **options)

    assert timeless(resumed.history) == timeless(full.history)
    assert_same_weights(model.state_dict(), straight.state_dict())
    assert optimizer.param_groups[0]["lr"] == full.history[-1]["lr"]
    assert resumed.notes[0].startswith("resumed from")


def test_signal_mid_epoch_saves_and_resumes_exactly(tmp_path):
    """SIGTERM in the middle of epoch 2: last.pt is saved at that step, Interrupted is raised,
    and resuming gives the uninterrupted run's weights and metrics bitwise."""
    straight, full = straight_run(tmp_path, epochs=3)

    class Kill(Callbacks):
        def on_progress(self, progress: Progress) -> None:
            if (progress.epoch, progress.step) == (2, 3):
                os.kill(os.getpid(), signal.SIGTERM)

    model, optimizer, scheduler, train, val = setup(epochs=3)
    options = dict(out_dir=tmp_path / "b", label_smoothing=0.1, clip_grad_norm=5.0, sync_every=1)
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as caught:
        fit(
            model, optimizer, train, val, epochs=3, scheduler=scheduler, callbacks=Kill(), **options
        )
    assert caught.value.exit_code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == handler  # handlers restored
    saved = read_checkpoint(tmp_path / "b" / "last.pt")
    assert (saved["epoch"], saved["step"]) == (1, 3)
    before_stop = saved["partial"]["seconds"]
    assert before_stop > 0

    model, optimizer, scheduler, train, val = setup(seed=5, epochs=3)
    resumed = fit(
        model, optimizer, train, val, epochs=3, scheduler=scheduler, resume=True, **options
    )
    assert timeless(resumed.history) == timeless(full.history)
    assert_same_weights(model.state_dict(), straight.state_dict())
    # the interrupted epoch's time is both parts of it
    assert resumed.history[1]["seconds"] > before_stop


def test_ctrl_c_between_epochs_stops_after_saving(tmp_path):
    notes: list[str] = []

    class CtrlC(Callbacks):
        def on_epoch(self, metrics: dict) -> None:
            if metrics["epoch"] == 1:
                os.kill(os.getpid(), signal.SIGINT)

        def on_note(self, message: str) -> None:
            notes.append(message)

    model, optimizer, _, train, val = setup()
    with pytest.raises(Interrupted) as caught:
        fit(model, optimizer, train, val, epochs=3, out_dir=tmp_path, callbacks=CtrlC())
    assert caught.value.exit_code == 128 + signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    saved = read_checkpoint(tmp_path / "last.pt")
    assert (saved["epoch"], saved["step"]) == (1, 0)
    assert notes[-1].startswith("interrupted (SIGINT) after epoch 1")


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    class Explode(Callbacks):
        def on_epoch(self, metrics: dict) -> None:
            for group in optimizer.param_groups:
                group["lr"] = 1e30  # the next steps overflow

    model, optimizer, _, train, val = setup()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(ZooError) as caught:
        fit(
            model,
            optimizer,
            train,
            val,
            epochs=3,
            out_dir=tmp_path,
            callbacks=Explode(),
            sync_every=2,
        )
    message = str(caught.value)
    assert "not finite" in message and "epoch 2 step" in message
    assert "last.pt (epoch 1) is the last good checkpoint" in message
    assert "\n" not in message
    saved = read_checkpoint(tmp_path / "last.pt")
    assert saved["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in saved["model"].values() if t.is_floating_point())
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 2  # header + epoch 1


def test_bad_arguments_and_a_used_folder(tmp_path):
    model, optimizer, _, train, _ = setup()
    with pytest.raises(ZooError, match="fp16' needs CUDA"):
        fit(model, optimizer, train, epochs=1, out_dir=tmp_path, amp="fp16")
    with pytest.raises(ZooError, match="epochs must be"):
        fit(model, optimizer, train, epochs=0, out_dir=tmp_path)
    with pytest.raises(ZooError, match="no checkpoint to resume"):
        fit(model, optimizer, train, epochs=1, out_dir=tmp_path, resume=True)
    fit(model, optimizer, train, epochs=1, out_dir=tmp_path)
    with pytest.raises(ZooError, match="already holds a run"):
        fit(model, optimizer, train, epochs=1, out_dir=tmp_path)
    result = fit(model, optimizer, train, epochs=1, out_dir=tmp_path, force=True)
    assert len(result.history) == 1
    # a resumed run already at its epochs does nothing
    again = fit(model, optimizer, train, epochs=1, out_dir=tmp_path, resume=True)
    assert timeless(again.history) == timeless(result.history)


def test_bf16_autocast_on_cpu_trains(tmp_path):
    model, optimizer, _, train, val = setup()
    result = fit(
        model, optimizer, train, val, epochs=1, out_dir=tmp_path, amp="bf16", channels_last=True
    )
    row = result.history[0]
    assert math.isfinite(row["train_loss"]) and row["val_acc"] > 0.25


def test_progress_on_the_cpu_comes_by_the_clock_too(tmp_path, monkeypatch):
    # sync_every is larger than the epoch: without the clock, progress only at the epoch's end
    monkeypatch.setattr(loop, "_PROGRESS_SECONDS", 0.0)
    seen: list[Progress] = []

    class Record(Callbacks):
        def on_progress(self, progress: Progress) -> None:
            seen.append(progress)

    model, optimizer, _, train, _ = setup(epochs=1)
    fit(model, optimizer, train, epochs=1, out_dir=tmp_path, callbacks=Record(), sync_every=1000)
    assert [p.step for p in seen] == [1, 2, 3, 4, 5, 6, 7, 7]  # every step, then the epoch's end
