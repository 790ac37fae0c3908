"""Parallel branches: the generic ``concat`` combinator (branches on one input, joined along the
channels) and the ``inception`` preset built from it (torchvision's GoogLeNet ``Inception``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from zoo import registry
from zoo.plan import (
    LayerPlan,
    PlanContext,
    container,
    plan_list,
    plan_node,
    sequential,
    zoo_nn,
)
from zoo.shapes import Shape, fmt
from zoo.spec.fields import Channels, Float, RepeatableSpec, Size
from zoo.spec.yaml_loader import SpecPath
from zoo.types.conv import ConvBnActSpec
from zoo.types.pool import MaxPoolSpec

if TYPE_CHECKING:
    from zoo.spec.schema import Node


class ConcatSpec(RepeatableSpec):
    """Parallel branches on the same input, concatenated along channels (``torch.cat(dim=1)``)."""

    type: Literal["concat"] = Field(
        description="Parallel branches joined by channel concatenation."
    )
    branches: tuple[Node | tuple[Node, ...], ...] = Field(
        min_length=1,
        description=(
            "Each branch is one layer (kept as is, named by its `name` or branchN) or a list of layers "
            "(an nn.Sequential named branchN)."
        ),
    )


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


def plan_concat(
    spec: ConcatSpec,
    shape: Shape,
    ctx: PlanContext,
    path: SpecPath,
    first: bool,
    type_: str = "concat",
) -> LayerPlan:
    """Plan every branch on ``shape`` and join them: same height and width, channels added up."""
    branches: list[LayerPlan] = []
    for i, branch in enumerate(spec.branches):
        default = f"branch{i + 1}"
        bpath = (*path, "branches", i)
        if isinstance(branch, tuple):
            layers, out = plan_list(branch, shape, ctx, bpath, str)
            plan = container(default, "sequential", out, layers, sequential)
        else:
            plan = plan_node(branch, shape, ctx, bpath)
            plan.name = getattr(branch, "name", None) or default  # a repeat has no name
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
    return container("", type_, out, branches, lambda named: zoo_nn().Concat(named))


def plan_inception(
    spec: InceptionSpec, shape: Shape, ctx: PlanContext, path: SpecPath, first: bool
) -> LayerPlan:
    """Plan the preset as the concat it expands to (shown in traces as ``inception``)."""
    return plan_concat(ctx.expanded(spec), shape, ctx, path, first, "inception")


registry.register(
    ConcatSpec,
    plan_concat,
    block=True,
    combinator=True,
    example={
        "type": "concat",
        "branches": [
            {"type": "conv", "out": 3, "kernel": 1, "name": "one"},
            [{"type": "maxpool", "kernel": 3, "stride": 1, "padding": 1}, {"type": "relu"}],
            {
                "type": "repeat",
                "times": 2,
                "layers": [{"type": "conv", "out": 2, "kernel": 3, "padding": 1}],
            },
        ],
    },
)
registry.register(
    InceptionSpec,
    plan_inception,
    block=True,
    combinator=True,
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
