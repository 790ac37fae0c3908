"""Pooling: ``maxpool``, ``avgpool`` (fixed windows) and their adaptive forms (fixed outputs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from zoo import registry
from zoo.plan import LayerPlan, PlanContext, check_positive, leaf, spatial, torch_nn
from zoo.shapes import Shape, pair, pool_out, window
from zoo.spec.fields import Bool, IntPair, NamedSpec, NonNegPair


class MaxPoolSpec(NamedSpec):
    type: Literal["maxpool"] = Field(description="nn.MaxPool2d.")
    kernel: IntPair = Field(description="Window size.")
    stride: IntPair | None = Field(
        None, description="Stride; defaults to the kernel size (PyTorch's default)."
    )
    padding: NonNegPair = Field(0, description="Implicit -inf padding on both sides.")
    dilation: IntPair = Field(1, description="Spacing between window elements.")
    ceil_mode: Bool = Field(False, description="Round the output size up instead of down.")


class AvgPoolSpec(NamedSpec):
    type: Literal["avgpool"] = Field(description="nn.AvgPool2d.")
    kernel: IntPair = Field(description="Window size.")
    stride: IntPair | None = Field(
        None, description="Stride; defaults to the kernel size (PyTorch's default)."
    )
    padding: NonNegPair = Field(0, description="Implicit zero padding on both sides.")
    ceil_mode: Bool = Field(False, description="Round the output size up instead of down.")
    count_include_pad: Bool = Field(True, description="Count padded zeros in the average.")


class AdaptiveAvgPoolSpec(NamedSpec):
    type: Literal["adaptive_avgpool"] = Field(description="nn.AdaptiveAvgPool2d.")
    size: IntPair = Field(1, description="Output size: an int or [height, width].")


class AdaptiveMaxPoolSpec(NamedSpec):
    type: Literal["adaptive_maxpool"] = Field(description="nn.AdaptiveMaxPool2d.")
    size: IntPair = Field(1, description="Output size: an int or [height, width].")


def plan_pool(
    spec: MaxPoolSpec | AvgPoolSpec, shape: Shape, ctx: PlanContext, path: tuple
) -> LayerPlan:
    c, h, w = spatial(shape, ctx, path, spec.type)
    k = pair(spec.kernel)
    st = pair(spec.stride) if spec.stride is not None else k
    p = pair(spec.padding)
    d = pair(spec.dilation) if isinstance(spec, MaxPoolSpec) else (1, 1)
    for pp, kk in zip(p, k, strict=True):
        if pp > kk // 2:
            raise ctx.error(
                path,
                f"padding {pp} is more than half the kernel ({kk}); PyTorch refuses this",
                "value",
            )
    out = (
        c,
        pool_out(h, k[0], st[0], p[0], d[0], spec.ceil_mode),
        pool_out(w, k[1], st[1], p[1], d[1], spec.ceil_mode),
    )
    check_positive(out, shape, ctx, path, window(spec.type, k, st, p, d))
    ceil_mode = spec.ceil_mode
    if isinstance(spec, MaxPoolSpec):
        return leaf(spec.type, out, lambda: torch_nn().MaxPool2d(k, st, p, d, ceil_mode=ceil_mode))
    include_pad = spec.count_include_pad
    return leaf(
        spec.type,
        out,
        lambda: torch_nn().AvgPool2d(k, st, p, ceil_mode=ceil_mode, count_include_pad=include_pad),
    )


def plan_adaptive_pool(
    spec: AdaptiveAvgPoolSpec | AdaptiveMaxPoolSpec, shape: Shape, ctx: PlanContext, path: tuple
) -> LayerPlan:
    c, _, _ = spatial(shape, ctx, path, spec.type)
    size = pair(spec.size)
    torch_class = (
        "AdaptiveAvgPool2d" if isinstance(spec, AdaptiveAvgPoolSpec) else "AdaptiveMaxPool2d"
    )
    return leaf(spec.type, (c, *size), lambda: getattr(torch_nn(), torch_class)(size))


registry.register(
    MaxPoolSpec,
    plan_pool,
    takes_stride=True,
    example={"type": "maxpool", "kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True},
)
registry.register(
    AvgPoolSpec,
    plan_pool,
    takes_stride=True,
    example={"type": "avgpool", "kernel": 2, "count_include_pad": False},
)
registry.register(
    AdaptiveAvgPoolSpec, plan_adaptive_pool, example={"type": "adaptive_avgpool", "size": [2, 3]}
)
registry.register(AdaptiveMaxPoolSpec, plan_adaptive_pool, example={"type": "adaptive_maxpool"})
