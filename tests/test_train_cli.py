"""`zoo train` end to end on tiny datasets in their real on-disk formats (tests/datasets.py): the run
folder's files, a learnable task well above chance, Ctrl-C then --resume, and the errors that come
before any step (spec against data, no recipe, a used run folder, a resume with other options)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.datasets import write_image_folder, write_mnist
from zoo.cli import main
from zoo.train import run as train_run
from zoo.train.loop import read_checkpoint

# LeNet with ReLU instead of sigmoid: learns the synthetic bands in a couple of epochs of 256 images
RELU = ["--set", "stages.1.type=relu", "--set", "stages.4.type=relu"]
RELU += ["--set", "head.2.type=relu", "--set", "head.4.type=relu"]


def zoo(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mnist(tmp_path_factory.mktemp("data"), n_train=256, n_test=64)


def lenet(data_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "lenet", "--data", "mnist", "--data-dir", str(data_dir), "--out", str(out),
        "--device", "cpu", "--batch", "32", *RELU, *extra,
    ]  # fmt: skip


def test_train_lenet_on_mnist_writes_the_run_and_learns(capsys, mnist_dir, tmp_path) -> None:
    out = tmp_path / "run"
    code, stdout, stderr = zoo(capsys, *lenet(mnist_dir, out, "--epochs", "2"))
    assert code == 0, stderr
    for name in ("metrics.csv", "metrics.jsonl", "last.pt", "best.pt", "spec.yaml", "recipe.yaml"):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["val_acc"] > 0.6  # ten classes: chance is 0.1
    assert "epoch 2:" in stderr and "val acc" in stderr  # one line per epoch
    assert stdout.startswith("lenet on mnist: best val_acc") and str(out) in stdout
    saved = read_checkpoint(out / "last.pt")
    assert saved["spec"]["stages"][1]["type"] == "relu"  # the spec as overridden
    assert saved["recipe"]["epochs"] == 2 and saved["recipe"]["batch_size"] == 32
    assert saved["recipe"]["normalization"] == {"mean": [0.1307], "std": [0.3081]}
    info = json.loads((out / "run.json").read_text())
    assert info["params"] == 61_706 and info["device"] == "cpu"
    assert "lr: 0.003" in (out / "recipe.yaml").read_text()


def test_ctrl_c_saves_and_resume_continues(capsys, mnist_dir, tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"
    shown = train_run.ConsoleProgress.on_epoch

    def interrupt_after_first(self, metrics):  # Ctrl-C as the first epoch ends
        shown(self, metrics)
        if metrics["epoch"] == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(train_run.ConsoleProgress, "on_epoch", interrupt_after_first)
    code, _, stderr = zoo(capsys, *lenet(mnist_dir, out, "--epochs", "2"))
    assert code == 130, stderr
    assert "saved" in stderr and read_checkpoint(out / "last.pt")["epoch"] == 1
    monkeypatch.setattr(train_run.ConsoleProgress, "on_epoch", shown)

    code, _, stderr = zoo(capsys, *lenet(mnist_dir, out, "--epochs", "2", "--resume"))
    assert code == 0, stderr
    assert "resumed from" in stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert read_checkpoint(out / "last.pt")["epoch"] == 2

    # another recipe than the run's: refused, naming the field
    code, _, stderr = zoo(capsys, *lenet(mnist_dir, out, "--epochs", "3", "--resume"))
    assert code == 2
    assert "epochs: 2 then, 3 now" in stderr
    # the folder holds a run: neither resumed nor forced is refused
    code, _, stderr = zoo(capsys, *lenet(mnist_dir, out, "--epochs", "2"))
    assert code == 2 and "--resume" in stderr and "--force" in stderr


def test_spec_data_mismatch_is_located_before_any_step(capsys, mnist_dir, tmp_path) -> None:
    out = tmp_path / "run"
    argv = ["train", "resnet18", "--data", "mnist", "--data-dir", str(mnist_dir)]
    code, stdout, stderr = zoo(capsys, *argv, "--out", str(out), "--device", "cpu")
    assert code == 1 and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 3  # channels, size and classes, all at once
    assert "resnet18.yaml:5:" in lines[0] and "input.channels" in lines[0]
    assert "3-channel images but mnist has 1" in lines[0]
    assert "--set input.channels=1" in lines[0]
    assert "--set head.2.out=10" in lines[2]
    assert not out.exists()  # nothing was written


def test_image_folder_with_a_recipe(capsys, tmp_path) -> None:
    data = write_image_folder(tmp_path / "shapes", n_train=16, n_val=4, size=16, channels=3)
    argv = ["train", "lenet", "--data", str(data), "--device", "cpu", "--out", str(tmp_path / "r")]
    # no shipped recipe for a folder of one's own: asked for, before anything runs
    code, _, stderr = zoo(capsys, *argv)
    assert code == 2 and "--recipe" in stderr
    fits = ["--set", "input.channels=3", "--set", "input.size=[16,16]", "--set", "head.5.out=3"]
    code, stdout, stderr = zoo(
        capsys,
        *argv,
        *fits,
        *RELU,
        "--recipe",
        "mnist",
        "--recipe-set",
        "normalize=computed",
        "--epochs",
        "1",
        "--batch",
        "8",
    )
    assert code == 0, stderr
    saved = read_checkpoint(tmp_path / "r" / "last.pt")
    assert len(saved["recipe"]["normalization"]["mean"]) == 3  # measured on the training images
    assert saved["recipe"]["normalize"] == "computed"
    assert stdout.startswith("lenet on ") and "shapes" in stdout


def test_bad_recipe_override_and_device(capsys, mnist_dir, tmp_path) -> None:
    code, _, stderr = zoo(
        capsys, *lenet(mnist_dir, tmp_path / "r", "--recipe-set", "optimiser.type=sgd")
    )
    assert code in (1, 2) and "optimiser" in stderr
    assert not (tmp_path / "r").exists()


def test_two_processes_on_the_cpu_train_as_one(tmp_path: Path) -> None:
    """`zoo train --nproc-per-node 2` runs itself under torchrun (gloo on the CPU): the ranks
    share the global batch, and rank 0 alone writes the run folder."""
    import json
    import subprocess
    import sys

    from tests.datasets import write_mnist

    data_dir = tmp_path / "data"
    write_mnist(data_dir, n_train=256, n_test=32)
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "zoo", "train", "lenet", "--data", "mnist",
        "--data-dir", str(data_dir), "--epochs", "1", "--batch", "16", "--out", str(out),
        "--nproc-per-node", "2",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2
    assert (out / "last.pt").is_file() and len(
        (out / "metrics.jsonl").read_text().splitlines()
    ) == 1


def test_a_recipe_resize_fits_the_data_to_the_spec_for_training_and_evaluation(
    capsys, mnist_dir, tmp_path
) -> None:
    # lenet takes 28x28; the same images at 20x20 would not fit without the resize
    small = write_mnist(tmp_path / "small", n_train=128, n_test=32, size=20)
    out = tmp_path / "run"
    argv = lenet(small, out, "--epochs", "2")
    code, _, err = zoo(capsys, *argv)
    assert code == 1 and "resize them in the recipe" in err
    code, _, err = zoo(capsys, *argv, "--recipe-set", "resize=28")
    assert code == 0, err
    saved = read_checkpoint(out / "last.pt")
    assert saved["recipe"]["resize"] == 28
    code, _, err = zoo(capsys, "eval", str(out), "--data", "mnist", "--data-dir", str(small))
    assert code == 0, err  # evaluation resizes as training did


def test_a_batch_that_cannot_fit_is_refused_before_anything_is_allocated(
    capsys, mnist_dir, tmp_path, monkeypatch
) -> None:
    from zoo import compiler

    monkeypatch.setattr(compiler, "free_memory_bytes", lambda device: 50_000_000)
    code, _, err = zoo(capsys, *lenet(mnist_dir, tmp_path / "run"), "--batch", "4096")
    assert code == 2 and "more than the 0.1 GB free on cpu" in err
    fits = int(err.split("(--batch ")[1].split(")")[0])
    assert 0 < fits < 4096
    assert not (tmp_path / "run").exists()


def test_running_out_of_memory_is_one_line_with_a_batch_that_fits(
    capsys, mnist_dir, tmp_path, monkeypatch
) -> None:
    import torch

    from zoo import compiler

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    from zoo.train import loop

    monkeypatch.setattr(loop, "fit", out_of_memory)
    monkeypatch.setattr(compiler, "free_memory_bytes", lambda device: 50_000_000)
    code, _, err = zoo(capsys, *lenet(mnist_dir, tmp_path / "run"), "--force", "--epochs", "2")
    assert code == 2 and "lenet ran out of memory on cpu at batch 32; a batch of about" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def _rows(out: Path) -> list[dict]:
    """The run's metrics without the wall-clock ones."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    clock = ("seconds", "images_per_s", "data_wait")
    return [{k: v for k, v in row.items() if k not in clock} for row in rows]


