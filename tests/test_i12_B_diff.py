"""`zoo diff` and `zoo.diff`: stages and fields in network order, every column headed, and the
result shown as tables (HTML, rich, text) and as a DataFrame."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import textwrap

import pytest
from rich.console import Console

import zoo
from tests.conftest import run_cli
from zoo.compare import SpecDiff, _network_order, merge_in_order
from zoo.errors import ZooError

DEEP_STEM = ["conv1", *(f"conv1.{i}" for i in range(7)), "bn1", "relu", "act1", "maxpool"]
RESNET_REST = ["layer1", "layer2", "layer3", "layer4", "avgpool", "head_1", "fc"]


def test_stages_in_network_order() -> None:
    """resnet50d's deep stem (conv1.0-6) and its act1 sit where they are in the network, not after
    fc; a module both have is one row."""
    result = zoo.diff("resnet50", "resnet50d")
    assert [s.path for s in result.stages] == DEEP_STEM + RESNET_REST
    by_path = {s.path: s for s in result.stages}
    assert by_path["conv1"].differs == "type, params, MACs"
    assert by_path["conv1.3"].a is None and by_path["conv1.3"].differs == "only in B"
    assert by_path["relu"].b is None and by_path["relu"].differs == "only in A"
    assert by_path["layer2"].differs == "" and by_path["layer2"].a == by_path["layer2"].b
    # the other way round: the same order, A's module before the one B has in its place
    swapped = zoo.diff("resnet50d", "resnet50")
    order = [*DEEP_STEM[:9], "act1", "relu", "maxpool", *RESNET_REST]
    assert [s.path for s in swapped.stages] == order
    assert {s.path: s.differs for s in swapped.stages}["act1"] == "only in A"


@pytest.mark.parametrize(
    ("a", "b", "merged"),
    [
        ("xyz", "xyz", ["xx", "yy", "zz"]),
        ("yz", "xyz", ["-x", "yy", "zz"]),  # a new stem: first, not last
        ("xy", "xyz", ["xx", "yy", "-z"]),
        ("xaz", "xbz", ["xx", "a-", "-b", "zz"]),  # a replaced module: A's, then B's
        ("", "xy", ["-x", "-y"]),
        ("xy", "yx", ["-y", "xx", "y-"]),  # a swap: one of them listed on each side
    ],
)
def test_merge_in_order(a: str, b: str, merged: list[str]) -> None:
    pairs = merge_in_order(list(a), list(b))
    assert ["".join(p or "-" for p in pair) for pair in pairs] == merged


def test_merge_keeps_both_orders() -> None:
    rng = random.Random(0)
    for _ in range(300):
        a = rng.sample("abcdefghij", rng.randint(0, 10))
        b = rng.sample("abcdefghij", rng.randint(0, 10))
        pairs = merge_in_order(a, b)
        assert [pa for pa, _ in pairs if pa is not None] == a
        assert [pb for _, pb in pairs if pb is not None] == b
        assert all(pa == pb for pa, pb in pairs if pa is not None and pb is not None)


def _spec(stem: list[dict], out: int) -> dict:
    return {
        "name": "net",
        "input": {"channels": 1, "size": 8},
        "stem": stem,
        "head": [{"type": "flatten"}, {"type": "linear", "out": out}],
    }


def test_fields_in_network_order() -> None:
    """Fields only B has sit with their item, list indices count as numbers (stem.10 after
    stem.3), and stem comes before head whatever the spec files' key order."""
    conv = {"type": "conv", "out": 2, "kernel": 1}
    a = [conv, *([{"type": "relu"}] * 11)]
    b = list(a)
    b[3] = {"type": "conv", "out": 2, "kernel": 3, "padding": 1}
    b[10] = {"type": "sigmoid"}
    result = zoo.diff(_spec(a, 10), _spec(b, 5))
    assert [f.path for f in result.fields] == [
        "stem.3.inplace",
        "stem.3.type",
        "stem.3.out",
        "stem.3.kernel",
        "stem.3.stride",
        "stem.3.padding",
        "stem.3.dilation",
        "stem.3.groups",
        "stem.3.bias",
        "stem.10.inplace",
        "stem.10.type",
        "head.1.out",
    ]
    fields = {f.path: (f.a, f.b) for f in result.fields}
    assert fields["stem.3.out"] == (None, 2) and fields["stem.3.inplace"] == (False, None)
    # the shipped pair: resnet50d's stem fields, all of them before the stages'
    paths = [f.path for f in zoo.diff("resnet50", "resnet50d").fields]
    sections = [p.split(".")[0] for p in paths]
    assert sections == sorted(sections, key=["name", "description", "stem", "stages"].index)
    assert paths.index("stem.0.layers.6.bias") < paths.index("stem.2.name")


def test_network_order_key() -> None:
    # names in the order first met, indices as numbers
    keys = ["b.2.x", "a", "b.10.x", "b.2.y", "c", "b.10.a", "b.9.z"]
    order = _network_order(keys)
    expected = ["b.2.x", "b.2.y", "b.9.z", "b.10.x", "b.10.a", "a", "c"]
    assert sorted(keys, key=order.__getitem__) == expected


