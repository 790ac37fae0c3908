"""Per-layer output shapes, parameters and multiply-adds of a network.

For a spec, the figures are the compiler's own shape and cost inference (:mod:`zoo.plan`):
arithmetic over the spec, with no module constructed and no weights allocated, so tracing costs
the same at any input size or batch and a ResNet-152 traces in milliseconds. For any other
``nn.Module`` the tracer falls back to forward hooks and
``torch.utils.flop_counter.FlopCounterMode`` on a forward pass, run on the meta device (shapes
only, no memory) when the module allows it, else for real if the memory it needs is free.

Multiply-adds (MACs) count convolutions and linear layers, the way torchvision's published
``_ops`` figures and ``FlopCounterMode`` (which reports 2 FLOPs per MAC) count them; pooling,
normalization, activations and the residual sums are not counted.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

from zoo.bench import free_memory_bytes
from zoo.compiler import SpecSource, positive_ints, spec_argument, usage_error
from zoo.plan import MAX_INPUT_DIM, LayerPlan, plan_spec
from zoo.plugins import describe_error
from zoo.shapes import Shape, fmt
from zoo.spec import ModelSpec


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
    dims = positive_ints(shape, (3, 4))
    if dims is None:
        message = f"input shape must be [N]xCxHxW, a tuple of positive ints, got {shape!r}"
        raise usage_error(message, "input")
    if len(dims) == 3:
        dims = (1, *dims)
    if dims[0] > MAX_INPUT_DIM:  # channels, height and width are checked by plan_spec
        raise usage_error(f"batch {dims[0]:,} is more than {MAX_INPUT_DIM:,}", "input")
    return dims


def trace(
    model_or_spec: SpecSource | nn.Module,
    input_shape: Any = None,
    depth: int | None = None,
) -> Trace:
    """Trace a spec (object, path, shipped name or mapping) or any ``nn.Module``.

    ``input_shape`` is ``(C, H, W)`` or ``(N, C, H, W)``; by default the spec's input with batch 1
    (required for a plain ``nn.Module`` that is not a compiled zoo model). ``depth`` keeps only rows
    nested at most that deep (1: the network's direct children; 0: none, the totals only).
    Bad arguments raise :class:`ZooError`.
    """
    if depth is not None:
        depth = _depth(depth)
    if isinstance(model_or_spec, nn.Module):
        result = _trace_module(model_or_spec, input_shape)
    else:
        spec = spec_argument(model_or_spec, "trace", ", or an nn.Module")
        result = _trace_spec(spec, input_shape)
    if depth is not None:
        result = dataclasses.replace(result, rows=[r for r in result.rows if r.depth <= depth])
    return result


def _depth(depth: Any) -> int:
    try:
        value = operator.index(depth)
    except TypeError:
        value = -1
    if isinstance(depth, bool) or value < 0:
        raise usage_error(
            f"depth must be an int >= 0 (1: the direct children) or None, got {depth!r}"
        )
    return value


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
            message = "tracing a plain nn.Module needs an input_shape: (C, H, W) or (N, C, H, W)"
            raise usage_error(message, "input")
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
        with torch.no_grad():
            try:
                counter, out = _meta_forward(model, torch.empty(dims, device="meta", dtype=dtype))
            except Exception as exc:  # data-dependent code (a value read, a CPU-only tensor, ...)
                _check_real_forward_memory(model, dims, dtype, device, outputs, exc)
                outputs.clear()
                counter, out = _real_forward(model, dims, dtype, device)
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


def _meta_forward(model: nn.Module, x: torch.Tensor) -> tuple[FlopCounterMode, Any]:
    """A forward pass of ``model`` with meta stand-ins for its parameters and buffers: shapes and
    FLOPs without touching (or allocating) any data, and without changing the module."""
    state = {
        name: torch.empty_like(tensor, device="meta")
        for name, tensor in (*model.named_parameters(), *model.named_buffers())
    }
    with FlopCounterMode(display=False) as counter:
        out = functional_call(model, state, (x,))
    return counter, out


def _real_forward(
    model: nn.Module, dims: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> tuple[FlopCounterMode, Any]:
    """A forward pass on zeros; a module that fails on the input is a bad argument."""
    try:
        with FlopCounterMode(display=False) as counter:
            out = model(torch.zeros(dims, device=device, dtype=dtype))
    except Exception as exc:
        message = f"{type(model).__name__} fails on a {fmt(dims)} input: {describe_error(exc)}"
        raise usage_error(message, "input") from exc
    return counter, out


def _check_real_forward_memory(
    model: nn.Module,
    dims: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
    outputs: dict[str, tuple[int, ...]],
    meta_error: Exception,
) -> None:
    """Refuse a real forward pass whose input and largest output seen by the meta pass (before
    it stopped) would not fit in the memory free on ``device`` (as ``bench --latency`` does)."""
    from zoo.render import human  # zoo.render imports this module

    free = free_memory_bytes(device)
    largest = max((math.prod(shape) for shape in outputs.values()), default=0)
    needed = (math.prod(dims) + largest) * dtype.itemsize
    if free is not None and needed > free:
        raise usage_error(
            f"{type(model).__name__} cannot run on the meta device ({describe_error(meta_error)}), "
            f"and a real forward at {fmt(dims)} needs at least {human(needed, 'B')} (the input "
            f"and the largest output seen), more than the {human(free, 'B')} free on {device}; "
            "use a smaller input_shape",
            "memory",
        )
