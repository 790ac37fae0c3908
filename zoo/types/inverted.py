"""Inverted residual blocks: a 1x1 expansion, a depthwise conv, a linear 1x1 projection, and a
sum only when the block keeps the shape. Three presets of the generic ``residual`` block:

- ``inverted_residual``: MobileNetV2 (Sandler et al. 2018; torchvision's ``InvertedResidual``,
  its layers in ``conv``) and MNASNet (Tan et al. 2019; ``_InvertedResidual``, in ``layers``);
- ``mbconv``: EfficientNet's MBConv (Tan & Le 2019) and MobileNetV3's block (Howard et al. 2019),
  which torchvision lays out alike (``block``: expand, depthwise, squeeze-excitation, project);
- ``fused_mbconv``: EfficientNetV2's Fused-MBConv (Tan & Le 2021): one full kxk conv in place of
  the expansion and the depthwise conv.

The width inside a block is a multiple of its *input* channels (``expansion``), and whether the
expansion conv exists at all depends on them too (torchvision leaves it out when the width does not
change), so these presets expand given their input channels: ``expand_for(channels)`` returns the
validated ``residual`` spec the block stands for, and the planner plans that. The first block of a
``depth`` stage, on the previous stage's width, can so differ from the others, as in every
reference. The shortcut kind is ``none``: a block that changes the shape is its body alone.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from zoo import registry
from zoo.plan import LayerPlan, PlanContext, spatial
from zoo.shapes import Shape, make_divisible
from zoo.spec.fields import Bool, Channels, Float, Size
from zoo.spec.yaml_loader import SpecPath
from zoo.types.activation import ACTIVATIONS, ActivationTag
from zoo.types.attention import SqueezeExciteSpec
from zoo.types.container import SequentialSpec
from zoo.types.conv import ConvBnActSpec, ConvSpec
from zoo.types.norm import BatchNormSpec
from zoo.types.residual import ResidualBlockSpec, ResidualSpec, ShortcutSpec, plan_residual

EXPANSION_DIVISOR = 8
"""EfficientNet rounds its expanded widths to a multiple of 8 (``_MBConvConfig.adjust_channels``)."""


def _no_shortcut() -> ShortcutSpec:
    return ShortcutSpec(kind="none")


class _InvertedBlockSpec(ResidualBlockSpec):
    """What every inverted residual block has: its output channels, the depthwise kernel, the
    activation and the BatchNorm settings of all its norms; no shortcut when the shape changes."""

    out: Channels = Field(description="Output channels of every block.")
    act: ActivationTag = Field(  # type: ignore[valid-type]
        "silu",
        description="Activation of every conv-bn-act of the block (the projection has none).",
    )
    kernel: Size = Field(
        3,
        description=(
            "Kernel of the spatial conv: the depthwise one (fused_mbconv: the full kxk one); odd, "
            "so that it keeps the size at stride 1."
        ),
    )
    eps: Float = Field(1e-5, gt=0, description="BatchNorm epsilon of every norm in the block.")
    momentum: Float = Field(
        0.1, ge=0, le=1, description="BatchNorm running-stats momentum of every norm in the block."
    )
    shortcut: ShortcutSpec = Field(
        default_factory=_no_shortcut,
        description=(
            "When the block changes the shape: kind none (the default, as every reference) leaves "
            "the block its body alone; a projection kind adds one. Identity otherwise."
        ),
    )

    @model_validator(mode="after")
    def _odd_kernel(self) -> Any:
        if self.kernel % 2 == 0:
            raise ValueError(
                f"kernel {self.kernel} is even: the conv pads (kernel - 1) // 2 on each side and "
                "would shrink the map by one; use an odd kernel (3, 5, 7)"
            )
        return self

    def _cna(self, out: int, kernel: int = 1, groups: int = 1, act: str = "") -> ConvBnActSpec:
        """torchvision's ``Conv2dNormActivation`` (children 0/1/2) with this block's norm; ``act``
        'none' for the linear projection, default the block's activation."""
        return ConvBnActSpec(
            type="conv_bn_act",
            out=out,
            kernel=kernel,
            groups=groups,
            eps=self.eps,
            momentum=self.momentum,
            act=act or self.act,
            keys="indexed",
        )

    def _block(self, name: str, layers: list[Any], stride_at: int) -> ResidualSpec:
        """The residual block of ``layers`` wrapped in one sequential ``name`` (torchvision's
        attribute), the block's stride on its spatial conv ``layers[stride_at]``."""
        body = SequentialSpec(type="sequential", name=name, layers=tuple(layers))
        return self.residual(body=(body,), stride_at=f"{name}.{stride_at}")


class InvertedResidualSpec(_InvertedBlockSpec):
    """MobileNetV2's inverted residual (Sandler et al. 2018) and MNASNet's (Tan et al. 2019):
    1x1 expand to ``round(in x expansion)`` channels, depthwise kxk with the stride, linear 1x1
    project; the sum when the shape is unchanged. ``layout`` gives torchvision's module names."""

    type: Literal["inverted_residual"] = Field(
        description="MobileNetV2 / MNASNet inverted residual: expand, depthwise, project."
    )
    expansion: Float = Field(
        ge=1,
        le=64,
        description=(
            "Expansion factor t: the inner width is round(input channels x t); at 1 the "
            "mobilenet_v2 layout has no expansion conv (the mnasnet layout always has one)."
        ),
    )
    act: ActivationTag = Field(  # type: ignore[valid-type]
        "relu6",
        description="Activation after the expansion and the depthwise conv (MNASNet: relu).",
    )
    layout: Literal["mobilenet_v2", "mnasnet"] = Field(
        "mobilenet_v2",
        description=(
            "torchvision's modules, so state_dict keys: mobilenet_v2: `conv` holds conv-bn-act "
            "groups 0 (expand), 1 (depthwise), then conv 2 and bn 3; mnasnet: `layers` holds "
            "them flat, conv/bn/act 0-2, depthwise 3-5, conv 6, bn 7."
        ),
    )

    def expand_for(self, channels: int) -> ResidualSpec:
        """The generic residual block this preset stands for, on ``channels`` input channels."""
        hidden = round(channels * self.expansion)
        project = [
            ConvSpec(type="conv", out=self.out, kernel=1, bias=False),
            BatchNormSpec(type="batchnorm", eps=self.eps, momentum=self.momentum),
        ]
        if self.layout == "mnasnet":
            return self._block(
                "layers",
                [
                    *self._conv_bn_act(hidden, 1, 1),
                    *self._conv_bn_act(hidden, self.kernel, hidden),
                    *project,
                ],
                stride_at=3,
            )
        expand = [self._cna(hidden)] if self.expansion != 1 else []
        depthwise = self._cna(hidden, self.kernel, hidden)
        return self._block("conv", [*expand, depthwise, *project], stride_at=len(expand))

    def _conv_bn_act(self, out: int, kernel: int, groups: int) -> list[Any]:
        """MNASNet's flat conv, BatchNorm, in-place activation."""
        act = ACTIVATIONS[self.act]
        inplace = {"inplace": True} if act.inplace else {}
        return [
            ConvSpec(
                type="conv",
                out=out,
                kernel=kernel,
                padding=kernel // 2,
                groups=groups,
                bias=False,
            ),
            BatchNormSpec(type="batchnorm", eps=self.eps, momentum=self.momentum),
            act.model(type=self.act, **inplace),
        ]


def _efficientnet_se() -> SqueezeExciteSpec:
    """EfficientNet's squeeze-excitation: max(1, block input // 4) channels, SiLU, sigmoid."""
    return SqueezeExciteSpec(
        type="squeeze_excite", of="block_input", ratio=0.25, divisor=1, act="silu"
    )


