"""``zoo train``: a spec, a dataset and a recipe in, a trained run folder out.

:func:`train` joins the pieces: it loads the spec (with ``--set`` overrides) and the recipe (the
shipped one named after the dataset by default), opens the data, checks the spec against it BEFORE
any step (every mismatch reported at once, each located at the spec's line with its fix), settles
the ONE normalization of training and evaluation, builds the loaders, the model, the optimizer and
the schedule, picks the device (``auto``: cuda, then mps, then cpu) with the recipe's mixed
precision and ``channels_last`` on CUDA, and hands everything to :func:`zoo.train.loop.fit`.

The run folder (default ``runs/<spec>-<data>-<timestamp>``) holds what the loop writes
(``metrics.csv``, ``metrics.jsonl``, ``curves.png``, ``last.pt``, ``best.pt``) and:

- ``spec.yaml`` and ``recipe.yaml``: the resolved spec and recipe (overrides applied);
- ``run.json``: the data, its classes, the normalization used (its numbers, also when computed),
  the device, the parameter count and the command's options.

The checkpoints hold the spec and the recipe as dicts; the recipe dict carries one more key,
``normalization`` (``{"mean": [...], "std": [...]}``), so an evaluation normalizes exactly as
training did even when the statistics were computed from the training set.

``resume=True`` continues ``<out>/last.pt``; the spec and recipe must be those it was started
with (else one error listing each field that differs).

torch is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import ExitCode, Problem, ZooError, usage_error
from zoo.files import Interrupted
from zoo.train.loop import Callbacks, Progress

if TYPE_CHECKING:
    import torch
    from rich.console import Console

    from zoo.spec.schema import ModelSpec
    from zoo.train.loop import FitResult
    from zoo.train.recipe import RecipeSpec

DEVICES = ("auto", "cpu", "cuda", "mps")
"""What ``device`` may be (or any torch device string, such as ``cuda:1``)."""


@dataclass
class TrainResult:
    """What :func:`train` returns: the loop's result and what was trained on what, where."""

    fit: FitResult
    out_dir: Path
    spec_name: str
    data: str
    device: str
    params: int
    normalization: dict[str, list[float]]
    notes: list[str] = field(default_factory=list)
    is_main: bool = True  # False on every rank of a torchrun run but rank 0 (which reports)

    def summary(self) -> str:
        """One line: the best monitored accuracy, its epoch, the run folder."""
        fit = self.fit
        epochs = len(fit.history)
        best = (
            f"best {fit.best_metric} {fit.best_value:.2%} at epoch {fit.best_epoch}"
            if fit.best_value is not None
            else "no epoch finished"
        )
        return (
            f"{self.spec_name} on {self.data}: {best} of {epochs} "
            f"({self.params:,} parameters, {self.device}); run folder {self.out_dir}"
        )


# --------------------------------------------------------------------------- pieces
def pick_device(device: str | None) -> torch.device:
    """``auto`` (or None): cuda when there is one, else mps, else cpu; anything else is checked by
    :func:`zoo.compiler.resolve_device` (a device this machine lacks is a usage error)."""
    import torch

    from zoo.compiler import resolve_device

    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if str(device).partition(":")[0] not in ("cpu", "cuda", "mps"):  # meta has no real tensors
        raise usage_error(
            f"{device!r} is not a device to train on; use auto, cpu, cuda, cuda:N or mps", "device"
        )
    return resolve_device(device)


def _memory_optimizer(recipe: Any) -> str:
    """The optimizer of ``zoo.memory`` whose state the recipe's keeps as many copies of."""
    kind = recipe.optimizer.type
    if kind in ("adam", "adamw"):
        return "adam"
    if kind == "sgd" and not recipe.optimizer.momentum:
        return "sgd"
    return "momentum"  # SGD with momentum; RMSprop (its square averages)


def _training_shape(spec: ModelSpec, batch: int) -> tuple[int, int, int, int]:
    size = spec.input.size
    height, width = (size, size) if isinstance(size, int) else size
    return batch, spec.input.channels, height, width


