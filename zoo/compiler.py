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

from zoo.blocks import Residual, ZooNet
from zoo.errors import ExitCode, Problem, ZooError
from zoo.plan import plan_spec
from zoo.shapes import Shape
from zoo.spec import schema as s

MAX_WEIGHT_BYTES = 8 * 2**30  # materializing more needs force=True (VGG-16 is 0.55 GB in float32)


@torch.no_grad()
def initialize(model: nn.Module, spec: s.ModelSpec) -> None:
    """torchvision's ResNet init (kaiming-normal fan_out convs, BN 1/0), optional zero-init residual."""
    if spec.init == "kaiming":
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    if spec.zero_init_residual:
        # The last BN of each residual branch starts at zero, so every block begins as the identity
        # (Goyal et al., "Accurate, Large Minibatch SGD", 2017); torchvision's zero_init_residual.
        for m in model.modules():
            if isinstance(m, Residual):
                norms = [
                    m._modules[n] for n in m._body if isinstance(m._modules[n], nn.BatchNorm2d)
                ]
                if norms:
                    nn.init.zeros_(norms[-1].weight)


def build(
    spec_or_path: s.ModelSpec | str | os.PathLike[str],
    device: torch.device | str | None = None,
    input_shape: Shape | None = None,
    dtype: torch.dtype | None = None,
    force: bool = False,
) -> ZooNet:
    """Build the ``nn.Module`` of a spec (object, YAML path or shipped name).

    ``device`` may be ``"cpu"``, ``"cuda"`` or ``"meta"`` (shapes only, no memory);
    ``input_shape`` (C, H, W) overrides the spec's input, which decides the inferred sizes.
    A model whose weights would take more than ``MAX_WEIGHT_BYTES`` (8 GiB) is refused before
    any memory is allocated, unless ``force``.
    """
    from zoo.spec import load_spec

    device = resolve_device(device)
    spec = spec_or_path if isinstance(spec_or_path, s.ModelSpec) else load_spec(spec_or_path)
    plan = plan_spec(spec, input_shape)
    if device.type == "meta":
        return _on(plan.materialize, device, dtype)
    check_weight_memory(plan.root.params, dtype, force)
    model = _on(plan.materialize, torch.device("meta"), dtype)
    if not _reinitializable(model):  # e.g. a plugin module that sets its weights in __init__
        model = _on(plan.materialize, device, dtype)
    else:
        model.to_empty(device=device)
        _reset_parameters(model, spec)
    initialize(model, spec)
    return model


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``device`` as a ``torch.device`` (default: torch's default device), refused with one clear
    line when it is malformed or absent from this machine, before any work is done."""
    if device is None:
        return torch.get_default_device()
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        message = f"{device!r} is not a device; use cpu, cuda, cuda:N, mps or meta"
        raise ZooError(Problem(message, kind="device"), ExitCode.USAGE_ERROR) from None
    if resolved.type in ("cpu", "meta"):
        return resolved
    backend = getattr(torch, resolved.type, None)
    available = backend is not None and getattr(backend, "is_available", lambda: False)()
    count = getattr(backend, "device_count", lambda: 1)() if available else 0
    if not available or (resolved.index or 0) >= count:
        found = f"{count} {resolved.type} device(s)" if available else f"no {resolved.type} device"
        raise ZooError(
            Problem(
                f"device {str(resolved)!r} is not available here ({found}); use cpu instead",
                kind="device",
            ),
            ExitCode.USAGE_ERROR,
        )
    return resolved


def _on(make: Callable[[], ZooNet], device: torch.device, dtype: torch.dtype | None) -> ZooNet:
    """``make()`` with ``device`` as the default device, then cast to ``dtype``."""
    with device:
        model = make()
    return model.to(dtype) if dtype is not None else model


_REINITIALIZABLE = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)


def _reinitializable(model: nn.Module) -> bool:
    """Every module holding tensors is one whose initialization zoo can redo after ``to_empty``."""
    return all(
        isinstance(m, _REINITIALIZABLE)
        for m in model.modules()
        if next(m.parameters(recurse=False), None) is not None
        or next(m.buffers(recurse=False), None) is not None
    )


@torch.no_grad()
def _reset_parameters(model: nn.Module, spec: s.ModelSpec) -> None:
    """PyTorch's default initialization, skipping conv weights that ``initialize`` overwrites."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and spec.init == "kaiming":
            if m.bias is not None:  # nn.Conv2d's default bias init, which kaiming leaves alone
                fan_in = m.weight.shape[1] * m.weight[0, 0].numel()
                bound = 1 / math.sqrt(fan_in)
                nn.init.uniform_(m.bias, -bound, bound)
        elif isinstance(m, _REINITIALIZABLE):
            m.reset_parameters()


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
