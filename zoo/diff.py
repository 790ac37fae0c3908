"""``zoo diff A B``: two specs side by side, stage by stage, and the spec fields that differ."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rich.markup import escape
from rich.table import Table

from zoo.render import human, shape_text
from zoo.spec.load import load_spec
from zoo.traces import Row
from zoo.tracing import trace


@dataclass(frozen=True)
class StageDiff:
    """One top-level module of either spec (``None`` where the other spec has no such module)."""

    path: str
    a: Row | None
    b: Row | None


@dataclass(frozen=True)
class FieldDiff:
    """A spec field (dotted path) whose resolved value differs; ``None`` where it is absent."""

    path: str
    a: Any
    b: Any


@dataclass(frozen=True)
class SpecDiff:
    a: str
    b: str
    stages: list[StageDiff]
    fields: list[FieldDiff]
    totals: tuple[tuple[int, int], tuple[int, int]]  # (params, macs) of A and of B

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> list[Any]:
        """A stage table and a field table, for the terminal."""
        a, b = escape(self.a), escape(self.b)  # spec names and paths are text, not rich markup
        table = Table(title=f"{a}  vs  {b}", header_style="bold", show_footer=True)
        table.add_column("Stage", footer="Total")
        for side in (a, b):
            table.add_column(f"{side} output")
            table.add_column("params", justify="right")
            table.add_column("MACs", justify="right")
        table.add_column("")
        for (pa, ma), column in zip(self.totals, (2, 5), strict=True):
            table.columns[column].footer = f"{pa:,}"
            table.columns[column + 1].footer = human(ma)
        for stage in self.stages:
            cells = [escape(stage.path)]
            for row in (stage.a, stage.b):
                cells += (
                    [shape_text(row.output), f"{row.params:,}", human(row.macs)]
                    if row
                    else ["-", "-", "-"]
                )
            same = (
                stage.a
                and stage.b
                and (stage.a.output, stage.a.params, stage.a.macs)
                == (
                    stage.b.output,
                    stage.b.params,
                    stage.b.macs,
                )
            )
            table.add_row(*cells, "" if same else "≠", style=None if same else "yellow")
        fields = Table(title="spec fields that differ", header_style="bold")
        fields.add_column("field")
        fields.add_column(a)
        fields.add_column(b)
        for field in self.fields:
            fields.add_row(escape(field.path), _show(field.a), _show(field.b))
        return [table, fields if self.fields else "no spec field differs"]


def _show(value: Any) -> str:
    return "-" if value is None else escape(str(value))


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> scalar; a pair of equal numbers (``kernel: [3, 3]``) is that number."""
    pair = isinstance(data, list | tuple) and len(data) == 2 and data[0] == data[1]
    if pair and all(isinstance(v, int) and not isinstance(v, bool) for v in data):
        data = data[0]
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(data, list | tuple):
        out = {}
        for i, value in enumerate(data):
            out.update(_flatten(value, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): data}


def diff_specs(a: str, b: str, input_shape: tuple[int, ...] | None = None) -> SpecDiff:
    """Compare two specs (paths or shipped names) at depth 1, and their validated fields (defaults
    filled in, so a field written out at its default equals one left out)."""
    specs = {side: load_spec(side) for side in (a, b)}
    traces = {side: trace(specs[side], input_shape, depth=1) for side in (a, b)}
    rows_a = {r.path: r for r in traces[a].rows}
    rows_b = {r.path: r for r in traces[b].rows}
    order = list(rows_a) + [p for p in rows_b if p not in rows_a]
    stages = [StageDiff(p, rows_a.get(p), rows_b.get(p)) for p in order]
    flat_a, flat_b = (_flatten(specs[side].model_dump(mode="json")) for side in (a, b))
    keys = list(flat_a) + [k for k in flat_b if k not in flat_a]
    fields = [
        FieldDiff(k, flat_a.get(k), flat_b.get(k)) for k in keys if flat_a.get(k) != flat_b.get(k)
    ]
    totals = ((traces[a].params, traces[a].macs), (traces[b].params, traces[b].macs))
    names = (specs[a].name, specs[b].name)
    if names[0] == names[1]:  # e.g. a shipped spec against an edited copy: tell them apart
        names = (a, b)
    return SpecDiff(*names, stages, fields, totals)
