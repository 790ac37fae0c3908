"""RegNet (Radosavovic et al., 2020, "Designing Network Design Spaces"): ``regnet_stages``, the
trunk that the design-space parameters generate, in torchvision's layout (``RegNet.trunk_output``).

A RegNet is a stem, a trunk and a head; the trunk is fixed by seven numbers: the depth ``d``, the
initial width ``w0``, the slope ``wa``, the log-space step ``wm``, the group width, the bottleneck
ratio and the SE ratio. Block ``j`` would have width ``w0 + wa * j``; that width is quantized in
log space (to ``w0 * wm^k``) and to a multiple of 8, and consecutive blocks of one width form a
stage. :func:`block_params` repeats torchvision's ``BlockParams.from_init_params`` step by step,
in the float32 arithmetic it does those steps in (torch tensors of the default dtype), so a width
on the edge of a rounding lands where torchvision's lands, and without importing torch.

The node expands, in the spec layer, into the ``sequential`` of stages it stands for (``block1``
... ``blockN``), each a ``sequential`` of ``residual`` blocks ``blockI-J`` with torchvision's keys:
body ``f`` (``a``, ``b``, ``se``, ``c``: 1x1, grouped 3x3 taking the stride, squeeze-excitation,
1x1), projection ``proj`` (conv + BN), ReLU ``activation`` after the sum.
"""

from __future__ import annotations

import itertools
import math
import struct
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from zoo import registry
from zoo.plan import LayerPlan, PlanContext, spatial
from zoo.shapes import MAX_DIM, Shape, make_divisible
from zoo.spec.fields import Channels, Count, Float, NamedSpec
from zoo.spec.yaml_loader import SpecPath
from zoo.types.activation import ReLUSpec
from zoo.types.attention import SqueezeExciteSpec
from zoo.types.container import SequentialSpec, plan_sequential
from zoo.types.conv import ConvBnActSpec
from zoo.types.residual import ResidualSpec, ShortcutSpec

QUANTUM = 8  # block widths are multiples of this (torchvision's QUANT)
STRIDE = 2  # every stage halves the size in its first block


class RegNetStagesSpec(NamedSpec):
    """The stages of a RegNet, generated from its design-space parameters as torchvision's
    ``BlockParams.from_init_params`` does (``regnet_x_400mf``: depth 22, w0 24, wa 24.48, wm 2.54,
    group_width 16; RegNetY adds ``se_ratio: 0.25``). Name it ``trunk_output`` for torchvision's
    keys. ``scale.width`` multiplies ``w0`` and ``stem_width``; ``scale.depth`` the depth."""

    type: Literal["regnet_stages"] = Field(
        description="RegNet stages generated from the design-space parameters (d, w0, wa, wm, ...)."
    )
    depth: Count = Field(description="Blocks in all stages together (d).")
    w0: Channels = Field(
        multiple_of=QUANTUM, description="Initial width w_0: the first block's, a multiple of 8."
    )
    wa: Float = Field(
        ge=0,
        le=MAX_DIM,
        description="Slope w_a: block j would be w0 + wa * j channels wide before quantization.",
    )
    wm: Float = Field(
        gt=1,
        le=MAX_DIM,
        description=(
            "Width multiplier w_m: widths are quantized to w0 * wm^k (then to multiples of 8), "
            "so each stage is about wm times as wide as the one before."
        ),
    )
    group_width: Channels = Field(
        description=(
            "Channels per group of the 3x3 convs (g); lowered to the bottleneck width where that "
            "is smaller, and each stage's width adjusted to a multiple of it."
        )
    )
    bottleneck_ratio: Float = Field(
        1.0,
        gt=0,
        le=MAX_DIM,
        description="Width inside a block / the block's width (b; torchvision's bottleneck_multiplier).",
    )
    se_ratio: Float | None = Field(
        None,
        gt=0,
        le=1,
        description=(
            "Squeeze-excitation after the 3x3 conv, squeezing to round(se_ratio x the block's input "
            "width) channels (RegNetY: 0.25); null: none (RegNetX)."
        ),
    )
    stem_width: Channels = Field(
        32,
        description=(
            "Channels the trunk takes in: the stem's output (torchvision's stem_width). The first "
            "block's squeeze-excitation is sized from it; planning checks it against the input."
        ),
    )

    @model_validator(mode="after")
    def _generates_a_network(self) -> RegNetStagesSpec:
        block_params(self)  # every impossible setting is a ValueError, so a validation error
        return self

    def expand(self) -> SequentialSpec:
        """The ``sequential`` of stages (``block1`` ...) these parameters generate."""
        stages = []
        width_in = self.stem_width
        for i, stage in enumerate(block_params(self), 1):
            blocks = []
            for j in range(stage.depth):
                stride = STRIDE if j == 0 else 1
                blocks.append(_block(f"block{i}-{j}", stage, width_in, stride, self.se_ratio))
                width_in = stage.width
            stages.append(SequentialSpec(type="sequential", name=f"block{i}", layers=tuple(blocks)))
        return SequentialSpec(type="sequential", name=self.name, layers=tuple(stages))


