"""Spec -> plan: walk stem, stages and head carrying the running shape, constructing nothing.

Every ``in_channels`` and ``in_features`` comes from the running shape, so no size is ever written
by hand. Each builder returns a :class:`LayerPlan`: the layer's output shape, parameters, buffers
and multiply-adds, worked out by arithmetic, its children's plans, and how to make its module.
That makes shape and cost inference (``zoo trace``, ``zoo bench``) independent of module
construction and of the input size; :mod:`zoo.compiler` turns a plan into an ``nn.Module``.
Builders are found in a registry keyed by spec class, never by name lookup in ``globals()``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, get_args

from pydantic import BaseModel

from zoo.errors import ExitCode, Problem, ZooError, ZooWarning, describe_error
from zoo.shapes import MAX_DIM, Pair, Shape, conv_out, fmt, pair, pool_out
from zoo.spec import schema as s
from zoo.spec.yaml_loader import Located, Path, dotted

if TYPE_CHECKING:
    from types import ModuleType

    from torch import nn

    from zoo.blocks import ZooNet

Named = list[tuple[str, "nn.Module"]]
Make = Callable[[Named], "nn.Module"]  # the layer's module, given its children's modules


def _nn() -> ModuleType:
    """``torch.nn``, imported when a plan is first materialized: planning needs no torch."""
    from torch import nn

    return nn


def _blocks() -> ModuleType:
    """:mod:`zoo.blocks` (the modules zoo adds to torch.nn), imported as :func:`_nn` is."""
    from zoo import blocks

    return blocks


@dataclass(eq=False)
class LayerPlan:
    """One module of a planned network: output shape and costs (its subtree's), and its children.

    ``params`` and ``buffers`` count the elements of the parameters and floating-point buffers
    (BatchNorm running statistics) of the module and everything under it; ``macs`` are per sample.
    """

    name: str
    type: str
    out: Shape
    params: int
    macs: int
    make: Make = field(repr=False)
    children: list[LayerPlan] = field(default_factory=list)
    buffers: int = 0
    source: Path = ()  # where in the spec it comes from (stages.2), for located messages

    def materialize(self) -> nn.Module:
        """The module of this plan and of its children (on the current default device)."""
        return self.make([(child.name, child.materialize()) for child in self.children])


@dataclass
class _Context:
    located: Located | None
    layers: int = 0  # planned so far, against MAX_LAYERS
    presets: dict[int, Any] = field(default_factory=dict)  # id(block spec) -> its expansion

    def count_layer(self, path: Path) -> None:
        self.layers += 1
        if self.layers > MAX_LAYERS:
            raise self.error(
                path,
                f"the network has more than {MAX_LAYERS:,} layers; reduce `depth` or `times`",
                "too_large",
            )

    def error(self, path: Path, message: str, kind: str = "shape") -> ZooError:
        if self.located is not None:
            return ZooError(self.located.problem(path, message, kind))
        return ZooError(Problem(message, path=dotted(path), kind=kind))


MAX_LAYERS = 100_000  # ResNet-152 has ~500; past this a spec is a mistake

SpecT = TypeVar("SpecT", bound=BaseModel)
LayerBuilder = Callable[[Any, Shape, _Context, Path], LayerPlan]
BlockBuilder = Callable[[Any, Shape, _Context, Path, bool], LayerPlan]

_LAYER_BUILDERS: dict[type[BaseModel], LayerBuilder] = {}
_BLOCK_BUILDERS: dict[type[BaseModel], BlockBuilder] = {}


def layer_builder(spec_cls: type[SpecT]) -> Callable[[LayerBuilder], LayerBuilder]:
    """Register ``fn(spec, in_shape, ctx, path) -> LayerPlan`` for a layer spec class."""

    def register(fn: LayerBuilder) -> LayerBuilder:
        _LAYER_BUILDERS[spec_cls] = fn
        return fn

    return register


def block_builder(spec_cls: type[SpecT]) -> Callable[[BlockBuilder], BlockBuilder]:
    """Register a repeatable block builder; ``first`` is True for the block that takes the stride."""

    def register(fn: BlockBuilder) -> BlockBuilder:
        _BLOCK_BUILDERS[spec_cls] = fn
        return fn

    return register


# --------------------------------------------------------------------------- helpers
def _leaf(
    type_: str,
    out: Shape,
    make: Callable[[], nn.Module],
    params: int = 0,
    macs: int = 0,
    buffers: int = 0,
) -> LayerPlan:
    return LayerPlan("", type_, out, params, macs, lambda _children: make(), [], buffers)


def _container(
    name: str, type_: str, out: Shape, children: Sequence[LayerPlan], make: Make
) -> LayerPlan:
    return LayerPlan(
        name,
        type_,
        out,
        sum(c.params for c in children),
        sum(c.macs for c in children),
        make,
        list(children),
        sum(c.buffers for c in children),
    )


def _sequential(named: Named) -> nn.Sequential:
    module = _nn().Sequential()
    for name, child in named:
        module.add_module(name, child)
    return module


def _spatial(shape: Shape, ctx: _Context, path: Path, what: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ctx.error(
            path,
            f"{what} needs a CxHxW feature map but gets {len(shape)}-d features ({fmt(shape)}); "
            "move it before the flatten",
        )
    return shape  # type: ignore[return-value]


def _window(what: str, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> str:
    """``conv (kernel 3x3, stride 2, padding 1)``, naming the dilation only when it is not 1."""
    parts = [
        f"kernel {kernel[0]}x{kernel[1]}",
        f"stride {_pair_text(stride)}",
        f"padding {_pair_text(padding)}",
    ]
    if dilation != (1, 1):
        parts.append(f"dilation {_pair_text(dilation)}")
    return f"{what} ({', '.join(parts)})"


def _pair_text(value: Pair) -> str:
    return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"


def _check_positive(out: Shape, in_shape: Shape, ctx: _Context, path: Path, what: str) -> Shape:
    if min(out) < 1:
        raise ctx.error(
            path,
            f"{what} turns a {fmt(in_shape)} input into {fmt(out)}: the input is too small here; "
            "use a larger input, or less stride/pooling before this layer",
        )
    return out


def _conv_padding(
    padding: Any, kernel: tuple[int, int], dilation: tuple[int, int]
) -> tuple[int, int]:
    if padding == "same":
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))  # type: ignore[return-value]
    return pair(padding)


def _conv_plan(
    in_shape: Shape,
    ctx: _Context,
    path: Path,
    *,
    out: int,
    kernel: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    bias: bool = True,
) -> LayerPlan:
    """A Conv2d for ``in_shape``: output shape, weights and multiply-adds."""
    c, h, w = _spatial(in_shape, ctx, path, "conv")
    k, st, d = pair(kernel), pair(stride), pair(dilation)
    if c % groups or out % groups:
        raise ctx.error(
            path,
            f"groups={groups} must divide both the input channels ({c}) and out ({out})",
            "channels",
        )
    if padding == "same" and st != (1, 1):
        raise ctx.error(
            path,
            "padding 'same' needs stride 1 (PyTorch's rule); give the padding as a number",
            "value",
        )
    pad = _conv_padding(padding, k, d)
    if padding == "same":
        out_shape: Shape = (out, h, w)
    else:
        out_shape = (
            out,
            conv_out(h, k[0], st[0], pad[0], d[0]),
            conv_out(w, k[1], st[1], pad[1], d[1]),
        )
    _check_positive(out_shape, in_shape, ctx, path, _window("conv", k, st, pad, d))
    weights = out * (c // groups) * k[0] * k[1]
    padding_arg = padding if padding == "same" else pad
    return _leaf(
        "conv",
        out_shape,
        lambda: _nn().Conv2d(c, out, k, st, padding_arg, d, groups, bias),
        params=weights + (out if bias else 0),
        macs=math.prod(out_shape[1:]) * weights,
    )


def _batchnorm_plan(shape: Shape, eps: float, momentum: float, affine: bool = True) -> LayerPlan:
    cls = "BatchNorm2d" if len(shape) == 3 else "BatchNorm1d"
    channels = shape[0]
    return _leaf(
        "batchnorm",
        shape,
        lambda: getattr(_nn(), cls)(channels, eps=eps, momentum=momentum, affine=affine),
        params=2 * channels if affine else 0,
        buffers=2 * channels,  # running mean and variance (num_batches_tracked is an integer)
    )


_ACTIVATIONS = {  # type tag -> torch.nn class name
    "relu": "ReLU",
    "relu6": "ReLU6",
    "leaky_relu": "LeakyReLU",
    "gelu": "GELU",
    "silu": "SiLU",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "hardswish": "Hardswish",
}


_NO_INPLACE = ("gelu", "sigmoid", "tanh")


def _named_container(
    name: str, type_: str, named_plans: Sequence[tuple[str, LayerPlan]], out: Shape
) -> LayerPlan:
    """A ``nn.Sequential`` of the given plans, renamed as given."""
    children = []
    for child_name, plan in named_plans:
        plan.name = child_name
        children.append(plan)
    return _container(name, type_, out, children, _sequential)


# --------------------------------------------------------------------------- plain layers
@layer_builder(s.Conv)
def _conv(spec: s.Conv, shape: Shape, ctx: _Context, path: Path) -> LayerPlan:
    return _conv_plan(
        shape,
        ctx,
        path,
        out=spec.out,
        kernel=spec.kernel,
        stride=spec.stride,
        padding=spec.padding,
        dilation=spec.dilation,
        groups=spec.groups,
        bias=spec.bias,
    )


@layer_builder(s.ConvBnAct)
def _conv_bn_act(spec: s.ConvBnAct, shape: Shape, ctx: _Context, path: Path) -> LayerPlan:
    k, d = pair(spec.kernel), pair(spec.dilation)
    padding = (
        spec.padding
        if spec.padding is not None
        else tuple((kk - 1) // 2 * dd for kk, dd in zip(k, d, strict=True))
    )
    conv = _conv_plan(
        shape,
        ctx,
        path,
        out=spec.out,
        kernel=spec.kernel,
        stride=spec.stride,
        padding=padding,
        dilation=spec.dilation,
        groups=spec.groups,
        bias=spec.bias,
    )
    named = [("conv", conv), ("bn", _batchnorm_plan(conv.out, spec.eps, spec.momentum))]
    if spec.act != "none":
        act = spec.act
        inplace = {} if act in _NO_INPLACE else {"inplace": True}  # in place as torchvision does
        cls = _ACTIVATIONS[act]
        named.append(("act", _leaf(act, conv.out, lambda: getattr(_nn(), cls)(**inplace))))
    return _named_container("", "conv_bn_act", named, conv.out)


@layer_builder(s.BatchNorm)
def _bn(spec: s.BatchNorm, shape: Shape, ctx: _Context, path: Path) -> LayerPlan:
    return _batchnorm_plan(shape, spec.eps, spec.momentum, spec.affine)


def _activation_builder(spec: Any, shape: Shape, ctx: _Context, path: Path) -> LayerPlan:
    kwargs = spec.model_dump(exclude={"type", "name"})
    cls = _ACTIVATIONS[spec.type]
    return _leaf(spec.type, shape, lambda: getattr(_nn(), cls)(**kwargs))


for _cls in (s.ReLU, s.ReLU6, s.LeakyReLU, s.GELU, s.SiLU, s.Hardswish, s.Sigmoid, s.Tanh):
    layer_builder(_cls)(_activation_builder)


@layer_builder(s.MaxPool)
@layer_builder(s.AvgPool)
def _pool(spec: s.MaxPool | s.AvgPool, shape: Shape, ctx: _Context, path: Path) -> LayerPlan:
    c, h, w = _spatial(shape, ctx, path, spec.type)
    k = pair(spec.kernel)
    st = pair(spec.stride) if spec.stride is not None else k
    p = pair(spec.padding)
    d = pair(spec.dilation) if isinstance(spec, s.MaxPool) else (1, 1)
    if any(pp > kk // 2 for pp, kk in zip(p, k, strict=True)):
        raise ctx.error(
            path,
            f"padding {p[0]} is more than half the kernel ({k[0]}); PyTorch refuses this",
            "value",
        )
    out = (
        c,
        pool_out(h, k[0], st[0], p[0], d[0], spec.ceil_mode),
        pool_out(w, k[1], st[1], p[1], d[1], spec.ceil_mode),
    )
    _check_positive(out, shape, ctx, path, _window(spec.type, k, st, p, d))
    ceil_mode = spec.ceil_mode
    if isinstance(spec, s.MaxPool):
        return _leaf(spec.type, out, lambda: _nn().MaxPool2d(k, st, p, d, ceil_mode=ceil_mode))
    include_pad = spec.count_include_pad
    return _leaf(
        spec.type,
        out,
        lambda: _nn().AvgPool2d(k, st, p, ceil_mode=ceil_mode, count_include_pad=include_pad),
    )


@layer_builder(s.AdaptiveAvgPool)
@layer_builder(s.AdaptiveMaxPool)
def _adaptive_pool(
    spec: s.AdaptiveAvgPool | s.AdaptiveMaxPool, shape: Shape, ctx: _Context, path: Path
) -> LayerPlan:
    c, _, _ = _spatial(shape, ctx, path, spec.type)
    size = pair(spec.size)
    cls = "AdaptiveAvgPool2d" if isinstance(spec, s.AdaptiveAvgPool) else "AdaptiveMaxPool2d"
    return _leaf(spec.type, (c, *size), lambda: getattr(_nn(), cls)(size))


@layer_builder(s.Flatten)
def _flatten(spec: s.Flatten, shape: Shape, ctx: _Context, path: Path) -> LayerPlan:
    return _leaf("flatten", (math.prod(shape),), lambda: _nn().Flatten())


@layer_builder(s.Linear)
def _linear(spec: s.Linear, shape: Shape, ctx: _Context, path: Path) -> LayerPlan:
    if len(shape) != 1:
        raise ctx.error(
            path,
            f"linear needs flat features but gets a {fmt(shape)} feature map; "
            "add {type: flatten} (after a pooling layer) before it",
        )
    features, out, bias = shape[0], spec.out, spec.bias
    return _leaf(
        "linear",
        (out,),
        lambda: _nn().Linear(features, out, bias=bias),
        params=features * out + (out if bias else 0),
        macs=features * out,
    )


@layer_builder(s.Dropout)
def _dropout(spec: s.Dropout, shape: Shape, ctx: _Context, path: Path) -> LayerPlan:
    p, inplace = spec.p, spec.inplace
    return _leaf("dropout", shape, lambda: _nn().Dropout(p, inplace=inplace))


@layer_builder(s.Identity)
def _identity(spec: s.Identity, shape: Shape, ctx: _Context, path: Path) -> LayerPlan:
    return _leaf("identity", shape, lambda: _nn().Identity())


# --------------------------------------------------------------------------- plugin layers
def register_plugin_builder(
    spec_cls: type[BaseModel], builder: Callable[[Any, Shape], nn.Module]
) -> None:
    """Wrap a plugin's ``builder(spec, in_shape) -> nn.Module`` as a layer builder.

    zoo cannot do a foreign module's arithmetic, so planning one builds it on the meta device
    (no memory) and measures one forward pass; it is a single row of the plan.
    """
    from zoo.plugins import measure

    def plan(spec: Any, shape: Shape, ctx: _Context, path: Path) -> LayerPlan:
        try:
            import torch  # a foreign module's arithmetic is measured, so it needs torch

            with torch.device("meta"):
                module = builder(spec, shape)
                out, macs = measure(module, shape)
        except ZooError:
            raise
        except (Exception, SystemExit) as exc:  # plugin code must not end zoo, even by sys.exit()
            message = f"{spec.type} cannot take a {fmt(shape)} input: {describe_error(exc)}"
            raise ctx.error(path, message, "plugin") from None
        buffers = sum(b.numel() for b in module.buffers() if b.is_floating_point())
        params = sum(p.numel() for p in module.parameters())
        return _leaf(spec.type, out, lambda: builder(spec, shape), params, macs, buffers)

    _LAYER_BUILDERS[spec_cls] = plan


def unregister_plugin_builder(spec_cls: type[BaseModel]) -> None:
    """Forget the layer builder of a plugin spec class (``zoo.unregister_layer``)."""
    _LAYER_BUILDERS.pop(spec_cls, None)


# --------------------------------------------------------------------------- node lists
def plan_node(spec: Any, shape: Shape, ctx: _Context, path: Path) -> LayerPlan:
    """Plan any layer or block spec from ``shape``; the plan's name is filled in by the caller."""
    ctx.count_layer(path)
    cls = type(spec)
    if cls in _LAYER_BUILDERS:
        plan = _LAYER_BUILDERS[cls](spec, shape, ctx, path)
    elif cls in _BLOCK_BUILDERS:
        plan = _plan_repeated(spec, shape, ctx, path)
    else:
        raise ctx.error(
            path, f"no builder registered for type {getattr(spec, 'type', cls.__name__)!r}", "type"
        )
    _check_bounded(plan, ctx, path)
    return plan


_DIM_NAMES = {1: ("features",), 3: ("channels", "height", "width")}


def _check_bounded(plan: LayerPlan, ctx: _Context, path: Path) -> None:
    """Every planned size obeys the bound of the spec's own sizes: fields that are each within
    bounds (a large padding, many concatenated branches, a flatten) can still add up to an absurd
    map, whose numbers of parameters and multiply-adds are then absurd too."""
    for i, size in enumerate(plan.out):
        if size > MAX_DIM:
            names = _DIM_NAMES.get(len(plan.out), ())
            dim = names[i] if names else f"dimension {i + 1}"
            hint = (
                "pool before the flatten (e.g. {type: adaptive_avgpool})"
                if plan.type == "flatten"
                else "use smaller padding, channels or sizes (or a smaller input)"
            )
            raise ctx.error(
                path,
                f"{plan.type} gives a {fmt(plan.out)} output: its {dim} ({size:,}) is over the "
                f"limit of {MAX_DIM:,} for any one size; {hint}",
                "too_large",
            )


def _plan_repeated(spec: Any, shape: Shape, ctx: _Context, path: Path) -> LayerPlan:
    block = _BLOCK_BUILDERS[type(spec)]
    if spec.depth is None:
        return block(spec, shape, ctx, path, True)
    children = []
    for i in range(spec.depth):
        plan = block(spec, shape, ctx, path, i == 0)
        plan.name = str(i)
        children.append(plan)
        shape = plan.out
    return _container("", f"{spec.type} x{spec.depth}", shape, children, _sequential)


Item = tuple[Any, Path]  # a node and its path in the spec


def expand(nodes: Sequence[Any], path: Path, ctx: _Context | None = None) -> list[Item]:
    """Inline every ``repeat`` (recursively): a flat list of (node, spec path) pairs."""
    items: list[Item] = []
    for i, node in enumerate(nodes):
        if isinstance(node, s.Repeat):
            inner = expand(node.layers, (*path, i, "layers"), ctx)
            if ctx is not None and len(inner) * node.times > MAX_LAYERS:
                raise ctx.error(
                    (*path, i, "times"), f"repeats to more than {MAX_LAYERS:,} layers", "too_large"
                )
            items += inner * node.times
        else:
            items.append((node, (*path, i)))
    return items


def plan_items(
    items: Sequence[Item], shape: Shape, ctx: _Context, default_name: Callable[[int], str]
) -> tuple[list[LayerPlan], Shape]:
    """Plan expanded items in sequence; unnamed ones get ``default_name(position)``."""
    plans: list[LayerPlan] = []
    used: dict[str, Path] = {}
    for i, (node, path) in enumerate(items):
        name = node.name or default_name(i)
        if name in used:
            raise ctx.error(
                (*path, "name"),
                f"module name {name!r} is already used by {dotted(used[name])}; names must be unique "
                "among siblings (a named layer inside a `repeat` is repeated too)",
                "name",
            )
        used[name] = path
        plan = plan_node(node, shape, ctx, path)
        plan.name = name
        plan.source = path
        plans.append(plan)
        shape = plan.out
    return plans, shape


def plan_list(
    nodes: Sequence[Any],
    shape: Shape,
    ctx: _Context,
    path: Path,
    default_name: Callable[[int], str],
) -> tuple[list[LayerPlan], Shape]:
    """Plan a list of nodes in sequence (``repeat`` inlined); unnamed ones get ``default_name(position)``."""
    return plan_items(expand(nodes, path, ctx), shape, ctx, default_name)


@block_builder(s.Sequential)
def _sequential_block(
    spec: s.Sequential, shape: Shape, ctx: _Context, path: Path, first: bool
) -> LayerPlan:
    plans, out = plan_list(spec.layers, shape, ctx, (*path, "layers"), str)
    return _container("", "sequential", out, plans, _sequential)


# --------------------------------------------------------------------------- residual family
# The types whose `stride` field sets the stride of their output, so that the block stride can
# replace it; a pool's default stride is its kernel.
_TAKES_STRIDE = (s.Conv, s.ConvBnAct, s.MaxPool, s.AvgPool)
_TAKES_STRIDE_NAMES = ", ".join(
    get_args(m.model_fields["type"].annotation)[0] for m in _TAKES_STRIDE
)


def _stride_index(spec: s.Residual, body: Sequence[Item], ctx: _Context, path: Path) -> int | None:
    """Position in the expanded body of the layer that takes the block stride."""
    at_path = (*path, "stride_at")
    if spec.stride_at is None:
        return next(
            (i for i, (layer, _) in enumerate(body) if isinstance(layer, s.Conv | s.ConvBnAct)),
            None,
        )
    if isinstance(spec.stride_at, int):
        if spec.stride_at >= len(body):
            raise ctx.error(
                at_path, f"body has {len(body)} layers; no index {spec.stride_at}", "value"
            )
        at, what = spec.stride_at, f"body layer {spec.stride_at}"
    else:
        at = next((i for i, (layer, _) in enumerate(body) if layer.name == spec.stride_at), None)
        if at is None:
            raise ctx.error(at_path, f"no body layer is named {spec.stride_at!r}", "value")
        what = repr(spec.stride_at)
    layer = body[at][0]
    if not isinstance(layer, _TAKES_STRIDE):
        # the stride would be dropped: model_copy(update=...) ignores a field the model lacks
        raise ctx.error(
            at_path,
            f"{what} is a {layer.type}, which has no stride; stride_at must name a body layer "
            f"of one of these types: {_TAKES_STRIDE_NAMES}",
            "value",
        )
    return at


def _own_stride(layer: Any) -> Pair | None:
    """The stride a body layer is given in the spec, when it is not 1 (a pool's default is not given)."""
    if not isinstance(layer, _TAKES_STRIDE) or layer.stride is None:
        return None
    stride = pair(layer.stride)
    return None if stride == (1, 1) else stride


def _mismatch_hint(spec: s.Residual, body: Sequence[Item]) -> str:
    """What to do when the body's output and the projected shortcut disagree."""
    if pair(spec.stride) == (1, 1) and any(_own_stride(layer) for layer, _ in body):
        return "put the stride on the block (`stride:`), not on a body layer"
    return (
        "the body may change the height and width only by the block stride: pad its convs to "
        "keep the size (padding: 1 for a 3x3 kernel), and stride or pool nowhere else in it"
    )


def _projection(
    spec: s.Shortcut,
    shape: Shape,
    out: Shape,
    stride: tuple[int, int],
    ctx: _Context,
    path: Path,
    hint: str,
) -> LayerPlan:
    """The shortcut projection from ``shape`` to ``out`` (1x1 conv, optional BN / avg-pool);
    ``hint`` ends the message when the two cannot agree."""
    conv_stride = (1, 1) if spec.kind == "avgpool_conv_bn" else stride
    parts: list[LayerPlan] = []
    pooled = shape
    if spec.kind == "avgpool_conv_bn" and stride != (1, 1):
        c, h, w = _spatial(shape, ctx, path, "avgpool shortcut")
        pooled = (
            c,
            pool_out(h, stride[0], stride[0], 0, 1, True),
            pool_out(w, stride[1], stride[1], 0, 1, True),
        )
        parts.append(
            _leaf(
                "avgpool",
                pooled,
                lambda: _nn().AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
            )
        )
    bias = spec.bias if spec.bias is not None else spec.kind == "conv"
    conv = _conv_plan(pooled, ctx, path, out=out[0], kernel=1, stride=conv_stride, bias=bias)
    if conv.out != out:
        raise ctx.error(
            path,
            f"residual body gives {fmt(out)} but the projected shortcut gives {fmt(conv.out)} "
            f"(input {fmt(shape)}, stride {_pair_text(stride)}); {hint}",
        )
    *outer, inner = spec.name.split(".")
    if spec.kind == "conv":
        plan = conv
        plan.name = inner
    else:
        parts += [conv, _batchnorm_plan(out, spec.eps, 0.1)]
        plan = _named_container(
            inner, f"shortcut {spec.kind}", [(str(i), p) for i, p in enumerate(parts)], out
        )
    for name in reversed(outer):  # "downsample.conv": nest, so state_dict keys follow the name
        plan = _container(name, "sequential", out, [plan], _sequential)
    return plan


def _residual_module(
    pre: Sequence[LayerPlan],
    body: Sequence[LayerPlan],
    shortcut: LayerPlan | None,
    post: Sequence[LayerPlan],
    shortcut_from_pre: bool,
) -> Make:
    """How to make the ``Residual`` of these plans, from its children's modules."""
    roles = [[p.name for p in part] for part in (pre, body, post)]
    shortcut_name = shortcut.name if shortcut else None

    def make(children: Named) -> nn.Module:
        modules = dict(children)
        pre_named, body_named, post_named = ([(n, modules[n]) for n in part] for part in roles)
        return _blocks().Residual(
            body_named,
            (shortcut_name, modules[shortcut_name]) if shortcut_name else None,
            pre_named,
            post_named,
            shortcut_from_pre=shortcut_from_pre,
        )

    return make


@block_builder(s.Residual)
def _residual(
    spec: s.Residual, shape: Shape, ctx: _Context, path: Path, first: bool, type_: str = "residual"
) -> LayerPlan:
    stride = pair(spec.stride) if first else (1, 1)
    body = expand(spec.body, (*path, "body"), ctx)
    at = _stride_index(spec, body, ctx, path)
    if stride != (1, 1):
        if at is None:
            raise ctx.error(
                (*path, "stride"),
                "block has a stride but its body has no conv to take it; set stride_at",
                "value",
            )
        layer, layer_path = body[at]
        own = _own_stride(layer)
        if own is not None:
            raise ctx.error(
                (*layer_path, "stride"),
                f"{layer.type} has its own stride {_pair_text(own)}, and the block's stride "
                f"{_pair_text(stride)} replaces it in the first block; give the stride once, on the "
                "block (`stride:`)",
                "value",
            )
        body[at] = (layer.model_copy(update={"stride": stride}), layer_path)
    pre, pre_out = plan_list(spec.pre, shape, ctx, (*path, "pre"), lambda i: f"pre_{i}")
    body_plans, body_out = plan_items(body, pre_out, ctx, lambda i: f"body_{i}")
    shortcut: LayerPlan | None = None
    if shape != body_out:  # an identity shortcut always carries the block input itself
        projection_in = pre_out if spec.shortcut_from == "pre" else shape
        hint = _mismatch_hint(spec, body)
        shortcut = _projection(
            spec.shortcut, projection_in, body_out, stride, ctx, (*path, "shortcut"), hint
        )
    post, out = plan_list(spec.post, body_out, ctx, (*path, "post"), lambda i: f"post_{i}")
    names = [p.name for p in (*pre, *body_plans, *post)]
    if shortcut is not None and shortcut.name in names:
        raise ctx.error(
            (*path, "shortcut", "name"),
            f"shortcut name {shortcut.name!r} is also a layer name in this block",
            "name",
        )
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ctx.error(
            path,
            f"module name {dup!r} is used twice in this block (pre/body/post share one namespace)",
            "name",
        )
    make = _residual_module(pre, body_plans, shortcut, post, spec.shortcut_from == "pre")
    children = [*pre, *body_plans, *([shortcut] if shortcut else []), *post]
    return _container("", type_, out, children, make)


# Presets are expanded into the generic residual spec, once per block spec, with model_construct:
# every value comes from an already-validated spec, and validating again would cost more than
# planning the block (tracing should cost microseconds per layer).
def _bn_spec(name: str, eps: float) -> s.BatchNorm:
    return s.BatchNorm.model_construct(type="batchnorm", name=name, eps=eps)


def _relu(name: str) -> s.ReLU:
    return s.ReLU.model_construct(type="relu", name=name, inplace=True)


def _conv_spec(name: str, out: int, kernel: int, groups: int = 1, bias: bool = False) -> s.Conv:
    return s.Conv.model_construct(
        type="conv",
        name=name,
        out=out,
        kernel=kernel,
        padding=kernel // 2,
        groups=groups,
        bias=bias,
    )


def _as_residual(spec: Any, **fields: Any) -> s.Residual:
    # every field given: model_construct inspects the signature of each default factory it calls
    defaults = {"name": None, "depth": None, "pre": (), "post": (), "stride_at": None}
    return s.Residual.model_construct(
        type="residual",
        stride=spec.stride,
        shortcut=spec.shortcut,
        **{**defaults, "shortcut_from": "input", **fields},
    )


def _preset(spec: Any, ctx: _Context, expand_preset: Callable[[Any], SpecT]) -> SpecT:
    """The generic spec of a preset block, expanded once per spec (a stage repeats one spec)."""
    key = id(spec)  # the spec outlives the plan, so its id is not reused meanwhile
    if key not in ctx.presets:
        ctx.presets[key] = expand_preset(spec)
    return ctx.presets[key]


def residual_preset(spec_cls: type[SpecT]) -> Callable[[Callable[[Any], s.Residual]], Any]:
    """Register ``expand(spec) -> Residual spec`` as the block builder of a residual preset."""

    def register(expand: Callable[[Any], s.Residual]) -> Callable[[Any], s.Residual]:
        def plan(spec: Any, shape: Shape, ctx: _Context, path: Path, first: bool) -> LayerPlan:
            return _residual(_preset(spec, ctx, expand), shape, ctx, path, first, spec.type)

        _BLOCK_BUILDERS[spec_cls] = plan
        return expand

    return register


@residual_preset(s.Basic)
def _basic_residual(spec: s.Basic) -> s.Residual:
    return _as_residual(
        spec,
        body=(
            _conv_spec("conv1", spec.out, 3, bias=spec.bias),
            _bn_spec("bn1", spec.eps),
            _relu("relu1"),
            _conv_spec("conv2", spec.out, 3, bias=spec.bias),
            _bn_spec("bn2", spec.eps),
        ),
        post=(_relu("relu2"),),
    )


def _width(spec: s.Bottleneck | s.PreActBottleneck) -> int:
    return spec.width or spec.out // spec.expansion


@residual_preset(s.Bottleneck)
def _bottleneck_residual(spec: s.Bottleneck) -> s.Residual:
    width = _width(spec)
    return _as_residual(
        spec,
        body=(
            _conv_spec("conv1", width, 1),
            _bn_spec("bn1", spec.eps),
            _relu("relu1"),
            _conv_spec("conv2", width, 3, spec.groups),
            _bn_spec("bn2", spec.eps),
            _relu("relu2"),
            _conv_spec("conv3", spec.out, 1),
            _bn_spec("bn3", spec.eps),
        ),
        post=(_relu("relu3"),),
        stride_at="conv2",
    )


@residual_preset(s.PreActBasic)
def _preact_basic_residual(spec: s.PreActBasic) -> s.Residual:
    return _as_residual(
        spec,
        pre=(_bn_spec("norm1", spec.eps), _relu("act1")),
        body=(
            _conv_spec("conv1", spec.out, 3),
            _bn_spec("norm2", spec.eps),
            _relu("act2"),
            _conv_spec("conv2", spec.out, 3),
        ),
        shortcut_from="pre",
    )


@residual_preset(s.PreActBottleneck)
def _preact_bottleneck_residual(spec: s.PreActBottleneck) -> s.Residual:
    width = _width(spec)
    return _as_residual(
        spec,
        pre=(_bn_spec("norm1", spec.eps), _relu("act1")),
        body=(
            _conv_spec("conv1", width, 1),
            _bn_spec("norm2", spec.eps),
            _relu("act2"),
            _conv_spec("conv2", width, 3, spec.groups),
            _bn_spec("norm3", spec.eps),
            _relu("act3"),
            _conv_spec("conv3", spec.out, 1),
        ),
        shortcut_from="pre",
        stride_at="conv2",
    )


# --------------------------------------------------------------------------- concat family
@block_builder(s.Concat)
def _concat(
    spec: s.Concat, shape: Shape, ctx: _Context, path: Path, first: bool, type_: str = "concat"
) -> LayerPlan:
    branches: list[LayerPlan] = []
    for i, branch in enumerate(spec.branches):
        default = f"branch{i + 1}"
        bpath = (*path, "branches", i)
        if isinstance(branch, tuple | s.Repeat):
            nodes = branch if isinstance(branch, tuple) else (branch,)
            layers, out = plan_list(nodes, shape, ctx, bpath, str)
            plan = _container(default, "sequential", out, layers, _sequential)
        else:
            plan = plan_node(branch, shape, ctx, bpath)
            plan.name = branch.name or default
        if len(plan.out) != 3:
            raise ctx.error(
                bpath, f"branch {plan.name} must give a CxHxW feature map, not {fmt(plan.out)}"
            )
        if branches and plan.out[1:] != branches[0].out[1:]:
            raise ctx.error(
                bpath,
                f"branch {plan.name} gives {fmt(plan.out)} but {branches[0].name} gives {fmt(branches[0].out)}; "
                "concatenated branches must keep the same height and width",
            )
        if plan.name in (b.name for b in branches):
            raise ctx.error(bpath, f"branch name {plan.name!r} is used twice", "name")
        branches.append(plan)
    out = (sum(b.out[0] for b in branches), *branches[0].out[1:])
    return _container("", type_, out, branches, lambda named: _blocks().Concat(named))


def _cba(out: int, kernel: int, eps: float) -> s.ConvBnAct:
    return s.ConvBnAct.model_construct(type="conv_bn_act", out=out, kernel=kernel, eps=eps)


def _inception_concat(spec: s.Inception) -> s.Concat:
    return s.Concat.model_construct(
        type="concat",
        branches=(
            _cba(spec.b1, 1, spec.eps),
            (_cba(spec.b3_reduce, 1, spec.eps), _cba(spec.b3, 3, spec.eps)),
            (_cba(spec.b5_reduce, 1, spec.eps), _cba(spec.b5, spec.b5_kernel, spec.eps)),
            (
                s.MaxPool.model_construct(
                    type="maxpool", kernel=3, stride=1, padding=1, ceil_mode=True
                ),
                _cba(spec.pool_proj, 1, spec.eps),
            ),
        ),
    )


@block_builder(s.Inception)
def _inception(
    spec: s.Inception, shape: Shape, ctx: _Context, path: Path, first: bool
) -> LayerPlan:
    concat = _preset(spec, ctx, _inception_concat)
    return _concat(concat, shape, ctx, path, first, "inception")


# --------------------------------------------------------------------------- the whole net
_SECTIONS = ("stem", "stages", "head")


@dataclass
class NetworkPlan:
    """A planned spec: the root plan (type ``model``) and the input shape (C, H, W) it is for."""

    root: LayerPlan
    input_shape: Shape

    def materialize(self) -> ZooNet:
        """The network's modules, with PyTorch's default initialization, on the default device."""
        return self.root.materialize()  # type: ignore[return-value]


def plan_spec(spec: s.ModelSpec, input_shape: Shape | None = None) -> NetworkPlan:
    """Plan ``spec`` for ``input_shape`` (C, H, W; default: the spec's input): arithmetic only."""
    if input_shape is None:
        input_shape = (spec.input.channels, *pair(spec.input.size))
    input_shape = tuple(input_shape)
    _check_input(spec, input_shape)
    ctx = _Context(spec._located)
    plans: list[LayerPlan] = []
    shape = input_shape
    first_use: dict[str, Path] = {}
    for section in _SECTIONS:
        section_plans, shape = plan_list(
            getattr(spec, section), shape, ctx, (section,), lambda i, sec=section: f"{sec}_{i}"
        )
        for i, plan in enumerate(section_plans):
            if plan.name in first_use:
                raise ctx.error(
                    (section, i, "name"),
                    f"module name {plan.name!r} is already used by {dotted(first_use[plan.name])}; "
                    "top-level names must be unique across stem, stages and head",
                    "name",
                )
            first_use[plan.name] = (section, i)
        plans += section_plans
    _warn_unnormalized_preactivation(plans, ctx)
    name = spec.name
    root = _container(
        name, "model", shape, plans, lambda named: _blocks().ZooNet(named, name, input_shape)
    )
    return NetworkPlan(root, input_shape)


def _check_input(spec: s.ModelSpec, shape: Shape) -> None:
    """An input other than the spec's may change its size, never its channels: those are part of
    the network (the first layer's weights), so changing them is a change to the spec."""
    channels = spec.input.channels
    if len(shape) != 3 or min(shape) < 1 or max(shape) > MAX_DIM:
        message = (
            f"input shape {fmt(shape)} must be CxHxW, every size from 1 to at most {MAX_DIM:,}"
        )
    elif shape[0] != channels:
        message = (
            f"the input has {shape[0]} channels but {spec.name} takes {channels} "
            f"(its input.channels); give a {channels}xHxW input, or change the spec "
            f"(--set input.channels={shape[0]})"
        )
    else:
        return
    raise ZooError(Problem(message, kind="input"), ExitCode.USAGE_ERROR)


_PREACT = ("preact_basic", "preact_bottleneck")
_NORMS = ("batchnorm", "conv_bn_act")


def _unnormalized_preactivation(
    plans: Sequence[LayerPlan], pending: LayerPlan | None
) -> LayerPlan | None:
    """The spec-level preact stage left without a norm after it, walking in execution order."""
    for plan in plans:
        kind = plan.type.split(" ")[0]
        if kind in _PREACT:
            # a stage repeated by `depth` is the thing to point at; its blocks have no source
            pending = plan if plan.source else pending
        elif plan.type in _NORMS:
            pending = None
        else:
            pending = _unnormalized_preactivation(plan.children, pending)
    return pending


def _warn_unnormalized_preactivation(plans: Sequence[LayerPlan], ctx: _Context) -> None:
    """Pre-activation blocks end on a conv: without a norm after the last one, the head sees raw
    conv outputs (He et al. 2016 and timm's resnetv2 add a final BN-ReLU; seed 003's net forgot it)."""
    block = _unnormalized_preactivation(plans, None)
    if block is None:
        return
    problem = ctx.error(
        block.source,
        "the last pre-activation block is not followed by a norm: add {type: batchnorm} and "
        "{type: relu} before the head, as pre-activation ResNets do",
        "preact_final_norm",
    ).problems[0]
    warnings.warn(ZooWarning(problem), stacklevel=3)
