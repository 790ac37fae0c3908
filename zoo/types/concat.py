"""Parallel branches: the generic ``concat`` combinator (layers before the branches, branches on one
input or on equal channel chunks of it, joined along the channels, layers after the join) and the
presets built from it: ``inception`` (torchvision's GoogLeNet ``Inception``), ``fire`` (SqueezeNet's
``Fire``) and ``inception_v3_a`` .. ``inception_v3_e`` (torchvision's ``Inception3`` blocks).

A concat block is one ``zoo.nn.Concat`` module: its children are the ``pre`` layers, one module per
branch (its layer, or an ``nn.Sequential`` of its layers named ``branchN``) and the ``post``
layers. With ``flat: true`` the branches' layers are children of the block themselves, as in
torchvision's Inception v3 (``Mixed_5b.branch5x5_1``) and SqueezeNet (``features.3.expand1x1``);
a ``flat`` concat inside a branch of a flat block adds its layers to that block too
(``Mixed_7b.branch3x3_2a``). The block's :class:`Join` says which children run where.

Concatenation and the split cost no multiply-adds, as in ``FlopCounterMode`` and torchvision's figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple

from pydantic import Field

from zoo import registry
from zoo.plan import (
    LayerPlan,
    PlanContext,
    container,
    expand,
    plan_list,
    plan_node,
    sequential,
    spatial,
    zoo_nn,
)
from zoo.shapes import Shape, fmt
from zoo.spec.fields import Bool, Channels, Float, IntPair, NonNegPair, RepeatableSpec, Size
from zoo.spec.yaml_loader import SpecPath, dotted
from zoo.types.activation import ReLUSpec
from zoo.types.conv import ConvBnActSpec, ConvSpec
from zoo.types.pool import AvgPoolSpec, MaxPoolSpec

if TYPE_CHECKING:
    from zoo.spec.schema import Node


class ConcatSpec(RepeatableSpec):
    """``post(cat([branch(x) for each branch], dim=1))`` with ``x = pre(input)``: parallel branches
    on the same input (or, with ``split``, on equal chunks of its channels), joined along the
    channels."""

    type: Literal["concat"] = Field(
        description="Parallel branches joined by channel concatenation."
    )
    pre: tuple[Node, ...] = Field(
        (),
        description=(
            "Layers run on the input before the branches (SqueezeNet Fire's squeeze conv and its "
            "ReLU); unnamed ones are named pre_i."
        ),
    )
    branches: tuple[Node | tuple[Node, ...], ...] = Field(
        min_length=1,
        description=(
            "Each branch is one layer or a list of layers; an empty list [] passes its input on "
            "(the identity). Without `flat`, a layer is kept as is (named by its `name` or "
            "branchN) and a list becomes an nn.Sequential named branchN."
        ),
    )
    split: Bool = Field(
        False,
        description=(
            "Split the channels into equal chunks, one per branch in order (x.chunk(n, dim=1): "
            "ShuffleNetV2's stride-1 unit), instead of giving every branch the whole input; the "
            "channels must divide by the number of branches."
        ),
    )
    flat: Bool = Field(
        False,
        description=(
            "Register every branch layer on the block itself, under its own name (torchvision's "
            "Inception v3 Mixed_5b.branch5x5_1, SqueezeNet Fire's expand1x1), instead of one "
            "module per branch; unnamed layers are named branchN_i. A flat concat inside a branch "
            "of a flat block has no module of its own: its layers land on the enclosing block "
            "(InceptionE's branch3x3_2a, branch3x3_2b), so it takes no name or depth. Names must "
            "be unique in the block."
        ),
    )
    post: tuple[Node, ...] = Field(
        (),
        description=(
            "Layers run on the concatenation (ShuffleNetV2's channel shuffle); unnamed ones are "
            "named post_i."
        ),
    )


# --------------------------------------------------------------------------- presets
class InceptionSpec(RepeatableSpec):
    """GoogLeNet Inception block (torchvision ``Inception``): four conv-bn-relu branches, concatenated."""

    type: Literal["inception"] = Field(description="GoogLeNet Inception block.")
    b1: Channels = Field(description="Channels of the 1x1 branch (branch1).")
    b3_reduce: Channels = Field(description="1x1 reduction before the 3x3 conv (branch2).")
    b3: Channels = Field(description="Channels of the 3x3 conv (branch2).")
    b5_reduce: Channels = Field(description="1x1 reduction before the 'five' conv (branch3).")
    b5: Channels = Field(description="Channels of the 'five' conv (branch3).")
    b5_kernel: Size = Field(
        5, description="Kernel of branch3; the paper uses 5, torchvision's GoogLeNet uses 3."
    )
    pool_proj: Channels = Field(description="1x1 projection after the 3x3 max-pool (branch4).")
    eps: Float = Field(
        1e-3, gt=0, description="BatchNorm epsilon (torchvision GoogLeNet uses 0.001)."
    )

    def expand(self) -> ConcatSpec:
        """The generic concat block this preset stands for."""

        def cba(out: int, kernel: int) -> ConvBnActSpec:
            return ConvBnActSpec(type="conv_bn_act", out=out, kernel=kernel, eps=self.eps)

        pool = MaxPoolSpec(type="maxpool", kernel=3, stride=1, padding=1, ceil_mode=True)
        return ConcatSpec(
            type="concat",
            branches=(
                cba(self.b1, 1),
                (cba(self.b3_reduce, 1), cba(self.b3, 3)),
                (cba(self.b5_reduce, 1), cba(self.b5, self.b5_kernel)),
                (pool, cba(self.pool_proj, 1)),
            ),
        )


class FireSpec(RepeatableSpec):
    """SqueezeNet's Fire module (Iandola et al. 2016; torchvision ``Fire``): a 1x1 squeeze conv and
    ReLU, then a 1x1 and a 3x3 expand conv, each with its ReLU, concatenated. Convs keep PyTorch's
    bias; every layer is a child of the block, named as torchvision's (``squeeze``,
    ``squeeze_activation``, ``expand1x1``, ``expand1x1_activation``, ``expand3x3``, ...)."""

    type: Literal["fire"] = Field(description="SqueezeNet Fire module (squeeze, expand 1x1 + 3x3).")
    squeeze: Channels = Field(description="Channels of the 1x1 squeeze conv.")
    expand1x1: Channels = Field(description="Channels of the 1x1 expand conv.")
    expand3x3: Channels = Field(description="Channels of the 3x3 expand conv (padding 1).")

    def expand(self) -> ConcatSpec:
        """The generic concat block this preset stands for."""

        def conv_relu(name: str, out: int, kernel: int) -> tuple[ConvSpec, ReLUSpec]:
            conv = ConvSpec(type="conv", name=name, out=out, kernel=kernel, padding=kernel // 2)
            return conv, ReLUSpec(type="relu", name=f"{name}_activation", inplace=True)

        return ConcatSpec(
            type="concat",
            flat=True,
            pre=conv_relu("squeeze", self.squeeze, 1),
            branches=(
                conv_relu("expand1x1", self.expand1x1, 1),
                conv_relu("expand3x3", self.expand3x3, 3),
            ),
        )


class _InceptionV3Block(RepeatableSpec):
    """What every Inception v3 block has: its convs are torchvision's ``BasicConv2d`` (conv without
    bias, BatchNorm, ReLU; children conv/bn/act), registered on the block under torchvision's names."""

    eps: Float = Field(
        1e-3, gt=0, description="BatchNorm epsilon (torchvision's BasicConv2d uses 0.001)."
    )

    def conv(
        self,
        name: str,
        out: int,
        kernel: IntPair,
        stride: int = 1,
        padding: NonNegPair | None = None,
    ) -> ConvBnActSpec:
        """A BasicConv2d; padding defaults to conv_bn_act's, which keeps the size at stride 1."""
        return ConvBnActSpec(
            type="conv_bn_act",
            name=name,
            out=out,
            kernel=kernel,
            stride=stride,
            padding=padding,
            eps=self.eps,
        )

    @staticmethod
    def avg_pool() -> AvgPoolSpec:
        """branch_pool's F.avg_pool2d(x, 3, stride=1, padding=1), as a module named pool."""
        return AvgPoolSpec(type="avgpool", name="pool", kernel=3, stride=1, padding=1)

    @staticmethod
    def max_pool() -> MaxPoolSpec:
        """branch_pool's F.max_pool2d(x, 3, stride=2), as a module named pool."""
        return MaxPoolSpec(type="maxpool", name="pool", kernel=3, stride=2)


class InceptionV3ASpec(_InceptionV3Block):
    """Inception v3's 35x35 block (Szegedy et al. 2016, figure 5; torchvision ``InceptionA``):
    1x1; 1x1-5x5; 1x1-3x3-3x3; avg-pool-1x1. Channel defaults are torchvision's."""

    type: Literal["inception_v3_a"] = Field(description="Inception v3 block A (InceptionA).")
    b1: Channels = Field(64, description="Channels of branch1x1.")
    b5_reduce: Channels = Field(48, description="Channels of branch5x5_1 (1x1).")
    b5: Channels = Field(64, description="Channels of branch5x5_2 (5x5).")
    b3_reduce: Channels = Field(64, description="Channels of branch3x3dbl_1 (1x1).")
    b3: Channels = Field(96, description="Channels of branch3x3dbl_2 and _3 (3x3).")
    pool_proj: Channels = Field(
        description="Channels of branch_pool, the 1x1 after the 3x3 avg-pool (pool_features)."
    )

    def expand(self) -> ConcatSpec:
        """The generic concat block this preset stands for."""
        return ConcatSpec(
            type="concat",
            flat=True,
            branches=(
                self.conv("branch1x1", self.b1, 1),
                (self.conv("branch5x5_1", self.b5_reduce, 1), self.conv("branch5x5_2", self.b5, 5)),
                (
                    self.conv("branch3x3dbl_1", self.b3_reduce, 1),
                    self.conv("branch3x3dbl_2", self.b3, 3),
                    self.conv("branch3x3dbl_3", self.b3, 3),
                ),
                (self.avg_pool(), self.conv("branch_pool", self.pool_proj, 1)),
            ),
        )


