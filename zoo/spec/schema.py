"""The spec format: pydantic v2 models for a network's stem, stages and head.

Every layer and block is a mapping with a ``type`` tag; the tag selects the model below through a
discriminated union, so a typo in a field name or a wrong value is reported against the right
model. No field ever holds an input size: ``in_channels`` and ``in_features`` are inferred by the
compiler from the running shape. Defaults follow the PyTorch (``torch.nn``) or torchvision class
each type mirrors, so a layer ported from tutorial code keeps its meaning.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    PrivateAttr,
    Strict,
    StrictBool,
    Tag,
    model_validator,
)

from zoo.shapes import MAX_DIM

# YAML gives real booleans for true/false; strict, so a stray string ("on", "yes") is an error.
Bool = StrictBool
# Numbers are strict too: in lax mode pydantic reads true as 1 (`out: true` would be one channel)
# and "3" as 3. YAML gives real ints and floats; a float field still takes an int (`eps: 1`), and
# is finite (an infinite eps or slope only shows up as NaNs in training).
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), Field(allow_inf_nan=False)]

# Upper bounds refuse absurd specs at validation, before anything is built.
MAX_REPEAT = 1000
Size = Annotated[Int, Field(gt=0, le=MAX_DIM)]
Channels = Size  # the same bound, named for what the field counts
Count = Annotated[Int, Field(gt=0, le=MAX_REPEAT)]
IntPair = Size | tuple[Size, Size]
Padding = Annotated[Int, Field(ge=0, le=MAX_DIM)]
NonNegPair = Padding | tuple[Padding, Padding]
ModuleName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Module name; becomes the attribute name and the state_dict key prefix.",
    ),
]


class _Spec(BaseModel):
    # Frozen, with tuples for every list: a validated spec cannot be changed afterwards (say
    # `out = 2**40`) and so slip past the bounds checked at validation.
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Named(_Spec):
    name: ModuleName | None = Field(
        None,
        description="Module name (state_dict key). Unnamed items are named after their position.",
    )


# --------------------------------------------------------------------------- plain layers
class Conv(_Named):
    """``nn.Conv2d``; ``in_channels`` is inferred. Defaults are PyTorch's (no padding, with bias)."""

    type: Literal["conv"] = Field(description="A 2-D convolution (nn.Conv2d).")
    out: Channels = Field(description="Output channels.")
    kernel: IntPair = Field(description="Kernel size: an int or [height, width].")
    stride: IntPair = Field(1, description="Stride: an int or [height, width].")
    padding: NonNegPair | Literal["same"] = Field(
        0, description="Zero padding: an int, [height, width], or 'same' (stride 1 only)."
    )
    dilation: IntPair = Field(1, description="Dilation of the kernel.")
    groups: Size = Field(1, description="Groups; input and output channels must divide by it.")
    bias: Bool = Field(True, description="Learn an additive bias (PyTorch's default).")


