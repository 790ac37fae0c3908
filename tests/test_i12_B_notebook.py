"""Results in a notebook or a REPL: traces, benchmarks and diffs show as tables (Jupyter's
``_repr_html_``, rich's console protocol, ``repr``/``str``), turn into pandas DataFrames, and
need no torch; the README's "zoo in a notebook" code runs and every result in it displays."""

from __future__ import annotations

import ast
import html
import io
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

import zoo
from zoo.display import BenchTable, html_table, render_text
from zoo.errors import ZooError
from zoo.render import Listing, number, text

README = Path(__file__).resolve().parents[1] / "README.md"


def _rich_text(result: object, width: int = 200) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    console.print(result)
    return console.export_text()


def _html_cells(markup: str) -> list[list[str]]:
    """The text of each body row's cells."""
    body = markup.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body)
    ]


# --------------------------------------------------------------------------- traces
def test_summary_is_trace_under_torchinfo_name() -> None:
    assert zoo.summary is zoo.trace
    assert "summary" in zoo.__all__ and "summary" in dir(zoo)


def test_trace_html_has_every_row_and_the_totals() -> None:
    result = zoo.summary("resnet18", depth=2)
    markup = result._repr_html_()
    cells = _html_cells(markup)
    assert [row[0] for row in cells] == [r.path for r in result.rows]
    layer = next(i for i, r in enumerate(result.rows) if r.path == "layer2.0")
    assert cells[layer] == ["layer2.0", "basic", "[1, 128, 28, 28]", "230,144", "180 M"]
    foot = re.search(r"<tfoot>(.*?)</tfoot>", markup, re.S)
    assert foot and "11,689,512" in foot.group(1) and "1.81 G" in foot.group(1)
    assert "<caption>resnet18  input [1, 3, 224, 224]</caption>" in markup
    # nested rows are indented, depth-1 rows bold (as in the terminal), numbers right-aligned
    assert '<td style="padding-left: 1.8em">layer2.0</td>' in markup
    assert '<tr class="b"><td>layer2</td>' in markup
    assert '<th class="n">Params</th>' in markup and '<td class="n">230,144</td>' in markup


def test_trace_repr_is_its_table(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    result = zoo.trace("lenet")
    shown = repr(result)
    assert shown == str(result) and not shown.startswith("Trace(")
    lines = shown.splitlines()
    assert "lenet  input [1, 1, 28, 28]" in lines[0]
    assert any(
        re.search(r"head_1 +│ linear +│ \[1, 120\] +│ +48,120 │ +48 k │", ln) for ln in lines
    )
    assert any("Total" in ln and "61,706" in ln and "417 k" in ln for ln in lines)
    assert max(len(ln) for ln in lines) <= 100
    assert "\x1b[" not in shown  # no colour codes in text


def test_trace_rich_fits_the_width_and_never_cuts_numbers() -> None:
    result = zoo.trace("resnet50", depth=1)
    wide = _rich_text(result, 200)
    assert "layer3" in wide and "7,098,368" in wide and "25,557,032" in wide
    for width in (60, 40):
        narrow = _rich_text(result, width)
        assert max(len(line) for line in narrow.splitlines()) <= width
        assert "7,098,368" in narrow and "25,557,032" in narrow and "1.46 G" in narrow


def test_trace_of_a_module_displays_too() -> None:
    result = zoo.summary(zoo.build("lenet"), (8, 1, 28, 28))
    assert "61,706" in str(result) and "<td>head_1</td>" in result._repr_html_()


def test_trace_to_pandas_round_trip() -> None:
    pandas = pytest.importorskip("pandas")
    result = zoo.trace("resnet18")
    frame = result.to_pandas()
    assert list(frame.columns) == ["path", "type", "output", "params", "macs", "depth"]
    assert len(frame) == len(result.rows)
    pandas.testing.assert_frame_equal(frame, pandas.DataFrame(result.rows_as_dicts()))
    assert frame.params[frame.depth == 1].sum() == result.params
    assert frame.macs[frame.depth == 1].sum() == result.macs
    assert frame.set_index("path").loc["layer4.0.downsample.0", "output"] == (1, 512, 7, 7)
    assert result.to_dict()["rows"] == result.rows_as_dicts()  # --json's rows, the same records


def test_to_pandas_without_pandas_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'zoo\[pandas\]'"):
        zoo.trace("lenet").to_pandas()
    rows = zoo.trace("lenet").rows_as_dicts()  # what pandas would take, without pandas
    assert rows[0] == {
        "path": "stages_0",
        "type": "conv",
        "output": (1, 6, 28, 28),
        "params": 156,
        "macs": 117600,
        "depth": 1,
    }


def test_html_cells_are_escaped() -> None:
    listing = Listing(
        "a <b>title</b> & more",
        [text("name", "Name <i>"), number("n", "N")],
        [["<script>alert(1)</script>", 5], ["  nested & indented", 6]],
        footer=["Total", "11"],
        styles=["", "yellow"],
    )
    markup = html_table(listing)
    assert "<script>" not in markup and "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    assert "<caption>a &lt;b&gt;title&lt;/b&gt; &amp; more</caption>" in markup
    assert "<th>Name &lt;i&gt;</th>" in markup
    assert '<tr class="m"><td style="padding-left: 1.8em">nested &amp; indented</td>' in markup
    assert '<tfoot><tr><td>Total</td><td class="n">11</td></tr></tfoot>' in markup


def test_repr_in_a_narrow_terminal_keeps_numbers_whole(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    shown = repr(zoo.trace("resnet50", depth=1))
    assert max(len(line) for line in shown.splitlines()) <= 40
    assert "7,098,368" in shown and "25,557,032" in shown
    assert render_text(zoo.trace("lenet"), width=200).splitlines()[0].strip().startswith("lenet")


# --------------------------------------------------------------------------- bench tables
def test_benchmark_table() -> None:
    table = zoo.benchmark(["lenet", "resnet18"], batch=2)
    assert isinstance(table, BenchTable) and len(table) == 2
    assert [row.spec for row in table] == ["lenet", "resnet18"]
    assert table[1].params == 11_689_512 and table[1].input == (2, 3, 224, 224)
    assert table[1].macs == zoo.trace("resnet18", (2, 3, 224, 224)).macs
    cells = _html_cells(table._repr_html_())
    assert cells[1][:4] == ["resnet18", "2x3x224x224", "11,689,512", "3.63 G"]
    assert "zoo bench" in table._repr_html_()
    shown = _rich_text(table)
    assert "resnet18" in shown and "11,689,512" in shown and "Act. (train)" in shown
    assert "Forward" not in shown  # latencies only when measured
    assert "11,689,512" in str(table) and not repr(table).startswith("BenchTable(")
    one = zoo.benchmark("lenet", (4, 1, 32, 32))  # one spec; an input shape for all
    assert len(one) == 1 and one[0].input == (4, 1, 32, 32)
    assert str(zoo.benchmark([])) == "no specs benched"


def test_benchmark_to_pandas() -> None:
    pandas = pytest.importorskip("pandas")
    table = zoo.benchmark(["lenet", "trashnet"])
    frame = table.to_pandas()
    pandas.testing.assert_frame_equal(frame, pandas.DataFrame(table.rows_as_dicts()))
    assert list(frame.spec) == ["lenet", "trashnet"] and list(frame.params) == [61_706, 133_514]
    assert list(frame.columns) == list(table[0].to_dict())  # every field, as --json has them


def test_benchmark_latency_and_optimizer() -> None:
    table = zoo.benchmark("lenet", latency=True, warmup=1, repeat=3)
    row = table[0]
    assert row.latency_ms > 0 and row.train_latency_ms > 0 and (row.warmup, row.repeat) == (1, 3)
    assert "Forward" in _rich_text(table) and "Fwd+bwd" in _rich_text(table)
    adam, sgd = (zoo.benchmark("lenet", optimizer=o)[0] for o in ("adam", "sgd"))
    assert adam.optimizer == "adam" and adam.train_bytes > sgd.train_bytes


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch": 2, "input_shape": (3, 32, 32)}, "exclude each other"),
        ({"batch": 0}, "batch"),
        ({"device": "cpu"}, "only matter with latency"),
        ({"input_shape": "big"}, "input shape"),
        ({"latency": True, "device": "meta"}, "computes"),
        ({"warmup": 1}, "only matter with latency"),
        ({"latency": True, "repeat": 0}, "repeat is an int >= 1"),
        ({"latency": True, "warmup": -1}, "warmup is an int >= 0"),
        ({"optimizer": "lbfgs"}, "optimizer is one of sgd, momentum, adam"),
    ],
)
def test_benchmark_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ZooError, match=message):
        zoo.benchmark("lenet", **kwargs)


