"""Trained runs: evaluate a checkpoint on a dataset, and read run folders side by side.

:func:`evaluate_source` is ``zoo eval``: a training checkpoint (``last.pt``/``best.pt`` written by
:func:`zoo.train.loop.fit`, or the run folder holding them) brings its spec, its recipe and its
weights, and is evaluated with the recipe's normalization, through the same
:func:`zoo.train.data.make_transforms` pipeline training used (so evaluation can never normalize
differently from training). A bare spec is evaluated with its initialized weights, or the weights
of a file (:mod:`zoo.weights`).

:func:`find_runs` is ``zoo runs``: every run folder under a folder, summarized from its
``run.json``, ``metrics.jsonl`` and ``last.pt`` (spec, data, parameters, MACs, best accuracy,
epochs, time, images/s). A run still in its first epoch, or one that stopped in it (a non-finite
loss), has no ``last.pt`` or no metrics yet: it is listed with 0 epochs and no best accuracy; only
a file that cannot be read is an error. :func:`write_runs_plot` draws accuracy against
multiply-adds, one colour and marker per dataset.

torch is imported inside the functions (the layering rule), so importing this module is cheap.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from zoo.errors import ExitCode, Problem, ZooError, usage_error
from zoo.files import write_atomically

if TYPE_CHECKING:
    from zoo.spec.schema import ModelSpec
    from zoo.train.data import DataInfo
    from zoo.train.loop import EvalResult

CHECKPOINT_SUFFIXES = (".pt", ".pth")
RUN_FILES = ("run.json", "metrics.jsonl", "last.pt")
"""What makes a folder a run folder: any of these (``zoo train`` writes ``run.json`` before the
first step, ``metrics.jsonl`` and ``last.pt`` at the end of each epoch)."""
CHECKPOINT_NAMES = ("best.pt", "last.pt")
"""The checkpoint ``zoo eval RUN_FOLDER`` takes, the first found."""
_NAMED = 6  # class names listed in full; longer lists are shown by their difference


def _io_error(message: str, where: str | os.PathLike[str] | None = None) -> ZooError:
    return ZooError(
        Problem(message, None if where is None else str(where), kind="io"), ExitCode.IO_ERROR
    )


# --------------------------------------------------------------------------- checkpoints
def is_checkpoint_source(source: str | os.PathLike[str]) -> bool:
    """Whether ``zoo eval``'s argument names a training checkpoint (a ``.pt``/``.pth`` file, or a
    run folder holding ``best.pt`` or ``last.pt``) rather than a spec."""
    path = Path(source)
    if path.is_dir():
        return any((path / name).is_file() for name in CHECKPOINT_NAMES)
    return path.suffix.lower() in CHECKPOINT_SUFFIXES


def checkpoint_path(source: str | os.PathLike[str]) -> Path:
    """The checkpoint file ``source`` names: itself, or a run folder's ``best.pt`` (else
    ``last.pt``)."""
    path = Path(source)
    if path.is_dir():
        for name in CHECKPOINT_NAMES:
            if (path / name).is_file():
                return path / name
        if _is_run_folder(path):
            why = "the run has not finished its first epoch (or stopped in it)"
        else:
            why = "give a run folder, a training checkpoint (.pt) or a spec"
        raise _io_error(f"a folder with no best.pt or last.pt in it: {why}", path)
    return path


def load_training_checkpoint(path: str | os.PathLike[str], *, mmap: bool = False) -> dict[str, Any]:
    """A training checkpoint written by :func:`zoo.train.loop.fit`, or a run folder's
    (:func:`checkpoint_path`), read by :func:`zoo.train.loop.read_checkpoint` (``mmap``: its
    tensors are mapped, not read, as ``zoo runs`` needs only its other entries)."""
    from zoo.train.loop import read_checkpoint

    path = Path(path)
    if path.is_dir():
        path = checkpoint_path(path)
    return read_checkpoint(path, mmap=mmap)


def normalization_of(
    recipe: Mapping[str, Any] | None, info: DataInfo
) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """Mean, std and how they were found, for a checkpoint's recipe dict: the stats stored with it
    (``normalization: {mean, std}``, as a run whose recipe says ``computed`` keeps them), a named
    normalization's fixed stats, ``none`` (pixels in [0, 1]), or, for ``computed`` without stored
    stats, measured again on the same training set (deterministic: the values training used)."""
    from zoo.train.data import compute_normalization
    from zoo.train.recipe import normalization_stats

    stored = (recipe or {}).get("normalization")
    if isinstance(stored, Mapping) and "mean" in stored and "std" in stored:
        mean, std = tuple(map(float, stored["mean"])), tuple(map(float, stored["std"]))
        return mean, std, "stored with the checkpoint"
    name = (recipe or {}).get("normalize", "computed")
    if name == "none":
        return (0.0,) * info.channels, (1.0,) * info.channels, "none"
    if name != "computed":
        try:
            stats = normalization_stats(str(name))
        except ValueError as exc:
            raise _io_error(
                f"the checkpoint's recipe has an unknown normalization: {exc}"
            ) from None
        assert stats is not None  # only "none" has no stats
        return (*stats, str(name))
    mean, std = compute_normalization(info.train)
    return mean, std, f"computed on {info.name}'s training set"


# --------------------------------------------------------------------------- evaluation
@dataclass
class EvalReport:
    """What ``zoo eval`` found: the model and data, the normalization used, and the result."""

    model: str
    source: str
    data: str
    split: str
    normalization: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str]
    loss: float
    accuracy: float
    samples: int
    per_class: list[float | None]
    confusion: list[list[int]]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (every field)."""
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data


def evaluate_source(
    source: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    split: str = "val",
    batch: int = 256,
    device: str = "auto",
    weights: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    workers: int = 0,
) -> EvalReport:
    """Evaluate a training checkpoint (or run folder), or a spec with its initialized weights (or
    ``weights``), on ``split`` (``val`` or ``train``) of ``data``. The model is checked against the
    data first: a spec's channels, size and classes are located problems with their fix; a
    checkpoint's are one problem at the checkpoint saying what it was trained on, its class names
    included (its run folder's ``run.json`` keeps them)."""
    from torch.utils.data import DataLoader

    from zoo.compiler import build
    from zoo.spec import load_spec
    from zoo.train.data import (
        TransformedDataset,
        check_spec_against_data,
        make_transforms,
        open_data,
        resized,
    )
    from zoo.train.loop import evaluate
    from zoo.train.run import pick_device

    if split not in ("val", "train"):
        raise usage_error(f"--split must be val or train, got {split!r}", file="zoo")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise usage_error(f"--batch must be a positive int, got {batch!r}", file="zoo")
    notes: list[str] = []
    recipe: Mapping[str, Any] | None = None
    state: Mapping[str, Any] | None = None
    path: Path | None = None
    trained: _Trained | None = None  # what a checkpoint was trained on
    if Path(source).is_dir() or is_checkpoint_source(source):
        path = checkpoint_path(source)
        if weights is not None or overrides:
            raise usage_error(
                "a training checkpoint brings its spec and weights; leave out --weights and --set",
                file="zoo",
            )
        saved = load_training_checkpoint(path)
        if not isinstance(saved.get("spec"), Mapping):
            raise _io_error(
                "the checkpoint holds no spec (trained without one): evaluate the "
                "spec with --weights CHECKPOINT instead",
                path,
            )
        spec = _checkpoint_spec(path, saved["spec"])
        recipe, state = saved.get("recipe"), saved["model"]
        source_text = f"{path} (epoch {saved.get('epoch')})"
        trained = _trained_on(path, saved, spec.name)
    else:
        spec = load_spec(source, overrides)
        source_text = str(weights) if weights is not None else "initialized weights"
        if weights is None:
            notes.append(
                "no --weights: the weights are the untrained initialization (about chance accuracy)"
            )
    info = open_data(data, root=data_dir, **_training_split(path, data))
    resize = recipe.get("resize") if isinstance(recipe, Mapping) else None
    info = resized(info, resize)  # the size training resized to, if its recipe did
    if path is not None and trained is not None:
        mismatch = _checkpoint_mismatch(spec, info, trained)
        if mismatch is not None:
            message, kind = mismatch
            raise ZooError(Problem(message, str(path), kind=kind), ExitCode.SPEC_ERROR)
        if trained.classes is None:
            notes.append(f"the class names were not checked: {trained.why}")
    else:
        problems = check_spec_against_data(spec, info)
        if problems:
            raise ZooError(problems, ExitCode.SPEC_ERROR)
    if recipe is None:  # a bare spec: the shipped recipe of the dataset says how it is normalized
        recipe = _shipped_recipe(info.name)
        if recipe is None:
            notes.append("no recipe: normalized with the training set's own mean and std")
    mean, std, how = normalization_of(recipe, info)
    _, eval_transform = make_transforms(mean, std, resize=resize, channels=info.channels)
    dataset = info.val if split == "val" else info.train
    loader = DataLoader(
        TransformedDataset(dataset, eval_transform),
        batch_size=batch,
        shuffle=False,
        num_workers=workers,
    )
    target = pick_device(device)
    model = build(spec, target, weights=weights)
    if state is not None:
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:  # a checkpoint whose weights are not its spec's
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _io_error(f"its weights do not fit its spec's model: {why}", path) from None
    result: EvalResult = evaluate(model, loader, device=target)
    return EvalReport(
        model=spec.name,
        source=source_text,
        data=info.description,
        split=split,
        normalization=how,
        mean=mean,
        std=std,
        classes=list(info.classes),
        loss=result.loss,
        accuracy=result.accuracy,
        samples=result.samples,
        per_class=result.per_class,
        confusion=result.confusion,
        notes=notes,
    )


