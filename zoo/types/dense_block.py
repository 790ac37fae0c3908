"""Dense connectivity (Huang et al. 2017, "Densely Connected Convolutional Networks"): the generic
``densely_connected`` combinator, where every layer runs on the concatenation of the block input
and the outputs of all earlier layers and the block returns the concatenation of all of them, and
the presets of torchvision's DenseNet built from it and from ``sequential``: ``dense_block``
(``_DenseBlock`` of ``_DenseLayer``) and ``dense_transition`` (``_Transition``).

Concatenation costs no multiply-adds: a block's MACs are its layers' convs, as in torchvision's
figures and ``FlopCounterMode``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from zoo import registry
from zoo.plan import LayerPlan, PlanContext, container, plan_list, sequential, spatial, zoo_nn
from zoo.shapes import MAX_DIM, Shape, fmt
from zoo.spec.fields import NAME_PATTERN, Channels, Count, Float, NamedSpec, RepeatableSpec, Size
from zoo.spec.yaml_loader import SpecPath
from zoo.types.activation import ReLUSpec
from zoo.types.container import SequentialSpec
from zoo.types.conv import ConvSpec
from zoo.types.dense import DropoutSpec
from zoo.types.norm import BatchNormSpec
from zoo.types.pool import AvgPoolSpec

if TYPE_CHECKING:
    from zoo.spec.schema import Node


class DenselyConnectedSpec(RepeatableSpec):
    """The generic dense block: ``layers`` copies of ``body``, copy i running on the concatenation
    (along channels) of the block input and the outputs of copies 1..i-1; the block's output is the
    concatenation of its input and every copy's output. Copy i is an ``nn.Sequential`` of the body's
    layers named ``prefix`` + i (torchvision's ``denselayer1``, ``denselayer2``, ...)."""

    type: Literal["densely_connected"] = Field(
        description="Dense connectivity: each layer sees the concatenation of all before it."
    )
    layers: Count = Field(description="How many copies of the body the block chains.")
    body: tuple[Node, ...] = Field(
        min_length=1,
        description=(
            "What each copy runs, in order, on the concatenated features so far; it must keep "
            "the height and width, and its output channels are what the copy adds (the growth)."
        ),
    )
    prefix: str = Field(
        "denselayer",
        pattern=f"^({NAME_PATTERN})?$",
        description="Copy i (from 1) is the module named prefix + i: denselayer1, denselayer2, ...",
    )


class DenseBlockSpec(RepeatableSpec):
    """DenseNet-BC's dense block (torchvision ``_DenseBlock``): ``layers`` dense layers, each
    BN-ReLU-conv1x1 to ``bn_size * growth_rate`` channels, BN-ReLU-conv3x3 to ``growth_rate``
    channels (no biases), then dropout when ``drop_rate`` is set. Output channels: input +
    ``layers * growth_rate``."""

    type: Literal["dense_block"] = Field(description="DenseNet dense block (torchvision's).")
    layers: Count = Field(description="Dense layers in the block (torchvision's num_layers).")
    growth_rate: Channels = Field(
        description="Channels each dense layer adds (k in the paper: 32, or 48 for DenseNet-161)."
    )
    bn_size: Size = Field(
        4, description="The 1x1 bottleneck conv gives bn_size * growth_rate channels."
    )
    drop_rate: Float = Field(
        0.0,
        ge=0,
        lt=1,
        description=(
            "Dropout probability on each dense layer's new features in training (a Dropout "
            "module named dropout after conv2, torchvision's F.dropout); 0: no dropout."
        ),
    )

    @model_validator(mode="after")
    def _bottleneck_in_bounds(self) -> DenseBlockSpec:
        if self.bn_size * self.growth_rate > MAX_DIM:
            raise ValueError(
                f"bn_size * growth_rate ({self.bn_size} * {self.growth_rate}) is over the limit "
                f"of {MAX_DIM:,} channels for the bottleneck conv; lower one of them"
            )
        return self

    def expand(self) -> DenselyConnectedSpec:
        """The generic dense block this preset stands for."""
        body = [
            BatchNormSpec(type="batchnorm", name="norm1"),
            ReLUSpec(type="relu", name="relu1", inplace=True),
            _conv("conv1", self.bn_size * self.growth_rate, 1),
            BatchNormSpec(type="batchnorm", name="norm2"),
            ReLUSpec(type="relu", name="relu2", inplace=True),
            _conv("conv2", self.growth_rate, 3),
        ]
        if self.drop_rate > 0:  # torchvision applies no dropout at all at rate 0
            body.append(DropoutSpec(type="dropout", name="dropout", p=self.drop_rate))
        return DenselyConnectedSpec(type="densely_connected", layers=self.layers, body=tuple(body))


class DenseTransitionSpec(NamedSpec):
    """DenseNet's transition between dense blocks (torchvision ``_Transition``): BN, ReLU, a 1x1
    conv (no bias) to ``out`` channels, and a 2x2 average pool of stride 2."""

    type: Literal["dense_transition"] = Field(
        description="DenseNet transition: norm, relu, 1x1 conv, 2x2 average pool."
    )
    out: Channels = Field(
        description="Output channels (DenseNet-BC halves its input: compression 0.5)."
    )

    def expand(self) -> SequentialSpec:
        """The sequential this preset stands for (children norm, relu, conv, pool)."""
        return SequentialSpec(
            type="sequential",
            layers=(
                BatchNormSpec(type="batchnorm", name="norm"),
                ReLUSpec(type="relu", name="relu", inplace=True),
                _conv("conv", self.out, 1),
                AvgPoolSpec(type="avgpool", name="pool", kernel=2, stride=2),
            ),
        )


def _conv(name: str, out: int, kernel: int) -> ConvSpec:
    """A bias-free conv that keeps the size (DenseNet's convs all precede a BatchNorm)."""
    return ConvSpec(type="conv", name=name, out=out, kernel=kernel, padding=kernel // 2, bias=False)


def plan_densely_connected(
    spec: DenselyConnectedSpec,
    shape: Shape,
    ctx: PlanContext,
    path: SpecPath,
    first: bool,
    type_: str = "densely_connected",
) -> LayerPlan:
    """Plan each copy of the body on the channels gathered so far; the block concatenates them."""
    c, h, w = spatial(shape, ctx, path, spec.type)
    body_path = (*path, "body")
    copies: list[LayerPlan] = []
    channels = c
    for i in range(1, spec.layers + 1):
        name = f"{spec.prefix}{i}"
        features = (channels, h, w)
        plans, out = plan_list(spec.body, features, ctx, body_path, str)
        if len(out) != 3 or out[1:] != (h, w):
            raise ctx.error(
                body_path,
                f"{name} turns its {fmt(features)} input into {fmt(out)}; the layers of a dense "
                "block must keep the height and width, since each output is concatenated with "
                "the block input (use stride 1 and padding kernel // 2; downsample between "
                "blocks)",
            )
        copies.append(container(name, "dense_layer", out, plans, sequential))
        channels += out[0]
    return container("", type_, (channels, h, w), copies, lambda named: zoo_nn().DenseBlock(named))


def plan_dense_block(
    spec: DenseBlockSpec, shape: Shape, ctx: PlanContext, path: SpecPath, first: bool
) -> LayerPlan:
    """Plan the preset as the generic block it expands to (shown in traces as ``dense_block``)."""
    return plan_densely_connected(ctx.expanded(spec), shape, ctx, path, first, "dense_block")


def plan_dense_transition(
    spec: DenseTransitionSpec, shape: Shape, ctx: PlanContext, path: SpecPath
) -> LayerPlan:
    """Plan the preset as the sequential it expands to (shown in traces as ``dense_transition``)."""
    spatial(shape, ctx, path, spec.type)
    plans, out = plan_list(ctx.expanded(spec).layers, shape, ctx, path, str)
    return container("", "dense_transition", out, plans, sequential)


registry.register(
    DenselyConnectedSpec,
    plan_densely_connected,
    block=True,
    combinator=True,
    example={
        "type": "densely_connected",
        "layers": 3,
        "prefix": "layer",
        "body": [
            {"type": "conv_bn_act", "out": 2, "kernel": 3},
            {"type": "conv", "out": 3, "kernel": [1, 3], "padding": [0, 1]},
        ],
    },
)
registry.register(
    DenseBlockSpec,
    plan_dense_block,
    block=True,
    combinator=True,
    channel_fields=("growth_rate",),
    example={"type": "dense_block", "layers": 2, "growth_rate": 3, "bn_size": 2, "drop_rate": 0.2},
)
registry.register(
    DenseTransitionSpec,
    plan_dense_transition,
    channel_fields=("out",),
    example={"type": "dense_transition", "out": 2},
)
