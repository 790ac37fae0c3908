"""What tracing returns: one :class:`Row` per module and a :class:`Trace` with the totals, and the
input shapes tracing takes. Plain records (no torch, no spec) that show as a table: in Jupyter, in
rich, at the prompt and with ``print``, and as a pandas DataFrame (:mod:`zoo.display`)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from zoo.display import Tabular
from zoo.errors import usage_error
from zoo.shapes import MAX_DIM, positive_ints

if TYPE_CHECKING:
    from zoo.render import Listing


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


@dataclass(frozen=True, repr=False)
class Trace(Tabular):
    """A traced network: its rows and totals. ``macs`` are for the whole input batch.

    It prints as its table (``print(trace)``, or a trace left at the prompt or at the end of a
    Jupyter cell), ``rich.print(trace)`` draws the table ``zoo build --trace`` prints, and
    ``trace.to_pandas()`` is a DataFrame of the rows (with pandas installed).
    """

    name: str
    input: tuple[int, ...]
    output: tuple[int, ...]
    rows: list[Row]
    params: int
    trainable_params: int
    macs: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (shapes as lists)."""
        return {
            **{f.name: getattr(self, f.name) for f in fields(self)},
            "rows": self.rows_as_dicts(),
        }

    def rows_as_dicts(self) -> list[dict[str, Any]]:
        """One dict per row: path, type, output (a tuple, with the batch), params, macs, depth."""
        return [
            {
                "path": r.path,
                "type": r.type,
                "output": r.output,
                "params": r.params,
                "macs": r.macs,
                "depth": r.depth,
            }
            for r in self.rows
        ]

    def listings(self) -> list[Listing | str]:
        from zoo.render import trace_listing

        return [trace_listing(self)]


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