@dataclass(frozen=True)
class _Trained:
    """What a checkpoint's run was trained on, as far as is known (``why``: why the class names
    are not)."""

    data: str | None
    classes: list[str] | None
    why: str = ""


def _checkpoint_spec(path: Path, data: Mapping[str, Any]) -> ModelSpec:
    """A checkpoint's spec, validated; its problems are located at the checkpoint."""
    from zoo.spec import load_spec
    from zoo.spec.load import MAPPING_FILE

    try:
        return load_spec(dict(data))
    except ZooError as exc:
        problems = [
            replace(p, file=str(path)) if p.file == MAPPING_FILE else p for p in exc.problems
        ]
        raise ZooError(problems, exc.exit_code) from None


def _names(value: Any) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _training_split(path: Path | None, data: str | os.PathLike[str]) -> dict[str, Any]:
    """How checkpoint ``path``'s run split a one-folder dataset (the seed and ``val_fraction``
    its ``run.json`` keeps), so that its ``val`` split is the images training held out, not a
    fresh draw that mixes in images it trained on. Nothing for a spec, or data with a split."""
    if path is None:
        return {}
    try:
        info = _read_run_info(path.parent / "run.json") or {}
    except ZooError:
        return {}
    folder = Path(data)
    if not folder.is_dir() or any((folder / split).is_dir() for split in ("train", "val", "test")):
        return {}
    options: dict[str, Any] = {}
    if isinstance(info.get("seed"), int):
        options["seed"] = info["seed"]
    if isinstance(info.get("val_fraction"), float):
        options["val_fraction"] = info["val_fraction"]
    return options


