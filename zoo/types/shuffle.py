"""ShuffleNetV2 (Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
Design", 2018): ``channel_shuffle`` and the ``shufflenet_v2_unit`` preset, torchvision's
``InvertedResidual`` of ``shufflenetv2.py``, which expands to the generic ``concat``.

A unit with a stride runs two branches on its whole input (``branch1``: depthwise 3x3 with the
stride, BN, 1x1, BN, ReLU; ``branch2``: 1x1, BN, ReLU, depthwise 3x3 with the stride, BN, 1x1, BN,
ReLU); a unit without one splits its channels in two halves, keeps the first (``branch1`` is an
empty ``nn.Sequential``, as torchvision's) and runs ``branch2`` on the second. Both concatenate
and shuffle the channels in two groups. The depthwise conv of ``branch1`` has as many groups as
the unit has input channels, so the preset expands given them (``expand_for``), and a ``depth``
stage's first unit (strided, two branches) differs from the others (split).

The shuffle is a permutation: no multiply-adds, as in ``FlopCounterMode``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from zoo import registry
from zoo.plan import LayerPlan, PlanContext, leaf, spatial, torch_nn
from zoo.shapes import Shape
from zoo.spec.fields import Channels, NamedSpec, RepeatableSpec, Size
from zoo.spec.yaml_loader import SpecPath
from zoo.types.activation import ReLUSpec
from zoo.types.concat import ConcatSpec, plan_concat
from zoo.types.conv import ConvSpec
from zoo.types.norm import BatchNormSpec


class ChannelShuffleSpec(NamedSpec):
    """``nn.ChannelShuffle``: the channels, seen as ``groups`` rows of ``C / groups``, are read
    column by column (Zhang et al. 2018), exactly torchvision's ``channel_shuffle``."""

    type: Literal["channel_shuffle"] = Field(
        description="Channel shuffle (nn.ChannelShuffle), as ShuffleNet mixes its groups."
    )
    groups: Size = Field(description="Groups to interleave; it must divide the channels.")


@registry.planner(ChannelShuffleSpec, example={"type": "channel_shuffle", "groups": 2})
def plan_channel_shuffle(
    spec: ChannelShuffleSpec, shape: Shape, ctx: PlanContext, path: SpecPath
) -> LayerPlan:
    c, _, _ = spatial(shape, ctx, path, "channel_shuffle")
    if c % spec.groups:
        raise ctx.error(
            (*path, "groups"),
            f"groups={spec.groups} must divide the channels ({c}); choose a divisor of {c}",
            "channels",
        )
    groups = spec.groups
    return leaf("channel_shuffle", shape, lambda: torch_nn().ChannelShuffle(groups))


class ShuffleNetV2UnitSpec(RepeatableSpec):
    """ShuffleNetV2's building block (torchvision ``shufflenetv2.InvertedResidual``): with a stride,
    two branches on the whole input; without, a channel split that keeps one half and transforms
    the other; then concatenation and a shuffle in two groups. With ``depth``, the first copy takes
    the stride and the others split (torchvision's ``stage2`` ... ``stage4``)."""

    type: Literal["shufflenet_v2_unit"] = Field(
        description="ShuffleNetV2 unit: two branches (strided) or a channel split, then a shuffle."
    )
    out: Channels = Field(
        description="Output channels (even: each branch gives half; torchvision's oup)."
    )
    stride: Size = Field(
        2,
        description=(
            "Stride of the first copy (later copies use 1). A unit with a stride has two branches "
            "on its whole input; one without splits its channels, which must then equal `out`."
        ),
    )

    @model_validator(mode="after")
    def _even(self) -> Any:
        if self.out % 2:
            raise ValueError(f"out ({self.out}) must be even: each of the two branches gives half")
        return self

    def expand_for(self, channels: int, stride: int) -> ConcatSpec:
        """The generic concat this unit stands for, on ``channels`` input channels at ``stride``."""
        half = self.out // 2

        def conv(out: int, kernel: int = 1, groups: int = 1, stride: int = 1) -> ConvSpec:
            return ConvSpec(
                type="conv",
                out=out,
                kernel=kernel,
                stride=stride,
                padding=kernel // 2,
                groups=groups,
                bias=False,
            )

        bn = BatchNormSpec(type="batchnorm")
        relu = ReLUSpec(type="relu", inplace=True)
        branch2 = (conv(half), bn, relu, conv(half, 3, half, stride), bn, conv(half), bn, relu)
        branch1 = (
            (conv(channels, 3, channels, stride), bn, conv(half), bn, relu) if stride > 1 else ()
        )
        return ConcatSpec(
            type="concat",
            branches=(branch1, branch2),
            split=stride == 1,
            post=(ChannelShuffleSpec(type="channel_shuffle", name="shuffle", groups=2),),
        )


@registry.planner(
    ShuffleNetV2UnitSpec,
    block=True,
    combinator=True,
    channel_fields=("out",),
    example={"type": "shufflenet_v2_unit", "out": 8, "depth": 2},
)
def plan_shufflenet_v2_unit(
    spec: ShuffleNetV2UnitSpec, shape: Shape, ctx: PlanContext, path: SpecPath, first: bool
) -> LayerPlan:
    """Plan one copy: the first takes the stride; a copy without one must keep the channels."""
    channels, _, _ = spatial(shape, ctx, path, spec.type)
    stride = spec.stride if first else 1
    if stride == 1 and channels != spec.out:
        where = "its first copy has stride 1" if first else "the copies after the first split"
        raise ctx.error(
            (*path, "out"),
            f"a shufflenet_v2_unit without a stride splits its {channels} input channels in two "
            f"halves and keeps one, so it gives {channels} channels, not out={spec.out} ({where}); "
            f"set out: {channels}, or give the unit a stride",
            "channels",
        )
    generic = ctx.expanded_for(spec, path, channels, stride)
    return plan_concat(generic, shape, ctx, path, first, spec.type)
