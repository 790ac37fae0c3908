"""Convolutions: ``conv`` (``nn.Conv2d``) and ``conv_bn_act`` (conv + BatchNorm + activation,
torchvision's ``Conv2dNormActivation``). Every other type that holds a conv plans it here."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field

from zoo import registry
from zoo.plan import (
    LayerPlan,
    PlanContext,
    check_positive,
    leaf,
    named_container,
    spatial,
    torch_nn,
)
from zoo.shapes import Shape, conv_out, pair, window
from zoo.spec.fields import Bool, Channels, Float, IntPair, NamedSpec, NonNegPair, Size
from zoo.spec.yaml_loader import SpecPath
from zoo.types.activation import ACTIVATIONS, ActivationName, activation_plan
from zoo.types.norm import batchnorm_plan

Groups = Size | Literal["depthwise"]


class ConvSpec(NamedSpec):
    """``nn.Conv2d``; ``in_channels`` is inferred. Defaults are PyTorch's (no padding, with bias)."""

    type: Literal["conv"] = Field(description="A 2-D convolution (nn.Conv2d).")
    out: Channels = Field(description="Output channels.")
    kernel: IntPair = Field(description="Kernel size: an int or [height, width].")
    stride: IntPair = Field(1, description="Stride: an int or [height, width].")
    padding: NonNegPair | Literal["same"] = Field(
        0, description="Zero padding: an int, [height, width], or 'same' (stride 1 only)."
    )
    dilation: IntPair = Field(1, description="Dilation of the kernel.")
    groups: Groups = Field(
        1,
        description=(
            "Groups; input and output channels must divide by it. 'depthwise': one group per "
            "input channel (MobileNet's depthwise convs), whatever the channels after scaling."
        ),
    )
    bias: Bool = Field(True, description="Learn an additive bias (PyTorch's default).")


class ConvBnActSpec(NamedSpec):
    """Conv (no bias) + BatchNorm + activation: torchvision's ``Conv2dNormActivation`` (children
    ``0``, ``1``, ``2``: ``keys: indexed``) or its ``BasicConv2d`` of GoogLeNet and Inception v3
    (``conv``, ``bn``, ``act``: ``keys: named``, the default). Padding defaults to
    ``(kernel - 1) // 2 * dilation``.
    """

    type: Literal["conv_bn_act"] = Field(description="Conv + BatchNorm + activation shorthand.")
    out: Channels = Field(description="Output channels.")
    kernel: IntPair = Field(description="Kernel size: an int or [height, width].")
    stride: IntPair = Field(1, description="Stride: an int or [height, width].")
    padding: NonNegPair | None = Field(
        None,
        description="Zero padding; default (kernel - 1) // 2 * dilation keeps the size at stride 1.",
    )
    dilation: IntPair = Field(1, description="Dilation of the kernel.")
    groups: Groups = Field(
        1, description="Groups of the convolution; 'depthwise': one per input channel."
    )
    bias: Bool = Field(False, description="Conv bias; useless before BatchNorm, so off by default.")
    eps: Float = Field(1e-5, gt=0, description="BatchNorm epsilon.")
    momentum: Float = Field(0.1, ge=0, le=1, description="BatchNorm running-stats momentum.")
    act: ActivationName = Field(  # type: ignore[valid-type]
        "relu", description="Activation after the norm ('none' for no activation)."
    )
    keys: Literal["named", "indexed"] = Field(
        "named",
        description=(
            "Child names, so state_dict keys: named: conv/bn/act (torchvision's BasicConv2d); "
            "indexed: 0/1/2 (torchvision's Conv2dNormActivation: MobileNet, EfficientNet, RegNet)."
        ),
    )


_CONV_BN_ACT_NAMES = {"named": ("conv", "bn", "act"), "indexed": ("0", "1", "2")}


def _padding(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    if padding == "same":
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))  # type: ignore[return-value]
    return pair(padding)


def conv_plan(
    in_shape: Shape,
    ctx: PlanContext,
    path: SpecPath,
    *,
    out: int,
    kernel: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int | Literal["depthwise"] = 1,
    bias: bool = True,
) -> LayerPlan:
    """A Conv2d for ``in_shape``: output shape, weights and multiply-adds."""
    c, h, w = spatial(in_shape, ctx, path, "conv")
    if groups == "depthwise":
        groups = c
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
    pad = _padding(padding, k, d)
    if padding == "same":
        out_shape: Shape = (out, h, w)
    else:
        out_shape = (
            out,
            conv_out(h, k[0], st[0], pad[0], d[0]),
            conv_out(w, k[1], st[1], pad[1], d[1]),
        )
    check_positive(out_shape, in_shape, ctx, path, window("conv", k, st, pad, d))
    weights = out * (c // groups) * k[0] * k[1]
    padding_arg = padding if padding == "same" else pad
    return leaf(
        "conv",
        out_shape,
        lambda: torch_nn().Conv2d(c, out, k, st, padding_arg, d, groups, bias),
        params=weights + (out if bias else 0),
        macs=math.prod(out_shape[1:]) * weights,
    )


@registry.planner(
    ConvSpec,
    takes_stride=True,
    stride_by_default=True,
    channel_fields=("out",),
    example={
        "type": "conv",
        "out": 8,
        "kernel": 3,
        "stride": 2,
        "padding": 1,
        "groups": "depthwise",
    },
)
def plan_conv(spec: ConvSpec, shape: Shape, ctx: PlanContext, path: SpecPath) -> LayerPlan:
    return conv_plan(
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


@registry.planner(
    ConvBnActSpec,
    takes_stride=True,
    stride_by_default=True,
    is_norm=True,
    channel_fields=("out",),
    example={
        "type": "conv_bn_act",
        "out": 8,
        "kernel": [3, 1],
        "act": "hardswish",
        "keys": "indexed",
    },
)
def plan_conv_bn_act(
    spec: ConvBnActSpec, shape: Shape, ctx: PlanContext, path: SpecPath
) -> LayerPlan:
    k, d = pair(spec.kernel), pair(spec.dilation)
    padding = (
        spec.padding
        if spec.padding is not None
        else tuple((kk - 1) // 2 * dd for kk, dd in zip(k, d, strict=True))
    )
    conv = conv_plan(
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
    conv_name, bn_name, act_name = _CONV_BN_ACT_NAMES[spec.keys]
    named = [(conv_name, conv), (bn_name, batchnorm_plan(conv.out, spec.eps, spec.momentum))]
    if spec.act != "none":
        inplace = {"inplace": True} if ACTIVATIONS[spec.act].inplace else {}  # as torchvision
        named.append((act_name, activation_plan(spec.act, conv.out, **inplace)))
    return named_container("", "conv_bn_act", named, conv.out)
