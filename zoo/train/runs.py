"""Trained runs: evaluate a checkpoint on a dataset, and read run folders side by side.

:func:`evaluate_source` is ``zoo eval``: a training checkpoint (``last.pt``/``best.pt`` written by
:func:`zoo.train.loop.fit`, or the run folder holding them) brings its spec, its recipe and its
weights, and is evaluated with the recipe's normalization, through the same
:func:`zoo.train.data.make_transforms` pipeline training used (so evaluation can never normalize
differently from training). A bare spec is evaluated with its initialized weights, or the weights
of a file (:mod:`zoo.weights`).

:func:`find_runs` is ``zoo runs``: every run folder under a folder, summarized from its
``metrics.jsonl`` and ``last.pt`` (spec, parameters, MACs, best accuracy, epochs, time, images/s);
a folder that cannot be read is reported and left out. :func:`write_runs_plot` draws accuracy
against multiply-adds.

torch is imported inside the functions (the layering rule), so importing this module is cheap.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from zoo.errors import ExitCode, Problem, ZooError, usage_error
from zoo.files import write_atomically
from zoo.train.run import pick_device

if TYPE_CHECKING:
    from zoo.train.data import DataInfo
    from zoo.train.loop import EvalResult

CHECKPOINT_SUFFIXES = (".pt", ".pth")
RUN_FILES = ("metrics.jsonl", "last.pt")
"""What makes a folder a run folder: both files (either alone is a broken run)."""
CHECKPOINT_NAMES = ("best.pt", "last.pt")
"""The checkpoint ``zoo eval RUN_FOLDER`` takes, the first found."""


def _io_error(message: str, where: str | os.PathLike[str] | None = None) -> ZooError:
    return ZooError(
        Problem(message, None if where is None else str(where), kind="io"), ExitCode.IO_ERROR
    )


# --------------------------------------------------------------------------- devices
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
        raise _io_error("the folder holds no best.pt or last.pt: not a training run", path)
    return path


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
    ``weights``), on ``split`` (``val`` or ``train``) of ``data``. The spec is checked against the
    data first (channels, size, classes: located problems with their fix)."""
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
    from zoo.train.loop import evaluate, read_checkpoint

    if split not in ("val", "train"):
        raise usage_error(f"--split must be val or train, got {split!r}", file="zoo")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise usage_error(f"--batch must be a positive int, got {batch!r}", file="zoo")
    notes: list[str] = []
    recipe: Mapping[str, Any] | None = None
    state: Mapping[str, Any] | None = None
    if is_checkpoint_source(source):
        if weights is not None or overrides:
            raise usage_error(
                "a training checkpoint brings its spec and weights; leave out --weights and --set",
                file="zoo",
            )
        path = checkpoint_path(source)
        saved = read_checkpoint(path)
        if not isinstance(saved.get("spec"), Mapping):
            raise _io_error(
                "the checkpoint holds no spec (trained without one): evaluate the "
                "spec with --weights CHECKPOINT instead",
                path,
            )
        spec = load_spec(saved["spec"])
        recipe, state = saved.get("recipe"), saved["model"]
        source_text = f"{path} (epoch {saved.get('epoch')})"
    else:
        spec = load_spec(source, overrides)
        source_text = str(weights) if weights is not None else "initialized weights"
    info = open_data(data, root=data_dir)
    resize = recipe.get("resize") if isinstance(recipe, Mapping) else None
    info = resized(info, resize)  # the size training resized to, if its recipe did
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
        model.load_state_dict(state, strict=True)
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


# --------------------------------------------------------------------------- run folders
@dataclass
class RunRecord:
    """One run folder, summarized: ``best`` is the best monitored accuracy (``monitor``:
    ``val_acc``, or ``train_acc`` for a run without validation); ``seconds`` the training time of
    all its epochs; ``images_per_s`` the median training speed over its epochs."""

    folder: str
    spec: str
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


