"""Normalization: ``batchnorm`` (``nn.BatchNorm2d`` on feature maps, ``BatchNorm1d`` after a
flatten) and ``layernorm`` (over the channels at each position of a feature map, as ConvNeXt's
``LayerNorm2d``, or ``nn.LayerNorm`` over flat features). The norm inside ``conv_bn_act`` and a
projection shortcut is planned here too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from zoo import registry
from zoo.plan import LayerPlan, PlanContext, leaf, torch_nn, zoo_nn
from zoo.shapes import Shape
from zoo.spec.fields import Bool, Float, NamedSpec
from zoo.spec.yaml_loader import SpecPath

if TYPE_CHECKING:
    from torch import nn


class BatchNormSpec(NamedSpec):
    """``nn.BatchNorm2d`` (or ``BatchNorm1d`` after a flatten); ``num_features`` is inferred."""

    type: Literal["batchnorm"] = Field(description="Batch normalization (nn.BatchNorm2d / 1d).")
    eps: Float = Field(1e-5, gt=0, description="Added to the variance for numerical stability.")
    momentum: Float = Field(0.1, ge=0, le=1, description="Running-stats momentum.")
    affine: Bool = Field(True, description="Learn a scale and shift.")


def batchnorm_plan(
    shape: Shape, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True
) -> LayerPlan:
    """A BatchNorm over the channels (or features) of ``shape``."""
    torch_class = "BatchNorm2d" if len(shape) == 3 else "BatchNorm1d"
    channels = shape[0]
    return leaf(
        "batchnorm",
        shape,
        lambda: getattr(torch_nn(), torch_class)(
            channels, eps=eps, momentum=momentum, affine=affine
        ),
        params=2 * channels if affine else 0,
        buffers=2 * channels,  # running mean and variance (num_batches_tracked is an integer)
    )


@registry.planner(BatchNormSpec, is_norm=True, example={"type": "batchnorm", "eps": 1e-3})
def plan_batchnorm(
    spec: BatchNormSpec, shape: Shape, ctx: PlanContext, path: SpecPath
) -> LayerPlan:
    return batchnorm_plan(shape, spec.eps, spec.momentum, spec.affine)


class LayerNormSpec(NamedSpec):
    """Layer normalization over the channels: at every position of a CxHxW map (torchvision's
    ConvNeXt ``LayerNorm2d``), or over flat features (``nn.LayerNorm``); the size is inferred.
    Like a BatchNorm it counts no multiply-adds: ``FlopCounterMode`` counts only convolutions and
    matrix products."""

    type: Literal["layernorm"] = Field(
        description=(
            "Layer normalization over the channels of each position of a feature map "
            "(torchvision's LayerNorm2d), or over flat features (nn.LayerNorm)."
        )
    )
    eps: Float = Field(
        1e-5, gt=0, description="Added to the variance for numerical stability (ConvNeXt: 1e-6)."
    )
    affine: Bool = Field(
        True, description="Learn a scale and shift per channel (nn.LayerNorm's elementwise_affine)."
    )


@registry.planner(LayerNormSpec, is_norm=True, example={"type": "layernorm", "eps": 1e-6})
def plan_layernorm(
    spec: LayerNormSpec, shape: Shape, ctx: PlanContext, path: SpecPath
) -> LayerPlan:
    channels, eps, affine, on_map = shape[0], spec.eps, spec.affine, len(shape) == 3

    def make() -> nn.Module:
        # weight and bias of shape (C,) either way: nn.LayerNorm's keys, and LayerNorm2d's
        module = zoo_nn().LayerNorm2d if on_map else torch_nn().LayerNorm
        return module(channels, eps=eps, elementwise_affine=affine)

    return leaf("layernorm", shape, make, params=2 * channels if affine else 0)