def test_every_column_is_headed(capsys) -> None:
    code, out, _ = run_cli(capsys, "diff", "resnet50", "resnet50d")
    assert code == 0
    stage_table, field_table = out.split("\n\n")
    lines = stage_table.splitlines()
    assert lines[0].split("\t") == [
        "stage",
        "a_output",
        "a_params",
        "a_macs",
        "b_output",
        "b_params",
        "b_macs",
        "differs",
    ]
    assert [line.split("\t")[0] for line in lines[1:]] == DEEP_STEM + RESNET_REST
    assert lines[2].split("\t") == [
        "conv1.0",
        "",
        "",
        "",
        "1x32x112x112",
        "864",
        "10838016",
        "only in B",
    ]
    assert field_table.splitlines()[0].split("\t") == ["field", "a", "b"]
    assert "stem.0.bias\tfalse\t\n" in field_table  # YAML's spelling; empty where absent
    result = zoo.diff("resnet50", "resnet50d")
    for listing in result.listings():
        assert all(column.header.strip() for column in listing.columns)
    console = Console(record=True, width=160, file=io.StringIO())
    console.print(result)
    shown = console.export_text()
    for header in ("Stage", "A output", "A params", "A MACs", "B output", "B MACs", "Differs"):
        assert header in shown
    assert "resnet50 (A) vs resnet50d (B)" in shown and "25,576,264" in shown


def test_json_is_unchanged_but_ordered(capsys) -> None:
    code, out, _ = run_cli(capsys, "diff", "resnet50", "resnet50d", "--json")
    data = json.loads(out)
    assert code == 0 and set(data) == {"a", "b", "stages", "fields", "totals"}
    assert [s["path"] for s in data["stages"]] == DEEP_STEM + RESNET_REST
    assert data["stages"][1] == {
        "path": "conv1.0",
        "a": None,
        "b": {
            "path": "conv1.0",
            "type": "conv",
            "output": [1, 32, 112, 112],
            "params": 864,
            "macs": 10838016,
        },
    }


def test_diff_displays_as_tables() -> None:
    result = zoo.diff("resnet18", "d2l_resnet18")
    assert isinstance(result, SpecDiff) and not repr(result).startswith("SpecDiff(")
    markup = result._repr_html_()
    assert markup.count("<table") == 2
    assert "<caption>resnet18 (A) vs d2l_resnet18 (B)</caption>" in markup
    changed = [s for s in result.stages if s.differs]
    assert markup.count('<tr class="m">') == len(changed) == 6
    assert "<td>stages.1.shortcut.kind</td><td>conv_bn</td><td>conv</td>" in markup
    assert "<td>fc</td><td>[1, 1000]</td>" in markup and "<td>output, params, MACs</td>" in markup
    shown = str(result)
    assert "stages.1.shortcut.kind" in shown and "11,178,378" in shown
    same = zoo.diff("lenet", "lenet")
    assert "no spec field differs" in str(same) and "<p>no spec field differs</p>" in (
        same._repr_html_()
    )


def test_diff_to_pandas() -> None:
    pandas = pytest.importorskip("pandas")
    result = zoo.diff("resnet50", "resnet50d")
    frame = result.to_pandas()
    pandas.testing.assert_frame_equal(frame, pandas.DataFrame(result.rows_as_dicts()))
    assert list(frame.path) == DEEP_STEM + RESNET_REST
    assert list(frame.columns[:3]) == ["path", "a_type", "a_output"]
    assert frame.a_params.sum() == 25_557_032  # depth 1: the rows add up to the total
    assert frame.b_params.sum() == 25_576_264 + 28_640  # and conv1's children, shown too
    assert frame.set_index("path").loc["conv1.0", "differs"] == "only in B"


def test_diff_takes_specs_and_mappings() -> None:
    spec = zoo.load_spec("lenet")
    wider = zoo.load_spec("lenet", overrides=["head.5.out=20"])
    result = zoo.diff(spec, wider, (1, 1, 32, 32))
    assert (result.a, result.b) == ("lenet", "lenet")  # spec objects have no path to tell apart
    assert [(f.path, f.a, f.b) for f in result.fields] == [("head.5.out", 10, 20)]
    assert result.stages[-1].a.output == (1, 10) and result.stages[-1].b.output == (1, 20)
    with pytest.raises(ZooError, match=r"diff\(\) takes a ModelSpec"):
        zoo.diff(42, "lenet")


def test_zoo_diff_stays_the_function_whatever_was_imported() -> None:
    """The function is not shadowed by a submodule of its name (zoo.compare is its home)."""
    script = textwrap.dedent(
        """
        import zoo.cli, zoo.compare, zoo.display
        import zoo
        assert callable(zoo.diff) and zoo.diff("lenet", "lenet").fields == []
        assert zoo.benchmark("lenet")[0].params == 61706
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