def test_benchmark_takes_spec_objects_and_mappings() -> None:
    spec = zoo.load_spec("lenet")
    data = {"name": "tiny", "input": {"channels": 1, "size": 8}, "head": [{"type": "flatten"}]}
    table = zoo.benchmark((spec, data))
    assert [row.spec for row in table] == ["lenet", "tiny"]
    with pytest.raises(ZooError, match="benchmark"):
        zoo.benchmark([42])


# --------------------------------------------------------------------------- without torch
def test_results_display_without_torch() -> None:
    """Tracing, diffing and benchmarking specs, and showing the results, import no torch; making a
    trace imports neither rich nor pandas (only drawing a table does)."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None
        import zoo
        result = zoo.summary("resnet18", depth=1)
        assert not {"rich", "pandas"} & set(sys.modules), sorted(sys.modules)
        assert "11,689,512" in str(result) and "<tbody>" in result._repr_html_()
        diff = zoo.diff("resnet50", "resnet50d")
        assert "only in B" in str(diff) and "<tbody>" in diff._repr_html_()
        table = zoo.benchmark(["lenet", "resnet18"])
        assert "11,689,512" in str(table) and "<tbody>" in table._repr_html_()
        try:
            import pandas  # noqa: F401
        except ImportError:
            pass
        else:
            assert [len(item.to_pandas()) for item in (result, diff, table)] == [11, 19, 2]
        print(sorted(m for m in sys.modules if m.split(".")[0] == "torch" and sys.modules[m]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --------------------------------------------------------------------------- the README
def test_readme_notebook_section_runs_and_every_result_displays() -> None:
    """The code of "zoo in a notebook", each top-level expression evaluated as a notebook cell
    would: each result has an HTML table and a text one."""
    pytest.importorskip("pandas")
    section = README.read_text().split("## zoo in a notebook", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    shown = []
    for node in ast.parse(code).body:
        if isinstance(node, ast.Expr):
            value = eval(compile(ast.Expression(node.value), "README.md", "eval"), namespace)
            shown.append(value)
        else:
            exec(compile(ast.Module([node], []), "README.md", "exec"), namespace)
    assert len(shown) == 5
    for value in shown:
        assert "<table" in value._repr_html_() and "\n" in str(value)
    summary, module, bench, diff, frame = shown
    assert summary.params == 25_557_032 and module.input == (8, 1, 28, 28)
    assert [row.spec for row in bench] == ["resnet18", "resnet50", "mobilenet_v2"]
    assert diff.stages[1].path == "conv1.0"  # resnet50d's deep stem, where it is in the network
    assert list(frame.path) == ["layer4.0.conv2", "layer4.1.conv2", "layer4.2.conv2"]
