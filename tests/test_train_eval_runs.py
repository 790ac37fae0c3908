"""`zoo eval` and `zoo runs` (zoo.train.runs): checkpoints evaluated with their own recipe's
normalization, run folders summarized side by side, broken ones reported and skipped.

Run folders are made with loop.fit on a tiny PNG image folder (tests/datasets.py), in seconds.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import shutil
from dataclasses import replace
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
from zoo.train.runs import (
    evaluate_source,
    find_runs,
    normalization_of,
    read_run,
    write_eval_files,
    write_runs_plot,
)

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


def _start_run(out: Path, data: Path, spec: dict, recipe: dict) -> None:
    """What `zoo train` writes before the first step: spec.yaml, recipe.yaml and run.json."""
    info = open_data(data)
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.yaml").write_text(yaml.safe_dump(spec))
    (out / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    run_info = {"spec": spec["name"], "data": info.name, "classes": list(info.classes)}
    (out / "run.json").write_text(json.dumps(run_info))


def _train(data: Path, out: Path, spec: dict, normalize: str, epochs: int = 2) -> Path:
    """A run folder as `zoo train` leaves it: its files, then fit with the spec and recipe dicts."""
    seed_everything(0)
    info = open_data(data)
    recipe = {"name": "test_recipe", "normalize": normalize, "epochs": epochs}
    _start_run(out, data, spec, recipe)
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
    assert "untrained initialization" in err  # no --weights: said, not silently assumed
    assert json.loads(out)["source"] == "initialized weights"
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


# --------------------------------------------------------------------------- runs in progress
def test_runs_in_first_epoch_listed_not_errors(
    runs: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run still in its first epoch (or stopped in it: a non-finite loss leaves no last.pt) is
    listed with 0 of its planned epochs and no best accuracy: neither dropped nor an error."""
    root = tmp_path / "runs"
    shutil.copytree(runs / "tiny_a", root / "done")
    recipe = {"name": "test_recipe", "normalize": "computed", "epochs": 3}
    _start_run(root / "starting", data, _spec("starting", 4), recipe)  # no metrics, no last.pt
    _start_run(root / "started", data, _spec("started", 4), recipe)
    (root / "started" / "metrics.jsonl").write_text("")  # no epoch finished yet
    # interrupted in epoch 1: last.pt saved mid-epoch, no metrics.jsonl
    interrupted = root / "interrupted"
    interrupted.mkdir()
    for name in ("run.json", "spec.yaml", "recipe.yaml"):
        shutil.copy(runs / "tiny_a" / name, interrupted / name)
    saved = torch.load(runs / "tiny_a" / "last.pt", weights_only=True)
    saved.update(epoch=0, step=1, history=[], best_value=None, best_epoch=None)
    torch.save(saved, interrupted / "last.pt")
    code, out, err = _run(["runs", str(root), "--json"], capsys)
    assert code == 0 and err == ""
    rows = {Path(r["folder"]).name: r for r in json.loads(out)}
    assert set(rows) == {"done", "starting", "started", "interrupted"}
    plan = zoo.trace(_spec("starting", 4), depth=0)
    for name in ("starting", "started", "interrupted"):
        row = rows[name]
        assert (row["epochs"], row["best"], row["best_epoch"], row["images_per_s"]) == (
            0,
            None,
            None,
            None,
        ), name
        assert row["params"] == plan.params and row["macs"] == plan.macs
        assert row["data"] == open_data(data).name
    assert rows["starting"]["planned_epochs"] == 3 and rows["starting"]["recipe"] == "test_recipe"
    assert rows["interrupted"]["planned_epochs"] == 2  # the checkpoint's recipe
    code, out, _ = _run(["runs", str(root)], capsys)
    started = next(line for line in out.splitlines() if line.startswith("starting\t"))
    assert code == 0 and "\t0/3\t" in started
    # only a file that cannot be read is an error
    (root / "started" / "run.json").write_text("{not json")
    (root / "orphan").mkdir()
    (root / "orphan" / "metrics.jsonl").write_text("")  # no run.json, spec.yaml nor last.pt
    records, errors = find_runs(root)
    assert [Path(r.folder).name for r in records] == ["done", "interrupted", "starting"]
    messages = sorted(str(e) for e in errors)
    assert len(messages) == 2
    assert "orphan: a run folder with neither last.pt nor spec.yaml" in messages[0]
    assert "run.json: not JSON" in messages[1]
    # metrics.jsonl cut short: the checkpoint's own history counts the epochs it finished
    shutil.copytree(runs / "tiny_a", tmp_path / "cut")
    (tmp_path / "cut" / "metrics.jsonl").write_text("")
    assert read_run(tmp_path / "cut").epochs == 2