def _batch_that_fits(spec: ModelSpec, recipe: Any, free: int) -> int:
    """The largest batch whose training step fits in ``free`` bytes, by zoo.memory's estimate:
    weights and optimizer state once, activations per sample."""
    from zoo.memory import estimate_memory

    one = estimate_memory(spec, _training_shape(spec, 1), _memory_optimizer(recipe))
    fixed = one.weight_bytes + one.optimizer_bytes
    return max(0, (free - fixed) // max(1, one.train_activation_bytes))


def _fit_advice(fits: int) -> str:
    if fits:
        return f"a batch of about {fits} fits (--batch {fits})"
    return "not even one sample fits: use a smaller input or model"


def _check_training_memory(
    spec: ModelSpec, recipe: Any, batch: int, device: torch.device, force: bool
) -> None:
    """Refuse, before anything is allocated, a batch whose training step would not fit in the
    device's free memory (zoo.memory's estimate of the peak), naming the largest batch that would:
    out of memory at 224x224 on a small GPU is otherwise a crash minutes in."""
    from zoo.compiler import free_memory_bytes
    from zoo.memory import estimate_memory

    free = free_memory_bytes(device)
    if free is None or force:
        return
    optimizer = _memory_optimizer(recipe)
    estimate = estimate_memory(spec, _training_shape(spec, batch), optimizer)
    if estimate.train_peak_bytes <= free:
        return
    raise usage_error(
        f"a training step of {spec.name} at batch {batch} needs about "
        f"{estimate.train_peak_bytes / 1e9:,.1f} GB ({_OPTIMIZER_WORDS[optimizer]}), more than "
        f"the {free / 1e9:,.1f} GB free on {device}; "
        f"{_fit_advice(_batch_that_fits(spec, recipe, free))}, or --force to try anyway",
        file="zoo",
    )


def _out_of_memory(spec: ModelSpec, recipe: Any, batch: int, device: torch.device) -> ZooError:
    """The one line for a run that ran out of memory anyway (another process took memory, or
    --force): the batch that would fit in the memory the device has now, by the estimate."""
    import torch

    from zoo.compiler import free_memory_bytes

    if device.type == "cuda":
        torch.cuda.empty_cache()  # what this run held is free again: measure the device itself
    free = free_memory_bytes(device)
    advice = (
        _fit_advice(_batch_that_fits(spec, recipe, free))
        if free is not None
        else "use a smaller --batch"
    )
    return usage_error(
        f"{spec.name} ran out of memory on {device} at batch {batch}; {advice}. last.pt keeps "
        "the last finished epoch (--resume continues from it)",
        file="zoo",
    )


_OPTIMIZER_WORDS = {
    "sgd": "plain SGD",
    "momentum": "with momentum state",
    "adam": "Adam's two moments",
}


def _load_spec(spec: Any, overrides: Sequence[str]) -> tuple[ModelSpec, str]:
    """The validated spec and its resolved YAML (the text written to ``spec.yaml``)."""
    from zoo.spec.load import resolve, resolved_yaml, validate
    from zoo.spec.schema import ModelSpec

    source = (
        spec.model_dump(mode="json", exclude_unset=True) if isinstance(spec, ModelSpec) else spec
    )
    located = resolve(source, overrides)
    return validate(located), resolved_yaml(located)


def _recipe_source(recipe: Any, data: str) -> Any:
    """The recipe to load: the one given, else the shipped recipe named after the dataset."""
    from zoo.train.data import _canonical, check_data_source
    from zoo.train.recipe import shipped_recipe_names

    if recipe is not None:
        return recipe
    key = _canonical(str(data)) if not isinstance(data, Path) else None
    if key is not None and key in shipped_recipe_names():
        return key
    check_data_source(data)  # a misspelt name is no dataset and no folder: say so, not "no recipe"
    raise usage_error(
        f"no shipped recipe for {data!s}: give one with --recipe (a shipped name: "
        f"{', '.join(shipped_recipe_names())}, or a .yaml file)",
        "no_recipe",
    )


def _recipe_overrides(
    recipe_overrides: Sequence[str], epochs: int | None, batch: int | None, lr: float | None
) -> list[str]:
    """``--epochs``/``--batch``/``--lr`` as recipe overrides, so they are validated (and checked
    against the rest of the recipe, e.g. a milestone past the last epoch) like ``--recipe-set``."""
    out = list(recipe_overrides)
    for key, value in (("epochs", epochs), ("batch_size", batch), ("lr", lr)):
        if value is not None:
            out.append(f"{key}={value!r}")
    return out


def _normalization(recipe: RecipeSpec, info: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The one normalization of training and evaluation: named, computed, or none (mean 0, std 1)."""
    from zoo.train.data import compute_normalization
    from zoo.train.recipe import normalization_stats

    if recipe.normalize == "computed":
        return compute_normalization(info.train)
    stats = normalization_stats(recipe.normalize)
    if stats is None:
        return (0.0,) * info.channels, (1.0,) * info.channels
    return stats


def _default_out(spec_name: str, data: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    label = Path(str(data)).name or str(data)
    return Path("runs") / f"{spec_name}-{label}-{stamp}"


def _differences(saved: Any, now: Any, path: str = "") -> list[str]:
    """``path: saved X, now Y`` for every leaf where two plain-data trees differ."""
    if isinstance(saved, Mapping) and isinstance(now, Mapping):
        out: list[str] = []
        for key in dict.fromkeys([*saved, *now]):
            sub = f"{path}.{key}" if path else str(key)
            if key not in saved or key not in now:
                out.append(
                    f"{sub}: {saved.get(key, 'missing')!r} then, {now.get(key, 'missing')!r} now"
                )
            else:
                out.extend(_differences(saved[key], now[key], sub))
        return out
    if isinstance(saved, list | tuple) and isinstance(now, list | tuple) and len(saved) == len(now):
        return [
            d
            for i, (a, b) in enumerate(zip(saved, now, strict=True))
            for d in _differences(a, b, f"{path}.{i}")
        ]
    return [] if saved == now else [f"{path}: {saved!r} then, {now!r} now"]


def _check_resume(last: Path, spec: dict[str, Any], recipe: dict[str, Any]) -> None:
    """Refuse to resume a run with another spec or recipe than it was started with."""
    from zoo.train.loop import read_checkpoint

    if not last.exists():
        raise ZooError(
            Problem(
                "no run to resume here (no last.pt); leave out --resume to start one",
                str(last.parent),
                kind="io",
            ),
            ExitCode.IO_ERROR,
        )
    saved = read_checkpoint(last)
    problems = [
        Problem(
            f"--resume continues the run's own {what}, but {diff}; train with the same "
            f"options, or start a new run (another --out)",
            str(last),
            kind="resume",
        )
        for what, before, now in (
            ("spec", saved.get("spec"), spec),
            ("recipe", saved.get("recipe"), recipe),
        )
        for diff in _differences(before or {}, now)
    ]
    if (saved.get("recipe") or {}).get("epochs") != recipe.get("epochs"):
        problems.append(
            Problem(
                "a run's learning-rate schedule is laid out over its epochs, so a longer or "
                "shorter run is a new one: train it with another --out (or --force here)",
                str(last),
                kind="resume",
            )
        )
    if problems:
        raise ZooError(problems, ExitCode.USAGE_ERROR)


_RUN_FILES = frozenset(
    {"spec.yaml", "recipe.yaml", "run.json", "metrics.csv", "metrics.jsonl", "curves.png"}
)
"""What a run folder holds before its first ``last.pt`` (a run stopped in its first epoch)."""


def _check_new_run_folder(out_dir: Path) -> None:
    """Refuse, before anything is loaded, a folder a new run cannot start in: one that holds a
    run (``last.pt``), is a file, or already holds things that are not a run's (a new run writes
    ``metrics.csv``, ``run.json``... into it)."""
    if (out_dir / "last.pt").exists():
        raise usage_error(
            f"{out_dir} already holds a run (last.pt): --resume to continue it, --force to "
            "start over, or another --out",
            file="zoo",
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise ZooError(
            Problem("cannot create the run folder: a file is in the way", str(out_dir), kind="io"),
            ExitCode.IO_ERROR,
        )
    if not out_dir.is_dir():
        return
    try:
        others = sorted(p.name for p in out_dir.iterdir() if p.name not in _RUN_FILES)
    except OSError as exc:
        raise ZooError(
            Problem(f"cannot read the run folder: {exc.strerror or exc}", str(out_dir), kind="io"),
            ExitCode.IO_ERROR,
        ) from None
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise usage_error(
            f"{out_dir} is not empty ({shown}) and holds no run: give a new or empty folder "
            "(--out), or --force to write the run into it",
            file="zoo",
        )


def _write_text(path: Path, text: str) -> None:
    from zoo.files import write_atomically

    data = text.encode()
    write_atomically(path, lambda handle: handle.write(data))


# --------------------------------------------------------------------------- train
def train(
    spec: Any,
    data: str | os.PathLike[str],
    recipe: Any = None,
    overrides: Sequence[str] = (),
    recipe_overrides: Sequence[str] = (),
    epochs: int | None = None,
    batch: int | None = None,
    lr: float | None = None,
    device: str | None = "auto",
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    workers: int | None = None,
    val_fraction: float | None = None,
    compile: bool = False,
    callbacks: Callbacks | None = None,
    force: bool = False,
) -> TrainResult:
    """Train ``spec`` (a name, a YAML path, a mapping or a ModelSpec, with ``overrides``) on
    ``data`` (``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100`` under ``data_dir``, or an image
    folder) with ``recipe`` (default: the shipped recipe named after the dataset), whose fields
    ``recipe_overrides``, ``epochs``, ``batch`` and ``lr`` override. Writes the run folder ``out``
    (default ``runs/<spec>-<data>-<timestamp>``; one holding a run is refused unless ``resume`` or
    ``force``). ``workers`` defaults to 0 on the CPU (exact, repeatable runs; the model's compute
    takes the cores) and to ``min(8, cpus)`` on an accelerator. Raises :class:`ZooError`."""
    import torch

    import zoo
    from zoo.train.data import (
        check_spec_against_data,
        make_loaders,
        make_transforms,
        open_data,
        resized,
    )
    from zoo.train.loop import fit, make_run_folder, seed_everything
    from zoo.train.recipe import (
        build_augmentation,
        build_optimizer,
        build_scheduler,
        resolve_recipe,
        validate_recipe,
    )

    if resume and force:
        raise usage_error("--resume continues a run and --force starts it over: give one")
    if resume and out is None:
        raise usage_error("--resume needs the run folder to continue: give --out DIR")
    if workers is not None and workers < 0:
        raise usage_error(f"workers must be >= 0, got {workers}")
    seed_everything(seed)  # validates the seed too
    model_spec, spec_yaml = _load_spec(spec, overrides)
    if resume and recipe is None and (Path(out) / "recipe.yaml").is_file():
        recipe = Path(out) / "recipe.yaml"  # a resumed run goes on with its own recipe
    recipe_spec = validate_recipe(
        resolve_recipe(
            _recipe_source(recipe, str(data)),
            _recipe_overrides(recipe_overrides, epochs, batch, lr),
        )
    )
    from zoo.train import dist

    # under torchrun (`zoo train --nproc-per-node N`): this process is one rank of the run
    ranks = dist.from_env(device=device or "auto") if dist.launched() else None
    target = ranks.device if ranks is not None else pick_device(device)
    main = ranks is None or ranks.is_main  # only rank 0 writes files and reports
    if target.type == "cuda":
        # every batch has one shape: let cuDNN time its convolution algorithms once and keep the
        # fastest (as timm's train script does); GPU runs are not bitwise repeatable anyway
        torch.backends.cudnn.benchmark = True
    if out is not None and not (resume or force):  # before the data is read and measured
        _check_new_run_folder(Path(out))
    info = open_data(data, root=data_dir, download=download, val_fraction=val_fraction, seed=seed)
    info = resized(info, recipe_spec.resize)  # what the spec sees is the resized images
    problems = check_spec_against_data(model_spec, info)
    if problems:  # all of them at once, before any step
        raise ZooError(problems)

    out_dir = Path(out) if out is not None else _default_out(model_spec.name, info.name)
    spec_dict = model_spec.model_dump(mode="json", exclude_unset=True)
    mean, std = _normalization(recipe_spec, info)
    normalization = {"mean": list(mean), "std": list(std)}
    recipe_dict = {
        **recipe_spec.model_dump(mode="json", exclude_unset=True),
        "normalization": normalization,
    }
    if resume:  # needs the normalization, computed from the data
        _check_resume(out_dir / "last.pt", spec_dict, recipe_dict)

    height = (
        model_spec.input.size
        if isinstance(model_spec.input.size, int)
        else model_spec.input.size[0]
    )
    augmentation = build_augmentation(recipe_spec, height)
    train_tf, eval_tf = make_transforms(
        mean, std, augmentation, resize=recipe_spec.resize, channels=info.channels
    )
    if workers is None:
        workers = 0 if target.type == "cpu" else min(8, os.cpu_count() or 1)
    # The shuffling order has a generator of its own (saved in checkpoints, restored on resume);
    # the loader's draws the workers' base seed, once per epoch without persistent workers and
    # once per run with them: sharing one generator would make the order after a resume depend
    # on the worker count. Neither touches the global RNG that dropout and augmentation draw on.
    from torch.utils.data import RandomSampler

    generator = torch.Generator().manual_seed(seed)
    batch_size = recipe_spec.batch_size  # the global batch: split evenly among the ranks
    samplers: dict[str, Any] = {
        "sampler": RandomSampler(info.train, generator=torch.Generator().manual_seed(seed))
    }
    if ranks is not None:
        if batch_size % ranks.world_size:
            raise usage_error(
                f"batch_size {batch_size} does not split evenly among {ranks.world_size} "
                "processes; give a multiple of the number of processes (--batch)",
                file="zoo",
            )
        batch_size //= ranks.world_size
        samplers = {
            "sampler": ranks.train_sampler(info.train, seed=seed),
            "val_sampler": ranks.eval_sampler(info.val),
        }
    # a last batch of one sample breaks BatchNorm in training mode; drop the ragged end then
    drop_last = len(info.train) > batch_size and len(info.train) % batch_size == 1
    train_loader, val_loader = make_loaders(
        info,
        batch_size,
        train_tf,
        eval_tf,
        workers=workers,
        pin_memory=target.type == "cuda",
        generator=generator,
        drop_last=drop_last,
        **samplers,
    )
    _check_training_memory(model_spec, recipe_spec, batch_size, target, force)
    model = zoo.build(model_spec, device=target)
    params = sum(p.numel() for p in model.parameters())
    optimizer = build_optimizer(recipe_spec, model)
    scheduler = build_scheduler(recipe_spec, optimizer, len(train_loader))
    if compile:
        # compiled in place: the state_dict keys stay the model's own (no "_orig_mod." prefix)
        model.compile()

    if main:
        make_run_folder(out_dir)
        _write_text(out_dir / "spec.yaml", spec_yaml)
        _write_text(out_dir / "recipe.yaml", _recipe_yaml(recipe_spec))
    run_info = {
        "spec": model_spec.name,
        "data": info.name,
        "data_description": info.description,
        "classes": list(info.classes),
        "train_samples": len(info.train),
        "val_samples": len(info.val),
        "normalization": normalization,
        "device": str(target),
        "params": params,
        "seed": seed,
        "val_fraction": val_fraction,  # with the seed: the split of a folder without val/
        "workers": workers,
        "compile": compile,
        "precision": recipe_spec.precision,
        "channels_last": target.type == "cuda",
    }
    if ranks is not None:
        run_info["world_size"] = ranks.world_size
    if main:
        _write_text(out_dir / "run.json", json.dumps(run_info, indent=2) + "\n")
    notes = list(info.notes)
    for note in notes:
        if callbacks is not None and main:
            callbacks.on_note(note)
    amp = None if recipe_spec.precision == "off" else recipe_spec.precision
    try:
        result = fit(
            model,
            optimizer,
            train_loader,
            val_loader,
            epochs=recipe_spec.epochs,
            out_dir=out_dir,
            scheduler=scheduler,
            label_smoothing=recipe_spec.label_smoothing,
            clip_grad_norm=recipe_spec.clip_grad_norm,
            amp=amp,
            channels_last=target.type == "cuda",
            device=target,
            callbacks=callbacks,
            spec=spec_dict,
            recipe=recipe_dict,
            trained_on={"name": info.name, "classes": list(info.classes)},
            resume=resume,
            force=force,
            distributed=ranks,
        )
    except torch.OutOfMemoryError:
        raise _out_of_memory(model_spec, recipe_spec, recipe_spec.batch_size, target) from None
    except (Interrupted, ZooError):
        # every rank stops here together (a signal or a non-finite loss is agreed on by a
        # collective), so closing is safe; an open group meets the interpreter's exit instead
        if ranks is not None:
            ranks.close()
        raise
    if ranks is not None:
        ranks.close()
    return TrainResult(
        result,
        out_dir,
        model_spec.name,
        info.name,
        str(target),
        params,
        normalization,
        notes + result.notes,
        is_main=main,
    )


def _recipe_yaml(recipe: RecipeSpec) -> str:
    import yaml

    # no `$schema` line: a run folder can be anywhere, and this file is a record, not a draft
    header = "# the resolved recipe this run trained with (--resume reads it)\n"
    body = yaml.safe_dump(
        recipe.model_dump(mode="json", exclude_unset=True), sort_keys=False, width=100
    )
    return header + body


# --------------------------------------------------------------------------- progress display
class ConsoleProgress(Callbacks):
    """A rich progress bar per epoch on ``console`` (stderr) when it is a terminal: loss,
    accuracy, images/s and the run's ETA; one line per finished epoch; the loop's notes as plain
    lines."""

    def __init__(self, console: Console):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as Bar

        self.console = console
        self.bar = Bar(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            console=console,
            transient=True,
        )
        self.task: Any = None
        self.epoch = 0

    def __enter__(self) -> ConsoleProgress:
        return self  # the bar starts with the first step: an error before it leaves no blank line

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.bar.stop()

    def on_progress(self, progress: Progress) -> None:
        if not self.console.is_terminal:  # a bar in a log is noise: the epoch lines say it all
            return
        eta = "" if progress.eta_s is None else f"  ETA {_duration(progress.eta_s)}"
        stats = (
            f"loss {progress.loss:.4f}  acc {progress.accuracy:.2%}  "
            f"{progress.images_per_s:,.0f} img/s{eta}"
        )
        label = f"{progress.epoch}/{progress.epochs}"
        if self.task is None:
            self.bar.start()
        if self.task is None or progress.epoch != self.epoch:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.task = self.bar.add_task("", total=progress.steps, epoch=label, stats=stats)
            self.epoch = progress.epoch
        self.bar.update(self.task, completed=progress.step, epoch=label, stats=stats)

    def on_epoch(self, metrics: dict[str, Any]) -> None:
        val = (
            ""
            if metrics.get("val_acc") is None
            else f"  val loss {metrics['val_loss']:.4f}  val acc {metrics['val_acc']:.2%}"
        )
        # worth a user's attention only when the input pipeline holds the training back
        wait = metrics.get("data_wait") or 0.0
        waited = f"  waiting on data {wait:.0%} (more --workers?)" if wait >= 0.1 else ""
        self.console.print(
            f"epoch {metrics['epoch']}: train loss {metrics['train_loss']:.4f}  "
            f"acc {metrics['train_acc']:.2%}{val}  {metrics['images_per_s']:,.0f} img/s  "
            f"{_duration(metrics['seconds'])}{waited}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    def on_note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False, soft_wrap=True)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


__all__ = ["DEVICES", "ConsoleProgress", "TrainResult", "pick_device", "train"]
