"""How zoo's results show themselves outside the command line: as a table in Jupyter
(``_repr_html_``), in rich (``__rich_console__``: ``rich.print(result)``, rich's REPL and Jupyter
integrations), as the same table in text wherever Python prints them (``repr``/``str``: a REPL,
``print``), and as a pandas DataFrame (``to_pandas()``; pandas is optional,
``pip install 'zoo[pandas]'``).

A result (a :class:`~zoo.traces.Trace`, a :class:`~zoo.compare.SpecDiff`, a :class:`BenchTable`)
inherits :class:`Tabular` and gives its tables as :class:`zoo.render.Listing` objects, the ones
the ``zoo`` command prints, and its rows as dicts. In rich and in text a listing is fitted to the
width (numbers never cut, text folded first: :func:`zoo.render.fit_table`); in HTML the browser
lays it out.

This module is below the results it displays (they import it): it imports no other zoo module but
:mod:`zoo.render`, and that, rich and pandas only when a table is drawn, so a result costs nothing
more to make.
"""

from __future__ import annotations

import html
import io
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas
    from rich.console import Console, ConsoleOptions, RenderResult

    from zoo.bench import BenchRow
    from zoo.render import Column, Listing


class Tabular:
    """The display protocols of a result made of tables (a mixin).

    Subclasses define :meth:`listings` and :meth:`rows_as_dicts`; a dataclass subclass needs
    ``repr=False``, or its generated one-line ``__repr__`` hides the table.
    """

    def listings(self) -> list[Listing | str]:
        """The result's tables, as the ``zoo`` command prints them; a string is a line of text
        (a note such as "no spec field differs")."""
        raise NotImplementedError

    def rows_as_dicts(self) -> list[dict[str, Any]]:
        """One dict per row, numbers as numbers: ``pandas.DataFrame(result.rows_as_dicts())``."""
        raise NotImplementedError

    def to_pandas(self) -> pandas.DataFrame:
        """The rows as a pandas DataFrame, a column per key of :meth:`rows_as_dicts`. Needs pandas
        (``pip install 'zoo[pandas]'``), imported only now."""
        return require_pandas().DataFrame(self.rows_as_dicts())

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """rich's console protocol: each table fitted to the width rich offers."""
        from rich.text import Text

        from zoo.render import fit_table

        for item in self.listings():
            yield Text(item) if isinstance(item, str) else fit_table(item, options.max_width)

    def _repr_html_(self) -> str:
        """The tables as HTML: what Jupyter shows for a result left at the end of a cell."""
        parts = [_STYLE]
        for item in self.listings():
            parts.append(
                f"<p>{html.escape(item)}</p>" if isinstance(item, str) else html_table(item)
            )
        return "\n".join(parts)

    def __str__(self) -> str:
        return render_text(self)

    def __repr__(self) -> str:
        # torchinfo's habit: a result typed at the prompt prints as its table
        return self.__str__()


def require_pandas() -> Any:
    """The pandas module, or an ImportError that says how to install it."""
    try:
        import pandas
    except ImportError as exc:
        raise ModuleNotFoundError(
            "to_pandas() needs pandas, which zoo does not install by default: "
            "pip install 'zoo[pandas]' (or pip install pandas)",
            name="pandas",
        ) from exc
    return pandas