def _read_history(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise _io_error(f"cannot read it: {exc.strerror or exc}", path) from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _io_error(f"line {number} is not JSON ({exc.msg})", path) from None
        if not isinstance(row, dict):
            raise _io_error(f"line {number} is not a metrics row", path)
        rows.append(row)
    if not rows:
        raise _io_error("no epoch finished yet (no metrics row)", path)
    return rows


def _read_run_checkpoint(path: Path) -> dict[str, Any]:
    """``last.pt`` memory-mapped: its weights are never read, only what the summary needs."""
    import torch

    from zoo.train.loop import CHECKPOINT_FORMAT, read_checkpoint

    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # a truncated or foreign file: read_checkpoint says what it is
        return read_checkpoint(path)
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise _io_error(f"not a zoo training checkpoint ({CHECKPOINT_FORMAT})", path)
    return data


def read_run(folder: str | os.PathLike[str]) -> RunRecord:
    """Summarize one run folder (``metrics.jsonl`` and ``last.pt``); a missing or unreadable
    file, or a checkpoint without a spec, raises :class:`ZooError` naming it."""
    from zoo.tracing import trace

    folder = Path(folder)
    for name in RUN_FILES:
        if not (folder / name).is_file():
            raise _io_error(f"a broken run: no {name}", folder)
    history = _read_history(folder / "metrics.jsonl")
    saved = _read_run_checkpoint(folder / "last.pt")
    spec = saved.get("spec")
    if not isinstance(spec, Mapping):
        raise _io_error(
            "the checkpoint holds no spec: its parameters and MACs are unknown", folder / "last.pt"
        )
    summary = trace(dict(spec), depth=0)
    recipe = saved.get("recipe") if isinstance(saved.get("recipe"), Mapping) else {}
    speeds = [r["images_per_s"] for r in history if isinstance(r.get("images_per_s"), int | float)]
    planned = recipe.get("epochs")
    return RunRecord(
        folder=str(folder),
        spec=summary.name,
        params=summary.params,
        macs=summary.macs,
        best=saved.get("best_value"),
        best_epoch=saved.get("best_epoch"),
        monitor=str(saved.get("monitor") or "val_acc"),
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
    folder with neither ``metrics.jsonl`` nor ``last.pt`` is no run and is passed over."""
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


def write_runs_plot(records: Sequence[RunRecord], path: Path) -> None:
    """Best accuracy against multiply-adds (log x), one colour and marker per family
    (:func:`zoo.plot.family_of`), each point labelled with its run folder's name."""
    from zoo.plot import MARKERS, family_of

    plt = _pyplot()
    if plt is None:
        raise usage_error("--plot needs matplotlib: pip install 'zoo[plot]'", file="zoo")
    from matplotlib import colormaps

    shown = [r for r in records if r.best is not None and r.macs > 0]
    families = sorted({family_of(r.spec) for r in shown})
    colours = colormaps["tab10"].colors
    figure, axes = plt.subplots(figsize=(7, 4.5))
    try:
        for k, family in enumerate(families):
            members = [r for r in shown if family_of(r.spec) == family]
            axes.scatter(
                [r.macs for r in members],
                [100 * r.best for r in members],  # type: ignore[operator]
                color=colours[k % len(colours)],
                marker=MARKERS[k % len(MARKERS)],
                label=family,
                zorder=3,
            )
            for r in members:
                axes.annotate(
                    Path(r.folder).name,
                    (r.macs, 100 * r.best),
                    fontsize=7,  # type: ignore[operator]
                    xytext=(4, 3),
                    textcoords="offset points",
                )
        axes.set_xscale("log")
        axes.set_xlabel("multiply-adds per image")
        axes.set_ylabel("best accuracy (%)")
        axes.set_title(f"{len(shown)} trained run(s)")
        axes.grid(alpha=0.3, which="both")
        if families:
            axes.legend(fontsize=8)
        figure.tight_layout()
        _save_figure(figure, path)
    finally:
        plt.close(figure)


__all__ = [
    "RUN_COLUMNS",
    "EvalReport",
    "RunRecord",
    "checkpoint_path",
    "evaluate_source",
    "find_runs",
    "is_checkpoint_source",
    "normalization_of",
    "read_run",
    "write_confusion",
    "write_runs_plot",
]
