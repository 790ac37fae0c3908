"""Per-spec figures for comparing architectures: counts and memory (arithmetic) and latency (timed).

Counts come from the compiler's shape inference (no weights allocated), so ``zoo bench --all`` is
quick at any model size. Memory figures are float32 estimates:

- ``weight_bytes``: parameters and buffers (BatchNorm running statistics) x 4 bytes;
- ``activation_bytes``: inference peak, the largest input + output pair of any one layer (what a
  sequential forward must hold at once). The tensors a block holds meanwhile (a residual block's
  input, kept for its shortcut; a concat's finished branches) are not included, so for ResNets and
  Inception nets the true peak is up to one or two feature maps more;
- ``train_activation_bytes``: every layer's output kept for the backward pass (an upper-bound style
  estimate: in-place ReLUs and shared buffers make the real figure smaller).
"""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from zoo.errors import ExitCode, Problem, ZooError
from zoo.plan import LayerPlan, plan_spec
from zoo.shapes import Shape
from zoo.spec import ModelSpec

if TYPE_CHECKING:
    import torch

FLOAT_BYTES = 4


@dataclass(frozen=True)
class BenchRow:
    """One spec's figures; latencies are ``None`` unless measured."""

    spec: str
    input: tuple[int, ...]
    params: int
    trainable_params: int
    macs: int
    weight_bytes: int
    activation_bytes: int
    train_activation_bytes: int
    latency_ms: float | None = None
    train_latency_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = tuple(BenchRow.__dataclass_fields__)


def _numel(shape: Shape, batch: int) -> int:
    n = batch
    for d in shape:
        n *= d
    return n


def _leaves(plan: LayerPlan) -> list[LayerPlan]:
    if not plan.children:
        return [plan]
    return [leaf for child in plan.children for leaf in _leaves(child)]


def measure_spec(spec: ModelSpec, input_shape: tuple[int, int, int, int] | None = None) -> BenchRow:
    """Counts and memory estimates of ``spec`` at ``input_shape`` (N, C, H, W): arithmetic only."""
    batch = input_shape[0] if input_shape else 1
    chw = tuple(input_shape[1:]) if input_shape else None
    plan = plan_spec(spec, chw)
    leaves = _leaves(plan.root)
    shapes = [plan.input_shape] + [leaf.out for leaf in leaves]
    peak = max(_numel(a, batch) + _numel(b, batch) for a, b in itertools.pairwise(shapes))
    saved = sum(_numel(leaf.out, batch) for leaf in leaves)
    params = plan.root.params
    return BenchRow(
        spec=spec.name,
        input=(batch, *plan.input_shape),
        params=params,
        trainable_params=params,
        macs=plan.root.macs * batch,
        weight_bytes=(params + plan.root.buffers) * FLOAT_BYTES,
        activation_bytes=peak * FLOAT_BYTES,
        train_activation_bytes=saved * FLOAT_BYTES,
    )


def median_ms(fn: Any, warmup: int = 2, repeats: int = 5, device: str = "cpu") -> float:
    """Median wall time of ``fn()`` in milliseconds, after warm-up (synchronizing on CUDA)."""
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure_latency(
    model: torch.nn.Module, input_shape: tuple[int, ...], device: str = "cpu", repeats: int = 5
) -> tuple[float, float]:
    """Median forward (eval, no grad) and forward+backward (train) times in milliseconds."""
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

    model.eval()
    inference = median_ms(forward, repeats=repeats, device=device)
    model.train()
    training = median_ms(train_step, repeats=repeats, device=device)
    return inference, training


def check_latency_memory(row: BenchRow, device: torch.device) -> None:
    """Refuse to time a spec whose weights and training activations would not fit on ``device``."""
    from zoo.compiler import free_memory_bytes

    needed = row.weight_bytes * 2 + row.train_activation_bytes  # weights, their grads, activations
    free = free_memory_bytes(device)
    if free is not None and needed > free:
        raise ZooError(
            Problem(
                f"{row.spec} at {'x'.join(map(str, row.input))} needs about {needed / 1e9:,.1f} GB "
                f"to time (weights, gradients, activations), more than the {free / 1e9:,.1f} GB "
                f"free on {device}; use a smaller --input or --batch",
                "zoo",
                kind="memory",
            ),
            ExitCode.USAGE_ERROR,
        )
