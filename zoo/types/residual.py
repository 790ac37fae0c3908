"""Residual blocks: the generic ``residual`` combinator (``post(body(pre(x)) + shortcut)``), its
projection shortcut, and the presets built from it: ``basic`` and ``bottleneck`` (torchvision's
ResNet blocks) and ``preact_basic`` / ``preact_bottleneck`` (He et al. 2016, timm's layout).

A preset expands, in the spec layer, into the validated ``residual`` spec it stands for
(``expand()``); the planner only ever plans the generic combinator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from zoo import registry
from zoo.plan import (
    Item,
    LayerPlan,
    Make,
    Named,
    PlanContext,
    container,
    expand,
    leaf,
    named_container,
    plan_items,
    plan_list,
    sequential,
    spatial,
    torch_nn,
    zoo_nn,
)
from zoo.shapes import Pair, Shape, fmt, pair, pair_text, pool_out
from zoo.spec.fields import (
    NAME_PATTERN,
    Bool,
    Channels,
    Float,
    Int,
    IntPair,
    RepeatableSpec,
    Size,
    SpecModel,
    not_reserved,
)
from zoo.spec.yaml_loader import SpecPath
from zoo.types.activation import ReLUSpec
from zoo.types.attention import SqueezeExciteSpec
from zoo.types.container import SequentialSpec
from zoo.types.conv import ConvSpec, conv_plan
from zoo.types.norm import BatchNormSpec, batchnorm_plan

if TYPE_CHECKING:
    from torch import nn

    from zoo.spec.schema import Node

BodyIndex = Annotated[Int, Field(ge=0)]
LayerPath = Annotated[
    str, Field(pattern=rf"^{NAME_PATTERN}(\.{NAME_PATTERN})*$"), AfterValidator(not_reserved)
]
"""A module name, or a dotted path of them into nested containers."""


class ShortcutSpec(SpecModel):
    """The projection a residual block uses on its shortcut when its shape changes."""

    kind: Literal["conv_bn", "conv", "avgpool_conv_bn", "none"] = Field(
        "conv_bn",
        description=(
            "conv_bn: 1x1 strided conv + BatchNorm (torchvision); conv: a lone 1x1 strided conv "
            "(tutorials, pre-activation nets); avgpool_conv_bn: avg-pool (an Identity at stride 1, "
            "timm's ResNet-D slots 0/1/2) then 1x1 conv + BN; none: no shortcut and no sum, the "
            "block is its body alone (MobileNet's and EfficientNet's inverted residuals)."
        ),
    )
    bias: Bool | None = Field(
        None, description="Conv bias; default True for 'conv', False otherwise."
    )
    name: LayerPath = Field(
        "downsample",
        description=(
            "Module name of the projection; a dotted name nests it (timm's 'downsample.conv')."
        ),
    )
    eps: Float = Field(
        1e-5, gt=0, description="BatchNorm epsilon of the projection (kinds with a BatchNorm)."
    )

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> ShortcutSpec:
        if self.kind in ("conv", "none") and "eps" in self.model_fields_set:
            raise ValueError(
                f"eps is the BatchNorm's, and a {self.kind!r} shortcut has none; remove it"
            )
        if self.kind == "none" and self.model_fields_set & {"bias", "name"}:
            raise ValueError("a 'none' shortcut has no module: remove its bias and name")
        return self


def _preact_shortcut() -> ShortcutSpec:
    return ShortcutSpec(kind="conv", bias=False, name="downsample.conv")


_PREACT_SHORTCUT = (
    "Projection when the shape changes: a bias-free 1x1 conv of the pre-activated input, "
    "named as timm's (downsample.conv)."
)


class ResidualBlockSpec(RepeatableSpec):
    """What every residual block has: a stride for its first copy and a projection shortcut."""

    stride: IntPair = Field(
        1,
        description="Stride of the first block (later blocks use 1); the shortcut is projected when it is not 1.",
    )
    shortcut: ShortcutSpec = Field(
        default_factory=ShortcutSpec,
        description="Projection used when the block changes the shape (channels or stride); identity otherwise.",
    )
    stochastic_depth: Bool = Field(
        False,
        description=(
            "Take part in the network's stochastic depth (its `stochastic_depth` rate and "
            "schedule): the residual branch is dropped per sample in training (a StochasticDepth "
            "module named stochastic_depth, torchvision's 'row' mode), when the block has a sum."
        ),
    )
    layer_scale: Float | None = Field(
        None,
        gt=0,
        description=(
            "Initial value of a learnable per-channel scale of the residual branch, a parameter "
            "named layer_scale of shape (C, 1, 1) on the block (ConvNeXt: 1e-6)."
        ),
    )

    def residual(self, **fields: Any) -> ResidualSpec:
        """The generic block with this block's stride, shortcut and regularization, and ``fields``."""
        return ResidualSpec(
            type="residual",
            stride=self.stride,
            shortcut=self.shortcut,
            stochastic_depth=self.stochastic_depth,
            layer_scale=self.layer_scale,
            **fields,
        )


