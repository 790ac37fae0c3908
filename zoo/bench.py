"""Per-spec figures for comparing architectures: counts and memory (arithmetic) and latency (timed).

Counts come from the compiler's shape inference (no weights allocated), so ``zoo bench --all`` is
quick at any model size. Memory figures are float32 bytes from a liveness analysis of the plan
(:mod:`zoo.memory`: what each layer allocates, what a block's shortcut or branches hold alive,
what autograd saves for backward), so they are peaks, not sums or bounds:

- ``weight_bytes``: parameters and floating-point buffers (BatchNorm running statistics);
- ``activation_bytes``: the activation peak of an inference forward (``torch.no_grad``), input
  included; ``inference_bytes`` = weights + that peak;
- ``train_activation_bytes``: the peak of activations, gradients and workspace over a training
  step (forward, cross-entropy loss, backward, optimizer step); ``train_bytes`` = that peak +
  weights + the ``optimizer``'s state (SGD with momentum unless told otherwise).

:func:`measure_memory` measures the same peaks on a real model (CPU), from the allocations
``torch.profiler`` records, to check the analysis against (``benchmarks/run.py --only memory``).
Latencies are the median and interquartile range of ``repeat`` timed calls after ``warmup``
untimed ones, with the torch thread count they ran with.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from zoo.errors import ExitCode, Problem, ZooError
from zoo.memory import DEFAULT_OPTIMIZER, OPTIMIZERS, MemoryPeaks

if TYPE_CHECKING:  # the rest is imported where used: the CLI's options import this module
    import torch

    from zoo.plan import LayerPlan
    from zoo.spec import ModelSpec
    from zoo.spec.yaml_loader import SpecPath

DEFAULT_WARMUP = 3
"""Untimed calls before timing: the first calls of a model allocate its buffers and let oneDNN
and cuDNN pick and cache their kernels, and take several times as long as the later ones."""
DEFAULT_REPEAT = 10
"""Timed calls: enough for a median and an interquartile range that a noisy neighbour or one
slow call does not move much."""


@dataclass(frozen=True)
class BenchRow:
    """One spec's figures; latencies (and the timing set-up) are ``None`` unless measured."""

    spec: str
    input: tuple[int, ...]
    params: int
    trainable_params: int
    macs: int
    weight_bytes: int
    activation_bytes: int
    inference_bytes: int
    train_activation_bytes: int
    train_bytes: int
    optimizer: str
    latency_ms: float | None = None
    latency_iqr_ms: float | None = None
    train_latency_ms: float | None = None
    train_latency_iqr_ms: float | None = None
    threads: int | None = None
    warmup: int | None = None
    repeat: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = tuple(BenchRow.__dataclass_fields__)
LATENCY_COLUMNS = (
    "latency_ms",
    "latency_iqr_ms",
    "train_latency_ms",
    "train_latency_iqr_ms",
    "threads",
    "warmup",
    "repeat",
)
"""The columns only ``--latency`` fills."""


def measure_spec(
    spec: ModelSpec,
    input_shape: tuple[int, int, int, int] | None = None,
    optimizer: str = DEFAULT_OPTIMIZER,
    threads: int | None = None,
) -> BenchRow:
    """Counts and memory of ``spec`` at ``input_shape`` (N, C, H, W): arithmetic only. The
    memory is for ``threads`` torch threads (``None``: several; see
    :func:`zoo.memory.estimate_memory`)."""
    from zoo.memory import estimate_memory
    from zoo.plan import plan_spec

    batch = input_shape[0] if input_shape else 1
    plan = plan_spec(spec, tuple(input_shape[1:]) if input_shape else None)
    memory = estimate_memory(spec, (batch, *plan.input_shape), optimizer, plan, threads)
    params = plan.root.params
    return BenchRow(
        spec=spec.name,
        input=memory.input,
        params=params,
        trainable_params=params,
        macs=plan.root.macs * batch,
        weight_bytes=memory.weight_bytes,
        activation_bytes=memory.inference_activation_bytes,
        inference_bytes=memory.inference_peak_bytes,
        train_activation_bytes=memory.train_activation_bytes,
        train_bytes=memory.train_peak_bytes,
        optimizer=optimizer,
    )


# --------------------------------------------------------------------------- --input changes
@dataclass(frozen=True)
class ParamChange:
    """A layer whose parameter count depends on the input size (a Linear after a flatten)."""

    path: str
    """Its module path (``fc1``, ``classifier.1``)."""
    type: str
    source: SpecPath
    """Where it, or the block it is in, comes from in the spec."""
    before: int
    """Parameters at the spec's own input."""
    after: int
    """Parameters at the input asked for."""


