"""Output-size arithmetic of the layers zoo compiles, exactly as PyTorch computes it.

Shapes exclude the batch dimension: ``(C, H, W)`` for feature maps, ``(F,)`` for features.
"""

from __future__ import annotations

import math

Shape = tuple[int, ...]
Pair = tuple[int, int]


def pair(value: int | tuple[int, int] | list[int]) -> Pair:
    """``3`` -> ``(3, 3)``; a pair stays a pair."""
    if isinstance(value, int):
        return value, value
    first, second = value
    return first, second


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length of a convolution or max-pool along one axis (``floor`` rounding)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_out(
    size: int, kernel: int, stride: int, padding: int, dilation: int = 1, ceil_mode: bool = False
) -> int:
    """Output length of ``MaxPool2d``/``AvgPool2d`` along one axis, ``ceil_mode`` included.

    With ``ceil_mode`` PyTorch drops a last window that would start inside the right padding.
    """
    if not ceil_mode:
        return conv_out(size, kernel, stride, padding, dilation)
    out = math.ceil((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def fmt(shape: Shape, batch: int | None = None) -> str:
    """``(64, 56, 56)`` -> ``64x56x56`` (``1x64x56x56`` with a batch)."""
    dims = shape if batch is None else (batch, *shape)
    return "x".join(str(d) for d in dims)
