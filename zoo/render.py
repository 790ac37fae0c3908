"""Human-readable renderings of traces and spec tables (rich), for the terminal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

if TYPE_CHECKING:  # annotations only: a Trace renders itself with this module (zoo.traces)
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


def trace_listing(result: Trace) -> Listing:
    """One row per module (paths indented by depth in a terminal), with totals in the footer."""

    def count(n: int) -> str:
        return f"{n:,}" if n else "-"

    return Listing(
        title=f"{result.name}  input {shape_text(result.input)}",
        columns=[
            text("layer", "Layer", 12),
            text("type", "Type", 8),
            Column("output", "Output shape", show=shape_text),
            number("params", "Params", count),
            number("macs", "MACs", lambda n: human(n) if n else "-"),
        ],
        rows=[
            (Cell(row.path, "  " * (row.depth - 1) + row.path), *_values(row))
            for row in result.rows
        ],
        footer=["Total", "", shape_text(result.output), f"{result.params:,}", human(result.macs)],
        styles=["bold" if row.depth == 1 else "" for row in result.rows],
    )


def _values(row: Row) -> tuple[str, tuple[int, ...], int, int]:
    return (row.type, row.output, row.params, row.macs)


def trace_table(result: Trace, width: int | None = None) -> RenderableType:
    """The trace as a rich table, at most ``width`` columns wide (see :func:`fit_table`)."""
    return fit_table(trace_listing(result), width)


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


# --------------------------------------------------------------------------- results tables
# A command's results are a Listing: values, with how to show each in a terminal. On a terminal
# it is a rich table fitted to the width (numbers whole, text columns folded first); in a pipe or
# a file it is plain rows: a header line, then one line per row, fields separated by tabs, numbers
# exact (`zoo list | sort -t$'\t' -k4 -n`, `cut -f1`, `awk -F'\t'`).


@dataclass(frozen=True)
class Column:
    """One column of a :class:`Listing`.

    ``key`` heads the plain rows (the name ``--json``/``--csv`` use where they have one);
    ``header`` heads the terminal table and may wrap at its spaces. A ``shrink`` column (text:
    names, descriptions) folds its cells when the terminal is narrow, down to ``min_width``; any
    other column (numbers, shapes) is never cut, folded or wrapped. ``show`` writes a value for
    the terminal (default: thousands separators for ints, ``NxCxHxW`` for shapes, ``-`` for None).
    ``terminal=False``: a column of the plain rows only (a figure the table leaves out for room).
    """

    key: str
    header: str
    justify: Literal["left", "right"] = "left"
    shrink: bool = False
    min_width: int = 10
    show: Callable[[Any], str] | None = None
    terminal: bool = True


def number(key: str, header: str, show: Callable[[Any], str] | None = None) -> Column:
    """A right-aligned column of numbers, never cut."""
    return Column(key, header, justify="right", show=show)


def text(key: str, header: str, min_width: int = 10) -> Column:
    """A column of text that folds (names) or wraps (prose) in a narrow terminal."""
    return Column(key, header, shrink=True, min_width=min_width)


@dataclass(frozen=True)
class Cell:
    """A value whose terminal text is not its column's ``show(value)`` (an indented layer path)."""

    value: Any
    text: str


@dataclass
class Listing:
    """A command's results: one row of values per item, in the columns' order.

    ``footer`` (terminal text per column: totals) and ``styles`` (a rich style per row) show in a
    terminal only: plain rows are the data and nothing else.
    """

    title: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[Any]]
    footer: Sequence[str] | None = None
    styles: Sequence[str] = ()

    def plain(self) -> str:
        """Tab-separated rows under a header line of the columns' keys; exact values."""
        lines = ["\t".join(c.key for c in self.columns)]
        lines += ["\t".join(_plain(value) for value in row) for row in self.rows]
        return "\n".join(lines) + "\n"

    def for_terminal(self) -> Listing:
        """The listing less its plain-only columns."""
        keep = [i for i, c in enumerate(self.columns) if c.terminal]
        if len(keep) == len(self.columns):
            return self
        footer = [self.footer[i] for i in keep] if self.footer is not None else None
        return Listing(
            self.title,
            [self.columns[i] for i in keep],
            [[row[i] for i in keep] for row in self.rows],
            footer,
            self.styles,
        )

    def cells(self) -> list[list[str]]:
        """The rows as terminal text."""
        return [
            [_shown(value, column) for value, column in zip(row, self.columns, strict=True)]
            for row in self.rows
        ]


def _plain(value: Any) -> str:
    if isinstance(value, Cell):
        value = value.value
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        return "x".join(map(str, value))
    # a tab or line break inside a field would split it: plain rows stay one line per row
    return " ".join(str(value).split()) if isinstance(value, str) else str(value)


def _shown(value: Any, column: Column) -> str:
    if isinstance(value, Cell):
        return value.text
    if column.show is not None and value is not None:
        return column.show(value)
    if value is None:
        return "-"
    if isinstance(value, tuple | list):
        return "x".join(map(str, value))
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


@dataclass(frozen=True)
class _Layout:
    """A table style and what it costs in width beyond the cells: ``extra(n)`` for n columns."""

    box: box.Box | None
    show_edge: bool
    padding: tuple[int, int]
    extra: Callable[[int], int]


_LAYOUTS = (
    # rich's default: a line between columns and round the edge, one space inside each cell
    _Layout(box.HEAVY_HEAD, True, (0, 1), lambda n: 3 * n + 1),
    # a rule under the header only, columns two spaces apart
    _Layout(box.SIMPLE_HEAD, False, (0, 1), lambda n: 3 * (n - 1)),
    # the same, one space apart: the narrowest table there is
    _Layout(box.SIMPLE_HEAD, False, (0, 0), lambda n: n - 1),
)