def _trained_on(path: Path, saved: Mapping[str, Any], spec_name: str) -> _Trained:
    """The data and classes checkpoint ``path`` was trained on: from the checkpoint when it keeps
    them (``zoo train`` stores ``data: {name, classes}``), else from its run folder's
    ``run.json`` (when that run is of the same spec)."""
    kept = saved.get("data")
    if isinstance(kept, Mapping) and _names(kept.get("classes")) is not None:
        name = kept.get("name")
        return _Trained(name if isinstance(name, str) else None, _names(kept["classes"]))
    run_json = path.parent / "run.json"
    try:
        info = _read_run_info(run_json)
    except ZooError as exc:
        return _Trained(None, None, f"{run_json} cannot be read ({exc.problems[0].message})")
    if info is None or info.get("spec") != spec_name:
        return _Trained(None, None, f"no run.json of this run beside {path.name}")
    data = info.get("data")
    classes = _names(info.get("classes"))
    why = "" if classes is not None else f"{run_json} names no classes"
    return _Trained(data if isinstance(data, str) else None, classes, why)


def _listed(items: Sequence[str], shown: int = 4) -> str:
    text = ", ".join(items[:shown])
    return text if len(items) <= shown else f"{text} and {len(items) - shown} more"


def _checkpoint_mismatch(
    spec: ModelSpec, info: DataInfo, trained: _Trained
) -> tuple[str, str] | None:
    """Why a trained model cannot be evaluated on ``info`` (other image channels or size, other
    classes or the same ones in another order), as one message and its kind; None when it can.
    The class names are compared when known, else the number of classes with the model's
    outputs."""
    from zoo.plan import plan_spec
    from zoo.shapes import pair

    ours: list[str] = []  # what it was trained on ...
    theirs: list[str] = []  # ... and what the data has instead
    kinds: list[str] = []
    detail = ""
    channels, (height, width) = spec.input.channels, pair(spec.input.size)
    if info.channels != channels or info.size != (height, width):
        ours.append(f"{channels}-channel {height}x{width} images")
        size = "x".join(map(str, info.size)) if info.size else "different-size"
        theirs.append(f"{info.channels}-channel {size} images")
        kinds.append("data_channels" if info.channels != channels else "data_size")
    found = list(info.classes)
    if trained.classes is not None and found != trained.classes:
        short = len(trained.classes) <= _NAMED and len(found) <= _NAMED
        ours.append(
            f"the classes {', '.join(trained.classes)}"
            if short
            else f"{len(trained.classes)} classes"
        )
        if sorted(found) == sorted(trained.classes):  # the label numbers would not match
            theirs.append(f"the same classes in another order ({_listed(found, _NAMED)})")
        elif short:
            theirs.append(f"the classes {', '.join(found)}")
        else:
            same = len(found) == len(trained.classes)
            theirs.append(f"{len(found)} other classes" if same else f"{len(found)} classes")
            only_ours = [c for c in trained.classes if c not in set(found)]
            only_theirs = [c for c in found if c not in set(trained.classes)]
            detail = f"only in training: {_listed(only_ours) or '-'}; "
            detail += f"only in {info.name}: {_listed(only_theirs) or '-'}"
    elif trained.classes is None:
        out = plan_spec(spec).root.out
        if len(out) == 1 and out[0] != info.num_classes:
            ours.append(f"{out[0]} classes")
            theirs.append(f"{info.num_classes} classes")
    if len(ours) > len(kinds):
        kinds.append("data_classes")
    if not ours:
        return None
    of = f" ({trained.data})" if trained.data else ""
    detail = f" ({detail})" if detail else ""
    message = (
        f"{spec.name} was trained on {' and '.join(ours)}{of} but {info.name} has "
        f"{' and '.join(theirs)}{detail}; evaluate it on data like its training data"
    )
    return message, kinds[0]


def _shipped_recipe(name: str) -> dict[str, Any] | None:
    """The shipped recipe named after dataset ``name`` as a dict, if there is one."""
    from zoo.train.recipe import load_recipe, shipped_recipe_names

    if name not in shipped_recipe_names():
        return None
    return load_recipe(name).model_dump(mode="json", exclude_unset=True)


def _pyplot() -> Any | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _save_figure(figure: Any, path: Path) -> None:
    def save(handle: BinaryIO) -> None:
        figure.savefig(handle, format=path.suffix.lstrip(".").lower() or "png", dpi=120)

    write_atomically(path, save)