def render_text(renderable: Any, width: int | None = None) -> str:
    """``renderable`` as plain text (no colour, no trailing spaces), ``width`` columns wide (by
    default the terminal's: ``COLUMNS``, else 80 where there is none, as in a notebook)."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width or shutil.get_terminal_size().columns,
        color_system=None,
        force_terminal=False,
        force_jupyter=False,  # in a notebook rich would display the table, not write it here
        force_interactive=False,
        highlight=False,
        emoji=False,
    )
    console.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


# pandas' habit: one scoped style block, classes on the cells. Jupyter right-aligns every cell by
# default: text goes back to the left. The highlight is readable on light and dark themes.
_STYLE = """<style scoped>
.zoo-table { border-collapse: collapse; margin-bottom: 1em; }
.zoo-table caption { caption-side: top; text-align: left; font-weight: bold; }
.zoo-table th, .zoo-table td { padding: 0.1em 0.6em; text-align: left; border: none; }
.zoo-table .n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.zoo-table tr.b td { font-weight: bold; }
.zoo-table tr.m { background: rgba(255, 193, 7, 0.2); }
.zoo-table tfoot td { font-weight: bold; border-top: 1px solid; }
</style>"""


def html_table(listing: Listing) -> str:
    """A listing as an HTML table: its title as the caption, the header, the rows as the terminal
    shows them (a nested layer indented; text left-aligned, numbers right-aligned), the footer
    (totals). A row styled in the terminal stands out: bold stays bold, a colour is a highlight.
    Every cell is escaped."""
    listing = listing.for_terminal()
    numeric = [' class="n"' if c.justify == "right" else "" for c in listing.columns]

    def cells(tag: str, texts: Sequence[str]) -> str:
        out = []
        for text, attrs in zip(texts, numeric, strict=True):
            indent = len(text) - len(text.lstrip(" "))  # a trace's nesting, two spaces a level
            if indent:
                attrs += f' style="padding-left: {0.6 + 0.6 * indent:g}em"'
            out.append(f"<{tag}{attrs}>{html.escape(text.strip())}</{tag}>")
        return "".join(out)

    styles = list(listing.styles) or [""] * len(listing.rows)
    body = []
    for row, style in zip(listing.cells(), styles, strict=True):
        mark = "" if not style else ' class="b"' if style == "bold" else ' class="m"'
        body.append(f"<tr{mark}>{cells('td', row)}</tr>")
    parts = [
        '<table class="zoo-table">',
        f"<caption>{html.escape(listing.title)}</caption>" if listing.title else "",
        f"<thead><tr>{cells('th', [c.header for c in listing.columns])}</tr></thead>",
        "<tbody>",
        *body,
        "</tbody>",
    ]
    if listing.footer is not None:
        parts.append(f"<tfoot><tr>{cells('td', listing.footer)}</tr></tfoot>")
    parts.append("</table>")
    return "\n".join(part for part in parts if part)


# ----------------------------------------------------------------------------- bench tables
def _bench_columns() -> dict[str, Column]:
    """The columns of the :class:`~zoo.bench.BenchRow` fields with a known meaning, named as
    ``--csv`` names them."""
    from zoo.render import Column, human, number, text

    def size(n: int) -> str:
        return human(n, "B")

    def ms(t: float) -> str:
        return f"{t:.1f} ms"

    # the set-up of a measurement (optimizer, threads, warm-up, repeats) is in the plain rows,
    # --json/--csv and to_pandas(); the terminal and HTML tables show the figures
    return {
        "spec": text("spec", "Spec", 10),
        "input": Column("input", "Input"),
        "params": number("params", "Params"),
        "trainable_params": Column("trainable_params", "Trainable", terminal=False),
        "macs": number("macs", "MACs", human),
        "weight_bytes": number("weight_bytes", "Weights", size),
        "activation_bytes": number("activation_bytes", "Act. (infer)", size),
        "inference_bytes": number("inference_bytes", "Peak (infer)", size),
        "train_activation_bytes": number("train_activation_bytes", "Act. (train)", size),
        "train_bytes": number("train_bytes", "Peak (train)", size),
        "latency_ms": number("latency_ms", "Forward", ms),
        "latency_iqr_ms": number("latency_iqr_ms", "Fwd IQR", ms),
        "train_latency_ms": number("train_latency_ms", "Fwd+bwd", ms),
        "train_latency_iqr_ms": number("train_latency_iqr_ms", "Fwd+bwd IQR", ms),
    }


def bench_listing(rows: Sequence[BenchRow], title: str) -> Listing:
    """Bench rows as a listing: every field some row has a value for (latencies only when
    measured); a field not named above is in the plain rows and ``to_pandas()`` only."""
    from zoo.render import Column, Listing

    known = _bench_columns()
    data = [row.to_dict() for row in rows]
    keys = [k for k in (data[0] if data else {}) if any(d[k] is not None for d in data)]
    return Listing(
        title=title,
        columns=[known.get(k) or Column(k, k, terminal=False) for k in keys],
        rows=[[d[k] for k in keys] for d in data],
    )


@dataclass(frozen=True, repr=False)
class BenchTable(Tabular):
    """``zoo bench``'s rows as a result (:func:`zoo.benchmark`): a table in Jupyter, rich and a
    REPL, a DataFrame with ``to_pandas()``, and a sequence of :class:`~zoo.bench.BenchRow`
    (``table[0].params``, ``for row in table``)."""

    rows: tuple[BenchRow, ...]
    title: str = "zoo bench (float32 peaks)"

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[BenchRow]:
        return iter(self.rows)

    def __getitem__(self, index: int) -> BenchRow:
        return self.rows[index]

    def rows_as_dicts(self) -> list[dict[str, Any]]:
        return [row.to_dict() for row in self.rows]

    def listings(self) -> list[Listing | str]:
        return [bench_listing(self.rows, self.title) if self.rows else "no specs benched"]