class InceptionV3BSpec(_InceptionV3Block):
    """Inception v3's grid reduction from 35x35 to 17x17 (figure 10; torchvision ``InceptionB``):
    3x3 stride 2; 1x1-3x3-3x3 stride 2; 3x3 max-pool stride 2 (no padding)."""

    type: Literal["inception_v3_b"] = Field(description="Inception v3 block B (InceptionB).")
    b3: Channels = Field(384, description="Channels of branch3x3 (3x3, stride 2).")
    b3dbl_reduce: Channels = Field(64, description="Channels of branch3x3dbl_1 (1x1).")
    b3dbl: Channels = Field(96, description="Channels of branch3x3dbl_2 and _3 (3x3).")

    def expand(self) -> ConcatSpec:
        """The generic concat block this preset stands for."""
        return ConcatSpec(
            type="concat",
            flat=True,
            branches=(
                self.conv("branch3x3", self.b3, 3, stride=2, padding=0),
                (
                    self.conv("branch3x3dbl_1", self.b3dbl_reduce, 1),
                    self.conv("branch3x3dbl_2", self.b3dbl, 3),
                    self.conv("branch3x3dbl_3", self.b3dbl, 3, stride=2, padding=0),
                ),
                self.max_pool(),
            ),
        )


class InceptionV3CSpec(_InceptionV3Block):
    """Inception v3's 17x17 block with factorized 7x7 convs (figure 6; torchvision ``InceptionC``):
    1x1; 1x1-1x7-7x1; 1x1-7x1-1x7-7x1-1x7; avg-pool-1x1."""

    type: Literal["inception_v3_c"] = Field(description="Inception v3 block C (InceptionC).")
    c7: Channels = Field(
        description="Channels inside the 7x7 branches (torchvision's channels_7x7)."
    )
    out: Channels = Field(
        192, description="Channels of each branch's output (the block gives 4 x out)."
    )

    def expand(self) -> ConcatSpec:
        """The generic concat block this preset stands for."""
        c7, out = self.c7, self.out
        return ConcatSpec(
            type="concat",
            flat=True,
            branches=(
                self.conv("branch1x1", out, 1),
                (
                    self.conv("branch7x7_1", c7, 1),
                    self.conv("branch7x7_2", c7, (1, 7)),
                    self.conv("branch7x7_3", out, (7, 1)),
                ),
                (
                    self.conv("branch7x7dbl_1", c7, 1),
                    self.conv("branch7x7dbl_2", c7, (7, 1)),
                    self.conv("branch7x7dbl_3", c7, (1, 7)),
                    self.conv("branch7x7dbl_4", c7, (7, 1)),
                    self.conv("branch7x7dbl_5", out, (1, 7)),
                ),
                (self.avg_pool(), self.conv("branch_pool", out, 1)),
            ),
        )