def _widths(listing: Listing, cells: list[list[str]], room: int) -> list[int] | None:
    """Column widths that fit ``room`` cells' characters, or None. Numbers and shapes keep their
    width; their headers wrap at spaces first, then text columns fold, widest first, down to their
    ``min_width``."""
    columns = listing.columns
    footer = listing.footer or [""] * len(columns)
    widths, least = [], []
    for i, column in enumerate(columns):
        body = max((cell_len(line) for row in cells for line in row[i].split("\n")), default=0)
        body = max(body, cell_len(footer[i]))
        word = max(cell_len(w) for w in column.header.split()) if column.header.strip() else 0
        natural = max(body, cell_len(column.header))
        widths.append(natural)
        if column.shrink:
            least.append(min(natural, max(column.min_width, word)))
        else:
            least.append(max(body, word))
    if sum(widths) <= room:
        return widths
    for i, column in enumerate(columns):  # headers of numbers wrap at their spaces
        if not column.shrink:
            widths[i] = least[i]
    excess = sum(widths) - room
    while excess > 0:  # the widest text column that may still fold gives one character
        shrinkable = [i for i, c in enumerate(columns) if c.shrink and widths[i] > least[i]]
        if not shrinkable:
            return None
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths


def fit_table(listing: Listing, width: int | None = None) -> RenderableType:
    """``listing`` as a rich table at most ``width`` columns wide (None: as wide as it needs),
    its numbers never cut: the table narrows its headers, folds its text columns, drops its
    borders, and, where even that is too wide, shows each row as a short block of lines."""
    listing = listing.for_terminal()
    cells = listing.cells()
    for layout in _LAYOUTS:
        room = None if width is None else width - layout.extra(len(listing.columns))
        widths = _widths(listing, cells, room if room is not None else 1 << 30)
        if widths is not None:
            return _table(listing, cells, layout, widths)
        if width is None:
            break
    return _records(listing, cells, width or 80)


def _table(listing: Listing, cells: list[list[str]], layout: _Layout, widths: list[int]) -> Table:
    table = Table(
        title=Text(listing.title) if listing.title else None,  # a path may hold `[`: no markup
        box=layout.box,
        show_edge=layout.show_edge,
        pad_edge=layout.show_edge,
        padding=layout.padding,
        header_style="bold",
        footer_style="bold",
        show_footer=listing.footer is not None,
    )
    footer = listing.footer or [""] * len(listing.columns)
    for column, w, foot in zip(listing.columns, widths, footer, strict=True):
        table.add_column(
            # a header wraps at its spaces (and folds a word only in a column too narrow for it)
            Text(column.header, no_wrap=False, overflow="fold"),
            footer=Text(foot, no_wrap=True, overflow="ellipsis"),
            justify=column.justify,
            width=w,
            no_wrap=not column.shrink,
            overflow="fold",
        )
    folded = any(
        c.shrink and w < max((cell_len(r[i]) for r in cells), default=0)
        for i, (c, w) in enumerate(zip(listing.columns, widths, strict=True))
    )
    if not folded:  # nothing wraps: one row of stacked cells, laid out in one go
        add_stacked_rows(table, cells, listing.styles)
        return table
    for i, row in enumerate(cells):
        style = listing.styles[i] if listing.styles else ""
        table.add_row(*(Text(cell, style=style) for cell in row))
    return table


def _records(listing: Listing, cells: list[list[str]], width: int) -> Group:
    """Each row as a block: its first cell in bold, then "Header value" pairs packed into lines,
    long text on lines of its own. For terminals too narrow for a table of these numbers."""
    blocks: list[RenderableType] = []
    if listing.title:
        blocks.append(Text(listing.title, style="italic", justify="center"))
    rows = list(cells)
    styles = list(listing.styles) or [""] * len(rows)
    if listing.footer is not None:
        rows.append(list(listing.footer))
        styles.append("bold")
    for row, style in zip(rows, styles, strict=True):
        lines = [Text(row[0].strip(), style=f"bold {style}".strip(), overflow="fold")]
        pairs, paragraphs = [], []
        for column, cell in zip(listing.columns[1:], row[1:], strict=True):
            if cell in ("", "-"):
                continue
            if column.shrink and " " in cell and cell_len(cell) > width // 2:  # prose
                paragraphs.append(cell)
            else:
                pairs.append((column.header, cell))
        packed: list[str] = []
        for header, cell in pairs:  # "Params 11,689,512  MACs 1.82 G": a value is never split
            pair = f"{header} {cell}"
            if cell_len(pair) > width - 2:  # the header on a line, the value on the next
                packed += [header, cell]
            elif packed and cell_len(packed[-1]) + 2 + cell_len(pair) <= width - 2:
                packed[-1] += "  " + pair
            else:
                packed.append(pair)
        lines += [Text("  " + line, style=style) for line in packed]
        blocks.extend(lines)
        # wrapped by rich at the console's width, two spaces in
        blocks += [Padding(Text(p, style=style), (0, 0, 0, 2)) for p in paragraphs]
    return Group(*blocks)


def emit(console: Console, *items: Listing | RenderableType) -> None:
    """Print results to ``console`` (standard output): a :class:`Listing` as a table fitted to a
    terminal, or as plain rows when it is not one (a pipe, a file); anything else (a line of text,
    a tree) as rich prints it, unwrapped off a terminal. Plain listings are separated by a blank
    line, each under its own header line."""
    first = True
    for item in items:
        if not isinstance(item, Listing):
            console.print(item, soft_wrap=not console.is_terminal)
        elif console.is_terminal:
            console.print(fit_table(item, console.width))
        else:
            console.file.write(("" if first else "\n") + item.plain())
            console.file.flush()
        first = False