class ConvBnAct(_Named):
    """Conv (no bias) + BatchNorm + activation, as torchvision's ``Conv2dNormActivation``.

    Submodules are named ``conv``, ``bn`` and ``act``; padding defaults to ``(kernel-1)//2*dilation``.
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
    groups: Size = Field(1, description="Groups of the convolution.")
    bias: Bool = Field(False, description="Conv bias; useless before BatchNorm, so off by default.")
    eps: Float = Field(1e-5, gt=0, description="BatchNorm epsilon.")
    momentum: Float = Field(0.1, ge=0, le=1, description="BatchNorm running-stats momentum.")
    act: Literal[
        "relu", "relu6", "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "hardswish", "none"
    ] = Field("relu", description="Activation after the norm ('none' for no activation).")


class BatchNorm(_Named):
    """``nn.BatchNorm2d`` (or ``BatchNorm1d`` after a flatten); ``num_features`` is inferred."""

    type: Literal["batchnorm"] = Field(description="Batch normalization (nn.BatchNorm2d / 1d).")
    eps: Float = Field(1e-5, gt=0, description="Added to the variance for numerical stability.")
    momentum: Float = Field(0.1, ge=0, le=1, description="Running-stats momentum.")
    affine: Bool = Field(True, description="Learn a scale and shift.")


class _Activation(_Named):
    inplace: Bool = Field(
        False, description="Compute in place (saves memory; PyTorch's default is False)."
    )


class ReLU(_Activation):
    type: Literal["relu"] = Field(description="nn.ReLU.")


class ReLU6(_Activation):
    type: Literal["relu6"] = Field(description="nn.ReLU6.")


class LeakyReLU(_Activation):
    type: Literal["leaky_relu"] = Field(description="nn.LeakyReLU.")
    negative_slope: Float = Field(0.01, description="Slope for negative inputs.")


class SiLU(_Activation):
    type: Literal["silu"] = Field(description="nn.SiLU (swish).")


class Hardswish(_Activation):
    type: Literal["hardswish"] = Field(description="nn.Hardswish.")


class GELU(_Named):
    type: Literal["gelu"] = Field(description="nn.GELU.")
    approximate: Literal["none", "tanh"] = Field(
        "none", description="Exact erf or the tanh approximation."
    )


class Sigmoid(_Named):
    type: Literal["sigmoid"] = Field(description="nn.Sigmoid.")


class Tanh(_Named):
    type: Literal["tanh"] = Field(description="nn.Tanh.")


class MaxPool(_Named):
    type: Literal["maxpool"] = Field(description="nn.MaxPool2d.")
    kernel: IntPair = Field(description="Window size.")
    stride: IntPair | None = Field(
        None, description="Stride; defaults to the kernel size (PyTorch's default)."
    )
    padding: NonNegPair = Field(0, description="Implicit -inf padding on both sides.")
    dilation: IntPair = Field(1, description="Spacing between window elements.")
    ceil_mode: Bool = Field(False, description="Round the output size up instead of down.")


class AvgPool(_Named):
    type: Literal["avgpool"] = Field(description="nn.AvgPool2d.")
    kernel: IntPair = Field(description="Window size.")
    stride: IntPair | None = Field(
        None, description="Stride; defaults to the kernel size (PyTorch's default)."
    )
    padding: NonNegPair = Field(0, description="Implicit zero padding on both sides.")
    ceil_mode: Bool = Field(False, description="Round the output size up instead of down.")
    count_include_pad: Bool = Field(True, description="Count padded zeros in the average.")


class AdaptiveAvgPool(_Named):
    type: Literal["adaptive_avgpool"] = Field(description="nn.AdaptiveAvgPool2d.")
    size: IntPair = Field(1, description="Output size: an int or [height, width].")


class AdaptiveMaxPool(_Named):
    type: Literal["adaptive_maxpool"] = Field(description="nn.AdaptiveMaxPool2d.")
    size: IntPair = Field(1, description="Output size: an int or [height, width].")


class Flatten(_Named):
    type: Literal["flatten"] = Field(description="nn.Flatten: (C, H, W) -> C*H*W features.")


class Linear(_Named):
    """``nn.Linear``; ``in_features`` is inferred from the flattened input."""

    type: Literal["linear"] = Field(description="A fully connected layer (nn.Linear).")
    out: Channels = Field(description="Output features.")
    bias: Bool = Field(True, description="Learn an additive bias.")


class Dropout(_Named):
    type: Literal["dropout"] = Field(
        description="nn.Dropout (nn.Dropout2d is not used: torchvision does not)."
    )
    p: Float = Field(
        0.5, ge=0, le=1, description="Probability of zeroing an element during training."
    )
    inplace: Bool = Field(False, description="Compute in place.")


class Identity(_Named):
    type: Literal["identity"] = Field(description="nn.Identity: passes its input through.")


# --------------------------------------------------------------------------- containers and blocks
class _Repeatable(_Named):
    depth: Count | None = Field(
        None,
        description=(
            "Repeat the block: an nn.Sequential of `depth` copies named 0..depth-1 (torchvision's "
            "layer1.0.conv1 layout). Left out: the bare block, with no Sequential around it."
        ),
    )


class Sequential(_Repeatable):
    """A named group of layers (an ``nn.Sequential``), optionally repeated ``depth`` times."""

    type: Literal["sequential"] = Field(
        description="A group of layers run in order (nn.Sequential)."
    )
    layers: tuple[Node, ...] = Field(min_length=1, description="The layers, in order.")


class Repeat(_Spec):
    """Its layers, ``times`` times over, inlined into the enclosing list (no container module).

    torchvision's VGG keeps all its convs in one flat ``features`` Sequential; ``repeat`` writes
    that compactly while keeping the flat indices (``features.0``, ``features.2``, ...).
    """

    type: Literal["repeat"] = Field(
        description="Inline its layers `times` times into the enclosing list."
    )
    times: Count = Field(description="How many times to repeat the layers.")
    layers: tuple[Node, ...] = Field(
        min_length=1, description="The layers to repeat (unnamed, or names clash)."
    )


class Shortcut(_Spec):
    """The projection a residual block uses on its shortcut when its shape changes."""

    kind: Literal["conv_bn", "conv", "avgpool_conv_bn"] = Field(
        "conv_bn",
        description=(
            "conv_bn: 1x1 strided conv + BatchNorm (torchvision); conv: a lone 1x1 strided conv "
            "(tutorials, pre-activation nets); avgpool_conv_bn: avg-pool then 1x1 conv + BN (ResNet-D)."
        ),
    )
    bias: Bool | None = Field(
        None, description="Conv bias; default True for 'conv', False otherwise."
    )
    name: str = Field(
        "downsample",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
        description=(
            "Module name of the projection; a dotted name nests it (timm's 'downsample.conv')."
        ),
    )
    eps: Float = Field(1e-5, gt=0, description="BatchNorm epsilon of the projection.")


class _Residual(_Repeatable):
    stride: IntPair = Field(
        1,
        description="Stride of the first block (later blocks use 1); the shortcut is projected when it is not 1.",
    )
    shortcut: Shortcut = Field(
        default_factory=Shortcut,
        description="Projection used when the block changes the shape (channels or stride); identity otherwise.",
    )


class Residual(_Residual):
    """The generic residual block: ``post(body(pre(x)) + shortcut(x or pre(x)))``.

    The named presets (basic, bottleneck, pre-activation) are built from this, and tutorial variants
    (a ReLU before the add, a biased 1x1 shortcut) are written with it directly.
    """

    type: Literal["residual"] = Field(
        description="Generic residual block: pre, body + shortcut, post."
    )
    pre: tuple[Node, ...] = Field(
        default=(), description="Layers before the split (pre-activation)."
    )
    body: tuple[Node, ...] = Field(min_length=1, description="The residual branch.")
    post: tuple[Node, ...] = Field(default=(), description="Layers after the sum (e.g. a ReLU).")
    shortcut_from: Literal["input", "pre"] = Field(
        "input",
        description=(
            "What a projection shortcut projects: the block input, or the output of `pre` "
            "(pre-activation nets). An identity shortcut always carries the block input."
        ),
    )
    stride_at: ModuleName | Annotated[Int, Field(ge=0)] | None = Field(
        None,
        description=(
            "Body layer (name or index) that takes the block stride: a conv, conv_bn_act, maxpool "
            "or avgpool; default: the first conv."
        ),
    )


class Basic(_Residual):
    """ResNet basic block (torchvision ``BasicBlock``): conv3x3-bn-relu-conv3x3-bn, add, relu."""

    type: Literal["basic"] = Field(description="ResNet basic block (two 3x3 convs).")
    out: Channels = Field(description="Output channels of every block.")
    eps: Float = Field(1e-5, gt=0, description="BatchNorm epsilon.")
    bias: Bool = Field(
        False,
        description="Bias on the body convs: off in torchvision; d2l's tutorial nets keep PyTorch's default (on).",
    )


class Bottleneck(_Residual):
    """ResNet bottleneck (torchvision ``Bottleneck``, stride on the 3x3 conv: ResNet v1.5).

    ``width`` is the channel count inside the block; it defaults to ``out / expansion``. ResNeXt sets
    ``groups`` (and a larger width), Wide ResNet a larger width.
    """

    type: Literal["bottleneck"] = Field(description="ResNet bottleneck block (1x1, 3x3, 1x1).")
    out: Channels = Field(description="Output channels of every block.")
    width: Channels | None = Field(
        None, description="Channels of the inner 1x1/3x3 convs; default out/expansion."
    )
    expansion: Size = Field(4, description="out / width when width is not given.")
    groups: Size = Field(1, description="Groups of the 3x3 conv (ResNeXt cardinality).")
    eps: Float = Field(1e-5, gt=0, description="BatchNorm epsilon.")

    @model_validator(mode="after")
    def _width_divides(self) -> Bottleneck:
        if self.width is None and self.out % self.expansion:
            raise ValueError(
                f"out ({self.out}) must be divisible by expansion ({self.expansion}); or give width"
            )
        return self


class PreActBasic(_Residual):
    """Pre-activation basic block (He et al. 2016; timm ``PreActBasic``): bn-relu-conv, bn-relu-conv, add.

    The shortcut is taken from the pre-activated input and projected by a lone 1x1 conv.
    """

    type: Literal["preact_basic"] = Field(description="Pre-activation basic block.")
    out: Channels = Field(description="Output channels of every block.")
    eps: Float = Field(1e-5, gt=0, description="BatchNorm epsilon.")
    shortcut: Shortcut = Field(
        default_factory=lambda: Shortcut(kind="conv", bias=False, name="downsample.conv"),
        description=(
            "Projection when the shape changes: a bias-free 1x1 conv of the pre-activated input, "
            "named as timm's (downsample.conv)."
        ),
    )


class PreActBottleneck(_Residual):
    """Pre-activation bottleneck (timm ``PreActBottleneck``), stride on the 3x3 conv."""

    type: Literal["preact_bottleneck"] = Field(description="Pre-activation bottleneck block.")
    out: Channels = Field(description="Output channels of every block.")
    width: Channels | None = Field(None, description="Inner channels; default out/expansion.")
    expansion: Size = Field(4, description="out / width when width is not given.")
    groups: Size = Field(1, description="Groups of the 3x3 conv.")
    eps: Float = Field(1e-5, gt=0, description="BatchNorm epsilon.")
    shortcut: Shortcut = Field(
        default_factory=lambda: Shortcut(kind="conv", bias=False, name="downsample.conv"),
        description=(
            "Projection when the shape changes: a bias-free 1x1 conv of the pre-activated input, "
            "named as timm's (downsample.conv)."
        ),
    )

    _width_divides = Bottleneck._width_divides


class Concat(_Repeatable):
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


class Inception(_Repeatable):
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


BUILTIN_TYPES: tuple[type[BaseModel], ...] = (
    Conv,
    ConvBnAct,
    BatchNorm,
    ReLU,
    ReLU6,
    LeakyReLU,
    GELU,
    SiLU,
    Hardswish,
    Sigmoid,
    Tanh,
    MaxPool,
    AvgPool,
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    Flatten,
    Linear,
    Dropout,
    Identity,
    Sequential,
    Repeat,
    Residual,
    Basic,
    Bottleneck,
    PreActBasic,
    PreActBottleneck,
    Concat,
    Inception,
)
"""Every built-in spec model selectable by ``type``, in the order the docs list them."""

PLUGIN_TYPES: dict[str, type[BaseModel]] = {}
"""Spec models registered by plugins (``zoo.register_layer``), by their ``type`` tag."""


def _type_tag(model: type[BaseModel]) -> str:
    return get_args(model.model_fields["type"].annotation)[0]


_BUILTIN_TAGS = frozenset(_type_tag(m) for m in BUILTIN_TYPES)


def _node_tag(value: Any) -> str | None:
    """Which union member validates ``value``: its own type tag, 'plugin', or None (unknown type)."""
    tag = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(tag, str):
        return None
    if tag in _BUILTIN_TAGS:
        return tag
    if tag in PLUGIN_TYPES:
        return "plugin"
    return None


def _validate_plugin(value: Any) -> BaseModel:
    if isinstance(value, BaseModel):
        return value
    return PLUGIN_TYPES[value["type"]].model_validate(value)


# A discriminated union on `type`: built-in types validate as themselves, plugin types through
# the registry, so registering a type needs no change to the models that contain nodes.
Node = Annotated[
    Union[
        (
            *(Annotated[m, Tag(_type_tag(m))] for m in BUILTIN_TYPES),
            Annotated[Any, PlainValidator(_validate_plugin), Tag("plugin")],
        )
    ],
    Discriminator(_node_tag),
]


# --------------------------------------------------------------------------- the whole model
class InputSpec(_Spec):
    """Default input of the network (without the batch dimension)."""

    channels: Channels = Field(description="Input channels (3 for RGB, 1 for grayscale).")
    size: IntPair = Field(description="Input height and width: an int or [height, width].")


class ModelSpec(_Spec):
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
    init: Literal["kaiming", "torch"] = Field(
        "kaiming",
        description=(
            "Weight init: 'kaiming' is torchvision's ResNet scheme (convs kaiming-normal fan_out, "
            "BatchNorm 1/0); 'torch' keeps PyTorch's per-layer defaults."
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


for _model in (Sequential, Repeat, Residual, Concat, ModelSpec):
    _model.model_rebuild()
