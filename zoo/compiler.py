"""Spec -> ``nn.Module``: walk stem, stages and head carrying the running shape.

Every ``in_channels`` and ``in_features`` comes from the running shape, so no size is ever written
by hand. Each builder returns the module and a :class:`LayerRecord` (output shape, parameters,
multiply-adds), which is what the tracer prints: shape and cost inference are the compiler's own
arithmetic, not a forward pass. Builders are found in a registry keyed by spec class, never by name
lookup in ``globals()``.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from pydantic import BaseModel
from torch import nn

from zoo.blocks import Concat, Residual, ZooNet
from zoo.errors import Problem, ZooError, ZooWarning
from zoo.shapes import Shape, conv_out, fmt, pair, pool_out
from zoo.spec import schema as s
from zoo.spec.yaml_loader import Located, Path, dotted


@dataclass
class LayerRecord:
    """What the compiler inferred for one module: its output shape and cost, and its children's."""

    name: str
    type: str
    out: Shape
    params: int
    macs: int
    children: list[LayerRecord] = field(default_factory=list)
    source: Path = ()  # where in the spec it comes from (stages.2), for located messages


@dataclass
class Compiled:
    """A compiled spec: the module and the record tree of its inferred shapes and costs."""

    model: ZooNet
    record: LayerRecord
    input_shape: Shape


@dataclass
class _Context:
    located: Located | None
    layers: int = 0  # built so far, against MAX_LAYERS

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


MAX_LAYERS = (
    100_000  # ResNet-152 has ~500; past this a spec is a mistake, and building it takes minutes
)
MAX_WEIGHT_BYTES = 8 * 2**30  # materializing more needs force=True (VGG-16 is 0.55 GB in float32)

Built = tuple[nn.Module, LayerRecord]
SpecT = TypeVar("SpecT", bound=BaseModel)
LayerBuilder = Callable[[Any, Shape, _Context, Path], Built]
BlockBuilder = Callable[[Any, Shape, _Context, Path, bool], Built]

_LAYER_BUILDERS: dict[type[BaseModel], LayerBuilder] = {}
_BLOCK_BUILDERS: dict[type[BaseModel], BlockBuilder] = {}


def layer_builder(spec_cls: type[SpecT]) -> Callable[[LayerBuilder], LayerBuilder]:
    """Register ``fn(spec, in_shape, ctx, path) -> (module, record)`` for a layer spec class."""

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
def _own_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def _record(
    name: str,
    type_: str,
    module: nn.Module,
    out: Shape,
    macs: int = 0,
    children: Sequence[LayerRecord] = (),
) -> LayerRecord:
    params = _own_params(module) + sum(c.params for c in children)
    return LayerRecord(
        name, type_, out, params, macs + sum(c.macs for c in children), list(children)
    )