class InceptionV3DSpec(_InceptionV3Block):
    """Inception v3's grid reduction from 17x17 to 8x8 (torchvision ``InceptionD``): 1x1-3x3
    stride 2; 1x1-1x7-7x1-3x3 stride 2; 3x3 max-pool stride 2."""

    type: Literal["inception_v3_d"] = Field(description="Inception v3 block D (InceptionD).")
    b3_reduce: Channels = Field(192, description="Channels of branch3x3_1 (1x1).")
    b3: Channels = Field(320, description="Channels of branch3x3_2 (3x3, stride 2).")
    b7: Channels = Field(192, description="Channels of every branch7x7x3 conv.")

    def expand(self) -> ConcatSpec:
        """The generic concat block this preset stands for."""
        b7 = self.b7
        return ConcatSpec(
            type="concat",
            flat=True,
            branches=(
                (
                    self.conv("branch3x3_1", self.b3_reduce, 1),
                    self.conv("branch3x3_2", self.b3, 3, stride=2, padding=0),
                ),
                (
                    self.conv("branch7x7x3_1", b7, 1),
                    self.conv("branch7x7x3_2", b7, (1, 7)),
                    self.conv("branch7x7x3_3", b7, (7, 1)),
                    self.conv("branch7x7x3_4", b7, 3, stride=2, padding=0),
                ),
                self.max_pool(),
            ),
        )


class InceptionV3ESpec(_InceptionV3Block):
    """Inception v3's 8x8 block with expanded filter banks (figure 7; torchvision ``InceptionE``):
    1x1; 1x1 then 1x3 and 3x1 side by side; 1x1-3x3 then 1x3 and 3x1 side by side; avg-pool-1x1.
    The side-by-side pairs are flat concats nested in a branch, so their convs are children of the
    block too (``branch3x3_2a``)."""

    type: Literal["inception_v3_e"] = Field(description="Inception v3 block E (InceptionE).")
    b1: Channels = Field(320, description="Channels of branch1x1.")
    b3: Channels = Field(
        384, description="Channels of branch3x3_1 and of each of its 1x3 / 3x1 convs."
    )
    b3dbl_reduce: Channels = Field(448, description="Channels of branch3x3dbl_1 (1x1).")
    b3dbl: Channels = Field(
        384, description="Channels of branch3x3dbl_2 (3x3) and of each of its 1x3 / 3x1 convs."
    )
    pool_proj: Channels = Field(192, description="Channels of branch_pool (1x1 after avg-pool).")

    def side_by_side(self, name: str, out: int) -> ConcatSpec:
        """``name``a (1x3) and ``name``b (3x1) on the same input, concatenated."""
        return ConcatSpec(
            type="concat",
            flat=True,
            branches=(self.conv(f"{name}a", out, (1, 3)), self.conv(f"{name}b", out, (3, 1))),
        )

    def expand(self) -> ConcatSpec:
        """The generic concat block this preset stands for."""
        return ConcatSpec(
            type="concat",
            flat=True,
            branches=(
                self.conv("branch1x1", self.b1, 1),
                (self.conv("branch3x3_1", self.b3, 1), self.side_by_side("branch3x3_2", self.b3)),
                (
                    self.conv("branch3x3dbl_1", self.b3dbl_reduce, 1),
                    self.conv("branch3x3dbl_2", self.b3dbl, 3),
                    self.side_by_side("branch3x3dbl_3", self.b3dbl),
                ),
                (self.avg_pool(), self.conv("branch_pool", self.pool_proj, 1)),
            ),
        )


# --------------------------------------------------------------------------- planning
class Join(NamedTuple):
    """How a ``zoo.nn.Concat`` runs its children, by name: ``pre``, then each branch's steps (a
    child's name, or a nested join whose children are the block's too) on the input or, with
    ``split``, on its own chunk of the channels, then ``post`` on the concatenation."""

    pre: tuple[str, ...]
    branches: tuple[tuple[str | Join, ...], ...]
    split: bool
    post: tuple[str, ...]


class _Block:
    """The children of one concat module as they are planned, and where each name was given: a
    name is used once in the block, whichever of pre, branches and post it is in."""

    def __init__(self, ctx: PlanContext):
        self.ctx = ctx
        self.children: list[LayerPlan] = []
        self.used: dict[str, SpecPath] = {}

    def add(self, plan: LayerPlan, node: object, default: str, path: SpecPath) -> str:
        """Add ``plan`` (of ``node``, at ``path``) as a child named ``node.name`` or ``default``."""
        name = getattr(node, "name", None) or default  # a repeat has no name
        if name in self.used:
            named = getattr(node, "name", None) is not None
            raise self.ctx.error(
                (*path, "name") if named else path,
                f"module name {name!r} is already used by {dotted(self.used[name])}; every "
                "child of a concat block (its pre and post layers, its branches, and with flat: "
                "every branch layer) needs a name of its own",
                "name",
            )
        self.used[name] = path
        plan.name, plan.source = name, path
        self.children.append(plan)
        return name