class ResidualSpec(ResidualBlockSpec):
    """The generic residual block: ``post(body(pre(x)) + shortcut(x or pre(x)))``.

    The named presets (basic, bottleneck, pre-activation) are built from this, and tutorial variants
    (a ReLU before the add, a biased 1x1 shortcut) are written with it directly.
    """

    type: Literal["residual"] = Field(
        description="Generic residual block: pre, body + shortcut, post."
    )
    pre: tuple[Node, ...] = Field(
        default=(), description="Layers before the split (pre-activation)."
    )
    body: tuple[Node, ...] = Field(min_length=1, description="The residual branch.")
    post: tuple[Node, ...] = Field(default=(), description="Layers after the sum (e.g. a ReLU).")
    shortcut_from: Literal["input", "pre"] = Field(
        "input",
        description=(
            "What a projection shortcut projects: the block input, or the output of `pre` "
            "(pre-activation nets). An identity shortcut always carries the block input."
        ),
    )
    stride_at: LayerPath | BodyIndex | None = Field(
        None,
        description=(
            "Body layer that takes the block stride: its name or index, or a dotted path into a "
            "sequential of the body (f.b, block.1); a conv, conv_bn_act, maxpool or avgpool. "
            "Default: the first conv, searched in order through the body's sequentials."
        ),
    )


# --------------------------------------------------------------------------- presets
def _conv(name: str, out: int, kernel: int, groups: int = 1, bias: bool = False) -> ConvSpec:
    return ConvSpec(
        type="conv",
        name=name,
        out=out,
        kernel=kernel,
        padding=kernel // 2,
        groups=groups,
        bias=bias,
    )


def _bn(name: str, eps: float) -> BatchNormSpec:
    return BatchNormSpec(type="batchnorm", name=name, eps=eps)


def _relu(name: str) -> ReLUSpec:
    return ReLUSpec(type="relu", name=name, inplace=True)


class BasicSpec(ResidualBlockSpec):
    """ResNet basic block (torchvision ``BasicBlock``): conv3x3-bn-relu-conv3x3-bn, add, relu."""

    type: Literal["basic"] = Field(description="ResNet basic block (two 3x3 convs).")
    out: Channels = Field(description="Output channels of every block.")
    eps: Float = Field(1e-5, gt=0, description="BatchNorm epsilon.")
    bias: Bool = Field(
        False,
        description="Bias on the body convs: off in torchvision; d2l's tutorial nets keep PyTorch's default (on).",
    )

    def expand(self) -> ResidualSpec:
        """The generic residual block this preset stands for."""
        return self.residual(
            body=(
                _conv("conv1", self.out, 3, bias=self.bias),
                _bn("bn1", self.eps),
                _relu("relu1"),
                _conv("conv2", self.out, 3, bias=self.bias),
                _bn("bn2", self.eps),
            ),
            post=(_relu("relu2"),),
        )


class _BottleneckFields(ResidualBlockSpec):
    out: Channels = Field(description="Output channels of every block.")
    width: Channels | None = Field(
        None, description="Channels of the inner 1x1/3x3 convs; default out/expansion."
    )
    expansion: Size = Field(4, description="out / width when width is not given.")
    groups: Size = Field(1, description="Groups of the 3x3 conv (ResNeXt cardinality).")
    eps: Float = Field(1e-5, gt=0, description="BatchNorm epsilon.")

    @model_validator(mode="after")
    def _width_divides(self) -> Any:
        if self.width is None and self.out % self.expansion:
            raise ValueError(
                f"out ({self.out}) must be divisible by expansion ({self.expansion}); or give width"
            )
        return self

    @property
    def inner(self) -> int:
        """Channels of the inner convs."""
        return self.width or self.out // self.expansion


class BottleneckSpec(_BottleneckFields):
    """ResNet bottleneck (torchvision ``Bottleneck``, stride on the 3x3 conv: ResNet v1.5).

    ``width`` is the channel count inside the block; it defaults to ``out / expansion``. ResNeXt sets
    ``groups`` (and a larger width), Wide ResNet a larger width.
    """

    type: Literal["bottleneck"] = Field(description="ResNet bottleneck block (1x1, 3x3, 1x1).")
    se: SqueezeExciteSpec | None = Field(
        None,
        description=(
            "A squeeze-excitation after the last norm, named se (timm's SE-ResNet and SE-ResNeXt: "
            "{type: squeeze_excite, ratio: 0.0625, round_limit: 0})."
        ),
    )

    def expand(self) -> ResidualSpec:
        """The generic residual block this preset stands for."""
        se = () if self.se is None else (self.se.model_copy(update={"name": "se"}),)
        return self.residual(
            body=(
                _conv("conv1", self.inner, 1),
                _bn("bn1", self.eps),
                _relu("relu1"),
                _conv("conv2", self.inner, 3, self.groups),
                _bn("bn2", self.eps),
                _relu("relu2"),
                _conv("conv3", self.out, 1),
                _bn("bn3", self.eps),
                *se,
            ),
            post=(_relu("relu3"),),
            stride_at="conv2",
        )


class PreActBasicSpec(ResidualBlockSpec):
    """Pre-activation basic block (He et al. 2016; timm ``PreActBasic``): bn-relu-conv, bn-relu-conv, add.

    The shortcut is taken from the pre-activated input and projected by a lone 1x1 conv.
    """

    type: Literal["preact_basic"] = Field(description="Pre-activation basic block.")
    out: Channels = Field(description="Output channels of every block.")
    eps: Float = Field(1e-5, gt=0, description="BatchNorm epsilon.")
    shortcut: ShortcutSpec = Field(default_factory=_preact_shortcut, description=_PREACT_SHORTCUT)

    def expand(self) -> ResidualSpec:
        """The generic residual block this preset stands for."""
        return self.residual(
            pre=(_bn("norm1", self.eps), _relu("act1")),
            body=(
                _conv("conv1", self.out, 3),
                _bn("norm2", self.eps),
                _relu("act2"),
                _conv("conv2", self.out, 3),
            ),
            shortcut_from="pre",
        )


class PreActBottleneckSpec(_BottleneckFields):
    """Pre-activation bottleneck (timm ``PreActBottleneck``), stride on the 3x3 conv."""

    type: Literal["preact_bottleneck"] = Field(description="Pre-activation bottleneck block.")
    shortcut: ShortcutSpec = Field(default_factory=_preact_shortcut, description=_PREACT_SHORTCUT)

    def expand(self) -> ResidualSpec:
        """The generic residual block this preset stands for."""
        return self.residual(
            pre=(_bn("norm1", self.eps), _relu("act1")),
            body=(
                _conv("conv1", self.inner, 1),
                _bn("norm2", self.eps),
                _relu("act2"),
                _conv("conv2", self.inner, 3, self.groups),
                _bn("norm3", self.eps),
                _relu("act3"),
                _conv("conv3", self.out, 1),
            ),
            shortcut_from="pre",
            stride_at="conv2",
        )


# --------------------------------------------------------------------------- planning
# Where the block stride goes: a body item, then indices into the `layers` of nested sequentials.
StrideTarget = tuple[int, tuple[int, ...]]


def _nested_layers(node: Any) -> tuple[Any, ...] | None:
    """The layers of a body node that ``stride_at`` may reach into: a sequential without depth."""
    return node.layers if isinstance(node, SequentialSpec) and node.depth is None else None


def _first_strided(node: Any) -> tuple[int, ...] | None:
    """Indices, into nested layers, of the first layer of ``node`` that takes a stride by default."""
    if registry.of(node).stride_by_default:
        return ()
    for j, child in enumerate(_nested_layers(node) or ()):
        found = _first_strided(child)
        if found is not None:
            return (j, *found)
    return None


def _stride_target(
    spec: ResidualSpec, body: Sequence[Item], ctx: PlanContext, path: SpecPath
) -> StrideTarget | None:
    """The body layer that takes the block stride (``stride_at``, or the first conv)."""
    at_path = (*path, "stride_at")
    if spec.stride_at is None:
        for i, (layer, _) in enumerate(body):
            found = _first_strided(layer)
            if found is not None:
                return i, found
        return None
    if isinstance(spec.stride_at, int):
        if spec.stride_at >= len(body):
            raise ctx.error(
                at_path, f"body has {len(body)} layers; no index {spec.stride_at}", "value"
            )
        target: StrideTarget = (spec.stride_at, ())
        what = f"body layer {spec.stride_at}"
    else:
        first, *rest = spec.stride_at.split(".")
        at = next((i for i, (layer, _) in enumerate(body) if layer.name == first), None)
        if at is None:
            raise ctx.error(at_path, f"no body layer is named {first!r}", "value")
        inner: list[int] = []
        node = body[at][0]
        for depth, part in enumerate(rest, 1):
            reached = ".".join([first, *rest[: depth - 1]])
            layers = _nested_layers(node)
            if layers is None:
                raise ctx.error(
                    at_path,
                    f"{reached!r} is a {node.type}; stride_at can reach only into a sequential "
                    "(without depth)",
                    "value",
                )
            # names as the sequential gives them: its own, or the position after repeats inline
            items = expand(layers, (), ctx)
            found = next(
                (
                    item_path
                    for k, (child, item_path) in enumerate(items)
                    if (child.name or str(k)) == part
                ),
                None,
            )
            if found is None:
                raise ctx.error(at_path, f"{reached!r} has no layer named {part!r}", "value")
            if len(found) != 1:
                raise ctx.error(
                    at_path,
                    f"{spec.stride_at!r} is inside a repeat, whose copies share one spec; "
                    "give that layer its own entry",
                    "value",
                )
            inner.append(found[0])
            node = layers[found[0]]
        target, what = (at, tuple(inner)), repr(spec.stride_at)
    layer = _target_layer(body, target)
    if not registry.of(layer).takes_stride:
        # the stride would be dropped: model_copy(update=...) ignores a field the model lacks
        raise ctx.error(
            at_path,
            f"{what} is a {layer.type}, which has no stride; stride_at must name a body layer "
            f"of one of these types: {', '.join(registry.tags_where(takes_stride=True))}",
            "value",
        )
    return target


def _target_layer(body: Sequence[Item], target: StrideTarget) -> Any:
    node = body[target[0]][0]
    for j in target[1]:
        node = node.layers[j]
    return node


def _target_path(body: Sequence[Item], target: StrideTarget) -> SpecPath:
    path = body[target[0]][1]
    for j in target[1]:
        path = (*path, "layers", j)
    return path


def _with_stride(node: Any, inner: tuple[int, ...], stride: Pair) -> Any:
    """``node`` with the layer at ``inner`` (indices into nested layers) given ``stride``."""
    if not inner:
        return node.model_copy(update={"stride": stride})
    layers = list(node.layers)
    layers[inner[0]] = _with_stride(layers[inner[0]], inner[1:], stride)
    return node.model_copy(update={"layers": tuple(layers)})


def _own_stride(layer: Any) -> Pair | None:
    """The stride a body layer is given in the spec, when it is not 1 (a pool's default is not given)."""
    if not registry.of(layer).takes_stride or layer.stride is None:
        return None
    stride = pair(layer.stride)
    return None if stride == (1, 1) else stride


def _mismatch_hint(spec: ResidualSpec, body: Sequence[Item]) -> str:
    """What to do when the body's output and the projected shortcut disagree."""
    if pair(spec.stride) == (1, 1) and any(_own_stride(layer) for layer, _ in body):
        return "put the stride on the block (`stride:`), not on a body layer"
    return (
        "the body may change the height and width only by the block stride: pad its convs to "
        "keep the size (padding: 1 for a 3x3 kernel), and stride or pool nowhere else in it"
    )


def _projection(
    spec: ShortcutSpec,
    shape: Shape,
    out: Shape,
    stride: tuple[int, int],
    ctx: PlanContext,
    path: SpecPath,
    hint: str,
) -> LayerPlan:
    """The shortcut projection from ``shape`` to ``out`` (1x1 conv, optional BN / avg-pool);
    ``hint`` ends the message when the two cannot agree."""
    pooling = spec.kind == "avgpool_conv_bn"
    parts: list[LayerPlan] = []
    pooled = shape
    if pooling and stride != (1, 1):
        c, h, w = spatial(shape, ctx, path, "avgpool shortcut")
        pooled = (
            c,
            pool_out(h, stride[0], stride[0], 0, 1, True),
            pool_out(w, stride[1], stride[1], 0, 1, True),
        )
        parts.append(
            leaf(
                "avgpool",
                pooled,
                lambda: torch_nn().AvgPool2d(
                    stride, stride, ceil_mode=True, count_include_pad=False
                ),
            )
        )
    elif pooling:  # timm's downsample_avg keeps the slot: the conv and BN stay at 1 and 2
        parts.append(leaf("identity", shape, lambda: torch_nn().Identity()))
    bias = spec.bias if spec.bias is not None else spec.kind == "conv"
    conv_stride = (1, 1) if pooling else stride
    conv = conv_plan(pooled, ctx, path, out=out[0], kernel=1, stride=conv_stride, bias=bias)
    if conv.out != out:
        raise ctx.error(
            path,
            f"residual body gives {fmt(out)} but the projected shortcut gives {fmt(conv.out)} "
            f"(input {fmt(shape)}, stride {pair_text(stride)}); {hint}",
        )
    *outer, inner = spec.name.split(".")
    if spec.kind == "conv":
        plan = conv
        plan.name = inner
    else:
        parts += [conv, batchnorm_plan(out, spec.eps, 0.1)]
        plan = named_container(
            inner, f"shortcut {spec.kind}", [(str(i), p) for i, p in enumerate(parts)], out
        )
    for name in reversed(outer):  # "downsample.conv": nest, so state_dict keys follow the name
        plan = container(name, "sequential", out, [plan], sequential)
    return plan


def _residual_module(
    pre: Sequence[LayerPlan],
    body: Sequence[LayerPlan],
    shortcut: LayerPlan | None,
    post: Sequence[LayerPlan],
    spec: ResidualSpec,
    adds: bool,
    channels: int,
    drop: LayerPlan | None,
) -> Make:
    """How to make the ``zoo.nn.Residual`` of these plans, from its children's modules."""
    roles = [[p.name for p in part] for part in (pre, body, post)]
    shortcut_name = shortcut.name if shortcut else None
    drop_name = drop.name if drop else None
    layer_scale = None if spec.layer_scale is None else (channels, spec.layer_scale)

    def make(children: Named) -> nn.Module:
        modules = dict(children)
        pre_named, body_named, post_named = ([(n, modules[n]) for n in part] for part in roles)
        return zoo_nn().Residual(
            body_named,
            (shortcut_name, modules[shortcut_name]) if shortcut_name else None,
            pre_named,
            post_named,
            shortcut_from_pre=spec.shortcut_from == "pre",
            adds=adds,
            layer_scale=layer_scale,
            stochastic_depth=(drop_name, modules[drop_name]) if drop_name else None,
        )

    return make


def _mark_last_norm(body: Sequence[LayerPlan]) -> None:
    """Mark the last norm with weights in ``body`` (inside a ``conv_bn_act`` too, not inside a
    nested combinator: zeroing one norm there cannot silence it) for ``zero_init_residual``."""
    last: LayerPlan | None = None

    def visit(plans: Sequence[LayerPlan]) -> None:
        nonlocal last
        for plan in plans:
            info = registry.get(plan.tag)
            if info is not None and info.is_norm and not plan.children:
                last = plan if plan.params else last  # affine=False: nothing to zero
            elif info is None or not info.combinator:
                visit(plan.children)

    visit(body)
    if last is not None:
        last.last_norm = True


def _stochastic_depth(ctx: PlanContext, shape: Shape) -> LayerPlan:
    """The block's StochasticDepth module; its drop probability is set by the network's schedule
    once every block is planned (it depends on the number of blocks)."""
    rate = ctx.schedule_stochastic_depth()

    def make() -> nn.Module:
        from torchvision.ops import StochasticDepth

        return StochasticDepth(rate.p, "row")

    plan = leaf("stochastic_depth", shape, make)
    plan.name = "stochastic_depth"
    return plan


def plan_residual(
    spec: ResidualSpec,
    shape: Shape,
    ctx: PlanContext,
    path: SpecPath,
    first: bool,
    type_: str = "residual",
) -> LayerPlan:
    """Plan a residual block (the first of ``depth`` copies takes the stride)."""
    stride = pair(spec.stride) if first else (1, 1)
    body = expand(spec.body, (*path, "body"), ctx)
    target = _stride_target(spec, body, ctx, path)
    if stride != (1, 1):
        if target is None:
            raise ctx.error(
                (*path, "stride"),
                "block has a stride but its body has no conv to take it; set stride_at",
                "value",
            )
        layer = _target_layer(body, target)
        own = _own_stride(layer)
        if own is not None:
            raise ctx.error(
                (*_target_path(body, target), "stride"),
                f"{layer.type} has its own stride {pair_text(own)}, and the block's stride "
                f"{pair_text(stride)} replaces it in the first block; give the stride once, on the "
                "block (`stride:`)",
                "value",
            )
        at, inner = target
        body[at] = (_with_stride(body[at][0], inner, stride), body[at][1])
    ctx.block_inputs.append(shape[0])  # for layers sized by the block's input (EfficientNet's SE)
    try:
        pre, pre_out = plan_list(spec.pre, shape, ctx, (*path, "pre"), lambda i: f"pre_{i}")
        body_plans, body_out = plan_items(body, pre_out, ctx, lambda i: f"body_{i}")
    finally:
        ctx.block_inputs.pop()
    _mark_last_norm(body_plans)
    shortcut: LayerPlan | None = None
    adds = shape == body_out or spec.shortcut.kind != "none"
    if shape != body_out and adds:  # an identity shortcut always carries the block input itself
        projection_in = pre_out if spec.shortcut_from == "pre" else shape
        hint = _mismatch_hint(spec, body)
        shortcut = _projection(
            spec.shortcut, projection_in, body_out, stride, ctx, (*path, "shortcut"), hint
        )
    drop = _stochastic_depth(ctx, body_out) if spec.stochastic_depth else None
    post, out = plan_list(spec.post, body_out, ctx, (*path, "post"), lambda i: f"post_{i}")
    names = [p.name for p in (*pre, *body_plans, *post)]
    for extra, field in ((shortcut, "shortcut"), (drop, "stochastic_depth")):
        if extra is not None and extra.name in names:
            raise ctx.error(
                (*path, field) if field == "stochastic_depth" else (*path, field, "name"),
                f"{field} module {extra.name!r} has the name of a layer in this block; rename "
                "the layer",
                "name",
            )
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ctx.error(
            path,
            f"module name {dup!r} is used twice in this block (pre/body/post share one namespace)",
            "name",
        )
    make = _residual_module(pre, body_plans, shortcut, post, spec, adds, body_out[0], drop)
    children = [*pre, *body_plans, *([drop] if drop else []), *([shortcut] if shortcut else [])]
    plan = container("", type_, out, [*children, *post], make)
    if spec.layer_scale is not None:
        plan.params += body_out[0]
    return plan


def plan_residual_preset(
    spec: Any, shape: Shape, ctx: PlanContext, path: SpecPath, first: bool
) -> LayerPlan:
    """Plan a preset as the generic block it expands to (shown in traces by its own type)."""
    return plan_residual(ctx.expanded(spec), shape, ctx, path, first, spec.type)


_BLOCK = {"block": True, "combinator": True}
registry.register(
    ResidualSpec,
    plan_residual,
    **_BLOCK,
    example={
        "type": "residual",
        "stride": 2,
        "pre": [{"type": "batchnorm"}],
        "body": [
            {"type": "conv_bn_act", "out": 6, "kernel": 3},
            {"type": "conv", "out": 6, "kernel": 1},
        ],
        "post": [{"type": "relu"}],
        "shortcut": {"kind": "avgpool_conv_bn", "name": "proj.down"},
    },
)
registry.register(
    BasicSpec,
    plan_residual_preset,
    **_BLOCK,
    channel_fields=("out",),
    example={"type": "basic", "out": 8, "depth": 2, "stride": 2},
)
registry.register(
    BottleneckSpec,
    plan_residual_preset,
    **_BLOCK,
    channel_fields=("out", "width"),
    example={
        "type": "bottleneck",
        "out": 16,
        "groups": 2,
        "width": 8,
        "stride": 2,
        "se": {"type": "squeeze_excite", "ratio": 0.25},
    },
)
registry.register(
    PreActBasicSpec,
    plan_residual_preset,
    **_BLOCK,
    channel_fields=("out",),
    preactivation=True,
    example={"type": "preact_basic", "out": 8, "depth": 2, "stride": 2},
)
registry.register(
    PreActBottleneckSpec,
    plan_residual_preset,
    **_BLOCK,
    channel_fields=("out", "width"),
    preactivation=True,
    example={"type": "preact_bottleneck", "out": 16, "stride": 2},
)