def input_param_changes(spec: ModelSpec, input_shape: Sequence[int]) -> list[ParamChange]:
    """The layers of ``spec`` whose parameters differ between its own input and ``input_shape``
    ((N,) C, H, W): a network's size should not depend on its input, and when it does (a Linear
    sized by a flatten), an ``--input`` changes the network, not only its activations."""
    from zoo.plan import plan_spec

    chw = tuple(input_shape[-3:])
    own = plan_spec(spec)
    if tuple(own.input_shape) == chw:
        return []
    other = plan_spec(spec, chw)
    changes = []
    # the same spec planned twice: the same layers, in the same order
    for (path, a, source), (other_path, b, _) in zip(
        _walk_sourced(own.root), _walk_sourced(other.root), strict=False
    ):
        if path == other_path and not a.children and a.params != b.params:
            changes.append(ParamChange(path, a.type, source, a.params, b.params))
    return changes


def _walk_sourced(
    plan: LayerPlan, prefix: str = "", source: SpecPath = ()
) -> Iterator[tuple[str, LayerPlan, SpecPath]]:
    """``(module path, plan, nearest spec source)`` of ``plan``'s descendants, in order."""
    for child in plan.children:
        path = prefix + child.name
        here = child.source or source
        yield path, child, here
        yield from _walk_sourced(child, path + ".", here)


def param_change_note(
    spec: ModelSpec, input_shape: Sequence[int], changes: Sequence[ParamChange]
) -> Problem:
    """A located note (``file:line:col: head.2: ...``) naming the layers ``changes`` lists."""
    from zoo.plan import plan_spec
    from zoo.spec.yaml_loader import dotted

    own = plan_spec(spec)
    other = plan_spec(spec, tuple(input_shape[-3:]))
    first = changes[0]
    layers = "; ".join(f"{c.path} ({c.type}) {c.before:,} -> {c.after:,}" for c in changes[:3])
    if len(changes) > 3:
        layers += f"; and {len(changes) - 3} more layers"
    size = "x".join(map(str, input_shape[-3:]))
    own_size = "x".join(map(str, own.input_shape))
    message = (
        f"note: at input {size}, {spec.name} has {other.root.params:,} parameters instead of "
        f"{own.root.params:,} (at its own input {own_size}): {layers}, whose input features "
        "follow the input size. Weights for the spec's own input do not fit this network; an "
        "adaptive pooling before the flatten would keep its size"
    )
    located = getattr(spec, "_located", None)
    if located is not None:
        return located.problem(first.source, message, "input_params")
    return Problem(message, path=dotted(first.source), kind="input_params")


# --------------------------------------------------------------------------- latency
@dataclass(frozen=True)
class Timing:
    """Wall times of repeated calls, in milliseconds."""

    times_ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def iqr_ms(self) -> float:
        """Interquartile range: the spread of the middle half of the times (0 for one call)."""
        if len(self.times_ms) < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.times_ms, n=4, method="inclusive")
        return q3 - q1


def time_calls(
    fn: Callable[[], Any],
    warmup: int = DEFAULT_WARMUP,
    repeat: int = DEFAULT_REPEAT,
    device: str = "cpu",
    on_call: Callable[[str, int], None] | None = None,
) -> Timing:
    """Time ``repeat`` calls of ``fn()`` after ``warmup`` untimed ones (synchronizing on CUDA,
    whose calls return before the work is done); ``on_call(phase, i)`` after each call, with
    phase ``"warm-up"`` or ``"timed"``."""
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for i in range(warmup):
        fn()
        sync()
        if on_call is not None:
            on_call("warm-up", i)
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1000)
        if on_call is not None:
            on_call("timed", i)
    return Timing(tuple(times))


def measure_latency(
    model: torch.nn.Module,
    input_shape: tuple[int, ...],
    device: str = "cpu",
    repeats: int = DEFAULT_REPEAT,
    warmup: int = DEFAULT_WARMUP,
    on_call: Callable[[str, str, int], None] | None = None,
) -> tuple[Timing, Timing]:
    """Forward (eval, no grad) and forward+backward (train) times; ``on_call(mode, phase, i)``
    after each call (mode ``"forward"`` or ``"fwd+bwd"``), for progress."""
    import torch

    x = torch.randn(input_shape, device=device)
    if not any(p.requires_grad for p in model.parameters()):
        x.requires_grad_(True)  # a net with nothing to train still has a backward to time

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def train_step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).sum().backward()

    def reporter(mode: str) -> Callable[[str, int], None] | None:
        if on_call is None:
            return None
        return lambda phase, i: on_call(mode, phase, i)

    model.eval()
    inference = time_calls(forward, warmup, repeats, device, reporter("forward"))
    model.train()
    training = time_calls(train_step, warmup, repeats, device, reporter("fwd+bwd"))
    return inference, training