def _plan_layers(
    nodes: Sequence[Node],
    shape: Shape,
    ctx: PlanContext,
    path: SpecPath,
    block: _Block,
    default: Callable[[int], str],
) -> tuple[tuple[str, ...], Shape]:
    """Plan ``pre`` or ``post`` layers in sequence as children of the block."""
    names = []
    for i, (node, item_path) in enumerate(expand(nodes, path, ctx)):
        plan = plan_node(node, shape, ctx, item_path)
        names.append(block.add(plan, node, default(i), item_path))
        shape = plan.out
    return tuple(names), shape


def _plan_flat_branch(
    branch: Node | tuple[Node, ...],
    shape: Shape,
    ctx: PlanContext,
    path: SpecPath,
    block: _Block,
    prefix: str,
) -> tuple[tuple[str | Join, ...], Shape]:
    """Plan a branch of a flat block: each layer a child of the block, a flat concat inlined."""
    items = (
        expand(branch, path, ctx)
        if isinstance(branch, tuple)
        else expand((branch,), path[:-1], ctx, first=path[-1])  # one layer: at the branch's path
    )
    steps: list[str | Join] = []
    for j, (node, item_path) in enumerate(items):
        default = f"{prefix}_{j}"
        if isinstance(node, ConcatSpec) and node.flat:
            for field in ("name", "depth"):
                if getattr(node, field) is not None:
                    raise ctx.error(
                        (*item_path, field),
                        "this flat concat is inside a branch of a flat block, so its layers are "
                        "children of that block and it has no module of its own: remove its "
                        f"{field}, or set flat: false to make it a module",
                        "value",
                    )
            ctx.count_layer(item_path)
            join, shape = _plan_join(node, shape, ctx, item_path, block, f"{default}_")
            steps.append(join)
        else:
            plan = plan_node(node, shape, ctx, item_path)
            steps.append(block.add(plan, node, default, item_path))
            shape = plan.out
    return tuple(steps), shape