# --------------------------------------------------------------------------- the data column
def test_runs_data_column_and_plot_per_dataset(
    runs: Path,
    data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, _ = _run(["runs", str(runs), "--json"], capsys)
    assert code == 0 and {r["data"] for r in json.loads(out)} == {open_data(data).name}
    code, out, _ = _run(["runs", str(runs), "--csv"], capsys)
    table = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and list(table[0])[:3] == ["folder", "spec", "data"]
    assert table[0]["data"] == open_data(data).name
    pytest.importorskip("matplotlib")
    import zoo.train.runs as runs_module

    records, _ = find_runs(runs)
    other = [replace(r, folder=r.folder + "_copy", data="other") for r in records]
    same_point = replace(records[0], folder="twin")  # a second run at the same point
    drawn: list[object] = []

    def keep(figure: object, path: Path) -> None:
        drawn.append(figure)
        path.write_bytes(b"\x89PNG\r\n\x1a\n")

    monkeypatch.setattr(runs_module, "_save_figure", keep)  # the figure, before it is closed
    note = write_runs_plot([*records, *other, same_point], tmp_path / "acc.png")
    assert note is None
    axes = drawn[0].axes[0]  # type: ignore[attr-defined]
    assert [t.get_text() for t in axes.get_legend().get_texts()] == sorted(
        {open_data(data).name, "other"}
    )
    labels = {t.get_text(): t for t in axes.texts}
    assert "tiny_a, tiny_a_copy, twin" in labels  # the runs at one point share one label
    offsets = [t.xyann for t in axes.texts]  # neighbours' labels do not sit on each other
    assert all(a != b for a, b in itertools.pairwise(offsets))


def test_plot_of_no_runs_writes_nothing(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    (tmp_path / "empty").mkdir()
    assert find_runs(tmp_path / "empty") == ([], [])
    note = write_runs_plot([], tmp_path / "acc.png")
    assert note is not None and "there are no runs" in note
    assert not (tmp_path / "acc.png").exists()


# --------------------------------------------------------------------------- eval's checks
def test_eval_refuses_other_classes(
    runs: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Other class names (the same count): refused at the checkpoint, naming both lists, and the
    run folder's eval-val.json is left as it was."""
    animals = write_image_folder(
        tmp_path / "animals", ("cat", "dog", "emu"), n_train=2, n_val=2, size=SIZE, channels=1
    )
    report = runs / "tiny_a" / "eval-val.json"
    before = report.read_bytes() if report.exists() else None
    code, out, err = _run(["eval", str(runs / "tiny_a"), "--data", str(animals)], capsys)
    assert code == ExitCode.SPEC_ERROR and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"{runs / 'tiny_a' / 'best.pt'}: tiny_a was trained on the classes ")
    assert "circle, square, triangle" in err and "cat, dog, emu" in err
    assert (report.read_bytes() if report.exists() else None) == before
    # the same names in another order: the label numbers differ, so it is refused too
    shuffled = tmp_path / "shuffled"
    shutil.copytree(runs / "tiny_a", shuffled)
    run_info = json.loads((shuffled / "run.json").read_text())
    run_info["classes"] = run_info["classes"][::-1]
    (shuffled / "run.json").write_text(json.dumps(run_info))
    with pytest.raises(ZooError, match="the same classes in another order"):
        evaluate_source(shuffled, data, device="cpu")


def test_eval_checkpoint_channels_located_at_checkpoint(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rgb = write_image_folder(tmp_path / "rgb", CLASSES, n_train=2, n_val=2, size=SIZE, channels=3)
    code, _, err = _run(["eval", str(runs / "tiny_a" / "last.pt"), "--data", str(rgb)], capsys)
    assert code == ExitCode.SPEC_ERROR and len(err.strip().splitlines()) == 1
    assert err.startswith(str(runs / "tiny_a" / "last.pt") + ": ")
    assert f"trained on 1-channel {SIZE}x{SIZE} images" in err and "3-channel" in err
    assert "--set" not in err and "<dict>" not in err and "[data_channels]" in err


def test_eval_checkpoint_without_run_json_notes_it(
    runs: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkpoint copied out of its run folder: the class names cannot be checked (a note);
    the number of classes still is."""
    alone = tmp_path / "alone.pt"
    shutil.copy(runs / "tiny_a" / "best.pt", alone)
    report = evaluate_source(alone, data, device="cpu")
    assert report.samples == 6 * len(CLASSES)
    assert any("class names were not checked" in n for n in report.notes)
    two = write_image_folder(
        tmp_path / "two", ("a", "b"), n_train=2, n_val=2, size=SIZE, channels=1
    )
    with pytest.raises(ZooError, match=r"trained on 3 classes .* has 2 classes") as caught:
        evaluate_source(alone, two, device="cpu")
    assert caught.value.problems[0].file == str(alone)


# --------------------------------------------------------------------------- eval's messages
def test_eval_messages_say_what_the_file_is(
    runs: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def error(source: Path) -> str:
        code, out, err = _run(["eval", str(source), "--data", str(data)], capsys)
        assert code == ExitCode.IO_ERROR and out == "" and len(err.strip().splitlines()) == 1
        assert "Traceback" not in err
        return err.strip()

    # read as every checkpoint is (zoo.weights.read_torch_file), with its messages
    assert error(tmp_path / "nosuch.pt") == f"{tmp_path / 'nosuch.pt'}: no such file"
    text = tmp_path / "text.pt"
    text.write_text("hello\n")
    assert "truncated, damaged or not a PyTorch file" in error(text)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((runs / "tiny_a" / "last.pt").read_bytes()[:1000])
    assert "truncated, damaged or not a PyTorch file" in error(truncated)
    module = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), module)
    assert "it holds Python objects (torch.nn.modules.linear.Linear)" in error(module)
    empty_run = tmp_path / "emptyrun"
    empty_run.mkdir()
    assert "no best.pt or last.pt in it" in error(empty_run)
    (empty_run / "run.json").write_text("{}")
    assert "has not finished its first epoch" in error(empty_run)
    # weights alone: a plain state_dict, and what `zoo build --output` writes (zoo/1)
    state = tmp_path / "state.pt"
    torch.save(zoo.build(_spec("tiny", 4)).state_dict(), state)
    assert "for weights alone: zoo eval SPEC --weights FILE" in error(state)
    weights = tmp_path / "weights.pt"
    zoo.save(zoo.build(_spec("tiny", 4)), weights)
    message = error(weights)
    assert "zoo model checkpoint" in message and "zoo eval SPEC --weights FILE" in message
    # and the way it points to works
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(_spec("tiny", 4)))
    code, _, err = _run(
        ["eval", str(spec), "--data", str(data), "--weights", str(weights), "--device", "cpu"],
        capsys,
    )
    assert code == 0 and "untrained" not in err


def test_write_eval_files_names_every_file(runs: Path, data: Path, tmp_path: Path) -> None:
    report = evaluate_source(runs / "tiny_a", data, device="cpu")
    written, notes = write_eval_files(report, tmp_path / "out")
    assert written[0] == tmp_path / "out" / "eval-val.json" and written[0].is_file()
    if notes:  # no matplotlib: the PNG is a note, not a file
        assert written == [written[0]] and "confusion-val.png" in notes[0]
    else:
        assert written[1] == tmp_path / "out" / "confusion-val.png" and written[1].is_file()


# --------------------------------------------------------------------------- the command's lines
def test_runs_table_empty_folder_and_empty_plot(
    runs: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(["runs", str(runs)], capsys)
    header, *rows = out.splitlines()
    assert code == 0 and header.split("\t")[:3] == ["run", "spec", "data"]
    assert all(row.split("\t")[2] == open_data(data).name for row in rows)
    (tmp_path / "empty").mkdir()
    code, out, err = _run(["runs", str(tmp_path / "empty")], capsys)
    assert code == 0 and f"no runs in {tmp_path / 'empty'}" in err
    pytest.importorskip("matplotlib")
    plot = tmp_path / "acc.png"
    code, _, err = _run(["runs", str(tmp_path / "empty"), "--plot", str(plot)], capsys)
    assert code == 0 and f"{plot} not written: there are no runs" in err
    assert not plot.exists() and "wrote" not in err


def test_eval_names_every_file_written(
    runs: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "e"
    argv = ["eval", str(runs / "tiny_a"), "--data", str(data), "--out", str(out_dir)]
    code, _, err = _run([*argv, "--json", "--device", "cpu"], capsys)
    assert code == 0 and str(out_dir / "eval-val.json") in err
    if (out_dir / "confusion-val.png").exists():
        assert f"wrote {out_dir / 'eval-val.json'} and {out_dir / 'confusion-val.png'}" in err


def test_eval_of_a_run_on_a_one_folder_dataset_uses_the_runs_own_split(tmp_path: Path) -> None:
    # --val-fraction and --seed drew the validation images from one folder: a fresh draw with the
    # defaults would evaluate on other images, some of them trained on
    from zoo.train.run import train

    folder = write_image_folder(
        tmp_path / "shapes", CLASSES, n_train=12, n_val=4, size=SIZE, channels=1, split=False
    )
    out = tmp_path / "run"
    result = train(
        _spec("tiny_split", 4), str(folder), recipe="mnist", device="cpu", out=out, seed=3,
        val_fraction=0.25, epochs=1, batch=8, recipe_overrides=["normalize=computed"],
    )  # fmt: skip
    trained_on = json.loads((out / "run.json").read_text())
    assert (trained_on["val_fraction"], trained_on["seed"]) == (0.25, 3)
    report = evaluate_source(out, folder, device="cpu")
    assert report.samples == trained_on["val_samples"] == 12  # a quarter of 48, not a tenth
    assert report.accuracy == pytest.approx(result.fit.best_value)  # the very images fit scored
    # the checkpoint itself keeps the classes: moved out of its run folder, it is still checked
    saved = torch.load(out / "best.pt", weights_only=True)
    assert saved["data"] == {"name": trained_on["data"], "classes": sorted(CLASSES)}
    alone = tmp_path / "elsewhere" / "best.pt"
    alone.parent.mkdir()
    shutil.copy(out / "best.pt", alone)
    pets = write_image_folder(tmp_path / "pets", ("cat", "dog", "emu"), size=SIZE, channels=1)
    with pytest.raises(ZooError, match="trained on the classes circle, square, triangle"):
        evaluate_source(alone, pets, device="cpu")
