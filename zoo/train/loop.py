"""The training loop: metrics from the same forward pass, checkpoints, an exact resume.

What it guarantees, whatever recipe and data feed it (:mod:`zoo.train.recipe` and
:mod:`zoo.train.data` build those; this module only takes torch objects):

- **Right metrics.** Training loss and accuracy come from the forward pass that is trained on (no
  second forward), weighted by batch size and divided by the samples seen. They are accumulated on
  the device: the host waits for the device only every ``sync_every`` steps (progress and the
  non-finite check) and once per epoch. Evaluation runs in eval mode under
  ``torch.inference_mode`` and gives per-class accuracy and the confusion matrix.
- **Files.** In ``out_dir``: ``metrics.csv`` and ``metrics.jsonl`` (one row per epoch), ``curves.png``
  (loss and accuracy per epoch; skipped with a note when matplotlib is missing), ``last.pt`` and
  ``best.pt``. Every file is rewritten whole and atomically (:func:`zoo.files.write_atomically`),
  so a crash leaves the previous version, never half a file.
- **Checkpoints** hold the model, optimizer, scheduler, scaler, every RNG state (python, numpy,
  torch, CUDA, the sampler's generator), the epoch, the best metric, the metrics so far, and the
  caller's ``spec`` and ``recipe`` dicts. They load with ``torch.load(weights_only=True)``.
- **Exact resume.** ``resume=True`` continues from ``last.pt``: on the CPU with a seed and
  ``num_workers=0``, 2 epochs + resume 1 gives bitwise the weights and metrics of 3 epochs straight.
  A run stopped mid-epoch (Ctrl-C, SIGTERM, SIGHUP) resumes at the same step: the epoch's data order
  is drawn again from the saved RNG state and the batches already trained on are skipped.
- **Failures.** A non-finite loss stops the run with one :class:`~zoo.errors.ZooError` line naming
  the epoch and step; ``last.pt`` stays the last good one. A signal stops it at the next step
  boundary (never inside an optimizer step), saves ``last.pt`` and raises
  :class:`zoo.files.Interrupted` (exit code ``128 + N``).

torch is imported inside the functions (the layering rule: only zoo.compiler, zoo.nn and
zoo.module_tracing import it at module level), so importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import random
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from zoo.errors import ExitCode, Problem, ZooError, usage_error
from zoo.files import Interrupted, write_atomically

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zoo.train.dist import Distributed

CHECKPOINT_FORMAT = "zoo-train/1"
"""The ``format`` entry of a training checkpoint (``last.pt``, ``best.pt``)."""

METRIC_FIELDS = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "lr",
    "seconds",
    "images_per_s",
    "data_wait",
)
"""The columns of ``metrics.csv`` (and keys of each ``metrics.jsonl`` line), in order.
``data_wait`` is the fraction of the epoch's training time the loop spent waiting for the loader's
next batch (timm's "data time"): near 0, the device never waited on data; large, the input pipeline
is the bottleneck (more ``--workers``)."""

_PROGRESS_SECONDS = 0.2
"""On the CPU, progress is reported at least this often (on a GPU, every ``sync_every`` steps:
reading the sums there waits for the device)."""

Amp = Literal["bf16", "fp16"] | None
_AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}  # torch dtype names (torch loads lazily)


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy (when installed) and torch (CPU and every CUDA device), so a
    CPU run with ``num_workers=0`` repeats bitwise. DataLoader workers derive their seeds from
    torch's generator, so they follow too."""
    import torch

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise usage_error(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(seed % 2**32)  # numpy only takes 32-bit seeds
    torch.manual_seed(seed)  # seeds every CUDA device as well


@dataclass(frozen=True)
class Progress:
    """What the loop tells ``Callbacks.on_progress`` every ``sync_every`` steps (on the CPU, also
    every fifth of a second) and at the end of each epoch. ``loss`` and ``accuracy`` are the
    epoch's running means so far."""

    epoch: int  # 1-based
    epochs: int
    step: int  # steps done in this epoch
    steps: int | None  # steps per epoch (None when the loader has no length)
    loss: float
    accuracy: float
    images_per_s: float
    eta_s: float | None  # seconds left in the whole run, at the current speed
    lr: float


@dataclass(frozen=True)
class EvalResult:
    """Evaluation over a whole loader: mean loss (cross-entropy without label smoothing), accuracy,
    per-class accuracy (``None`` for a class with no sample) and the confusion matrix
    (``confusion[true][predicted]``)."""

    loss: float
    accuracy: float
    samples: int
    per_class: list[float | None]
    confusion: list[list[int]]


@dataclass
class FitResult:
    """What :func:`fit` returns: the metrics of every epoch (resumed ones included), the best
    monitored value and its epoch, and the files written."""

    history: list[dict[str, Any]]
    best_metric: str
    best_value: float | None
    best_epoch: int | None
    out_dir: Path
    notes: list[str] = field(default_factory=list)


class Callbacks:
    """Hooks for progress display; subclass and override what you need (all do nothing here)."""

    def on_progress(self, progress: Progress) -> None:
        """Every ``sync_every`` training steps (on the CPU, also every fifth of a second) and at
        the end of each epoch's training."""

    def on_epoch(self, metrics: dict[str, Any]) -> None:
        """After each epoch, its metrics row (the keys of :data:`METRIC_FIELDS`)."""

    def on_note(self, message: str) -> None:
        """A line for the user (resumed from, curves skipped, interrupted and saved)."""


# -- evaluation -------------------------------------------------------------------------------


def _autocast(device: torch.device, amp: Amp) -> contextlib.AbstractContextManager[Any]:
    if amp is None:
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device.type, dtype=getattr(torch, _AMP_DTYPES[amp]))


def _to_device(batch: Any, device: torch.device, channels_last: bool) -> tuple[Any, Any]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise usage_error("each batch must be a pair (inputs, class indices)")
    x, y = batch
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        import torch

        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


def evaluate(
    model: nn.Module,
    loader: Any,
    *,
    device: torch.device | str = "cpu",
    amp: Amp = None,
    channels_last: bool = False,
    distributed: Distributed | None = None,
) -> EvalResult:
    """Evaluate ``model`` on ``loader`` in eval mode under ``torch.inference_mode``; its training
    mode is restored afterwards. Sums stay on the device until the end (one synchronisation).
    With ``distributed`` each rank evaluates its shard (:meth:`Distributed.eval_sampler`) and the
    sums are all-reduced: every rank gets the whole set's result."""
    import torch

    device = torch.device(device)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    confusion: torch.Tensor | None = None
    try:
        with torch.inference_mode():
            for batch in loader:
                x, y = _to_device(batch, device, channels_last)
                with _autocast(device, amp):
                    logits = model(x)
                logits = logits.float()
                loss_sum += torch.nn.functional.cross_entropy(logits, y, reduction="sum").double()
                classes = logits.shape[1]
                if confusion is None:
                    confusion = torch.zeros(classes * classes, dtype=torch.int64, device=device)
                # one bincount of true*C + predicted fills the whole confusion matrix
                confusion += torch.bincount(
                    y * classes + logits.argmax(1), minlength=classes * classes
                )
    finally:
        model.train(was_training)
    if distributed is not None:  # a rank with an empty shard still learns the class count
        size = distributed.all_reduce(
            torch.tensor(0 if confusion is None else confusion.numel()), "max"
        )
        if confusion is None and int(size):
            confusion = torch.zeros(int(size), dtype=torch.int64, device=device)
            classes = round(int(size) ** 0.5)
        if confusion is not None:
            confusion = distributed.all_reduce(confusion)
            loss_sum = distributed.all_reduce(loss_sum)
    if confusion is None:
        raise usage_error("the evaluation loader yielded no batch: the dataset is empty")
    matrix = confusion.view(classes, classes).cpu()
    samples = int(matrix.sum())
    per_class_total = matrix.sum(1).tolist()
    diagonal = matrix.diagonal().tolist()
    per_class = [d / t if t else None for d, t in zip(diagonal, per_class_total, strict=True)]
    return EvalResult(
        loss=float(loss_sum) / samples,
        accuracy=sum(diagonal) / samples,
        samples=samples,
        per_class=per_class,
        confusion=matrix.tolist(),
    )


# -- RNG state --------------------------------------------------------------------------------


def _sampler_generator(loader: Any) -> torch.Generator | None:
    """The generator that draws ``loader``'s order (the sampler's, else the loader's), if any."""
    sampler = getattr(loader, "sampler", None)
    generator = getattr(sampler, "generator", None)
    return generator if generator is not None else getattr(loader, "generator", None)


def _rng_state(loader: Any) -> dict[str, Any]:
    """Every RNG state a run draws from, as tensors and plain data (loadable with
    ``weights_only=True``: numpy's key array is stored as a tensor)."""
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    with contextlib.suppress(ImportError):
        import numpy as np

        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state["numpy"] = (kind, torch.from_numpy(keys.astype("int64")), pos, has_gauss, cached)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    generator = _sampler_generator(loader)
    if generator is not None:
        state["sampler"] = generator.get_state()
    return state


def _set_rng_state(state: Mapping[str, Any], loader: Any) -> None:
    import torch

    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        with contextlib.suppress(ImportError):
            import numpy as np

            kind, keys, pos, has_gauss, cached = state["numpy"]
            np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator = _sampler_generator(loader)
    if generator is not None and "sampler" in state:
        generator.set_state(state["sampler"])


# -- signals ----------------------------------------------------------------------------------


class _StopFlag:
    """While training, SIGINT, SIGTERM and SIGHUP only set a flag that the loop reads between
    steps, so a stop never lands inside an optimizer step; a second signal stops at once. Handlers
    the program installed itself are left alone, and so is a loop run outside the main thread."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.signum is not None:
            raise Interrupted(signum)
        self.signum = signum

    @contextlib.contextmanager
    def installed(self) -> Iterator[_StopFlag]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {}
        for name, default in (
            ("SIGINT", signal.default_int_handler),
            ("SIGTERM", signal.SIG_DFL),
            ("SIGHUP", signal.SIG_DFL),
        ):
            signum = getattr(signal, name, None)
            if signum is not None and signal.getsignal(signum) == default:
                previous[signum] = signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


# -- files ------------------------------------------------------------------------------------


def _write_bytes(path: Path, data: bytes) -> None:
    write_atomically(path, lambda handle: handle.write(data))


def _write_metrics(out_dir: Path, history: list[dict[str, Any]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=METRIC_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in METRIC_FIELDS})
    _write_bytes(out_dir / "metrics.csv", text.getvalue().encode())
    lines = "".join(json.dumps(row) + "\n" for row in history)
    _write_bytes(out_dir / "metrics.jsonl", lines.encode())


def write_curves(history: list[dict[str, Any]], path: Path) -> str | None:
    """Draw loss and accuracy per epoch (train and, when present, validation) side by side into
    ``path`` (PNG). Returns a note instead when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"{path.name} not drawn: matplotlib is not installed (pip install 'zoo[plot]')"
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    figure, (loss_axes, acc_axes) = plt.subplots(1, 2, figsize=(9, 3.5))
    try:
        for axes, key, title in ((loss_axes, "loss", "loss"), (acc_axes, "acc", "accuracy")):
            for split in ("train", "val"):
                values = [row.get(f"{split}_{key}") for row in history]
                if any(v is not None for v in values):
                    axes.plot(epochs, values, marker="o", markersize=3, label=split)
            axes.set_xlabel("epoch")
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 2.5
            axes.set_title(title)
            axes.grid(alpha=0.3)
            axes.legend()
        figure.tight_layout()

        def save(handle: BinaryIO) -> None:
            figure.savefig(handle, format="png", dpi=120)

        write_atomically(path, save)
    finally:
        plt.close(figure)
    return None


def make_run_folder(path: Path) -> None:
    """Create the run folder ``path`` (and its parents); one that cannot be made (a file in the
    way, no permission) is one located I/O error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ZooError(
            Problem(f"cannot create the run folder: {reason}", str(path), kind="io"),
            ExitCode.IO_ERROR,
        ) from None


WEIGHTS_HINT = "for weights alone: zoo eval SPEC --weights FILE"
"""The fix for a weights file given where a training checkpoint belongs."""


def _not_training_checkpoint(data: Any) -> str:
    """What a file ``torch.load`` read holds instead of a training checkpoint, with the fix."""
    from zoo.weights import FORMAT

    if isinstance(data, Mapping) and data.get("format") == FORMAT:
        what = f"a zoo model checkpoint ({FORMAT}: a spec and its weights, as zoo build --output "
        what += "writes), not a zoo training checkpoint"
    elif isinstance(data, Mapping) and data and "format" not in data:
        what = "a plain state_dict or a foreign checkpoint, not a zoo training checkpoint"
    else:
        what = f"not a zoo training checkpoint ({CHECKPOINT_FORMAT})"
    return f"{what}; {WEIGHTS_HINT}"


def _checkpoint_error(path: Path, why: str) -> ZooError:
    return ZooError(Problem(why, str(path), kind="io"), ExitCode.IO_ERROR)


def read_checkpoint(path: str | os.PathLike[str], *, mmap: bool = False) -> dict[str, Any]:
    """A training checkpoint written by :func:`fit`, read as every checkpoint is
    (:func:`zoo.weights.read_torch_file`: a regular file, ``weights_only``, onto the CPU; ``mmap``
    maps its tensors, for a caller that needs only its other entries). Raises :class:`ZooError`
    (exit code 3) located at ``path`` that says what the file is instead: missing, not a
    PyTorch file, damaged, pickled objects, a state_dict or a zoo model checkpoint (with the
    ``--weights`` fix)."""
    from zoo.weights import read_torch_file

    path = Path(path)
    data = read_torch_file(path, True, 0, _checkpoint_error, mmap=mmap)  # no size limit
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise _checkpoint_error(path, _not_training_checkpoint(data))
    return data


# -- the loop ---------------------------------------------------------------------------------


class _Run:
    """The mutable state of one :func:`fit` call (kept together so saving it is one function)."""

    def __init__(self) -> None:
        self.epoch = 0  # epochs completed
        self.step = 0  # steps done in epoch ``epoch + 1`` (non-zero only mid-epoch)
        self.history: list[dict[str, Any]] = []
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.epoch_rng: dict[str, Any] | None = None  # RNG state when the current epoch began
        self.partial: dict[str, Any] | None = None  # accumulators of a partial epoch


class _TimedBatches:
    """Iterate ``loader`` and add up the seconds spent waiting in its ``next()``.

    The host runs ahead of an accelerator's queue of kernels, so it blocks in ``next()`` only when
    the batch is not ready: the seconds counted here are the ones the device may have starved in.
    """

    def __init__(self, loader: Any):
        self.loader = loader
        self.seconds = 0.0

    def __iter__(self) -> Iterator[Any]:
        batches = iter(self.loader)
        while True:
            start = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            finally:
                self.seconds += time.perf_counter() - start
            yield batch


class _Meter:
    """Training loss and accuracy of one epoch, summed on the device from each step's own forward
    pass; read (a synchronisation) only by :meth:`check` and the properties."""

    def __init__(self, device: torch.device, partial: Mapping[str, Any] | None):
        import torch

        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)
        self.seen = 0
        self.resumed = 0  # samples trained before a mid-epoch resume (not timed in this call)
        # On the CPU there is no device to wait for: plain Python numbers are cheaper than the
        # tensor ops that keep a GPU's sums on the GPU (7 us a step instead of 24), summed in the
        # same float64 order, and moved into the tensors whenever the sums are read.
        self.on_cpu = torch.device(device).type == "cpu"
        self._loss, self._correct, self._bad = 0.0, 0, -1
        if partial is not None:
            self.loss_sum += partial["loss_sum"].to(device)
            self.correct += partial["correct"].to(device)
            self.seen = self.resumed = partial["seen"]

    def add(self, step: int, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        import torch

        n = y.shape[0]
        loss = loss.detach()
        if self.on_cpu:
            value = loss.item()
            with torch.no_grad():
                self._correct += int((logits.argmax(1) == y).sum())
            self._loss += value * n  # a batch's mean loss counts once per sample
            if self._bad < 0 and not math.isfinite(value):
                self._bad = step
            self.seen += n
            return
        with torch.no_grad():
            self.loss_sum += loss.double() * n  # a batch's mean loss counts once per sample
            self.correct += (logits.argmax(1) == y).sum()
            bad = ~torch.isfinite(loss)
            self.first_bad = torch.where(bad & (self.first_bad < 0), step, self.first_bad)
        self.seen += n

    def _flush(self) -> None:
        """Move the CPU path's Python sums into the tensors (before anything reads them)."""
        if self._loss or self._correct or self._bad >= 0:
            self.loss_sum += self._loss
            self.correct += self._correct
            if self._bad >= 0 and int(self.first_bad) < 0:
                self.first_bad.fill_(self._bad)
            self._loss, self._correct, self._bad = 0.0, 0, -1

    def check(
        self, epoch: int, last_path: Path, run: _Run, distributed: Distributed | None = None
    ) -> None:
        """Raise the non-finite-loss error if any step so far had one (on any rank: a collective
        under ``distributed``, so every rank raises together)."""
        import torch

        self._flush()
        first_bad = self.first_bad
        if distributed is not None:  # the earliest bad step of any rank (-1 maps to "none")
            none = torch.iinfo(torch.int64).max
            first_bad = torch.where(first_bad < 0, none, first_bad)
            first_bad = distributed.all_reduce(first_bad.clone(), "min")
            first_bad = torch.where(first_bad == none, -1, first_bad)
        bad_step = int(first_bad)
        if bad_step >= 0:
            raise _non_finite(epoch, bad_step, last_path, run)

    @property
    def loss(self) -> float:
        self._flush()
        return float(self.loss_sum) / max(self.seen, 1)

    @property
    def accuracy(self) -> float:
        self._flush()
        return int(self.correct) / max(self.seen, 1)

    def partial(self) -> dict[str, Any]:
        """The sums so far, for a mid-epoch checkpoint."""
        self._flush()
        return {"loss_sum": self.loss_sum.cpu(), "correct": self.correct.cpu(), "seen": self.seen}

    def reduce(self, distributed: Distributed) -> None:
        """Replace this rank's sums by the sums over every rank (a collective)."""
        import torch

        self._flush()
        counts = torch.tensor([self.seen, self.resumed], dtype=torch.int64)
        counts = distributed.all_reduce(counts).tolist()
        self.seen, self.resumed = int(counts[0]), int(counts[1])
        self.loss_sum = distributed.all_reduce(self.loss_sum.clone())
        self.correct = distributed.all_reduce(self.correct.clone())


def _lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_loader: Any,
    val_loader: Any = None,
    *,
    epochs: int,
    out_dir: str | Path,
    scheduler: Any = None,
    label_smoothing: float = 0.0,
    clip_grad_norm: float | None = None,
    amp: Amp = None,
    channels_last: bool = False,
    device: torch.device | str = "cpu",
    callbacks: Callbacks | None = None,
    spec: Mapping[str, Any] | None = None,
    recipe: Mapping[str, Any] | None = None,
    trained_on: Mapping[str, Any] | None = None,
    resume: bool = False,
    force: bool = False,
    sync_every: int = 50,
    distributed: Distributed | None = None,
) -> FitResult:
    """Train ``model`` for ``epochs`` epochs (in all: a resumed run continues up to it).

    ``scheduler`` (optional) is stepped after every optimizer step. ``label_smoothing`` applies to
    the training loss only (validation loss is plain cross-entropy, comparable across recipes).
    ``clip_grad_norm`` clips the global gradient norm. ``amp`` is ``"bf16"`` or ``"fp16"`` autocast;
    fp16 needs CUDA (its ``GradScaler`` is saved with the checkpoint). ``channels_last`` converts
    the model and every batch. ``best.pt`` is the epoch of best validation accuracy (training
    accuracy without ``val_loader``). An ``out_dir`` that already holds ``last.pt`` is refused
    unless ``resume`` (continue it) or ``force`` (start over). ``sync_every`` is how many steps pass
    between host-device synchronisations (progress and the non-finite check).

    ``spec``, ``recipe`` and ``trained_on`` (plain data) go into every checkpoint, the last as
    its ``data`` entry: the data it trained on (``zoo train`` gives ``{"name": ..., "classes":
    [...]}``, which ``zoo eval`` checks the data it is given against).

    ``distributed`` (:func:`zoo.train.dist.from_env`; default ``None``: one process) trains through
    DistributedDataParallel, all-reduces the metric
    sums, lets only rank 0 write files and call ``callbacks``, and stops on a signal where the
    ranks agree (at ``sync_every`` boundaries); see :mod:`zoo.train.dist`. A training sampler with
    ``set_epoch`` (DistributedSampler) gets it each epoch, with or without ``distributed``.
    """
    import torch

    device = torch.device(device)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise usage_error(f"epochs must be a positive int, got {epochs!r}")
    if amp not in (None, "bf16", "fp16"):
        raise usage_error(f"amp must be None, 'bf16' or 'fp16', got {amp!r}")
    if amp == "fp16" and device.type != "cuda":
        raise usage_error(
            f"amp 'fp16' needs CUDA (a GradScaler keeps its gradients from underflowing); "
            f"use 'bf16' on {device.type}"
        )
    if not 0.0 <= label_smoothing < 1.0:
        raise usage_error(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise usage_error(f"clip_grad_norm must be positive, got {clip_grad_norm!r}")
    if isinstance(sync_every, bool) or not isinstance(sync_every, int) or sync_every < 1:
        raise usage_error(f"sync_every must be a positive int, got {sync_every!r}")
    main = distributed is None or distributed.is_main  # the one process that writes and reports
    callbacks = (callbacks or Callbacks()) if main else Callbacks()
    out = Path(out_dir)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if last_path.exists() and not (resume or force):
        raise usage_error(
            f"{out} already holds a run (last.pt): resume it, or force to start over", file="zoo"
        )
    if main:
        make_run_folder(out)

    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    scaler = torch.amp.GradScaler("cuda") if amp == "fp16" else None
    params = [p for group in optimizer.param_groups for p in group["params"]]
    monitor = "val_acc" if val_loader is not None else "train_acc"
    run = _Run()
    notes: list[str] = []
    rng_after: dict[str, Any] | None = None  # the RNG when a resumed run stopped mid-epoch

    if resume:
        if not last_path.exists():
            raise _checkpoint_error(last_path, "no checkpoint to resume from; start without resume")
        saved = read_checkpoint(last_path)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved["scheduler"] is not None:
            scheduler.load_state_dict(saved["scheduler"])
        if scaler is not None and saved["scaler"] is not None:
            scaler.load_state_dict(saved["scaler"])
        run.epoch, run.step = saved["epoch"], saved["step"]
        run.history = list(saved["history"])
        run.best_value, run.best_epoch = saved["best_value"], saved["best_epoch"]
        run.epoch_rng, run.partial = saved["epoch_rng"], saved["partial"]
        if distributed is not None and run.partial is not None:
            run.step = _resumed_step(saved, train_loader, distributed)
            if not main:  # the saved sums are global: counted once, on rank 0
                run.partial = None
        _set_rng_state(saved["rng"], train_loader)
        rng_after = saved["rng"]
        where = f"epoch {run.epoch + 1} step {run.step}" if run.step else f"epoch {run.epoch}"
        notes.append(f"resumed from {last_path} ({where})")
        callbacks.on_note(notes[-1])
    # wrapped after a resume loaded the weights (DDP broadcasts rank 0's at construction); the
    # optimizer holds the same parameters, checkpoints the unwrapped ``model``
    trained = distributed.wrap(model) if distributed is not None else model

    def checkpoint_bytes() -> bytes:
        state = {
            "format": CHECKPOINT_FORMAT,
            "world_size": distributed.world_size if distributed is not None else 1,
            "epoch": run.epoch,
            "step": run.step,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": _rng_state(train_loader),
            "epoch_rng": run.epoch_rng,
            "partial": run.partial,
            "history": run.history,
            "monitor": monitor,
            "best_value": run.best_value,
            "best_epoch": run.best_epoch,
            "spec": dict(spec) if spec is not None else None,
            "recipe": dict(recipe) if recipe is not None else None,
            "data": dict(trained_on) if trained_on is not None else None,
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    try:
        steps_per_epoch: int | None = len(train_loader)
    except TypeError:
        steps_per_epoch = None
    started = time.perf_counter()
    steps_timed = 0  # steps trained in this call, for the ETA

    def progress(epoch: int, step: int, meter: _Meter, images_per_s: float) -> Progress:
        eta = None
        if steps_per_epoch is not None:
            per_step = (time.perf_counter() - started) / max(steps_timed, 1)
            eta = per_step * ((epochs - epoch) * steps_per_epoch + (steps_per_epoch - step))
        return Progress(
            epoch=epoch,
            epochs=epochs,
            step=step,
            steps=steps_per_epoch,
            loss=meter.loss,
            accuracy=meter.accuracy,
            images_per_s=images_per_s,
            eta_s=eta,
            lr=_lr(optimizer),
        )

    with _StopFlag().installed() as stop:
        while run.epoch < epochs:
            epoch = run.epoch + 1
            if run.step:  # mid-epoch resume: same order, skip what was trained on
                _set_rng_state(run.epoch_rng, train_loader)
            else:
                run.epoch_rng = _rng_state(train_loader)
            skip = run.step
            sampler = getattr(train_loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):  # DistributedSampler: its order is (seed, epoch)
                sampler.set_epoch(epoch)
            meter = _Meter(device, run.partial)
            # the seconds this epoch trained before a mid-epoch stop count in its time
            earlier = float((run.partial or {}).get("seconds", 0.0))
            epoch_start = time.perf_counter()
            window_start, window_seen = epoch_start, 0
            model.train()
            step = 0
            batches = _TimedBatches(train_loader)
            for step, batch in enumerate(batches, 1):
                if step <= skip:
                    if step == skip and rng_after is not None:  # the RNG when the run stopped
                        _set_rng_state(rng_after, train_loader)
                    continue
                x, y = _to_device(batch, device, channels_last)
                with _autocast(device, amp):
                    logits = trained(x)
                    loss = torch.nn.functional.cross_entropy(
                        logits, y, label_smoothing=label_smoothing
                    )
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    if clip_grad_norm is not None:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    if clip_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
                    optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                meter.add(step, loss, logits, y)  # the very forward pass trained on
                window_seen += y.shape[0]
                steps_timed += 1
                # distributed ranks stop only where they agree: at the sync boundaries
                signum = stop.signum if distributed is None else None
                # on the CPU reading the sums costs nothing: report by the clock as well
                due = (
                    meter.on_cpu
                    and distributed is None
                    and time.perf_counter() - window_start >= _PROGRESS_SECONDS
                )
                if step % sync_every == 0 or signum is not None or due:
                    meter.check(epoch, last_path, run, distributed)  # the synchronisation point
                    if distributed is not None:
                        signum = _agreed_signal(stop.signum, distributed)
                    now = time.perf_counter()
                    images_per_s = window_seen / max(now - window_start, 1e-9)
                    window_start, window_seen = now, 0
                    callbacks.on_progress(progress(epoch, step, meter, images_per_s))
                if distributed is None:  # a signal may have come during the progress callback
                    signum = stop.signum
                if signum is not None:
                    run.step = step
                    if distributed is not None:
                        meter.reduce(distributed)  # the checkpoint holds the global sums
                    run.partial = meter.partial()
                    run.partial["seconds"] = earlier + time.perf_counter() - epoch_start
                    if main:
                        _write_bytes(last_path, checkpoint_bytes())
                    message = (
                        f"interrupted ({signal.Signals(signum).name}) at epoch {epoch} "
                        f"step {step}: saved {last_path}; resume to continue"
                    )
                    callbacks.on_note(message)
                    raise Interrupted(signum)
            if distributed is not None:
                meter.reduce(distributed)
            if meter.seen == 0:
                raise usage_error("the training loader yielded no batch: the dataset is empty")
            meter.check(epoch, last_path, run, distributed)
            elapsed = time.perf_counter() - epoch_start  # this call's part of the epoch
            rate = (meter.seen - meter.resumed) / max(elapsed, 1e-9)
            if step > skip:
                callbacks.on_progress(progress(epoch, step, meter, rate))
            row: dict[str, Any] = {
                "epoch": epoch,
                "train_loss": meter.loss,
                "train_acc": meter.accuracy,
                "val_loss": None,
                "val_acc": None,
                "lr": _lr(optimizer),
                "seconds": earlier + elapsed,
                "images_per_s": rate,
                "data_wait": min(batches.seconds / max(elapsed, 1e-9), 1.0),
            }
            if val_loader is not None:
                result = evaluate(
                    model,
                    val_loader,
                    device=device,
                    amp=amp,
                    channels_last=channels_last,
                    distributed=distributed,
                )
                row["val_loss"], row["val_acc"] = result.loss, result.accuracy
            run.history.append(row)
            run.epoch, run.step, run.partial = epoch, 0, None
            value = row[monitor]
            improved = run.best_value is None or value > run.best_value
            if improved:
                run.best_value, run.best_epoch = value, epoch
            if main:
                data = checkpoint_bytes()
                _write_bytes(last_path, data)
                if improved:
                    _write_bytes(best_path, data)
                _write_metrics(out, run.history)
                note = write_curves(run.history, out / "curves.png")
                if note is not None and note not in notes:
                    notes.append(note)
                    callbacks.on_note(note)
            callbacks.on_epoch(row)
            signum = stop.signum
            if distributed is not None:
                signum = _agreed_signal(signum, distributed)
            if signum is not None and run.epoch < epochs:  # came during evaluation or saving
                callbacks.on_note(
                    f"interrupted ({signal.Signals(signum).name}) after epoch {epoch}: "
                    f"saved {last_path}; resume to continue"
                )
                raise Interrupted(signum)

    return FitResult(run.history, monitor, run.best_value, run.best_epoch, out, notes)


def _agreed_signal(signum: int | None, distributed: Distributed) -> int | None:
    """The signal to stop on when any rank received one (a collective), else ``None``."""
    import torch

    voted = distributed.all_reduce(torch.tensor(signum or 0), "max")
    return int(voted) or None


def _resumed_step(saved: Mapping[str, Any], loader: Any, distributed: Distributed) -> int:
    """The step to resume a partial epoch at under ``distributed``. With the saved world size it
    is the saved step; with another one, the samples already trained on (the global ``seen``)
    divided by this run's global batch, which must divide it (keep the global batch when changing
    the world size: the sampler's permutation does not depend on it)."""
    saved_world = saved.get("world_size", 1)
    if saved_world == distributed.world_size:
        return int(saved["step"])
    batch = getattr(loader, "batch_size", None)
    seen = int(saved["partial"]["seen"])
    if not batch or seen % (batch * distributed.world_size):
        raise usage_error(
            f"cannot resume mid-epoch with {distributed.world_size} processes: the checkpoint "
            f"stopped after {seen} samples with {saved_world}, not a multiple of the global batch "
            f"({batch} x {distributed.world_size}); keep the global batch, or resume with "
            f"{saved_world} processes"
        )
    return seen // (batch * distributed.world_size)


def _non_finite(epoch: int, step: int, last_path: Path, run: _Run) -> ZooError:
    kept = (
        f"{last_path} (epoch {run.epoch}) is the last good checkpoint"
        if run.epoch
        else "no checkpoint was written yet"
    )
    message = (
        f"the training loss is not finite (nan or inf) at epoch {epoch} step {step}: stopped; "
        f"{kept}; lower the learning rate, clip gradients or use a warm-up"
    )
    return ZooError(Problem(message, "zoo", kind="non_finite"), ExitCode.SPEC_ERROR)


__all__ = [
    "CHECKPOINT_FORMAT",
    "METRIC_FIELDS",
    "Callbacks",
    "EvalResult",
    "FitResult",
    "Progress",
    "evaluate",
    "fit",
    "read_checkpoint",
    "seed_everything",
    "write_curves",
]
