"""The ConvNeXt block (Liu et al., "A ConvNet for the 2020s", 2022), in torchvision's ``CNBlock``
layout: a preset that expands to the generic ``residual`` block.

``x + stochastic_depth(layer_scale * block(x))``, where ``block`` is one ``nn.Sequential``: a
depthwise 7x7 conv (``block.0``), a LayerNorm over the channels (``block.2``), a Linear to
``expansion`` times the channels (``block.3``), GELU (``block.4``) and a Linear back
(``block.5``). torchvision's ``block.1`` and ``block.6`` are Permutes to channels-last and back,
which hold no weights: here the norm and the Linears work on the channels of the CxHxW map
themselves (``layernorm``, ``channel_linear``), so those two indices are left free and every
``state_dict`` key is torchvision's.

Multiply-adds count the conv and the two Linears; the LayerNorm, GELU and the layer-scale multiply
are not multiply-adds in ``FlopCounterMode`` (nor in torchvision's published figures).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from zoo import registry
from zoo.plan import LayerPlan, PlanContext, spatial
from zoo.shapes import Shape
from zoo.spec.fields import Bool, Channels, Float, RepeatableSpec, Size
from zoo.spec.yaml_loader import SpecPath
from zoo.types.activation import GELUSpec
from zoo.types.container import SequentialSpec
from zoo.types.conv import ConvSpec
from zoo.types.dense import ChannelLinearSpec
from zoo.types.norm import LayerNormSpec
from zoo.types.residual import ResidualSpec, plan_residual_preset

KERNEL = 7  # the paper's depthwise kernel (its section 2.5), torchvision's only one


class ConvNeXtBlockSpec(RepeatableSpec):
    """ConvNeXt block (torchvision ``CNBlock``): depthwise 7x7 conv, LayerNorm, Linear to
    ``expansion`` x channels, GELU, Linear back, a learnable per-channel layer scale, stochastic
    depth, plus the input. It keeps its channels and size: ConvNeXt downsamples between stages
    (a layernorm, then a conv with kernel 2 and stride 2). Multiply-adds count the conv and the
    two Linears, H x W x C x (49 + 2 x expansion x C); the LayerNorm, GELU and layer-scale
    multiply are not multiply-adds in ``FlopCounterMode``, nor in torchvision's published GFLOPS."""

    type: Literal["convnext_block"] = Field(
        description="ConvNeXt block (torchvision CNBlock): dwconv 7x7, LayerNorm, MLP, layer scale."
    )
    out: Channels = Field(
        description="Channels of the block, its input's and its output's (torchvision's dim)."
    )
    expansion: Size = Field(4, description="Hidden channels of the MLP, as a multiple of `out`.")
    eps: Float = Field(1e-6, gt=0, description="LayerNorm epsilon.")
    layer_scale: Float | None = Field(
        1e-6,
        gt=0,
        description=(
            "Initial value of the learnable per-channel scale of the residual branch (a parameter "
            "layer_scale of shape (C, 1, 1) on the block); null: no layer scale."
        ),
    )
    stochastic_depth: Bool = Field(
        True,
        description=(
            "Take part in the network's stochastic depth schedule (its `stochastic_depth`): the "
            "residual branch is dropped per sample in training, as torchvision's CNBlock does."
        ),
    )

    def expand(self) -> ResidualSpec:
        """The generic residual block this preset stands for."""
        dim = self.out
        return ResidualSpec(
            type="residual",
            stochastic_depth=self.stochastic_depth,
            layer_scale=self.layer_scale,
            body=(
                SequentialSpec(
                    type="sequential",
                    name="block",
                    layers=(  # torchvision's indices: 1 and 6 are its weightless Permutes
                        ConvSpec(
                            type="conv",
                            name="0",
                            out=dim,
                            kernel=KERNEL,
                            padding=KERNEL // 2,
                            groups=dim,
                        ),
                        LayerNormSpec(type="layernorm", name="2", eps=self.eps),
                        ChannelLinearSpec(
                            type="channel_linear", name="3", out=self.expansion * dim
                        ),
                        GELUSpec(type="gelu", name="4"),
                        ChannelLinearSpec(type="channel_linear", name="5", out=dim),
                    ),
                ),
            ),
        )


@registry.planner(
    ConvNeXtBlockSpec,
    block=True,
    combinator=True,
    channel_fields=("out",),
    example={"type": "convnext_block", "out": 4, "depth": 2, "layer_scale": 0.5},
)
def plan_convnext_block(
    spec: ConvNeXtBlockSpec, shape: Shape, ctx: PlanContext, path: SpecPath, first: bool
) -> LayerPlan:
    channels, _, _ = spatial(shape, ctx, path, "convnext_block")
    if channels != spec.out:  # else the residual block would add a projection CNBlock never has
        raise ctx.error(
            (*path, "out"),
            f"a convnext_block keeps its channels, but its input has {channels} and out is "
            f"{spec.out}: set out: {channels}, or change the channels before it (ConvNeXt's "
            "downsampling: {type: layernorm} then {type: conv, kernel: 2, stride: 2})",
            "channels",
        )
    return plan_residual_preset(spec, shape, ctx, path, first)
