"""Output-size arithmetic of the layers zoo compiles, exactly as PyTorch computes it.

Shapes exclude the batch dimension: ``(C, H, W)`` for feature maps, ``(F,)`` for features.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping
from typing import Any

Shape = tuple[int, ...]

MAX_DIM = 2**20
"""The largest size of any one dimension: batch, channels, features, height, width (given in a
spec or on the command line, or planned for any layer's output)."""
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


def positive_ints(value: Any, lengths: tuple[int, ...]) -> tuple[int, ...] | None:
    """``value`` as a tuple of positive ints when it is a sequence of one of ``lengths`` of them,
    else ``None``. Floats, bools and strings are not sizes (``int("3")``, ``int(2.7)`` and
    ``int(True)`` would silently accept typos)."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        return None
    sizes = []
    for item in value:
        if isinstance(item, bool) or len(sizes) == max(lengths):  # not a size, or one too many
            return None
        try:
            sizes.append(operator.index(item))  # ints, numpy ints, integer 0-d tensors
        except TypeError:
            return None
    if len(sizes) not in lengths or min(sizes) < 1:
        return None
    return tuple(sizes)


def pair_text(value: Pair) -> str:
    """``(2, 2)`` -> ``2``; ``(2, 1)`` -> ``2x1``."""
    return str(value[0]) if value[0] == value[1] else f"{value[0]}x{value[1]}"


def window(what: str, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> str:
    """``conv (kernel 3x3, stride 2, padding 1)``, naming the dilation only when it is not 1."""
    parts = [
        f"kernel {kernel[0]}x{kernel[1]}",
        f"stride {pair_text(stride)}",
        f"padding {pair_text(padding)}",
    ]
    if dilation != (1, 1):
        parts.append(f"dilation {pair_text(dilation)}")
    return f"{what} ({', '.join(parts)})"


def make_divisible(
    value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9
) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``min_value``, default
    ``divisor``), one multiple up when rounding lost more than ``1 - round_limit`` of it: the
    TensorFlow rule torchvision (``_make_divisible``, limit 0.9) and timm (``make_divisible``) use
    for channel counts."""
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded
