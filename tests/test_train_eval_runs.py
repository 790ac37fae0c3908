"""`zoo eval` and `zoo runs` (zoo.train.runs): checkpoints evaluated with their own recipe's
normalization, run folders summarized side by side, broken ones reported and skipped.

Run folders are made with loop.fit on a tiny PNG image folder (tests/datasets.py), in seconds.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.data import DataLoader

import zoo
from tests.datasets import write_image_folder
from zoo.cli import main
from zoo.errors import ExitCode, ZooError
from zoo.train.data import TransformedDataset, make_transforms, open_data
from zoo.train.loop import evaluate, fit, seed_everything
from zoo.train.runs import evaluate_source, find_runs, normalization_of, read_run

SIZE = 8
CLASSES = ("circle", "square", "triangle")


def _spec(name: str, width: int) -> dict:
    return {
        "name": name,
        "input": {"channels": 1, "size": [SIZE, SIZE]},
        "stages": [
            {"type": "conv", "out": width, "kernel": 3, "padding": 1},
            {"type": "relu"},
            {"type": "avgpool", "kernel": 2, "stride": 2},
        ],
        "head": [{"type": "flatten"}, {"type": "linear", "out": len(CLASSES)}],
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    return write_image_folder(root, CLASSES, n_train=12, n_val=6, size=SIZE, channels=1)


def _train(data: Path, out: Path, spec: dict, normalize: str, epochs: int = 2) -> Path:
    """A run folder as `zoo train` leaves it: fit with the spec and recipe dicts."""
    seed_everything(0)
    info = open_data(data)
    recipe = {"name": "test_recipe", "normalize": normalize, "epochs": epochs}
    mean, std, _ = normalization_of(recipe, info)
    train_t, eval_t = make_transforms(mean, std, channels=1)
    train = DataLoader(TransformedDataset(info.train, train_t), batch_size=8, shuffle=True)
    val = DataLoader(TransformedDataset(info.val, eval_t), batch_size=8)
    model = zoo.build(spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    fit(model, optimizer, train, val, epochs=epochs, out_dir=out, spec=spec, recipe=recipe)
    return out


@pytest.fixture(scope="module")
def runs(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    _train(data, root / "tiny_a", _spec("tiny_a", 4), "computed")
    _train(data, root / "wide_b", _spec("wide_b", 8), "mnist", epochs=1)
    return root


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_eval_checkpoint_equals_loop_evaluate(
    runs: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    best = runs / "tiny_a" / "best.pt"
    code, out, err = _run(
        ["eval", str(best), "--data", str(data), "--json", "--device", "cpu"], capsys
    )
    assert code == 0, err
    report = json.loads(out)
    # the same model, the same normalization (computed on the training set), evaluated directly
    saved = torch.load(best, weights_only=True)
    model = zoo.build(saved["spec"])
    model.load_state_dict(saved["model"])
    info = open_data(data)
    mean, std, _ = normalization_of(saved["recipe"], info)
    _, eval_t = make_transforms(mean, std, channels=1)
    expected = evaluate(model, DataLoader(TransformedDataset(info.val, eval_t), batch_size=5))
    assert report["accuracy"] == pytest.approx(expected.accuracy)
    assert report["loss"] == pytest.approx(expected.loss, rel=1e-5)
    assert report["confusion"] == expected.confusion
    assert report["samples"] == 6 * len(CLASSES)
    assert report["classes"] == sorted(CLASSES)
    assert report["model"] == "tiny_a"
    assert saved["best_value"] == pytest.approx(report["accuracy"])  # fit's own val_acc
    # the run folder got the report and (with matplotlib) the confusion matrix
    assert (
        json.loads((runs / "tiny_a" / "eval-val.json").read_text())["accuracy"]
        == report["accuracy"]
    )
    pytest.importorskip("matplotlib")
    assert (runs / "tiny_a" / "confusion-val.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_named_normalization_and_table(
    runs: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        [
            "eval",
            str(runs / "wide_b"),
            "--data",
            str(data),
            "--split",
            "train",
            "--out",
            str(tmp_path / "e"),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 0, err
    assert "circle" in out and "accuracy" in out.lower()
    written = json.loads((tmp_path / "e" / "eval-train.json").read_text())
    assert written["normalization"] == "mnist" and written["mean"] == [0.1307]
    assert written["samples"] == 12 * len(CLASSES)


def test_eval_bare_spec_and_errors(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "tiny.yaml"

    spec.write_text(yaml.safe_dump(_spec("tiny", 4)))
    code, out, err = _run(
        ["eval", str(spec), "--data", str(data), "--json", "--device", "cpu"], capsys
    )
    assert code == 0, err
    assert "training set's own mean" in err
    assert 0.0 <= json.loads(out)["accuracy"] <= 1.0
    # a spec that does not fit the data: a located problem, exit 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({**_spec("bad", 4), "input": {"channels": 3, "size": [SIZE, SIZE]}})
    )
    code, _, err = _run(["eval", str(bad), "--data", str(data), "--device", "cpu"], capsys)
    assert code == ExitCode.SPEC_ERROR and "input.channels=1" in err
    # a missing checkpoint, a non-checkpoint .pt: exit 3
    code, _, err = _run(["eval", str(tmp_path / "nope.pt"), "--data", str(data)], capsys)
    assert code == ExitCode.IO_ERROR
    junk = tmp_path / "junk.pt"
    torch.save({"hello": 1}, junk)
    code, _, err = _run(["eval", str(junk), "--data", str(data)], capsys)
    assert code == ExitCode.IO_ERROR and "not a zoo training checkpoint" in err
    code, _, _ = _run(["eval", str(spec), "--data", str(data), "--split", "test"], capsys)
    assert code == ExitCode.USAGE_ERROR


def test_runs_lists_table_json_csv(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["runs", str(runs), "--json"], capsys)
    assert code == 0, err
    rows = {Path(r["folder"]).name: r for r in json.loads(out)}
    assert set(rows) == {"tiny_a", "wide_b"}
    a = rows["tiny_a"]
    plan = zoo.trace(_spec("tiny_a", 4), depth=0)
    assert (a["spec"], a["params"], a["macs"]) == ("tiny_a", plan.params, plan.macs)
    assert a["epochs"] == 2 and a["planned_epochs"] == 2 and a["recipe"] == "test_recipe"
    assert a["monitor"] == "val_acc" and 0 <= a["best"] <= 1 and a["images_per_s"] > 0
    history = [
        json.loads(line) for line in (runs / "tiny_a" / "metrics.jsonl").read_text().splitlines()
    ]
    assert a["best"] == max(r["val_acc"] for r in history)
    assert a["seconds"] == pytest.approx(sum(r["seconds"] for r in history))
    assert rows["wide_b"]["epochs"] == 1
    code, out, _ = _run(["runs", str(runs), "--csv"], capsys)
    table = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["spec"] for r in table] == ["tiny_a", "wide_b"]
    code, out, _ = _run(["runs", str(runs)], capsys)
    assert code == 0 and "tiny_a" in out and "wide_b" in out


def test_runs_plot(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "acc.png"
    code, _, err = _run(["runs", str(runs), "--plot", str(plot)], capsys)
    assert code == 0, err
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, _ = _run(["runs", str(runs), "--plot", str(tmp_path / "acc.txt")], capsys)
    assert code == ExitCode.USAGE_ERROR


def test_broken_run_reported_and_skipped(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "runs"
    shutil.copytree(runs / "tiny_a", root / "good")
    broken = root / "broken"
    broken.mkdir()
    (broken / "metrics.jsonl").write_text('{"epoch": 1}\n')
    (broken / "last.pt").write_bytes(b"truncated")
    half = root / "half"
    half.mkdir()
    (half / "metrics.jsonl").write_text("")  # started, no epoch finished, no checkpoint
    (root / "notes").mkdir()  # not a run at all: passed over in silence
    code, out, err = _run(["runs", str(root), "--json"], capsys)
    assert code == ExitCode.IO_ERROR
    assert [Path(r["folder"]).name for r in json.loads(out)] == ["good"]
    assert "broken" in err and "half" in err and "notes" not in err
    records, errors = find_runs(root)
    assert len(records) == 1 and len(errors) == 2
    with pytest.raises(ZooError):
        read_run(broken)
    code, _, err = _run(["runs", str(tmp_path / "missing")], capsys)
    assert code == ExitCode.IO_ERROR and "no such folder" in err


def test_checkpoint_refuses_weights(runs: Path, data: Path) -> None:
    with pytest.raises(ZooError, match="leave out --weights"):
        evaluate_source(runs / "tiny_a" / "last.pt", data, weights="x.pt")


def test_stored_normalization_wins(data: Path) -> None:
    """`zoo train` keeps the numbers it normalized with (computed ones too): eval uses them."""
    info = open_data(data)
    recipe = {"normalize": "computed", "normalization": {"mean": [0.25], "std": [0.5]}}
    assert normalization_of(recipe, info) == ((0.25,), (0.5,), "stored with the checkpoint")
    assert normalization_of({"normalize": "none"}, info)[:2] == ((0.0,), (1.0,))