def write_confusion(report: EvalReport, path: Path) -> str | None:
    """Draw the confusion matrix (rows: true class, columns: predicted; each row as fractions of
    its class) into ``path``. Returns a note instead when matplotlib is not installed."""
    plt = _pyplot()
    if plt is None:
        return f"{path.name} not drawn: matplotlib is not installed (pip install 'zoo[plot]')"
    import numpy as np

    counts = np.asarray(report.confusion, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    n = len(report.classes)
    side = min(max(4.0, 0.45 * n + 2.0), 24.0)
    figure, axes = plt.subplots(figsize=(side, side))
    try:
        image = axes.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
        figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
        if n <= 30:  # beyond that the names and counts are unreadable anyway
            axes.set_xticks(range(n), report.classes, rotation=90)
            axes.set_yticks(range(n), report.classes)
            for i in range(n):
                for j in range(n):
                    if counts[i, j]:
                        colour = "white" if fractions[i, j] > 0.5 else "black"
                        axes.text(
                            j,
                            i,
                            int(counts[i, j]),
                            ha="center",
                            va="center",
                            fontsize=7,
                            color=colour,
                        )
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        axes.set_title(
            f"{report.model}: {report.accuracy:.2%} on {report.split} ({report.samples} images)"
        )
        figure.tight_layout()
        _save_figure(figure, path)
    finally:
        plt.close(figure)
    return None


def write_eval_files(report: EvalReport, folder: Path) -> tuple[list[Path], list[str]]:
    """Write ``eval-SPLIT.json`` and (with matplotlib) ``confusion-SPLIT.png`` into ``folder``
    (made if needed). Returns the files written and the notes on what was not (no matplotlib)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _io_error(f"cannot create the folder: {exc.strerror or exc}", folder) from None
    data = (json.dumps(report.to_dict(), indent=1) + "\n").encode()
    report_path = folder / f"eval-{report.split}.json"
    write_atomically(report_path, lambda handle: handle.write(data))
    png = folder / f"confusion-{report.split}.png"
    note = write_confusion(report, png)
    return ([report_path] if note else [report_path, png]), ([note] if note else [])


# --------------------------------------------------------------------------- run folders
@dataclass
class RunRecord:
    """One run folder, summarized: ``data`` the dataset it trained on (``run.json``); ``best`` the
    best monitored accuracy (``monitor``: ``val_acc``, or ``train_acc`` for a run without
    validation), None before the first epoch ends; ``epochs`` the epochs finished (0 for a run in
    its first epoch, or one that stopped in it); ``seconds`` the training time of those epochs;
    ``images_per_s`` the median training speed over them."""

    folder: str
    spec: str
    data: str | None
    params: int
    macs: int
    best: float | None
    best_epoch: int | None
    monitor: str
    epochs: int
    planned_epochs: int | None
    seconds: float
    images_per_s: float | None
    recipe: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (every field)."""
        return asdict(self)


RUN_COLUMNS = tuple(RunRecord.__dataclass_fields__)


def _read_text(path: Path) -> str | None:
    """The text of ``path``; None when there is no such file; an unreadable one is an error."""
    if not path.exists():
        return None
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _io_error(f"cannot read it: {why}", path) from None


def _read_history(path: Path) -> list[dict[str, Any]] | None:
    """The rows of ``metrics.jsonl`` (empty before the first epoch ends); None without it."""
    text = _read_text(path)
    if text is None:
        return None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _io_error(f"line {number} is not JSON ({exc.msg})", path) from None
        if not isinstance(row, dict):
            raise _io_error(f"line {number} is not a metrics row", path)
        rows.append(row)
    return rows


def _read_run_info(path: Path) -> dict[str, Any] | None:
    """``run.json`` (what ``zoo train`` writes before the first step); None without it."""
    text = _read_text(path)
    if text is None:
        return None
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _io_error(f"not JSON ({exc.msg} at line {exc.lineno})", path) from None
    if not isinstance(info, dict):
        raise _io_error("not a run's run.json (a JSON object)", path)
    return info


def _read_recipe(path: Path) -> dict[str, Any]:
    """``recipe.yaml`` as plain data (only its ``name`` and ``epochs`` are read); {} without it."""
    import yaml

    text = _read_text(path)
    if text is None:
        return {}
    try:
        recipe = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise _io_error(f"not YAML (a syntax error{where})", path) from None
    return recipe if isinstance(recipe, dict) else {}


def _best_of(history: Sequence[Mapping[str, Any]]) -> tuple[str, float | None, int | None]:
    """The monitored metric of a run without a checkpoint, its best value and epoch (as the loop
    picks them: ``val_acc``, else ``train_acc``; the first epoch of the best value)."""
    monitor = "val_acc" if any(r.get("val_acc") is not None for r in history) else "train_acc"
    best: float | None = None
    epoch: int | None = None
    for number, row in enumerate(history, 1):
        value = row.get(monitor)
        if isinstance(value, int | float) and (best is None or value > best):
            best, epoch = float(value), int(row.get("epoch") or number)
    return monitor, best, epoch


def read_run(folder: str | os.PathLike[str]) -> RunRecord:
    """Summarize one run folder: its spec from ``last.pt`` (memory-mapped: the weights are not
    read), else ``spec.yaml``; its data from ``run.json``; its epochs from ``metrics.jsonl`` or the
    checkpoint's history, the longer. A run that has not finished an epoch (no ``last.pt`` or no
    metrics yet) has 0 epochs and no best accuracy. An unreadable file, or a folder that names no
    spec, raises :class:`ZooError` naming it."""
    from zoo.tracing import trace

    folder = Path(folder)
    info = _read_run_info(folder / "run.json") or {}
    history = _read_history(folder / "metrics.jsonl")
    saved = (
        load_training_checkpoint(folder / "last.pt", mmap=True)
        if (folder / "last.pt").exists()
        else None
    )
    if saved is not None:
        spec: Any = saved.get("spec")
        if not isinstance(spec, Mapping):
            raise _io_error(
                "the checkpoint holds no spec: its parameters and MACs are unknown",
                folder / "last.pt",
            )
        spec = dict(spec)
        recipe = saved.get("recipe") if isinstance(saved.get("recipe"), Mapping) else {}
        kept = [r for r in saved.get("history") or [] if isinstance(r, dict)]
        if history is None or len(kept) > len(history):  # metrics.jsonl missing or cut short
            history = kept
        monitor = str(saved.get("monitor") or "val_acc")
        best, best_epoch = saved.get("best_value"), saved.get("best_epoch")
    elif (folder / "spec.yaml").is_file():  # stopped (or still) in its first epoch
        spec = folder / "spec.yaml"
        recipe = _read_recipe(folder / "recipe.yaml")
        history = history or []
        monitor, best, best_epoch = _best_of(history)
    else:
        raise _io_error(
            "a run folder with neither last.pt nor spec.yaml: its spec is unknown", folder
        )
    summary = trace(spec, depth=0)
    speeds = [r["images_per_s"] for r in history if isinstance(r.get("images_per_s"), int | float)]
    planned = recipe.get("epochs")
    data = info.get("data")
    return RunRecord(
        folder=str(folder),
        spec=summary.name,
        data=data if isinstance(data, str) else None,
        params=summary.params,
        macs=summary.macs,
        best=best,
        best_epoch=best_epoch,
        monitor=monitor,
        epochs=len(history),
        planned_epochs=planned if isinstance(planned, int) else None,
        seconds=float(sum(r.get("seconds") or 0.0 for r in history)),
        images_per_s=statistics.median(speeds) if speeds else None,
        recipe=recipe.get("name") if isinstance(recipe.get("name"), str) else None,
    )


def _is_run_folder(path: Path) -> bool:
    return any((path / name).is_file() for name in RUN_FILES)


def find_runs(root: str | os.PathLike[str] = "runs") -> tuple[list[RunRecord], list[ZooError]]:
    """The runs under ``root`` (``root`` itself when it is a run folder, else its subfolders,
    recursively, in name order) and the errors of the run folders that could not be read. A
    folder with none of ``run.json``, ``metrics.jsonl`` and ``last.pt`` is no run and is passed
    over."""
    root = Path(root)
    if not root.is_dir():
        raise _io_error("no such folder: train a model first (zoo train SPEC --data DATA)", root)
    if _is_run_folder(root):
        folders = [root]
    else:
        folders = sorted(
            (Path(top) for top, _, _ in os.walk(root) if _is_run_folder(Path(top))), key=str
        )
    records: list[RunRecord] = []
    errors: list[ZooError] = []
    for folder in folders:
        try:
            records.append(read_run(folder))
        except ZooError as exc:
            errors.append(exc)
    return records, errors


def _label_offsets(count: int) -> list[tuple[int, int]]:
    """Offsets (points) for ``count`` labels of points in x order: neighbours alternate above
    and below, right and left, so labels of nearby points do not overlap."""
    cycle = [(5, 4), (5, -11), (-5, 4), (-5, -11)]
    return [cycle[k % len(cycle)] for k in range(count)]


def write_runs_plot(records: Sequence[RunRecord], path: Path) -> str | None:
    """Best accuracy against multiply-adds (log x), one colour and marker per dataset (with a
    legend), each point labelled with its run folder's name; the runs at one point share one
    label. Returns a note instead, and writes nothing, when no run has a best accuracy yet."""
    from zoo.plot import MARKERS

    plt = _pyplot()
    if plt is None:
        raise usage_error("--plot needs matplotlib: pip install 'zoo[plot]'", file="zoo")
    shown = [r for r in records if r.best is not None and r.macs > 0]
    if not shown:
        what = "no run has finished an epoch" if records else "there are no runs"
        return f"{path} not written: {what}"
    from matplotlib import colormaps

    datasets = sorted({r.data or "?" for r in shown})
    colours = colormaps["tab10"].colors
    points: dict[tuple[int, float], list[str]] = {}  # one label per point, however many runs
    for r in sorted(shown, key=lambda r: (r.macs, r.best or 0.0, r.folder)):
        points.setdefault((r.macs, 100 * (r.best or 0.0)), []).append(Path(r.folder).name)
    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    try:
        for k, dataset in enumerate(datasets):
            members = [r for r in shown if (r.data or "?") == dataset]
            axes.scatter(
                [r.macs for r in members],
                [100 * r.best for r in members],  # type: ignore[operator]
                color=colours[k % len(colours)],
                marker=MARKERS[k % len(MARKERS)],
                label=dataset,
                alpha=0.85,
                zorder=3,
            )
        for ((macs, accuracy), names), offset in zip(
            points.items(), _label_offsets(len(points)), strict=True
        ):
            axes.annotate(
                _listed(names, 3),
                (macs, accuracy),
                fontsize=7,
                xytext=offset,
                textcoords="offset points",
                ha="left" if offset[0] > 0 else "right",
            )
        axes.set_xscale("log")
        axes.set_xlabel("multiply-adds per image")
        axes.set_ylabel("best accuracy (%)")
        waiting = len(records) - len(shown)
        more = f" ({waiting} more without a finished epoch)" if waiting else ""
        axes.set_title(f"{len(shown)} trained run(s){more}")
        axes.grid(alpha=0.3, which="both")
        axes.legend(title="data", fontsize=8, title_fontsize=8)
        figure.tight_layout()
        _save_figure(figure, path)
    finally:
        plt.close(figure)
    return None


__all__ = [
    "RUN_COLUMNS",
    "EvalReport",
    "RunRecord",
    "checkpoint_path",
    "evaluate_source",
    "find_runs",
    "is_checkpoint_source",
    "load_training_checkpoint",
    "normalization_of",
    "read_run",
    "write_confusion",
    "write_eval_files",
    "write_runs_plot",
]
