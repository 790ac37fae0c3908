"""Tracing any ``nn.Module``: forward hooks for the output shapes and
``torch.utils.flop_counter.FlopCounterMode`` for the multiply-adds, on a forward pass run on the
meta device (no memory) when the module allows it, else for real if the memory it needs is free.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

from zoo.compiler import free_memory_bytes
from zoo.errors import describe_error, usage_error
from zoo.render import human
from zoo.shapes import fmt
from zoo.traces import Row, Trace, parse_input_shape


def trace_module(model: nn.Module, input_shape: Any) -> Trace:
    """The rows and totals of ``model`` at ``input_shape`` ((C, H, W) or (N, C, H, W); default: the
    model's own ``input_shape`` attribute, which compiled zoo models have)."""
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