def test_resume_with_workers_is_exact_and_keeps_the_runs_recipe(
    capsys, mnist_dir, tmp_path, monkeypatch
) -> None:
    # a loader with workers draws their seed from its generator once per run (persistent
    # workers): the shuffling order has a generator of its own, so a resume repeats it
    straight = tmp_path / "straight"
    code, _, stderr = zoo(capsys, *lenet(mnist_dir, straight, "--epochs", "2", "--workers", "1"))
    assert code == 0, stderr

    out = tmp_path / "stopped"
    shown = train_run.ConsoleProgress.on_epoch

    def interrupt_after_first(self, metrics):
        shown(self, metrics)
        if metrics["epoch"] == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(train_run.ConsoleProgress, "on_epoch", interrupt_after_first)
    code, _, stderr = zoo(capsys, *lenet(mnist_dir, out, "--epochs", "2", "--workers", "1"))
    assert code == 130, stderr
    monkeypatch.setattr(train_run.ConsoleProgress, "on_epoch", shown)
    # no --epochs: a resumed run goes on with the recipe in its folder
    code, _, stderr = zoo(capsys, *lenet(mnist_dir, out, "--workers", "1", "--resume"))
    assert code == 0, stderr
    assert _rows(out) == _rows(straight)
    a, b = read_checkpoint(straight / "last.pt"), read_checkpoint(out / "last.pt")
    assert all(a["model"][k].equal(b["model"][k]) for k in a["model"])

    # a longer run is a new run: refused, with the reason
    code, _, stderr = zoo(capsys, *lenet(mnist_dir, out, "--epochs", "3", "--resume"))
    assert code == 2 and "epochs: 2 then, 3 now" in stderr and "laid out over its epochs" in stderr