@dataclass(frozen=True)
class Stage:
    """One generated stage: its blocks' output width, their number, and their inner convs."""

    width: int
    depth: int
    inner: int  # channels of the 1x1 and 3x3 convs inside a block (w_b)
    groups: int  # groups of the 3x3 conv


def _f32(value: float) -> float:
    """``value`` rounded to float32, as a torch float32 tensor holds it."""
    return struct.unpack("f", struct.pack("f", value))[0]


def block_widths(depth: int, w0: int, wa: float, wm: float) -> list[int]:
    """The width of every block: torchvision's float32 tensor arithmetic, one rounding per op.

    ``torch.arange(d) * wa + w0``, ``round(log(widths / w0) / log(wm))`` and
    ``round(w0 * wm^k / 8) * 8``, each operation rounded to float32 and each scalar operand
    converted to float32 first, as torch does for a float32 tensor and a Python number; Python's
    ``round`` rounds half to even, as ``torch.round`` does.
    """
    wa32, w032, wm32 = _f32(wa), _f32(w0), _f32(wm)
    log_wm = _f32(math.log(wm))  # math.log(w_m) in torchvision: a double, then a float32 operand
    widths = []
    for j in range(depth):
        continuous = _f32(_f32(j * wa32) + w032)
        capacity = round(_f32(_f32(math.log(_f32(continuous / w032))) / log_wm))
        quantized = _f32(_f32(w032 * _f32(wm32**capacity)) / QUANTUM)
        widths.append(round(quantized) * QUANTUM)
    return widths


