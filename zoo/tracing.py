"""Per-layer output shapes, parameters and multiply-adds of a network.

For a spec, the figures are the compiler's own shape and cost inference (:mod:`zoo.plan`):
arithmetic over the spec, with no module constructed and no weights allocated, so tracing costs
the same at any input size or batch and a ResNet-152 traces in milliseconds. For any other
``nn.Module`` the tracer falls back to forward hooks and
``torch.utils.flop_counter.FlopCounterMode`` on a forward pass (:mod:`zoo.module_tracing`), run on
the meta device (shapes only, no memory) when the module allows it, else for real if the memory it
needs is free. Tracing a spec imports no torch.

Multiply-adds (MACs) count convolutions and linear layers, the way torchvision's published
``_ops`` figures and ``FlopCounterMode`` (which reports 2 FLOPs per MAC) count them; pooling,
normalization, activations and the residual sums are not counted.
"""

from __future__ import annotations

import dataclasses
import operator
import sys
from typing import TYPE_CHECKING, Any

from zoo.errors import usage_error
from zoo.plan import LayerPlan, plan_spec
from zoo.shapes import Shape
from zoo.spec.load import SpecLike, spec_argument
from zoo.spec.schema import ModelSpec
from zoo.traces import Row, Trace, parse_input_shape

if TYPE_CHECKING:
    from torch import nn


def _is_module(value: Any) -> bool:
    """``value`` is an ``nn.Module``, told without importing torch: none can exist before it is."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


def trace(
    model_or_spec: SpecLike | nn.Module,
    input_shape: Any = None,
    depth: int | None = None,
) -> Trace:
    """Trace a spec (object, path, shipped name or mapping) or any ``nn.Module``.

    ``input_shape`` is ``(C, H, W)`` or ``(N, C, H, W)``; by default the spec's input with batch 1
    (required for a plain ``nn.Module`` that is not a compiled zoo model). ``depth`` keeps only rows
    nested at most that deep (1: the network's direct children; 0: none, the totals only); for a
    spec, a top-level ``sequential`` that groups layers (torchvision's ``features``) takes no level,
    so depth 1 shows its children too.
    Bad arguments raise :class:`ZooError`.
    """
    if depth is not None:
        depth = _depth(depth)
    if _is_module(model_or_spec):
        from zoo.module_tracing import trace_module

        result = trace_module(model_or_spec, input_shape)
        if depth is not None:
            result = dataclasses.replace(result, rows=[r for r in result.rows if r.depth <= depth])
        return result
    spec = spec_argument(model_or_spec, "trace", ", or an nn.Module")
    return _trace_spec(spec, input_shape, depth)  # rows only as deep as asked


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


def _trace_spec(spec: ModelSpec, input_shape: Any, depth: int | None = None) -> Trace:
    batch = 1
    chw: Shape | None = None
    if input_shape is not None:
        batch, *rest = parse_input_shape(input_shape)
        chw = tuple(rest)
    plan = plan_spec(spec, chw)
    rows: list[Row] = []
    for top in plan.root.children:
        # A top-level sequential that groups the network's layers (torchvision's `features`,
        # `trunk_output`, `classifier`) takes no level of `depth`: depth 1 shows its blocks.
        levels = depth + 1 if depth is not None and top.type == "sequential" else depth
        _add_rows([top], "", batch, rows, levels)
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


def _add_rows(
    plans: list[LayerPlan], prefix: str, batch: int, rows: list[Row], levels: int | None
) -> None:
    """Append a row per plan, depth first in execution order (a list, not a generator: faster),
    ``levels`` deep at most (``None``: all)."""
    if levels is not None and levels < 1:
        return
    deeper = None if levels is None else levels - 1
    for plan in plans:
        path = prefix + plan.name
        rows.append(Row(path, plan.type, (batch, *plan.out), plan.params, plan.macs * batch))
        if plan.children:
            _add_rows(plan.children, path + ".", batch, rows, deeper)