def with_latency(
    row: BenchRow, forward: Timing, train: Timing, threads: int, warmup: int
) -> BenchRow:
    """``row`` with its latency columns filled in."""
    return BenchRow(
        **{
            **row.to_dict(),
            "latency_ms": forward.median_ms,
            "latency_iqr_ms": forward.iqr_ms,
            "train_latency_ms": train.median_ms,
            "train_latency_iqr_ms": train.iqr_ms,
            "threads": threads,
            "warmup": warmup,
            "repeat": len(forward.times_ms),
        }
    )


def check_latency_memory(row: BenchRow, device: torch.device) -> None:
    """Refuse to time a spec whose forward and backward would not fit on ``device``."""
    from zoo.compiler import free_memory_bytes

    # timing runs no optimizer: weights, and the peak of activations and gradients
    needed = row.weight_bytes + row.train_activation_bytes
    free = free_memory_bytes(device)
    if free is not None and needed > free:
        raise ZooError(
            Problem(
                f"{row.spec} at {'x'.join(map(str, row.input))} needs about {needed / 1e9:,.1f} GB "
                f"to time (weights, activations, gradients), more than the {free / 1e9:,.1f} GB "
                f"free on {device}; use a smaller --input or --batch",
                "zoo",
                kind="memory",
            ),
            ExitCode.USAGE_ERROR,
        )


# --------------------------------------------------------------------------- measured memory
@dataclass(frozen=True)
class MeasuredMemory(MemoryPeaks):
    """Peaks measured on a real model, in the terms of :class:`zoo.memory.MemoryEstimate`: the
    activation peaks are of bytes allocated during an inference forward (its input included) and
    during a training step (input, forward, loss, backward, optimizer step) above the weights and
    the optimizer state, which exist before it."""


def measure_memory(
    model: torch.nn.Module, input_shape: Sequence[int], optimizer: str = DEFAULT_OPTIMIZER
) -> MeasuredMemory:
    """The memory peaks of ``model`` (float32, on the CPU) at ``input_shape`` (N, C, H, W), as
    PyTorch's own CPU allocator reports every allocation and free to ``torch.profiler``
    (``profile_memory=True``): operators' internal workspace (oneDNN's reordered copies) is
    counted, and nothing that is not a tensor (the interpreter, the allocator's caching) is.

    The inference peak is a ``torch.no_grad()`` forward of a freshly allocated input, after one
    warm-up call. The training step is a steady-state ``zero_grad(); cross_entropy(model(x),
    y).backward(); step()`` with ``optimizer`` (:data:`zoo.memory.OPTIMIZERS`), after one
    warm-up step that creates the optimizer's state; its gradients are freed before it starts.
    """
    import torch
    import torch.nn.functional as F

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; one of {', '.join(OPTIMIZERS)}")
    shape = tuple(input_shape)
    tensors = [*model.parameters(), *model.buffers()]
    weight_bytes = sum(t.numel() * t.element_size() for t in tensors if t.is_floating_point())

    model.eval()

    def infer() -> None:
        x = torch.randn(shape)
        with torch.no_grad():
            model(x)

    infer()
    inference = _allocation_peak(infer)

    with torch.no_grad():
        out_shape = model(torch.zeros(shape)).shape
    classes = out_shape[1] if len(out_shape) > 1 else 1
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer | None = None
    if params and optimizer == "adam":
        opt = torch.optim.Adam(params, lr=1e-6)
    elif params:
        opt = torch.optim.SGD(params, lr=1e-6, momentum=0.9 if optimizer == "momentum" else 0)

    def step() -> None:
        x = torch.randn(shape)
        target = torch.randint(0, classes, (shape[0], *out_shape[2:]))
        loss = F.cross_entropy(model(x), target)
        if opt is not None:  # with nothing to train there is no backward
            loss.backward()
            opt.step()
            # the next step's zero_grad frees them, from outside this profile: their sizes
            # would be unknown to it
        del loss

    step()
    if opt is not None:
        opt.zero_grad(set_to_none=True)
    train = _allocation_peak(step)
    state = 0
    if opt is not None:
        opt.zero_grad(set_to_none=True)
        state = sum(
            t.numel() * t.element_size()
            for per_param in opt.state.values()
            for t in per_param.values()
            if isinstance(t, torch.Tensor) and t.numel() > 1  # not Adam's step counts
        )
    return MeasuredMemory(weight_bytes, inference, train, state)


def _allocation_peak(fn: Callable[[], Any]) -> int:
    """The most bytes allocated at once while ``fn()`` runs, above what was allocated before."""
    from torch.profiler import ProfilerActivity, profile

    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # kineto's start/stop chatter on stderr
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted(
        (event.start_ns(), event.nbytes())
        for event in prof.profiler.kineto_results.events()  # type: ignore[union-attr]
        if event.name() == "[memory]"
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak
