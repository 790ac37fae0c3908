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
    Bool,
    Channels,
    Float,
    Int,
    IntPair,
    ModuleName,
    RepeatableSpec,
    Size,
    SpecModel,
    not_reserved,
)
from zoo.spec.yaml_loader import SpecPath
from zoo.types.activation import ReLUSpec
from zoo.types.conv import ConvSpec, conv_plan
from zoo.types.norm import BatchNormSpec, batchnorm_plan

if TYPE_CHECKING:
    from torch import nn

    from zoo.spec.schema import Node

BodyIndex = Annotated[Int, Field(ge=0)]


class ShortcutSpec(SpecModel):
    """The projection a residual block uses on its shortcut when its shape changes."""

    kind: Literal["conv_bn", "conv", "avgpool_conv_bn"] = Field(
        "conv_bn",
        description=(
            "conv_bn: 1x1 strided conv + BatchNorm (torchvision); conv: a lone 1x1 strided conv "
            "(tutorials, pre-activation nets); avgpool_conv_bn: avg-pool then 1x1 conv + BN (ResNet-D)."
        ),
    )
    bias: Bool | None = Field(
        None, description="Conv bias; default True for 'conv', False otherwise."
    )
    name: Annotated[str, AfterValidator(not_reserved)] = Field(
        "downsample",
        pattern=r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$",
        description=(
            "Module name of the projection; a dotted name nests it (timm's 'downsample.conv')."
        ),
    )
    eps: Float = Field(
        1e-5, gt=0, description="BatchNorm epsilon of the projection (kinds with a BatchNorm)."
    )

    @model_validator(mode="after")
    def _eps_needs_a_norm(self) -> ShortcutSpec:
        if self.kind == "conv" and "eps" in self.model_fields_set:
            raise ValueError("eps is the BatchNorm's, and a 'conv' shortcut has none; remove it")
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
    stride_at: ModuleName | BodyIndex | None = Field(
        None,
        description=(
            "Body layer (name or index) that takes the block stride: a conv, conv_bn_act, maxpool "
            "or avgpool; default: the first conv."
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
        return ResidualSpec(
            type="residual",
            stride=self.stride,
            shortcut=self.shortcut,
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

    def expand(self) -> ResidualSpec:
        """The generic residual block this preset stands for."""
        return ResidualSpec(
            type="residual",
            stride=self.stride,
            shortcut=self.shortcut,
            body=(
                _conv("conv1", self.inner, 1),
                _bn("bn1", self.eps),
                _relu("relu1"),
                _conv("conv2", self.inner, 3, self.groups),
                _bn("bn2", self.eps),
                _relu("relu2"),
                _conv("conv3", self.out, 1),
                _bn("bn3", self.eps),
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
        return ResidualSpec(
            type="residual",
            stride=self.stride,
            shortcut=self.shortcut,
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
        return ResidualSpec(
            type="residual",
            stride=self.stride,
            shortcut=self.shortcut,
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
def _stride_index(
    spec: ResidualSpec, body: Sequence[Item], ctx: PlanContext, path: SpecPath
) -> int | None:
    """Position in the expanded body of the layer that takes the block stride."""
    at_path = (*path, "stride_at")
    if spec.stride_at is None:
        return next(
            (i for i, (layer, _) in enumerate(body) if registry.of(layer).stride_by_default),
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
    if not registry.of(layer).takes_stride:
        # the stride would be dropped: model_copy(update=...) ignores a field the model lacks
        raise ctx.error(
            at_path,
            f"{what} is a {layer.type}, which has no stride; stride_at must name a body layer "
            f"of one of these types: {', '.join(registry.tags_where(takes_stride=True))}",
            "value",
        )
    return at


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
    conv_stride = (1, 1) if spec.kind == "avgpool_conv_bn" else stride
    parts: list[LayerPlan] = []
    pooled = shape
    if spec.kind == "avgpool_conv_bn" and stride != (1, 1):
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
    bias = spec.bias if spec.bias is not None else spec.kind == "conv"
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
    shortcut_from_pre: bool,
) -> Make:
    """How to make the ``zoo.nn.Residual`` of these plans, from its children's modules."""
    roles = [[p.name for p in part] for part in (pre, body, post)]
    shortcut_name = shortcut.name if shortcut else None

    def make(children: Named) -> nn.Module:
        modules = dict(children)
        pre_named, body_named, post_named = ([(n, modules[n]) for n in part] for part in roles)
        return zoo_nn().Residual(
            body_named,
            (shortcut_name, modules[shortcut_name]) if shortcut_name else None,
            pre_named,
            post_named,
            shortcut_from_pre=shortcut_from_pre,
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
                f"{layer.type} has its own stride {pair_text(own)}, and the block's stride "
                f"{pair_text(stride)} replaces it in the first block; give the stride once, on the "
                "block (`stride:`)",
                "value",
            )
        body[at] = (layer.model_copy(update={"stride": stride}), layer_path)
    pre, pre_out = plan_list(spec.pre, shape, ctx, (*path, "pre"), lambda i: f"pre_{i}")
    body_plans, body_out = plan_items(body, pre_out, ctx, lambda i: f"body_{i}")
    _mark_last_norm(body_plans)
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
    return container("", type_, out, children, make)


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
    example={"type": "basic", "out": 8, "depth": 2, "stride": 2},
)
registry.register(
    BottleneckSpec,
    plan_residual_preset,
    **_BLOCK,
    example={"type": "bottleneck", "out": 16, "groups": 2, "width": 8, "stride": 2},
)
registry.register(
    PreActBasicSpec,
    plan_residual_preset,
    **_BLOCK,
    preactivation=True,
    example={"type": "preact_basic", "out": 8, "depth": 2, "stride": 2},
)
registry.register(
    PreActBottleneckSpec,
    plan_residual_preset,
    **_BLOCK,
    preactivation=True,
    example={"type": "preact_bottleneck", "out": 16, "stride": 2},
)
