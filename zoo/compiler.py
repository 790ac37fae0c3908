"""Spec -> ``nn.Module``: plan the spec (:mod:`zoo.plan`), then make and initialize its modules.

The plan knows every size and the weight count before a single module exists, so an oversized
network is refused before anything is allocated. Modules are made on the meta device and then
allocated in place and initialized once: cheaper than torchvision's constructors, whose convs are
initialized twice (PyTorch's default, then kaiming).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import torch
from torch import nn

from zoo.errors import Problem, ZooError, usage_error
from zoo.nn import ZooNet
from zoo.plan import NetworkPlan, plan_spec
from zoo.shapes import Shape, positive_ints
from zoo.spec.load import SpecLike, spec_argument
from zoo.spec.schema import ModelSpec

MAX_WEIGHT_BYTES = 8 * 2**30  # materializing more needs force=True (VGG-16 is 0.55 GB in float32)


@torch.no_grad()
def initialize(model: nn.Module, spec: ModelSpec, plan: NetworkPlan) -> None:
    """The spec's ``init`` (torchvision's ResNet or ConvNeXt scheme), optional zero-init residual."""
    if spec.init == "trunc_normal":
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):  # zoo's ChannelLinear is an nn.Linear
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    if spec.init == "kaiming":
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    if spec.zero_init_residual:
        # The last norm of each residual body (marked by the planner) starts at zero, so every
        # block begins as the identity (Goyal et al., "Accurate, Large Minibatch SGD", 2017);
        # torchvision's zero_init_residual.
        for path, node in plan.root.walk():
            if node.last_norm:
                nn.init.zeros_(model.get_submodule(path).weight)


def build(
    spec_or_path: SpecLike,
    device: torch.device | str | None = None,
    input_shape: Shape | None = None,
    dtype: torch.dtype | str | None = None,
    force: bool = False,
) -> ZooNet:
    """Build the ``nn.Module`` of a spec (object, YAML path, shipped name or mapping).

    ``device`` may be ``"cpu"``, ``"cuda"`` or ``"meta"`` (shapes only, no memory);
    ``input_shape`` (C, H, W) overrides the spec's input, which decides the inferred sizes;
    ``dtype`` is a floating ``torch.dtype`` or its name (``"bfloat16"``).
    A model whose weights would take more than ``MAX_WEIGHT_BYTES`` (8 GiB) is refused before
    any memory is allocated, unless ``force``. Bad arguments raise :class:`ZooError`.
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype)
    if not isinstance(force, bool):
        raise usage_error(f"force must be True or False, got {force!r}")
    if input_shape is not None:
        sizes = positive_ints(input_shape, (3,))
        if sizes is None:
            message = f"input_shape must be CxHxW, a tuple of 3 positive ints, got {input_shape!r}"
            raise usage_error(message, "input")
        input_shape = sizes
    spec = spec_argument(spec_or_path, "build")
    plan = plan_spec(spec, input_shape)
    if device.type == "meta":
        model = _on(plan.materialize, device, dtype)
    else:
        check_weight_memory(plan.root.params, dtype, force)
        if all(node.reinitializable for _, node in plan.root.walk()):
            model = _on(plan.materialize, torch.device("meta"), dtype)
            model.to_empty(device=device)
            _reset_parameters(model, spec)
        else:  # e.g. a plugin module that sets its weights in __init__: made where it will live
            model = _on(plan.materialize, device, dtype)
        initialize(model, spec, plan)
    model.spec = spec  # what zoo.save writes with the weights: a plain attribute, no submodule
    return model


_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """``dtype`` as a ``torch.dtype`` that layers compute in: a ``torch.dtype`` or its name
    (``"float16"``, ``"torch.bfloat16"``, ``"half"``); ``None`` keeps torch's default."""
    if dtype is None:
        return None
    found = getattr(torch, dtype.removeprefix("torch."), None) if isinstance(dtype, str) else dtype
    if isinstance(found, torch.dtype) and found in _FLOAT_DTYPES:
        return found
    *names, last = (str(d).removeprefix("torch.") for d in _FLOAT_DTYPES)
    raise usage_error(
        f"dtype {dtype!r} is not one zoo builds in; use {', '.join(names)} or {last} "
        "(a torch.dtype or its name)"
    )


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device`` as a ``torch.device`` (default: torch's default device), refused with one clear
    line when it is malformed or absent from this machine, before any work is done."""
    if device is None:
        return torch.get_default_device()
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        message = f"{device!r} is not a device; use cpu, cuda, cuda:N, mps or meta"
        raise usage_error(message, "device") from None
    if resolved.type in ("cpu", "meta"):
        return resolved
    backend = getattr(torch, resolved.type, None)
    available = backend is not None and getattr(backend, "is_available", lambda: False)()
    count = getattr(backend, "device_count", lambda: 1)() if available else 0
    if not available or (resolved.index or 0) >= count:
        found = f"{count} {resolved.type} device(s)" if available else f"no {resolved.type} device"
        message = f"device {str(resolved)!r} is not available here ({found}); use cpu instead"
        raise usage_error(message, "device")
    return resolved


def _on(make: Callable[[], ZooNet], device: torch.device, dtype: torch.dtype | None) -> ZooNet:
    """``make()`` with ``device`` as the default device, then cast to ``dtype``."""
    with device:
        model = make()
    return model.to(dtype) if dtype is not None else model


@torch.no_grad()
def _reset_parameters(model: nn.Module, spec: ModelSpec) -> None:
    """PyTorch's default initialization, skipping conv weights that ``initialize`` overwrites."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and spec.init == "kaiming":
            if m.bias is not None:  # nn.Conv2d's default bias init, which kaiming leaves alone
                fan_in = m.weight.shape[1] * m.weight[0, 0].numel()
                bound = 1 / math.sqrt(fan_in)
                nn.init.uniform_(m.bias, -bound, bound)
        elif hasattr(m, "reset_parameters"):  # every torch.nn layer that holds tensors
            m.reset_parameters()


def free_memory_bytes(device: torch.device) -> int | None:
    """Memory free on ``device`` now (``None`` where it cannot be told)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu" and hasattr(os, "sysconf"):
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            return None
    return None


def check_weight_memory(params: int, dtype: torch.dtype | None, force: bool) -> None:
    """Refuse to materialize more than ``MAX_WEIGHT_BYTES`` of weights unless forced."""
    size = params * (dtype or torch.get_default_dtype()).itemsize
    if size > MAX_WEIGHT_BYTES and not force:
        raise ZooError(
            Problem(
                f"the weights would take {size / 2**30:,.1f} GiB ({params:,} parameters), more than the "
                f"{MAX_WEIGHT_BYTES // 2**30} GiB limit; pass force=True (--force) to build it anyway",
                kind="too_large",
            )
        )