def _plan_join(
    spec: ConcatSpec,
    shape: Shape,
    ctx: PlanContext,
    path: SpecPath,
    block: _Block,
    prefix: str = "",
) -> tuple[Join, Shape]:
    """Plan ``spec``'s pre layers, branches and post layers as children of ``block``; default
    names start with ``prefix`` (a nested flat concat's, so that they stay unique)."""
    pre, shape = _plan_layers(
        spec.pre, shape, ctx, (*path, "pre"), block, lambda i: f"{prefix}pre_{i}"
    )
    n = len(spec.branches)
    branch_in = shape
    if spec.split:
        c, h, w = spatial(shape, ctx, (*path, "split"), "a split concat")
        if c % n:
            after = " after its pre layers" if spec.pre else ""
            raise ctx.error(
                (*path, "split"),
                f"split gives each of the {n} branches an equal chunk of the channels, but the "
                f"block's input{after} has {c} channels, which do not divide by {n}; change the "
                "channels before it or the number of branches",
                "channels",
            )
        branch_in = (c // n, h, w)
    steps: list[tuple[str | Join, ...]] = []
    outs: list[tuple[str, Shape]] = []  # (the branch's module name or number, its output)
    for i, branch in enumerate(spec.branches):
        bpath = (*path, "branches", i)
        default = f"{prefix}branch{i + 1}"
        if spec.flat:
            branch_steps, out = _plan_flat_branch(branch, branch_in, ctx, bpath, block, default)
            steps.append(branch_steps)
            called = f"branch {i + 1}"
        else:
            if isinstance(branch, tuple):
                layers, out = plan_list(branch, branch_in, ctx, bpath, str)
                plan = container(default, "sequential", out, layers, sequential)
            else:
                plan = plan_node(branch, branch_in, ctx, bpath)
                out = plan.out
            called = block.add(plan, branch, default, bpath)
            steps.append((called,))
        label = called if spec.flat else f"branch {called}"
        if len(out) != 3:
            raise ctx.error(bpath, f"{label} must give a CxHxW feature map, not {fmt(out)}")
        if outs and out[1:] != outs[0][1][1:]:
            first, first_out = outs[0]
            raise ctx.error(
                bpath,
                f"{label} gives {fmt(out)} but {first} gives {fmt(first_out)}; concatenated "
                "branches must keep the same height and width",
            )
        outs.append((called, out))
    joined = (sum(out[0] for _, out in outs), *outs[0][1][1:])
    post, out = _plan_layers(
        spec.post, joined, ctx, (*path, "post"), block, lambda i: f"{prefix}post_{i}"
    )
    return Join(pre, tuple(steps), spec.split, post), out


def plan_concat(
    spec: ConcatSpec,
    shape: Shape,
    ctx: PlanContext,
    path: SpecPath,
    first: bool,
    type_: str = "concat",
) -> LayerPlan:
    """Plan a concat block: its pre layers, every branch on ``shape`` (or on its chunk of the
    channels), the join (same height and width, channels added up) and its post layers."""
    block = _Block(ctx)
    layout, out = _plan_join(spec, shape, ctx, path, block)
    return container("", type_, out, block.children, lambda named: zoo_nn().Concat(named, layout))


def plan_concat_preset(
    spec: RepeatableSpec, shape: Shape, ctx: PlanContext, path: SpecPath, first: bool
) -> LayerPlan:
    """Plan a preset as the concat it expands to (shown in traces by its own type)."""
    return plan_concat(ctx.expanded(spec), shape, ctx, path, first, spec.type)  # type: ignore[attr-defined]


_BLOCK = {"block": True, "combinator": True}
registry.register(
    ConcatSpec,
    plan_concat,
    **_BLOCK,
    example={
        "type": "concat",
        "pre": [{"type": "conv", "out": 6, "kernel": 1}],
        "branches": [
            {"type": "conv", "out": 3, "kernel": 1, "name": "one"},
            [{"type": "maxpool", "kernel": 3, "stride": 1, "padding": 1}, {"type": "relu"}],
            {
                "type": "repeat",
                "times": 2,
                "layers": [{"type": "conv", "out": 2, "kernel": 3, "padding": 1}],
            },
        ],
        "post": [{"type": "batchnorm"}],
    },
)
registry.register(
    InceptionSpec,
    plan_concat_preset,
    **_BLOCK,
    channel_fields=("b1", "b3_reduce", "b3", "b5_reduce", "b5", "pool_proj"),
    example={
        "type": "inception",
        "b1": 2,
        "b3_reduce": 2,
        "b3": 4,
        "b5_reduce": 1,
        "b5": 2,
        "b5_kernel": 3,
        "pool_proj": 2,
    },
)
registry.register(
    FireSpec,
    plan_concat_preset,
    **_BLOCK,
    channel_fields=("squeeze", "expand1x1", "expand3x3"),
    example={"type": "fire", "squeeze": 2, "expand1x1": 3, "expand3x3": 4},
)
registry.register(
    InceptionV3ASpec,
    plan_concat_preset,
    **_BLOCK,
    channel_fields=("b1", "b5_reduce", "b5", "b3_reduce", "b3", "pool_proj"),
    example={
        "type": "inception_v3_a",
        "b1": 2,
        "b5_reduce": 2,
        "b5": 3,
        "b3_reduce": 2,
        "b3": 3,
        "pool_proj": 2,
    },
)
registry.register(
    InceptionV3BSpec,
    plan_concat_preset,
    **_BLOCK,
    channel_fields=("b3", "b3dbl_reduce", "b3dbl"),
    example={"type": "inception_v3_b", "b3": 4, "b3dbl_reduce": 2, "b3dbl": 3},
)
registry.register(
    InceptionV3CSpec,
    plan_concat_preset,
    **_BLOCK,
    channel_fields=("c7", "out"),
    example={"type": "inception_v3_c", "c7": 2, "out": 3},
)
registry.register(
    InceptionV3DSpec,
    plan_concat_preset,
    **_BLOCK,
    channel_fields=("b3_reduce", "b3", "b7"),
    example={"type": "inception_v3_d", "b3_reduce": 2, "b3": 3, "b7": 2},
)
registry.register(
    InceptionV3ESpec,
    plan_concat_preset,
    **_BLOCK,
    channel_fields=("b1", "b3", "b3dbl_reduce", "b3dbl", "pool_proj"),
    example={
        "type": "inception_v3_e",
        "b1": 2,
        "b3": 2,
        "b3dbl_reduce": 3,
        "b3dbl": 2,
        "pool_proj": 2,
    },
)
