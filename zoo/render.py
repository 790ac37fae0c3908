"""Human-readable renderings of traces and spec tables (rich), for the terminal."""

from __future__ import annotations

from rich.table import Table
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
    for row in result.rows:
        indent = "  " * (row.depth - 1)
        table.add_row(indent + row.path, *_cells(row), style="bold" if row.depth == 1 else None)
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