def block_params(spec: RegNetStagesSpec) -> list[Stage]:
    """The stages ``spec`` generates (torchvision's ``BlockParams.from_init_params`` and
    ``_adjust_widths_groups_compatibilty``); a ``ValueError`` for settings that cannot be built."""
    if spec.w0 % QUANTUM:  # validation refuses it; a width scaling with another divisor may not
        raise ValueError(f"w0 ({spec.w0}) must be a multiple of {QUANTUM}")
    runs = itertools.groupby(block_widths(spec.depth, spec.w0, spec.wa, spec.wm))
    stages = []
    b = spec.bottleneck_ratio
    for i, (width, run) in enumerate(runs, 1):
        # torchvision: the bottleneck width rounded to a multiple of the group width (itself at
        # most the bottleneck width), and the stage width made to fit it
        bottleneck = int(width * b)
        if bottleneck < 1:
            raise ValueError(
                f"stage {i}: bottleneck_ratio {b} leaves no channels inside its blocks of width "
                f"{width}; use a larger bottleneck_ratio"
            )
        group_width = min(spec.group_width, bottleneck)
        width = int(make_divisible(bottleneck, group_width) / b)
        inner = round(width * b)  # the block's own rounding (BottleneckTransform.w_b)
        groups = inner // group_width
        if not 1 <= inner <= MAX_DIM or not 1 <= width <= MAX_DIM:
            raise ValueError(
                f"stage {i} would be {width} channels wide with {inner} inside its blocks, beyond "
                f"1..{MAX_DIM:,}; use a smaller wa, w0 or bottleneck_ratio"
            )
        if groups < 1 or inner % groups:
            raise ValueError(
                f"stage {i}: {groups} groups do not divide its {inner} inner channels "
                f"(group_width {group_width}); choose a group_width or bottleneck_ratio that fit"
            )
        stages.append(Stage(width, sum(1 for _ in run), inner, groups))
    if spec.se_ratio is not None:
        widths_in = [spec.stem_width] + [stage.width for stage in stages]
        if round(spec.se_ratio * min(widths_in)) < 1:
            raise ValueError(
                f"se_ratio {spec.se_ratio} squeezes a block of {min(widths_in)} input channels to "
                "none; use a larger se_ratio"
            )
    return stages


def _conv_bn_act(
    name: str, out: int, kernel: int, groups: int = 1, act: str = "relu"
) -> ConvBnActSpec:
    return ConvBnActSpec(
        type="conv_bn_act",
        name=name,
        out=out,
        kernel=kernel,
        groups=groups,
        act=act,
        keys="indexed",  # torchvision's Conv2dNormActivation: a.0, a.1, a.2
    )


def _block(
    name: str, stage: Stage, width_in: int, stride: int, se_ratio: float | None
) -> ResidualSpec:
    """torchvision's ``ResBottleneckBlock``: ``activation(proj(x) + f(x))``."""
    layers = [
        _conv_bn_act("a", stage.inner, 1),
        _conv_bn_act("b", stage.inner, 3, stage.groups),
    ]
    if se_ratio is not None:  # a ratio of the block's input width, not of f's
        squeeze = round(se_ratio * width_in)
        layers.append(SqueezeExciteSpec(type="squeeze_excite", name="se", squeeze=squeeze))
    layers.append(_conv_bn_act("c", stage.width, 1, act="none"))
    return ResidualSpec(
        type="residual",
        name=name,
        stride=stride,
        shortcut=ShortcutSpec(kind="conv_bn", name="proj"),
        body=(SequentialSpec(type="sequential", name="f", layers=tuple(layers)),),
        post=(ReLUSpec(type="relu", name="activation", inplace=True),),
        stride_at="f.b",
    )


@registry.planner(
    RegNetStagesSpec,
    channel_fields=("w0", "stem_width"),
    example={
        # widths 8, 16, 32, 32: three stages, the last of two blocks (an identity shortcut)
        "type": "regnet_stages",
        "depth": 4,
        "w0": 8,
        "wa": 8.0,
        "wm": 2.0,
        "group_width": 4,
        "se_ratio": 0.25,
        "stem_width": 4,
    },
)
def plan_regnet_stages(
    spec: RegNetStagesSpec, shape: Shape, ctx: PlanContext, path: SpecPath
) -> LayerPlan:
    """Plan the stages the parameters generate (shown in traces as ``regnet_stages``)."""
    c, _, _ = spatial(shape, ctx, path, "regnet_stages")
    if c != spec.stem_width:
        raise ctx.error(
            (*path, "stem_width"),
            f"stem_width is {spec.stem_width} but the trunk's input has {c} channels; set "
            f"stem_width: {c}, the stem's output",
            "channels",
        )
    try:
        trunk = ctx.expanded(spec)
    except ValueError as exc:  # a scaled spec (scale.width) is not validated again
        raise ctx.error(path, str(exc), "value") from None
    plan = plan_sequential(trunk, shape, ctx, path, True)
    plan.type = "regnet_stages"
    return plan
