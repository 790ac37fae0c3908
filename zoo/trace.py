"""Per-layer output shapes, parameters and multiply-adds of a network.

For a spec, the figures are the compiler's own shape and cost inference (:mod:`zoo.plan`):
arithmetic over the spec, with no module constructed and no weights allocated, so tracing costs
the same at any input size or batch and a ResNet-152 traces in milliseconds. For any other
``nn.Module`` the tracer falls back to forward hooks and
``torch.utils.flop_counter.FlopCounterMode`` on a forward pass.

Multiply-adds (MACs) count convolutions and linear layers, the way torchvision's published
``_ops`` figures and ``FlopCounterMode`` (which reports 2 FLOPs per MAC) count them; pooling,
normalization, activations and the residual sums are not counted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path as FilePath
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from zoo.errors import ExitCode, Problem, ZooError
from zoo.plan import MAX_INPUT_DIM, LayerPlan, plan_spec
from zoo.shapes import Shape
from zoo.spec import ModelSpec, load_spec


@dataclass(frozen=True)
class Row:
    """One module of a trace: dotted path (a ``state_dict`` prefix), type, output shape, costs."""

    path: str
    type: str
    output: tuple[int, ...]  # with the batch dimension
    params: int
    macs: int

    @property
    def depth(self) -> int:
        """Nesting level: 1 for the network's direct children."""
        return self.path.count(".") + 1


@dataclass(frozen=True)
class Trace:
    """A traced network: its rows and totals. ``macs`` are for the whole input batch."""

    name: str
    input: tuple[int, ...]
    output: tuple[int, ...]
    rows: list[Row]
    params: int
    trainable_params: int
    macs: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (shapes as lists)."""
        data = asdict(self)
        data["rows"] = [{**asdict(r), "depth": r.depth} for r in self.rows]
        return data


def parse_input_shape(shape: Any) -> tuple[int, ...]:
    """Normalize ``(C, H, W)`` or ``(N, C, H, W)`` to ``(N, C, H, W)`` (batch 1 by default)."""
    dims = tuple(int(d) for d in shape)
    if len(dims) == 3:
        dims = (1, *dims)
    if len(dims) != 4 or min(dims) < 1:
        raise ZooError(
            Problem(
                f"input shape must be [N]xCxHxW with positive sizes, got {shape!r}", kind="input"
            ),
            ExitCode.USAGE_ERROR,
        )
    if dims[0] > MAX_INPUT_DIM:  # channels, height and width are checked by plan_spec
        raise ZooError(
            Problem(f"batch {dims[0]:,} is more than {MAX_INPUT_DIM:,}", kind="input"),
            ExitCode.USAGE_ERROR,
        )
    return dims


def trace(
    model_or_spec: ModelSpec | nn.Module | str | FilePath,
    input_shape: Any = None,
    depth: int | None = None,
) -> Trace:
    """Trace a spec (object, path or shipped name) or any ``nn.Module``.

    ``input_shape`` is ``(C, H, W)`` or ``(N, C, H, W)``; by default the spec's input with batch 1
    (required for a plain ``nn.Module`` that is not a compiled zoo model). ``depth`` keeps only rows
    nested at most that deep (1: the network's direct children).
    """
    if isinstance(model_or_spec, nn.Module):
        result = _trace_module(model_or_spec, input_shape)
    else:
        spec = model_or_spec if isinstance(model_or_spec, ModelSpec) else load_spec(model_or_spec)
        result = _trace_spec(spec, input_shape)
    if depth is not None:
        result = dataclasses.replace(result, rows=[r for r in result.rows if r.depth <= depth])
    return result


def _trace_spec(spec: ModelSpec, input_shape: Any) -> Trace:
    batch = 1
    chw: Shape | None = None
    if input_shape is not None:
        batch, *rest = parse_input_shape(input_shape)
        chw = tuple(rest)
    plan = plan_spec(spec, chw)
    rows: list[Row] = []
    _add_rows(plan.root.children, "", batch, rows)
    root = plan.root
    return Trace(
        spec.name,
        (batch, *plan.input_shape),
        (batch, *root.out),
        rows,
        root.params,
        root.params,  # a compiled spec has no frozen parameters
        root.macs * batch,
    )


def _add_rows(plans: list[LayerPlan], prefix: str, batch: int, rows: list[Row]) -> None:
    """Append a row per plan, depth first in execution order (a list, not a generator: faster)."""
    for plan in plans:
        path = prefix + plan.name
        rows.append(Row(path, plan.type, (batch, *plan.out), plan.params, plan.macs * batch))
        if plan.children:
            _add_rows(plan.children, path + ".", batch, rows)


def _trace_module(model: nn.Module, input_shape: Any) -> Trace:
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
        if input_shape is None:
            raise ZooError(Problem("tracing a plain nn.Module needs an input_shape", kind="input"))
    dims = parse_input_shape(input_shape)
    try:
        param = next(model.parameters())
        device, dtype = param.device, param.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.get_default_dtype()
    outputs: dict[str, tuple[int, ...]] = {}
    names = {module: name for name, module in model.named_modules() if name}

    def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            outputs[names[module]] = tuple(output.shape)

    handles = [m.register_forward_hook(hook) for m in names]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = model(torch.zeros(dims, device=device, dtype=dtype))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    root_key = type(model).__name__
    flops = {
        key.removeprefix(root_key + "."): sum(v.values())
        for key, v in counter.get_flop_counts().items()
    }
    rows = []
    for name, module in model.named_modules():
        if name and name in outputs:
            params = sum(p.numel() for p in module.parameters())
            rows.append(
                Row(name, type(module).__name__, outputs[name], params, flops.get(name, 0) // 2)
            )
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    output = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
    return Trace(
        type(model).__name__, dims, output, rows, params, trainable, counter.get_total_flops() // 2
    )
