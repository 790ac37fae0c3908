"""What tracing returns: one :class:`Row` per module and a :class:`Trace` with the totals, and the
input shapes tracing takes. Plain records: no torch, no spec."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from zoo.errors import usage_error
from zoo.shapes import MAX_DIM, positive_ints


@dataclass(frozen=True)
class Row:
    """One module of a trace: dotted path (a ``state_dict`` prefix), type, output shape, costs."""

    path: str
    type: str
    output: tuple[int, ...]  # with the batch dimension
    params: int
    macs: int

    @property
    def depth(self) -> int:
        """Nesting level: 1 for the network's direct children."""
        return self.path.count(".") + 1


@dataclass(frozen=True)
class Trace:
    """A traced network: its rows and totals. ``macs`` are for the whole input batch."""

    name: str
    input: tuple[int, ...]
    output: tuple[int, ...]
    rows: list[Row]
    params: int
    trainable_params: int
    macs: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (shapes as lists)."""
        data = asdict(self)
        data["rows"] = [{**asdict(r), "depth": r.depth} for r in self.rows]
        return data


def parse_input_shape(shape: Any) -> tuple[int, ...]:
    """Normalize ``(C, H, W)`` or ``(N, C, H, W)`` to ``(N, C, H, W)`` (batch 1 by default)."""
    dims = positive_ints(shape, (3, 4))
    if dims is None:
        message = f"input shape must be [N]xCxHxW, a tuple of positive ints, got {shape!r}"
        raise usage_error(message, "input")
    if len(dims) == 3:
        dims = (1, *dims)
    if dims[0] > MAX_DIM:  # channels, height and width are checked by plan_spec
        raise usage_error(f"batch {dims[0]:,} is more than {MAX_DIM:,}", "input")
    return dims
