"""Human-readable renderings of traces and spec tables (rich), for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from zoo.traces import Row, Trace


def human(n: float, unit: str = "") -> str:
    """``3_663_761_408`` -> ``3.66 G``: three significant figures with an SI prefix."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.3g} {prefix}{unit}"
    return f"{n:g} {unit}".rstrip()


def shape_text(shape: tuple[int, ...]) -> str:
    """``(1, 64, 56, 56)`` -> ``[1, 64, 56, 56]``, as ``torch.Size`` prints it."""
    return "[" + ", ".join(map(str, shape)) + "]"


def _cells(row: Row) -> tuple[str, str, str, str]:
    return (
        row.type,
        shape_text(row.output),
        f"{row.params:,}" if row.params else "-",
        human(row.macs) if row.macs else "-",
    )


def add_stacked_rows(
    table: Table, rows: Sequence[Sequence[str]], styles: Sequence[str] = ()
) -> None:
    """Add ``rows`` (one string per column) to ``table`` as a single row of multi-line cells.

    zoo's tables draw no line between rows, so this prints the same as a row per item, and rich
    lays out one cell per column instead of one per item: ResNet-152's 518-row trace in 30 ms
    instead of 150 ms, most of what `zoo build resnet152 --trace` takes. No column may wrap, or
    the lines of the cells would no longer sit side by side.
    """
    cells = [Text(justify=column.justify) for column in table.columns]
    for column in table.columns:
        column.no_wrap = True
    for i, row in enumerate(rows):
        style = styles[i] if styles else ""
        for cell, text in zip(cells, row, strict=True):
            if i:
                cell.append("\n")
            cell.append(text, style=style)
    if rows:
        table.add_row(*cells)


def trace_table(result: Trace) -> Table:
    """One row per module, indented by depth, with totals in the footer."""
    table = Table(
        title=f"{result.name}  input {shape_text(result.input)}",
        show_footer=True,
        header_style="bold",
        footer_style="bold",
    )
    table.add_column("Layer", footer="Total", no_wrap=True)
    table.add_column("Type", no_wrap=True)
    table.add_column("Output shape", footer=shape_text(result.output), no_wrap=True)
    table.add_column("Params", justify="right", footer=f"{result.params:,}")
    table.add_column("MACs", justify="right", footer=human(result.macs))
    add_stacked_rows(
        table,
        [("  " * (row.depth - 1) + row.path, *_cells(row)) for row in result.rows],
        ["bold" if row.depth == 1 else "" for row in result.rows],
    )
    return table


def trace_tree(result: Trace) -> Tree:
    """The same rows as a tree, one branch per submodule."""
    root = Tree(
        f"[bold]{result.name}[/]  {shape_text(result.input)} -> {shape_text(result.output)}  "
        f"{result.params:,} params  {human(result.macs)} MACs"
    )
    nodes = {"": root}
    for row in result.rows:
        parent = nodes.get(row.path.rpartition(".")[0], root)
        kind, shape, params, macs = _cells(row)
        nodes[row.path] = parent.add(
            f"[bold]{row.path.rpartition('.')[2]}[/] {kind}  {shape}  params {params}  MACs {macs}"
        )
    return root