def test_a_run_folder_that_cannot_be_one_is_refused_before_training(
    capsys, mnist_dir, tmp_path
) -> None:
    in_the_way = tmp_path / "afile"
    in_the_way.write_text("mine")
    code, stdout, stderr = zoo(capsys, *lenet(mnist_dir, in_the_way, "--epochs", "1"))
    assert code == 3 and stdout == "" and "Traceback" not in stderr
    assert "a file is in the way" in stderr and in_the_way.read_text() == "mine"

    busy = tmp_path / "notes"
    busy.mkdir()
    (busy / "metrics.txt").write_text("mine")
    code, _, stderr = zoo(capsys, *lenet(mnist_dir, busy, "--epochs", "1"))
    assert code == 2 and "is not empty (metrics.txt) and holds no run" in stderr
    assert sorted(p.name for p in busy.iterdir()) == ["metrics.txt"]  # nothing written
    # refused before the data is even read: a missing data folder is not what it reports
    code, _, stderr = zoo(capsys, *lenet(tmp_path / "no-data", busy, "--epochs", "1"))
    assert code == 2 and "holds no run" in stderr

    below_a_file = in_the_way / "run"
    code, _, stderr = zoo(capsys, *lenet(mnist_dir, below_a_file, "--epochs", "1", "--force"))
    assert code == 3 and "cannot create the run folder" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("tpu", "'tpu' is not a device to train on; use auto, cpu, cuda, cuda:N or mps"),
        ("meta", "'meta' is not a device to train on"),
        ("cuda", "device 'cuda' is not available here"),
    ],
)
def test_a_device_to_train_on_that_is_not_here_is_one_line(
    capsys, mnist_dir, tmp_path, device: str, message: str
) -> None:
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    argv = lenet(mnist_dir, tmp_path / "run", "--epochs", "1")
    argv[argv.index("--device") + 1] = device
    code, stdout, stderr = zoo(capsys, *argv)
    assert code == 2 and stdout == "" and message in stderr
    assert len(stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_the_progress_bar_is_drawn_in_a_terminal_only() -> None:
    import io

    from rich.console import Console

    from zoo.train.loop import Progress

    step = Progress(
        epoch=1, epochs=2, step=3, steps=10, loss=1.5, accuracy=0.25, images_per_s=1234.0,
        eta_s=65.0, lr=0.01,
    )  # fmt: skip
    for terminal in (True, False):
        text = io.StringIO()
        console = Console(file=text, force_terminal=terminal, width=120)
        with train_run.ConsoleProgress(console) as progress:
            progress.on_progress(step)
            progress.on_epoch(
                {"epoch": 1, "train_loss": 1.5, "train_acc": 0.25, "val_loss": None,
                 "val_acc": None, "images_per_s": 1234.0, "seconds": 3.0, "data_wait": 0.4}
            )  # fmt: skip
        out = text.getvalue()
        assert ("ETA 1:05" in out and "1,234 img/s" in out) == terminal, out
        # the epoch's line either way, with the loader's share when it holds training back
        assert "epoch 1: train loss 1.5000  acc 25.00%" in out
        assert "waiting on data 40% (more --workers?)" in out
        assert not out.endswith("\n\n")
