"""Spec -> ``nn.Module``: plan the spec (:mod:`zoo.plan`), then make and initialize its modules.

The plan knows every size and the weight count before a single module exists, so an oversized
network is refused before anything is allocated. Modules are made on the meta device and then
allocated in place and initialized once: cheaper than torchvision's constructors, whose convs are
initialized twice (PyTorch's default, then kaiming).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn

from zoo.errors import Problem, ZooError, usage_error
from zoo.nn import FeatureInfo, FeatureNet, ZooNet
from zoo.plan import LayerPlan, NetworkPlan, plan_spec, sequential
from zoo.shapes import Shape, positive_ints
from zoo.spec.load import SpecLike, spec_argument
from zoo.spec.schema import ModelSpec
from zoo.weights import Weights, load_weights, read_weights

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
    *,
    weights: str | os.PathLike[str] | Weights | None = None,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = None,
) -> ZooNet | FeatureNet:
    """Build the ``nn.Module`` of a spec (object, YAML path, shipped name or mapping).

    ``device`` may be ``"cpu"``, ``"cuda"`` or ``"meta"`` (shapes only, no memory);
    ``input_shape`` (C, H, W) overrides the spec's input, which decides the inferred sizes;
    ``dtype`` is a floating ``torch.dtype`` or its name (``"bfloat16"``).
    A model whose weights would take more than ``MAX_WEIGHT_BYTES`` (8 GiB) is refused before
    any memory is allocated, unless ``force``.

    ``weights`` is a file to load instead of initializing: a ``state_dict`` saved by torchvision,
    timm or any ``torch.save(model.state_dict(), path)``, a training checkpoint holding one
    (under ``state_dict``, ``model`` or ``model_state_dict``), or a zoo checkpoint. It is loaded
    strictly, converted to ``dtype``; weights that do not fit raise
    :class:`zoo.weights.WeightsMismatch` (a ``ZooError`` listing the missing, unexpected and
    mis-shaped keys, with the nearest names).

    ``features_only`` returns a :class:`zoo.nn.FeatureNet` instead, whose forward returns a list
    of feature maps, described by its ``feature_info`` (timm's convention: channels, reduction,
    module name); the feature points are the last module at each reduction of the input, up to
    the first layer whose output does not follow the input's size (global pooling, a flatten).
    ``out_indices`` picks some of them: indices into the points (negative from the end), or an
    int ``n`` for the last ``n``; the maps come in network order. Weights are loaded into the
    whole network first, so a classifier's checkpoint serves its features.

    Bad arguments raise :class:`ZooError`.
    """
    device = resolve_device(device)
    dtype = resolve_dtype(dtype)
    if not isinstance(force, bool):
        raise usage_error(f"force must be True or False, got {force!r}")
    if not isinstance(features_only, bool):
        raise usage_error(f"features_only must be True or False, got {features_only!r}")
    if out_indices is not None and not features_only:
        raise usage_error("out_indices picks feature maps: pass features_only=True with it")
    if input_shape is not None:
        sizes = positive_ints(input_shape, (3,))
        if sizes is None:
            message = f"input_shape must be CxHxW, a tuple of 3 positive ints, got {input_shape!r}"
            raise usage_error(message, "input")
        input_shape = sizes
    if weights is not None and device.type == "meta":
        raise usage_error(
            "weights are tensors, and the meta device holds none (shapes only); "
            'build on a device that computes (device="cpu")'
        )
    spec = spec_argument(spec_or_path, "build")
    plan = plan_spec(spec, input_shape)
    # what could be refused is refused before anything is allocated
    points = feature_points(spec, plan, out_indices) if features_only else None
    if weights is not None and not isinstance(weights, Weights):
        weights = read_weights(weights, force, MAX_WEIGHT_BYTES)
    if device.type == "meta":
        model = _on(plan.materialize, device, dtype)
    else:
        check_weight_memory(plan.root.params, dtype, force)
        if weights is not None:
            model = _with_weights(plan, spec, weights, device, dtype)
        elif all(node.reinitializable for _, node in plan.root.walk()):
            model = _on(plan.materialize, torch.device("meta"), dtype)
            model.to_empty(device=device)
            _reset_parameters(model, spec)
        else:  # e.g. a plugin module that sets its weights in __init__: made where it will live
            model = _on(plan.materialize, device, dtype)
        if weights is None:
            initialize(model, spec, plan)
    model.spec = spec  # what zoo.save writes with the weights: a plain attribute, no submodule
    if points is not None:
        return feature_net(model, *points)
    return model


def _with_weights(
    plan: NetworkPlan,
    spec: ModelSpec,
    weights: Weights,
    device: torch.device,
    dtype: torch.dtype | None,
) -> ZooNet:
    """The planned network with ``weights`` loaded strictly, on ``device`` in ``dtype``.

    Made on meta, it takes the file's tensors as its own (no initialization that the weights
    would overwrite at once), then moves and casts them. A network with state that a
    ``state_dict`` does not hold (non-persistent buffers, a plugin's) is made on ``device`` and
    initialized instead, and the weights copied in."""
    model = _on(plan.materialize, torch.device("meta"), dtype)
    if any(m._non_persistent_buffers_set for m in model.modules()) or not all(
        node.reinitializable for _, node in plan.root.walk()
    ):
        model = _on(plan.materialize, device, dtype)
        initialize(model, spec, plan)
        load_weights(model, weights, spec.name)
        return model
    load_weights(model, weights, spec.name)
    return model.to(device=device, dtype=dtype or torch.get_default_dtype())


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


# --------------------------------------------------------------------------- features_only
PROBE = 2**10 * 3**2 * 5 * 7
"""Added to the input's height and width to measure each layer's reduction: a module whose
output grows by ``PROBE / r`` reduces the input ``r`` times (exactly, for strides made of 2s
up to 1024, 3, 9, 5 and 7), and one whose output does not grow (adaptive pooling) ends the
feature maps. Planning is arithmetic, so the size costs nothing."""

_FLAT = 0  # the reduction of a module whose output is not a CxHxW map (it ends the maps too)


def _reductions(spec: ModelSpec, plan: NetworkPlan) -> dict[str, int | None]:
    """The reduction of the input's height at every module of the network, by dotted name, up
    to its first top-level module that gives flat features: ``None`` where the output does not
    follow the input's size (adaptive pooling), :data:`_FLAT` for flat features.

    The spec, cut before that module, is planned again for an input ``PROBE`` rows and columns
    larger. Where that plan fails (an input near the size limit), the ratio of heights stands
    in, rounded to a power of two."""
    tops = plan.root.children
    kept = next((i for i, top in enumerate(tops) if len(top.out) != 3), len(tops))
    walked = [
        (name, p)
        for name, p in plan.root.walk()
        if name.split(".")[0] in {top.name for top in tops[:kept]}
    ]
    c, h, w = plan.input_shape
    if not kept:
        return {}
    section, index = tops[kept - 1].source[:2]
    cut: dict[str, tuple] = {}
    for name in ("stem", "stages", "head"):
        if cut or name == section:  # the sections after the last module's are left out
            cut[name] = getattr(spec, name)[: index + 1] if name == section else ()
    try:
        with warnings.catch_warnings():  # the spec's warnings were given by the first plan
            warnings.simplefilter("ignore")
            probe = plan_spec(spec.model_copy(update=cut), (c, h + PROBE, w + PROBE))
    except ZooError:
        return {
            name: 2 ** round(math.log2(h / p.out[1])) if len(p.out) == 3 else _FLAT
            for name, p in walked
        }
    grown = dict(probe.root.walk())
    reductions: dict[str, int | None] = {}
    for name, p in walked:
        if len(p.out) != 3:
            reductions[name] = _FLAT
            continue
        growth = grown[name].out[1] - p.out[1]
        reductions[name] = round(PROBE / growth) if growth > 0 else None
    return reductions


def _chain(
    node: LayerPlan, prefix: str, reductions: dict[str, int | None], chain: list[tuple[str, int]]
) -> bool:
    """Append to ``chain`` the modules a feature net runs one after the other, ``(dotted name,
    reduction)`` in network order, up to the first whose output does not follow the input
    (returns ``False`` there). A sequential is opened, its children run one by one, when they
    are at different reductions (torchvision's ``features``, RegNet's ``trunk_output``); a
    stage whose blocks share one reduction is one step, as timm takes it (``layer2``)."""
    for child in node.children:
        name = prefix + child.name
        reduction = reductions.get(name, _FLAT)
        opened = (
            child.make is sequential
            and len({reductions.get(f"{name}.{c.name}", _FLAT) for c in child.children}) > 1
        )
        if opened:
            if not _chain(child, name + ".", reductions, chain):
                return False
        elif reduction in (None, _FLAT):
            return False
        else:
            chain.append((name, reduction))
    return True


def feature_points(
    spec: ModelSpec, plan: NetworkPlan, out_indices: int | Sequence[int] | None = None
) -> tuple[list[dict], tuple[str, ...], tuple[int, ...]]:
    """The network's feature points (timm's ``feature_info`` entries: ``num_chs``,
    ``reduction``, ``module``, ``index``), the last module at each reduction in network order;
    the modules a feature net runs one after the other to reach them; and the indices
    ``out_indices`` picks among the points (all by default), checked and in order."""
    chain: list[tuple[str, int]] = []
    _chain(plan.root, "", _reductions(spec, plan), chain)
    outputs = dict(plan.root.walk())
    info: list[dict] = []
    for name, reduction in chain:
        entry = {"num_chs": outputs[name].out[0], "reduction": reduction, "module": name}
        if info and info[-1]["reduction"] == reduction:
            info[-1] = entry  # the last module at a reduction is its feature point
        else:
            info.append(entry)
    for i, entry in enumerate(info):
        entry["index"] = i
    if not info:
        raise usage_error(
            f"{spec.name} has no feature maps: its first layer already gives flat features or "
            "an output that does not follow the input's size"
        )
    return info, tuple(name for name, _ in chain), _out_indices(out_indices, info, spec.name)


def _out_indices(
    out_indices: int | Sequence[int] | None, info: list[dict], name: str
) -> tuple[int, ...]:
    """The indices ``out_indices`` picks among ``info``'s points, sorted; a usage error that
    lists the points when it picks none of them."""
    n = len(info)
    points = ", ".join(
        f"{e['index']}: {e['module']} ({e['num_chs']} channels, /{e['reduction']})" for e in info
    )
    if out_indices is None:
        return tuple(range(n))
    if isinstance(out_indices, int) and not isinstance(out_indices, bool):
        if 1 <= out_indices <= n:
            return tuple(range(n - out_indices, n))  # timm: an int n is the last n
        problem = f"out_indices={out_indices} asks for the last {out_indices} feature maps"
    elif isinstance(out_indices, Sequence) and not isinstance(out_indices, str) and out_indices:
        bad = [
            i
            for i in out_indices
            if isinstance(i, bool) or not isinstance(i, int) or not -n <= i < n
        ]
        if not bad:
            return tuple(sorted({i % n for i in out_indices}))
        problem = f"out_indices {list(out_indices)!r}: {bad[0]!r} is not a feature index"
    else:
        problem = f"out_indices must be a tuple of feature indices or an int, got {out_indices!r}"
    raise usage_error(f"{problem}; {name} has {n} feature maps ({points})", "out_indices")


def feature_net(
    model: ZooNet,
    info: list[dict],
    steps: tuple[str, ...],
    out_indices: tuple[int, ...],
) -> FeatureNet:
    """``model``'s modules up to the last point of ``out_indices``, as a :class:`FeatureNet`
    that runs ``steps`` and returns those points' maps. The modules are ``model``'s own, under
    their dotted names; an opened sequential keeps only the children run."""
    taps = [info[i]["module"] for i in out_indices]
    steps = steps[: steps.index(taps[-1]) + 1]
    net = FeatureNet(
        _kept(model, steps),
        steps,
        taps,
        FeatureInfo(info, out_indices),
        model.spec_name,
        model.input_shape,
    )
    return net.train(model.training)


def _kept(module: nn.Module, steps: Sequence[str]) -> list[tuple[str, nn.Module]]:
    """``module``'s children that ``steps`` (dotted names under it) run, in order: a child run
    whole as it is, a child some steps are inside as an ``nn.Sequential`` of what they run."""
    kept: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        inside = [s.removeprefix(name + ".") for s in steps if s.startswith(name + ".")]
        if name in steps:
            kept.append((name, child))
        elif inside:
            opened = nn.Sequential()
            for inner, grandchild in _kept(child, inside):
                opened.add_module(inner, grandchild)
            kept.append((name, opened))
    return kept