class MBConvSpec(_InvertedBlockSpec):
    """EfficientNet's MBConv (Tan & Le 2019) and MobileNetV3's inverted residual (Howard et al.
    2019), torchvision's layout for both: ``block`` holds conv-bn-act groups for the 1x1 expansion
    (left out when the width does not change), the depthwise kxk conv with the stride, the
    squeeze-excitation, and the linear 1x1 projection. The defaults are EfficientNet's."""

    type: Literal["mbconv"] = Field(
        description="EfficientNet MBConv / MobileNetV3 block: expand, depthwise, SE, project."
    )
    expansion: Float | None = Field(
        None,
        ge=1,
        le=64,
        description=(
            "Expansion ratio: the inner width is input channels x this, rounded to a multiple of "
            "8 (EfficientNet). Give this or `expanded`."
        ),
    )
    expanded: Channels | None = Field(
        None,
        description="The inner width itself (MobileNetV3's tables). Give this or `expansion`.",
    )
    se: SqueezeExciteSpec | None = Field(
        default_factory=_efficientnet_se,
        description=(
            "The squeeze-excitation after the depthwise conv, or null for none. Default "
            "EfficientNet's (of: block_input, ratio 0.25, divisor 1, act silu); MobileNetV3's "
            "is {type: squeeze_excite, gate: hardsigmoid}."
        ),
    )
    stochastic_depth: Bool = Field(
        True,
        description=(
            "Take part in the network's stochastic depth (EfficientNet: every block; set false for "
            "MobileNetV3, which has none)."
        ),
    )

    @model_validator(mode="after")
    def _one_width(self) -> Any:
        if (self.expansion is None) == (self.expanded is None):
            raise ValueError(
                "give the inner width once: `expansion` (a ratio of the input channels) or "
                "`expanded` (channels)"
            )
        return self

    def inner_width(self, channels: int) -> int:
        """Channels of the depthwise conv on ``channels`` input channels."""
        if self.expansion is None:
            return self.expanded  # type: ignore[return-value]  # one of the two is given
        return make_divisible(channels * self.expansion, EXPANSION_DIVISOR)

    def expand_for(self, channels: int) -> ResidualSpec:
        """The generic residual block this preset stands for, on ``channels`` input channels."""
        hidden = self.inner_width(channels)
        expand = [self._cna(hidden)] if hidden != channels else []
        layers = [*expand, self._cna(hidden, self.kernel, hidden)]
        if self.se is not None:
            layers.append(self.se)
        layers.append(self._cna(self.out, act="none"))
        return self._block("block", layers, stride_at=len(expand))


class FusedMBConvSpec(_InvertedBlockSpec):
    """EfficientNetV2's Fused-MBConv (Tan & Le 2021; torchvision's ``FusedMBConv``): in ``block``,
    a kxk conv-bn-act with the stride expanding to the inner width, then a linear 1x1 projection;
    a single kxk conv-bn-act to the output when the width does not change. No squeeze-excitation."""

    type: Literal["fused_mbconv"] = Field(
        description="EfficientNetV2 Fused-MBConv: kxk expand (strided), 1x1 project."
    )
    expansion: Float = Field(
        ge=1,
        le=64,
        description=(
            "Expansion ratio: the inner width is input channels x this, rounded to a multiple of 8; "
            "when it equals the input channels the block is one kxk conv-bn-act."
        ),
    )
    stochastic_depth: Bool = Field(
        True,
        description="Take part in the network's stochastic depth (EfficientNetV2: every block).",
    )

    def expand_for(self, channels: int) -> ResidualSpec:
        """The generic residual block this preset stands for, on ``channels`` input channels."""
        hidden = make_divisible(channels * self.expansion, EXPANSION_DIVISOR)
        if hidden == channels:
            layers = [self._cna(self.out, self.kernel)]
        else:
            layers = [self._cna(hidden, self.kernel), self._cna(self.out, act="none")]
        return self._block("block", layers, stride_at=0)


def plan_inverted(
    spec: Any, shape: Shape, ctx: PlanContext, path: SpecPath, first: bool
) -> LayerPlan:
    """Plan an inverted residual preset as the residual block it expands to on its input
    channels (shown in traces by its own type)."""
    channels, _, _ = spatial(shape, ctx, path, spec.type)
    generic = ctx.expanded_for(spec, path, channels)
    return plan_residual(generic, shape, ctx, path, first, spec.type)


_BLOCK = {"block": True, "combinator": True}
registry.register(
    InvertedResidualSpec,
    plan_inverted,
    **_BLOCK,
    channel_fields=("out",),
    example={"type": "inverted_residual", "out": 8, "expansion": 6, "depth": 2, "stride": 2},
)
registry.register(
    MBConvSpec,
    plan_inverted,
    **_BLOCK,
    channel_fields=("out", "expanded"),  # not `se`: the scaling reaches its squeeze itself
    example={"type": "mbconv", "out": 8, "expansion": 4, "kernel": 5, "depth": 2, "stride": 2},
)
registry.register(
    FusedMBConvSpec,
    plan_inverted,
    **_BLOCK,
    channel_fields=("out",),
    example={"type": "fused_mbconv", "out": 16, "expansion": 4, "depth": 2, "stride": 2},
)
