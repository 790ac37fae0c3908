"""The spec format: a network's ``input``, ``stem``, ``stages`` and ``head``, and the ``type``
union that every layer and block is validated through.

Every layer and block is a mapping with a ``type`` tag; the tag selects its spec model (registered
in :mod:`zoo.registry` by its module in :mod:`zoo.types`) through a discriminated union, so a typo
in a field name or a wrong value is reported against the right model. No field ever holds an input
size: ``in_channels`` and ``in_features`` are inferred by the planner from the running shape.
Defaults follow the PyTorch (``torch.nn``) or torchvision class each type mirrors, so a layer
ported from tutorial code keeps its meaning.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    PlainValidator,
    PrivateAttr,
    Tag,
    model_validator,
)

import zoo.types  # noqa: F401 (registers the built-in types)
from zoo import registry
from zoo.spec.fields import Bool, Channels, Float, IntPair, SpecModel
from zoo.spec.scaling import ScaleSpec

_BUILTIN_TAGS = frozenset(info.tag for info in registry.builtin())


def _node_tag(value: Any) -> str | None:
    """Which union member validates ``value``: its own type tag, 'plugin', or None (unknown type)."""
    tag = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(tag, str):
        return None
    if tag in _BUILTIN_TAGS:
        return tag
    if registry.get(tag) is not None:
        return "plugin"
    return None


def _validate_plugin(value: Any) -> BaseModel:
    if isinstance(value, BaseModel):
        return value
    return registry.get(value["type"]).model.model_validate(value)  # type: ignore[union-attr]


# A discriminated union on `type`: built-in types validate as themselves, plugin types through
# the registry, so registering a type needs no change to the models that contain nodes.
Node = Annotated[
    Union[
        (
            *(Annotated[info.model, Tag(info.tag)] for info in registry.builtin()),
            Annotated[Any, PlainValidator(_validate_plugin), Tag("plugin")],
        )
    ],
    Discriminator(_node_tag),
]


# --------------------------------------------------------------------------- the whole model
class InputSpec(SpecModel):
    """Default input of the network (without the batch dimension)."""

    channels: Channels = Field(description="Input channels (3 for RGB, 1 for grayscale).")
    size: IntPair = Field(description="Input height and width: an int or [height, width].")


class StochasticDepthSpec(SpecModel):
    """Stochastic depth over the whole network (Huang et al. 2016): block i of the n marked blocks
    drops its residual branch with a probability linear in i."""

    rate: Float = Field(
        ge=0, lt=1, description="The drop probability the schedule rises to (0.2: EfficientNet)."
    )
    schedule: Literal["linear", "linear_to_rate"] = Field(
        "linear",
        description=(
            "linear: rate * i / n, torchvision's EfficientNet; linear_to_rate: rate * i / (n - 1), "
            "the last block at the rate itself, torchvision's ConvNeXt."
        ),
    )


class ModelSpec(SpecModel):
    """A whole network: ``stem``, ``stages`` and ``head`` run in order on ``input``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Short identifier, e.g. resnet34.")
    description: str = Field("", description="What the network is and where it comes from.")
    input: InputSpec = Field(description="Default input shape (channels and size).")
    stem: tuple[Node, ...] = Field(default=(), description="Layers before the stages.")
    stages: tuple[Node, ...] = Field(
        default=(), description="The body of the network: blocks and layers."
    )
    head: tuple[Node, ...] = Field(
        default=(), description="Layers after the stages (pooling, classifier)."
    )
    init: Literal["kaiming", "trunc_normal", "torch"] = Field(
        "kaiming",
        description=(
            "Weight init: 'kaiming' is torchvision's ResNet scheme (convs kaiming-normal fan_out, "
            "BatchNorm 1/0); 'trunc_normal' is torchvision's ConvNeXt one (convs and linears "
            "truncated normal, std 0.02, biases 0); 'torch' keeps PyTorch's per-layer defaults."
        ),
    )
    scale: ScaleSpec | None = Field(
        None,
        description=(
            "Width and depth multipliers applied to every channel count and block depth "
            "(compound scaling): a family member is its base spec plus these."
        ),
    )
    stochastic_depth: StochasticDepthSpec | None = Field(
        None,
        description=(
            "The drop rate of the blocks marked `stochastic_depth: true`, spread over them by a "
            "schedule. Left out: their StochasticDepth modules drop nothing."
        ),
    )
    zero_init_residual: Bool = Field(
        False,
        description=(
            "Zero the last BatchNorm of each residual body, a conv_bn_act's included, so every "
            "block starts as the identity (Goyal et al. 2017; torchvision's bn2/bn3)."
        ),
    )
    # Where the spec was read from (a zoo.spec.yaml_loader.Located), so that errors found while
    # compiling can point at a YAML line too. Not part of the spec's data.
    _located: Any = PrivateAttr(None)

    @model_validator(mode="after")
    def _not_empty(self) -> ModelSpec:
        if not (self.stem or self.stages or self.head):
            raise ValueError("a spec needs at least one layer in stem, stages or head")
        return self


# The container types hold nodes: now that the union exists, finish their models.
for _info in registry.builtin():
    if not _info.model.__pydantic_complete__:
        _info.model.model_rebuild(_types_namespace={"Node": Node})
