"""Channel attention: ``squeeze_excite`` (Hu et al. 2018), in torchvision's ``SqueezeExcitation``
layout (MobileNetV3, EfficientNet, RegNetY) and timm's ``SEModule`` one (SE-ResNet): the same
``fc1``/``fc2`` weights, a gate of sigmoid or hard-sigmoid.

The multiply by the gate and the pooling are not counted as multiply-adds, as torchvision's and
``FlopCounterMode``'s figures do not count them; the two 1x1 convs are.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from zoo import registry
from zoo.plan import LayerPlan, PlanContext, leaf, named_container, spatial, torch_nn, zoo_nn
from zoo.shapes import Shape, make_divisible
from zoo.spec.fields import Channels, Float, NamedSpec, Size
from zoo.spec.yaml_loader import SpecPath
from zoo.types.activation import ActivationTag, activation_plan
from zoo.types.conv import conv_plan


class SqueezeExciteSpec(NamedSpec):
    """Squeeze-and-excitation: pool, 1x1 conv down to ``squeeze`` channels, activation, 1x1 conv
    back, gate, multiply. ``squeeze`` is given, or ``ratio`` of the input channels rounded to a
    multiple of ``divisor`` (torchvision's MobileNetV3: ratio 0.25, divisor 8; timm's SE-ResNet:
    ratio 0.0625, divisor 8, round_limit 0)."""

    type: Literal["squeeze_excite"] = Field(description="Squeeze-and-excitation channel gate.")
    squeeze: Channels | None = Field(
        None, description="Channels of the squeeze; default: ratio x input channels, rounded."
    )
    ratio: Float = Field(0.25, gt=0, le=1, description="Squeeze channels / input channels.")
    divisor: Size = Field(
        8, description="Round the squeeze to a multiple of this (1: no rounding)."
    )
    round_limit: Float = Field(
        0.9,
        ge=0,
        le=1,
        description="Round up a multiple when rounding down loses more than 1 - this "
        "(0.9: torchvision's _make_divisible; 0: timm's SE).",
    )
    act: ActivationTag = Field(  # type: ignore[valid-type]
        "relu", description="Activation between the two convs (EfficientNet: silu)."
    )
    gate: Literal["sigmoid", "hardsigmoid"] = Field(
        "sigmoid", description="The gate (MobileNetV3: hardsigmoid)."
    )
    of: Literal["input", "block_input"] = Field(
        "input",
        description=(
            "What `ratio` is of: the SE's own input channels (MobileNetV3, SE-ResNet), or the "
            "input channels of the residual block it is in (EfficientNet's MBConv: in // 4)."
        ),
    )


def squeeze_channels(spec: SqueezeExciteSpec, channels: int) -> int:
    """The squeeze of ``spec`` that ``channels`` (the input channels ``of`` names) give."""
    if spec.squeeze is not None:
        return spec.squeeze
    return make_divisible(channels * spec.ratio, spec.divisor, round_limit=spec.round_limit)


@registry.planner(
    SqueezeExciteSpec,
    channel_fields=("squeeze",),
    example={"type": "squeeze_excite", "ratio": 0.5, "act": "silu", "gate": "hardsigmoid"},
    example_input=(16, 5, 7),
)
def plan_squeeze_excite(
    spec: SqueezeExciteSpec, shape: Shape, ctx: PlanContext, path: SpecPath
) -> LayerPlan:
    c, _, _ = spatial(shape, ctx, path, "squeeze_excite")
    if spec.of == "block_input" and not ctx.block_inputs:
        raise ctx.error(
            (*path, "of"),
            "of: block_input sizes the squeeze by the enclosing residual block's input, and this "
            "squeeze_excite is in none; use of: input",
            "value",
        )
    squeeze = squeeze_channels(spec, ctx.block_inputs[-1] if spec.of == "block_input" else c)
    pooled = (c, 1, 1)
    fc1 = conv_plan(pooled, ctx, path, out=squeeze, kernel=1)
    fc2 = conv_plan(fc1.out, ctx, path, out=c, kernel=1)
    plans = [  # in torchvision's order of registration, so the module prints the same
        ("avgpool", leaf("adaptive_avgpool", pooled, lambda: torch_nn().AdaptiveAvgPool2d(1))),
        ("fc1", fc1),
        ("fc2", fc2),
        ("activation", activation_plan(spec.act, fc1.out)),
        ("scale_activation", activation_plan(spec.gate, pooled)),
    ]
    plan = named_container("", "squeeze_excite", plans, shape)
    plan.make = lambda named: zoo_nn().SqueezeExcite(named)
    return plan