def _spatial(shape: Shape, ctx: _Context, path: Path, what: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ctx.error(
            path,
            f"{what} needs a CxHxW feature map but gets {len(shape)}-d features ({fmt(shape)}); "
            "move it before the flatten",
        )
    return shape  # type: ignore[return-value]


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


def _make_conv(
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
) -> tuple[nn.Conv2d, Shape, int]:
    """A Conv2d for ``in_shape``, its output shape and its multiply-adds."""
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
    out_shape = (
        out,
        conv_out(h, k[0], st[0], pad[0], d[0]),
        conv_out(w, k[1], st[1], pad[1], d[1]),
    )
    if padding == "same":
        out_shape = (out, h, w)
    _check_positive(
        out_shape,
        in_shape,
        ctx,
        path,
        f"conv (kernel {k[0]}x{k[1]}, stride {st[0]}, padding {pad[0]})",
    )
    module = nn.Conv2d(c, out, k, st, padding if padding == "same" else pad, d, groups, bias)
    macs = math.prod(out_shape) * (c // groups) * k[0] * k[1]
    return module, out_shape, macs


def _batchnorm(shape: Shape, eps: float, momentum: float, affine: bool = True) -> nn.Module:
    cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
    return cls(shape[0], eps=eps, momentum=momentum, affine=affine)


_ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "hardswish": nn.Hardswish,
}


_NO_INPLACE = ("gelu", "sigmoid", "tanh")


def _activation(kind: str) -> nn.Module:
    """An activation module by spec name, in place where PyTorch allows it (as torchvision does)."""
    return _ACTIVATIONS[kind]() if kind in _NO_INPLACE else _ACTIVATIONS[kind](inplace=True)


# --------------------------------------------------------------------------- plain layers
@layer_builder(s.Conv)
def _conv(spec: s.Conv, shape: Shape, ctx: _Context, path: Path) -> Built:
    module, out, macs = _make_conv(
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
    return module, _record("", "conv", module, out, macs)


@layer_builder(s.ConvBnAct)
def _conv_bn_act(spec: s.ConvBnAct, shape: Shape, ctx: _Context, path: Path) -> Built:
    k, d = pair(spec.kernel), pair(spec.dilation)
    padding = (
        spec.padding
        if spec.padding is not None
        else tuple((kk - 1) // 2 * dd for kk, dd in zip(k, d, strict=True))
    )
    conv, out, macs = _make_conv(
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
    bn = _batchnorm(out, spec.eps, spec.momentum)
    named: list[tuple[str, nn.Module]] = [("conv", conv), ("bn", bn)]
    if spec.act != "none":
        named.append(("act", _activation(spec.act)))
    module = nn.Sequential()
    for name, child in named:
        module.add_module(name, child)
    children = [
        _record("conv", "conv", conv, out, macs),
        _record("bn", "batchnorm", bn, out),
    ]
    if spec.act != "none":
        children.append(_record("act", spec.act, named[-1][1], out))
    return module, _record("", "conv_bn_act", module, out, children=children)


@layer_builder(s.BatchNorm)
def _bn(spec: s.BatchNorm, shape: Shape, ctx: _Context, path: Path) -> Built:
    module = _batchnorm(shape, spec.eps, spec.momentum, spec.affine)
    return module, _record("", "batchnorm", module, shape)


def _activation_builder(spec: Any, shape: Shape, ctx: _Context, path: Path) -> Built:
    kwargs = spec.model_dump(exclude={"type", "name"})
    module = _ACTIVATIONS[spec.type](**kwargs)
    return module, _record("", spec.type, module, shape)


for _cls in (s.ReLU, s.ReLU6, s.LeakyReLU, s.GELU, s.SiLU, s.Hardswish, s.Sigmoid, s.Tanh):
    layer_builder(_cls)(_activation_builder)


@layer_builder(s.MaxPool)
@layer_builder(s.AvgPool)
def _pool(spec: s.MaxPool | s.AvgPool, shape: Shape, ctx: _Context, path: Path) -> Built:
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
    _check_positive(out, shape, ctx, path, f"{spec.type} (kernel {k[0]}x{k[1]}, stride {st[0]})")
    if isinstance(spec, s.MaxPool):
        module: nn.Module = nn.MaxPool2d(k, st, p, d, ceil_mode=spec.ceil_mode)
    else:
        module = nn.AvgPool2d(
            k, st, p, ceil_mode=spec.ceil_mode, count_include_pad=spec.count_include_pad
        )
    return module, _record("", spec.type, module, out)


@layer_builder(s.AdaptiveAvgPool)
@layer_builder(s.AdaptiveMaxPool)
def _adaptive_pool(
    spec: s.AdaptiveAvgPool | s.AdaptiveMaxPool, shape: Shape, ctx: _Context, path: Path
) -> Built:
    c, _, _ = _spatial(shape, ctx, path, spec.type)
    size = pair(spec.size)
    cls = nn.AdaptiveAvgPool2d if isinstance(spec, s.AdaptiveAvgPool) else nn.AdaptiveMaxPool2d
    module = cls(size)
    return module, _record("", spec.type, module, (c, *size))


@layer_builder(s.Flatten)
def _flatten(spec: s.Flatten, shape: Shape, ctx: _Context, path: Path) -> Built:
    module = nn.Flatten()
    return module, _record("", "flatten", module, (math.prod(shape),))


@layer_builder(s.Linear)
def _linear(spec: s.Linear, shape: Shape, ctx: _Context, path: Path) -> Built:
    if len(shape) != 1:
        raise ctx.error(
            path,
            f"linear needs flat features but gets a {fmt(shape)} feature map; "
            "add {type: flatten} (after a pooling layer) before it",
        )
    module = nn.Linear(shape[0], spec.out, bias=spec.bias)
    return module, _record("", "linear", module, (spec.out,), shape[0] * spec.out)


@layer_builder(s.Dropout)
def _dropout(spec: s.Dropout, shape: Shape, ctx: _Context, path: Path) -> Built:
    module = nn.Dropout(spec.p, inplace=spec.inplace)
    return module, _record("", "dropout", module, shape)


@layer_builder(s.Identity)
def _identity(spec: s.Identity, shape: Shape, ctx: _Context, path: Path) -> Built:
    module = nn.Identity()
    return module, _record("", "identity", module, shape)


# --------------------------------------------------------------------------- plugin layers
def register_plugin_builder(
    spec_cls: type[BaseModel], builder: Callable[[Any, Shape], nn.Module]
) -> None:
    """Wrap a plugin's ``builder(spec, in_shape) -> nn.Module`` as a layer builder."""
    from zoo.plugins import measure

    def build(spec: Any, shape: Shape, ctx: _Context, path: Path) -> Built:
        try:
            with torch.device("meta"):  # shapes and MACs from one forward that allocates nothing
                out, macs = measure(builder(spec, shape), shape)
            module = builder(spec, shape)
        except ZooError:
            raise
        except Exception as exc:
            raise ctx.error(
                path, f"{spec.type} cannot take a {fmt(shape)} input: {exc}", "plugin"
            ) from None
        # a plugin module is one row: its parameters include its submodules'
        record = LayerRecord("", spec.type, out, sum(p.numel() for p in module.parameters()), macs)
        return module, record

    _LAYER_BUILDERS[spec_cls] = build


# --------------------------------------------------------------------------- node lists
def build_node(spec: Any, shape: Shape, ctx: _Context, path: Path) -> Built:
    """Build any layer or block spec from ``shape``; the record's name is filled in by the caller."""
    ctx.count_layer(path)
    cls = type(spec)
    if cls in _LAYER_BUILDERS:
        return _LAYER_BUILDERS[cls](spec, shape, ctx, path)
    if cls in _BLOCK_BUILDERS:
        return _build_repeated(spec, shape, ctx, path)
    raise ctx.error(
        path, f"no builder registered for type {getattr(spec, 'type', cls.__name__)!r}", "type"
    )


def _build_repeated(spec: Any, shape: Shape, ctx: _Context, path: Path) -> Built:
    block = _BLOCK_BUILDERS[type(spec)]
    if spec.depth is None:
        return block(spec, shape, ctx, path, True)
    stage = nn.Sequential()
    children = []
    for i in range(spec.depth):
        module, record = block(spec, shape, ctx, path, i == 0)
        record.name = str(i)
        stage.add_module(str(i), module)
        children.append(record)
        shape = record.out
    return stage, _record("", f"{spec.type} x{spec.depth}", stage, shape, children=children)


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


def build_items(
    items: Sequence[Item], shape: Shape, ctx: _Context, default_name: Callable[[int], str]
) -> tuple[list[tuple[str, nn.Module]], list[LayerRecord], Shape]:
    """Build expanded items in sequence; unnamed ones get ``default_name(position)``."""
    named: list[tuple[str, nn.Module]] = []
    records: list[LayerRecord] = []
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
        module, record = build_node(node, shape, ctx, path)
        record.name = name
        record.source = path
        named.append((name, module))
        records.append(record)
        shape = record.out
    return named, records, shape


def build_list(
    nodes: Sequence[Any],
    shape: Shape,
    ctx: _Context,
    path: Path,
    default_name: Callable[[int], str],
) -> tuple[list[tuple[str, nn.Module]], list[LayerRecord], Shape]:
    """Build a list of nodes in sequence (``repeat`` inlined); unnamed ones get ``default_name(position)``."""
    return build_items(expand(nodes, path, ctx), shape, ctx, default_name)


def _sequential(named: Sequence[tuple[str, nn.Module]]) -> nn.Sequential:
    module = nn.Sequential()
    for name, child in named:
        module.add_module(name, child)
    return module


@block_builder(s.Sequential)
def _sequential_block(
    spec: s.Sequential, shape: Shape, ctx: _Context, path: Path, first: bool
) -> Built:
    named, records, out = build_list(spec.layers, shape, ctx, (*path, "layers"), str)
    module = _sequential(named)
    return module, _record("", "sequential", module, out, children=records)


# --------------------------------------------------------------------------- residual family
def _stride_index(spec: s.Residual, body: Sequence[Item], ctx: _Context, path: Path) -> int | None:
    """Position in the expanded body of the layer that takes the block stride."""
    if isinstance(spec.stride_at, int):
        if spec.stride_at >= len(body):
            raise ctx.error(
                (*path, "stride_at"),
                f"body has {len(body)} layers; no index {spec.stride_at}",
                "value",
            )
        return spec.stride_at
    for i, (layer, _) in enumerate(body):
        if spec.stride_at is None and isinstance(layer, s.Conv | s.ConvBnAct):
            return i
        if spec.stride_at is not None and layer.name == spec.stride_at:
            return i
    if spec.stride_at is not None:
        raise ctx.error((*path, "stride_at"), f"no body layer is named {spec.stride_at!r}", "value")
    return None


def _projection(
    spec: s.Shortcut, shape: Shape, out: Shape, stride: tuple[int, int], ctx: _Context, path: Path
) -> Built:
    """The shortcut projection from ``shape`` to ``out`` (1x1 conv, optional BN / avg-pool)."""
    conv_stride = (1, 1) if spec.kind == "avgpool_conv_bn" else stride
    named: list[tuple[str, nn.Module]] = []
    records: list[LayerRecord] = []
    pooled = shape
    if spec.kind == "avgpool_conv_bn" and stride != (1, 1):
        c, h, w = _spatial(shape, ctx, path, "avgpool shortcut")
        pool = nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
        pooled = (
            c,
            pool_out(h, stride[0], stride[0], 0, 1, True),
            pool_out(w, stride[1], stride[1], 0, 1, True),
        )
        named.append(("0", pool))
        records.append(_record("0", "avgpool", pool, pooled))
    bias = spec.bias if spec.bias is not None else spec.kind == "conv"
    conv, conv_shape, macs = _make_conv(
        pooled, ctx, path, out=out[0], kernel=1, stride=conv_stride, bias=bias
    )
    if conv_shape != out:
        raise ctx.error(
            path,
            f"residual body gives {fmt(out)} but the projected shortcut gives {fmt(conv_shape)} "
            f"(input {fmt(shape)}, stride {stride[0]}); put the stride on the block (`stride:`), not on a body layer",
        )
    *outer, inner = spec.name.split(".")
    if spec.kind == "conv":
        module: nn.Module = conv
        record = _record(inner, "conv", conv, conv_shape, macs)
    else:
        named.append((str(len(named)), conv))
        records.append(_record(str(len(records)), "conv", conv, conv_shape, macs))
        bn = nn.BatchNorm2d(out[0], eps=spec.eps)
        named.append((str(len(named)), bn))
        records.append(_record(str(len(records)), "batchnorm", bn, conv_shape))
        module = _sequential(named)
        record = _record(inner, f"shortcut {spec.kind}", module, conv_shape, children=records)
    for name in reversed(outer):  # "downsample.conv": nest, so state_dict keys follow the name
        module = _sequential([(inner, module)])
        record = _record(name, "sequential", module, conv_shape, children=[record])
        inner = name
    return module, record


@block_builder(s.Residual)
def _residual(
    spec: s.Residual, shape: Shape, ctx: _Context, path: Path, first: bool, type_: str = "residual"
) -> Built:
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
        body[at] = (layer.model_copy(update={"stride": stride}), layer_path)
    pre, pre_records, pre_out = build_list(
        spec.pre, shape, ctx, (*path, "pre"), lambda i: f"pre_{i}"
    )
    body_named, body_records, body_out = build_items(body, pre_out, ctx, lambda i: f"body_{i}")
    shortcut: Built | None = None
    if shape != body_out:  # an identity shortcut always carries the block input itself
        projection_in = pre_out if spec.shortcut_from == "pre" else shape
        shortcut = _projection(
            spec.shortcut, projection_in, body_out, stride, ctx, (*path, "shortcut")
        )
    post, post_records, out = build_list(
        spec.post, body_out, ctx, (*path, "post"), lambda i: f"post_{i}"
    )
    names = [name for name, _ in (*pre, *body_named, *post)]
    if shortcut is not None and shortcut[1].name in names:
        raise ctx.error(
            (*path, "shortcut", "name"),
            f"shortcut name {shortcut[1].name!r} is also a layer name in this block",
            "name",
        )
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ctx.error(
            path,
            f"module name {dup!r} is used twice in this block (pre/body/post share one namespace)",
            "name",
        )
    module = Residual(
        body_named,
        (shortcut[1].name, shortcut[0]) if shortcut else None,
        pre,
        post,
        shortcut_from_pre=spec.shortcut_from == "pre",
    )
    children = [*pre_records, *body_records, *([shortcut[1]] if shortcut else []), *post_records]
    return module, _record("", type_, module, out, children=children)


def _bn_spec(name: str, eps: float) -> s.BatchNorm:
    return s.BatchNorm(type="batchnorm", name=name, eps=eps)


def _relu(name: str) -> s.ReLU:
    return s.ReLU(type="relu", name=name, inplace=True)


def _conv_spec(name: str, out: int, kernel: int, groups: int = 1, bias: bool = False) -> s.Conv:
    return s.Conv(
        type="conv",
        name=name,
        out=out,
        kernel=kernel,
        padding=kernel // 2,
        groups=groups,
        bias=bias,
    )


def _as_residual(spec: Any, **fields: Any) -> s.Residual:
    return s.Residual(type="residual", stride=spec.stride, shortcut=spec.shortcut, **fields)


@block_builder(s.Basic)
def _basic(spec: s.Basic, shape: Shape, ctx: _Context, path: Path, first: bool) -> Built:
    residual = _as_residual(
        spec,
        body=[
            _conv_spec("conv1", spec.out, 3, bias=spec.bias),
            _bn_spec("bn1", spec.eps),
            _relu("relu1"),
            _conv_spec("conv2", spec.out, 3, bias=spec.bias),
            _bn_spec("bn2", spec.eps),
        ],
        post=[_relu("relu2")],
    )
    return _residual(residual, shape, ctx, path, first, "basic")


def _width(spec: s.Bottleneck | s.PreActBottleneck) -> int:
    return spec.width or spec.out // spec.expansion


@block_builder(s.Bottleneck)
def _bottleneck(spec: s.Bottleneck, shape: Shape, ctx: _Context, path: Path, first: bool) -> Built:
    width = _width(spec)
    residual = _as_residual(
        spec,
        body=[
            _conv_spec("conv1", width, 1),
            _bn_spec("bn1", spec.eps),
            _relu("relu1"),
            _conv_spec("conv2", width, 3, spec.groups),
            _bn_spec("bn2", spec.eps),
            _relu("relu2"),
            _conv_spec("conv3", spec.out, 1),
            _bn_spec("bn3", spec.eps),
        ],
        post=[_relu("relu3")],
        stride_at="conv2",
    )
    return _residual(residual, shape, ctx, path, first, "bottleneck")


@block_builder(s.PreActBasic)
def _preact_basic(
    spec: s.PreActBasic, shape: Shape, ctx: _Context, path: Path, first: bool
) -> Built:
    residual = _as_residual(
        spec,
        pre=[_bn_spec("norm1", spec.eps), _relu("act1")],
        body=[
            _conv_spec("conv1", spec.out, 3),
            _bn_spec("norm2", spec.eps),
            _relu("act2"),
            _conv_spec("conv2", spec.out, 3),
        ],
        shortcut_from="pre",
    )
    return _residual(residual, shape, ctx, path, first, "preact_basic")


@block_builder(s.PreActBottleneck)
def _preact_bottleneck(
    spec: s.PreActBottleneck, shape: Shape, ctx: _Context, path: Path, first: bool
) -> Built:
    width = _width(spec)
    residual = _as_residual(
        spec,
        pre=[_bn_spec("norm1", spec.eps), _relu("act1")],
        body=[
            _conv_spec("conv1", width, 1),
            _bn_spec("norm2", spec.eps),
            _relu("act2"),
            _conv_spec("conv2", width, 3, spec.groups),
            _bn_spec("norm3", spec.eps),
            _relu("act3"),
            _conv_spec("conv3", spec.out, 1),
        ],
        shortcut_from="pre",
        stride_at="conv2",
    )
    return _residual(residual, shape, ctx, path, first, "preact_bottleneck")


# --------------------------------------------------------------------------- concat family
@block_builder(s.Concat)
def _concat(
    spec: s.Concat, shape: Shape, ctx: _Context, path: Path, first: bool, type_: str = "concat"
) -> Built:
    named: list[tuple[str, nn.Module]] = []
    records: list[LayerRecord] = []
    for i, branch in enumerate(spec.branches):
        default = f"branch{i + 1}"
        bpath = (*path, "branches", i)
        if isinstance(branch, list | s.Repeat):
            nodes = branch if isinstance(branch, list) else [branch]
            layers, layer_records, out = build_list(nodes, shape, ctx, bpath, str)
            module: nn.Module = _sequential(layers)
            record = _record(default, "sequential", module, out, children=layer_records)
        else:
            module, record = build_node(branch, shape, ctx, bpath)
            record.name = branch.name or default
        if len(record.out) != 3:
            raise ctx.error(
                bpath, f"branch {record.name} must give a CxHxW feature map, not {fmt(record.out)}"
            )
        if records and record.out[1:] != records[0].out[1:]:
            raise ctx.error(
                bpath,
                f"branch {record.name} gives {fmt(record.out)} but {records[0].name} gives {fmt(records[0].out)}; "
                "concatenated branches must keep the same height and width",
            )
        if record.name in (r.name for r in records):
            raise ctx.error(bpath, f"branch name {record.name!r} is used twice", "name")
        named.append((record.name, module))
        records.append(record)
    out = (sum(r.out[0] for r in records), *records[0].out[1:])
    module = Concat(named)
    return module, _record("", type_, module, out, children=records)


def _cba(out: int, kernel: int, eps: float) -> s.ConvBnAct:
    return s.ConvBnAct(type="conv_bn_act", out=out, kernel=kernel, eps=eps)


@block_builder(s.Inception)
def _inception(spec: s.Inception, shape: Shape, ctx: _Context, path: Path, first: bool) -> Built:
    concat = s.Concat(
        type="concat",
        branches=[
            _cba(spec.b1, 1, spec.eps),
            [_cba(spec.b3_reduce, 1, spec.eps), _cba(spec.b3, 3, spec.eps)],
            [_cba(spec.b5_reduce, 1, spec.eps), _cba(spec.b5, spec.b5_kernel, spec.eps)],
            [
                s.MaxPool(type="maxpool", kernel=3, stride=1, padding=1, ceil_mode=True),
                _cba(spec.pool_proj, 1, spec.eps),
            ],
        ],
    )
    return _concat(concat, shape, ctx, path, first, "inception")


# --------------------------------------------------------------------------- the whole net
_SECTIONS = ("stem", "stages", "head")


def compile_spec(
    spec: s.ModelSpec,
    input_shape: Shape | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Compiled:
    """Compile ``spec`` for ``input_shape`` (C, H, W; default: the spec's input) on ``device``."""
    if input_shape is None:
        input_shape = (spec.input.channels, *pair(spec.input.size))
    ctx = _Context(spec._located)
    named: list[tuple[str, nn.Module]] = []
    records: list[LayerRecord] = []
    shape = tuple(input_shape)
    device = torch.device(device) if device is not None else None
    first_use: dict[str, Path] = {}
    with torch.device(device) if device is not None else contextlib.nullcontext():
        for section in _SECTIONS:
            nodes = getattr(spec, section)
            section_named, section_records, shape = build_list(
                nodes, shape, ctx, (section,), lambda i, sec=section: f"{sec}_{i}"
            )
            for i, (name, _) in enumerate(section_named):
                if name in first_use:
                    raise ctx.error(
                        (section, i, "name"),
                        f"module name {name!r} is already used by {dotted(first_use[name])}; "
                        "top-level names must be unique across stem, stages and head",
                        "name",
                    )
                first_use[name] = (section, i)
            named += section_named
            records += section_records
        model = ZooNet(named, spec.name, tuple(input_shape))
    _warn_unnormalized_preactivation(records, ctx)
    if dtype is not None:
        model.to(dtype)
    if model_is_materialized(model):
        initialize(model, spec)
    return Compiled(
        model, _record(spec.name, "model", model, shape, children=records), tuple(input_shape)
    )


_PREACT = ("preact_basic", "preact_bottleneck")
_NORMS = ("batchnorm", "conv_bn_act")


def _unnormalized_preactivation(
    records: Sequence[LayerRecord], pending: LayerRecord | None
) -> LayerRecord | None:
    """The spec-level preact stage left without a norm after it, walking in execution order."""
    for record in records:
        kind = record.type.split(" ")[0]
        if kind in _PREACT:
            # a stage repeated by `depth` is the thing to point at; its blocks have no source
            pending = record if record.source else pending
        elif record.type in _NORMS:
            pending = None
        else:
            pending = _unnormalized_preactivation(record.children, pending)
    return pending


def _warn_unnormalized_preactivation(records: Sequence[LayerRecord], ctx: _Context) -> None:
    """Pre-activation blocks end on a conv: without a norm after the last one, the head sees raw
    conv outputs (He et al. 2016 and timm's resnetv2 add a final BN-ReLU; seed 003's net forgot it)."""
    block = _unnormalized_preactivation(records, None)
    if block is None:
        return
    problem = ctx.error(
        block.source,
        "the last pre-activation block is not followed by a norm: add {type: batchnorm} and "
        "{type: relu} before the head, as pre-activation ResNets do",
        "preact_final_norm",
    ).problems[0]
    warnings.warn(ZooWarning(problem), stacklevel=3)


def model_is_materialized(model: nn.Module) -> bool:
    """False for a model built on the meta device (shapes only, no storage)."""
    return not any(p.is_meta for p in model.parameters())


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
    The spec is compiled on the meta device first: a model whose weights would take more than
    ``MAX_WEIGHT_BYTES`` (8 GiB) is refused before any memory is allocated, unless ``force``.
    """
    from zoo.spec import load_spec

    spec = spec_or_path if isinstance(spec_or_path, s.ModelSpec) else load_spec(spec_or_path)
    if torch.device(device or "cpu").type == "meta":
        return compile_spec(spec, input_shape, device, dtype).model
    compiled = compile_spec(spec, input_shape, "meta", dtype)  # sizes and counts, no memory
    check_weight_memory(compiled.record.params, dtype, force)
    model = compiled.model
    if not _reinitializable(model):  # e.g. a plugin module that sets its weights in __init__
        return compile_spec(spec, input_shape, device, dtype).model
    # Allocate the meta-built model in place and initialize it once: cheaper than building again,
    # and cheaper than torchvision, whose convs are initialized twice (default, then kaiming).
    model.to_empty(device=device or "cpu")
    _reset_parameters(model, spec)
    initialize(model, spec)
    return model


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
