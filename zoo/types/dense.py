"""Layers on features and pass-throughs: ``flatten``, ``linear``, ``channel_linear`` (``nn.Linear``
on the channels at every position of a feature map), ``dropout``, ``identity``."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from zoo import registry
from zoo.plan import LayerPlan, PlanContext, leaf, torch_nn, zoo_nn
from zoo.shapes import MAX_DIM, Shape, fmt
from zoo.spec.fields import Bool, Channels, Float, NamedSpec
from zoo.spec.yaml_loader import SpecPath


class FlattenSpec(NamedSpec):
    type: Literal["flatten"] = Field(description="nn.Flatten: (C, H, W) -> C*H*W features.")


class LinearSpec(NamedSpec):
    """``nn.Linear``; ``in_features`` is inferred from the flattened input."""

    type: Literal["linear"] = Field(description="A fully connected layer (nn.Linear).")
    out: Channels = Field(description="Output features.")
    bias: Bool = Field(True, description="Learn an additive bias.")


class ChannelLinearSpec(NamedSpec):
    """``nn.Linear`` on the channel vector at every position of a CxHxW map: a 1x1 convolution
    with ``nn.Linear``'s parameters (weight (out, in), bias (out,)). ConvNeXt's pointwise layers,
    which torchvision writes as ``nn.Linear`` between two Permutes; ``in_features`` is inferred.
    Multiply-adds: H x W x in x out, one matrix product over all positions (``FlopCounterMode``'s
    ``aten.mm`` for a Linear on a 4-d input; the bias is not counted)."""

    type: Literal["channel_linear"] = Field(
        description="nn.Linear over the channels at every position of a feature map (ConvNeXt)."
    )
    out: Channels = Field(description="Output channels.")
    bias: Bool = Field(True, description="Learn an additive bias.")


class DropoutSpec(NamedSpec):
    type: Literal["dropout"] = Field(
        description="nn.Dropout (nn.Dropout2d is not used: torchvision does not)."
    )
    p: Float = Field(
        0.5, ge=0, le=1, description="Probability of zeroing an element during training."
    )
    inplace: Bool = Field(False, description="Compute in place.")


class IdentitySpec(NamedSpec):
    type: Literal["identity"] = Field(description="nn.Identity: passes its input through.")


@registry.planner(FlattenSpec, example={"type": "flatten"})
def plan_flatten(spec: FlattenSpec, shape: Shape, ctx: PlanContext, path: SpecPath) -> LayerPlan:
    features = math.prod(shape)
    if features > MAX_DIM:  # what to do differs from the planner's general bound on sizes
        raise ctx.error(
            path,
            f"flatten gives a {fmt((features,))} output: its features ({features:,}) are over "
            f"the limit of {MAX_DIM:,} for any one size; pool before the flatten "
            "(e.g. {type: adaptive_avgpool})",
            "too_large",
        )
    return leaf("flatten", (features,), lambda: torch_nn().Flatten())


@registry.planner(LinearSpec, example={"type": "linear", "out": 5}, example_input=(12,))
def plan_linear(spec: LinearSpec, shape: Shape, ctx: PlanContext, path: SpecPath) -> LayerPlan:
    if len(shape) != 1:
        raise ctx.error(
            path,
            f"linear needs flat features but gets a {fmt(shape)} feature map; "
            "add {type: flatten} (after a pooling layer) before it",
        )
    features, out, bias = shape[0], spec.out, spec.bias
    return leaf(
        "linear",
        (out,),
        lambda: torch_nn().Linear(features, out, bias=bias),
        params=features * out + (out if bias else 0),
        macs=features * out,
    )


@registry.planner(
    ChannelLinearSpec, channel_fields=("out",), example={"type": "channel_linear", "out": 6}
)
def plan_channel_linear(
    spec: ChannelLinearSpec, shape: Shape, ctx: PlanContext, path: SpecPath
) -> LayerPlan:
    if len(shape) != 3:
        raise ctx.error(
            path,
            f"channel_linear works on the channels of a CxHxW feature map but gets flat "
            f"features ({fmt(shape)}); use {{type: linear}} on features",
        )
    channels, height, width = shape
    out, bias = spec.out, spec.bias
    return leaf(
        "channel_linear",
        (out, height, width),
        lambda: zoo_nn().ChannelLinear(channels, out, bias=bias),
        params=channels * out + (out if bias else 0),
        # one matrix product of all positions (FlopCounterMode's aten.mm), the bias not counted
        macs=height * width * channels * out,
    )


@registry.planner(DropoutSpec, example={"type": "dropout", "p": 0.2})
def plan_dropout(spec: DropoutSpec, shape: Shape, ctx: PlanContext, path: SpecPath) -> LayerPlan:
    p, inplace = spec.p, spec.inplace
    return leaf("dropout", shape, lambda: torch_nn().Dropout(p, inplace=inplace))


@registry.planner(IdentitySpec, example={"type": "identity"})
def plan_identity(spec: IdentitySpec, shape: Shape, ctx: PlanContext, path: SpecPath) -> LayerPlan:
    return leaf("identity", shape, lambda: torch_nn().Identity())
