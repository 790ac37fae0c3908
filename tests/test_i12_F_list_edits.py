"""List edits in `extends:` ($insert, $delete, $replace, $append beside index patches) and in
`--set`: what they do, located errors for every misuse, the shipped specs that use them, and the
JSON Schema that editors check variant files with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import zoo
from tests.conftest import run_cli
from zoo.errors import ExitCode, ZooError
from zoo.reference import json_schema
from zoo.spec.inherit import LIST_EDITS, resolve_extends
from zoo.spec.load import resolve, resolved_yaml
from zoo.spec.yaml_loader import load_yaml

BASE = """\
name: base
input: {channels: 3, size: 32}
stem:
  - {type: conv, name: c1, out: 8, kernel: 3, padding: 1}
  - {type: batchnorm, name: bn1}
  - {type: relu, name: act}
  - {type: maxpool, kernel: 2}
stages:
  - {type: basic, name: s1, out: 8, depth: 2}
  - {type: basic, name: s2, out: 16, depth: 2, stride: 2}
head:
  - {type: adaptive_avgpool}
  - {type: flatten}
  - {type: linear, name: fc, out: 10}
"""

CONV2 = {"type": "conv", "name": "c2", "out": 16, "kernel": 1}


def _child(write_spec, body: str, base: str = BASE) -> Path:
    write_spec(base, "base.yaml")
    return write_spec("name: child\nextends: base.yaml\n" + body, "child.yaml")


def _stem(path: Path) -> list[dict[str, Any]]:
    return resolve(path).data["stem"]


def _labels(items: list[dict[str, Any]]) -> list[str]:
    return [item.get("name", item["type"]) for item in items]


# --------------------------------------------------------------------------- what edits do
def test_the_four_edits_and_an_index_patch_together(write_spec) -> None:
    child = _child(
        write_spec,
        """\
stem:
  0: {out: 16}
  $insert: {3: [{type: conv, name: c2, out: 16, kernel: 1}]}
  $delete: [1]
  $replace: {-2: {type: silu, name: act}}
  $append: [{type: dropout, p: 0.1}]
""",
    )
    assert _stem(child) == [
        {"type": "conv", "name": "c1", "out": 16, "kernel": 3, "padding": 1},
        {"type": "silu", "name": "act"},  # replaced: nothing of the relu is kept
        CONV2,
        {"type": "maxpool", "kernel": 2},
        {"type": "dropout", "p": 0.1},
    ]
    # the variant builds, and its resolved YAML (no edits left in it) is the same spec
    text = resolved_yaml(resolve(child))
    assert not any(edit in text for edit in LIST_EDITS)
    again = zoo.load_spec(write_spec(text, "resolved.yaml"))
    assert again.model_dump() == zoo.load_spec(child).model_dump()
    assert zoo.trace(again).output == (1, 10)


def test_indices_name_the_base_list_so_key_order_does_not_matter(write_spec) -> None:
    edits = [
        "  $delete: [0, 1]",
        "  $insert: {2: [{type: conv, name: c2, out: 16, kernel: 1}]}",
        "  -1: {kernel: 3}",
    ]
    first = _stem(_child(write_spec, "stem:\n" + "\n".join(edits) + "\n"))
    second = _stem(_child(write_spec, "stem:\n" + "\n".join(reversed(edits)) + "\n"))
    # deleting items 0 and 1 does not renumber item 2: c2 goes before the relu
    assert _labels(first) == ["c2", "act", "maxpool"] and first[-1]["kernel"] == 3
    assert first == second


@pytest.mark.parametrize(
    ("edits", "labels"),
    [
        # inserting before an item goes with anything done to the item itself
        ("{$insert: {1: [{type: relu}]}, $delete: 1}", ["c1", "relu", "act", "maxpool"]),
        ("{$insert: {1: [{type: relu}]}, 1: {name: bn}}", ["c1", "relu", "bn", "act", "maxpool"]),
        ("{$insert: {-1: [{type: relu}]}, $delete: -1}", ["c1", "bn1", "act", "relu"]),
        ("{$insert: {0: [{type: relu}]}}", ["relu", "c1", "bn1", "act", "maxpool"]),
        ("{$delete: [0, 1, 2, 3]}", []),
        # two patches of one item merge in turn
        ("{0: {name: a}, -4: {out: 4}}", ["a", "bn1", "act", "maxpool"]),
    ],
)
def test_edit_combinations(write_spec, edits: str, labels: list[str]) -> None:
    assert _labels(_stem(_child(write_spec, f"stem: {edits}\n"))) == labels


def test_edits_nest_in_patches_and_chains_use_their_own_base(write_spec) -> None:
    base = BASE.replace(
        "  - {type: maxpool, kernel: 2}\n",
        "  - {type: sequential, name: tail, layers: [{type: maxpool, kernel: 2}]}\n",
    )
    child = _child(write_spec, "stem: {3: {layers: {$append: [{type: relu}]}}}\n", base)
    assert _labels(_stem(child)[3]["layers"]) == ["maxpool", "relu"]
    # a variant of the variant: its indices name its base's list as resolved (c1, bn1, act, tail)
    grandchild = write_spec(
        "name: grandchild\nextends: child.yaml\n"
        "stem: {$delete: [1, 2], 3: {layers: {$insert: {1: [{type: silu}]}}}}\n",
        "grandchild.yaml",
    )
    stem = _stem(grandchild)
    assert _labels(stem) == ["c1", "tail"]
    assert _labels(stem[1]["layers"]) == ["maxpool", "silu", "relu"]


def test_a_mapping_spec_takes_list_edits(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = zoo.load_spec(
        {"name": "s", "extends": "squeezenet1_0", "stages": {0: {"layers": {"$delete": [11]}}}}
    )
    assert len(spec.stages[0].layers) == 12
    assert zoo.trace(spec).params == zoo.trace("squeezenet1_0").params


# --------------------------------------------------------------------------- errors, located
def _error(path: Path | str, overrides: tuple[str, ...] = ()) -> zoo.Problem:
    with pytest.raises(ZooError) as info:
        zoo.trace(zoo.load_spec(path, overrides))
    return info.value.problems[0]


@pytest.mark.parametrize(
    ("body", "line", "col", "path", "message"),
    [
        ("stem: {$insrt: {0: [{type: relu}]}}\n", 3, 8, "stem.$insrt", "did you mean $insert?"),
        ("stem: {$move: 1}\n", 3, 8, "stem.$move", "unknown list edit $move; the edits are"),
        (
            "stem: {c1: {out: 3}}\n",
            3,
            8,
            "stem.c1",
            "stem is a list in the base spec: patch it by index ({2: {depth: 23}}), edit it with "
            "$insert, $delete, $replace or $append, or replace it with a list",
        ),
        # out-of-range indices, for every edit
        (
            "stem: {$delete: [1, 4]}\n",
            3,
            21,
            "stem.$delete.1",
            "index 4 is out of range: the base list has 4 items (indices name",
        ),
        ("stem: {$delete: -5}\n", 3, 17, "stem.$delete", "index -5 is out of range"),
        (
            "stem: {$replace: {9: {type: relu}}}\n",
            3,
            19,
            "stem.$replace.9",
            "index 9 is out of range",
        ),
        (
            "stem: {$insert: {7: [{type: relu}]}}\n",
            3,
            18,
            "stem.$insert.7",
            "index 7 is out of range",
        ),
        (
            "stem: {$insert: {4: [{type: relu}]}}\n",
            3,
            18,
            "stem.$insert.4",
            "index 4 is out of range: the base list has 4 items; $append adds items after the last one",
        ),
        (
            "stem: {$delete: [one]}\n",
            3,
            18,
            "stem.$delete.0",
            "expected an index of the base list (an integer), got 'one'",
        ),
        # conflicting edits of one item, reported where the second is written
        (
            "stem:\n  $delete: [1]\n  1: {name: bn}\n",
            5,
            3,
            "stem.1",
            "item 1 of the base list is deleted by stem.$delete.0 (line 4) and patched here",
        ),
        (
            "stem:\n  2: {name: a}\n  $replace: {-2: {type: silu}}\n",
            5,
            14,
            "stem.$replace.-2",
            "item 2 of the base list is patched by stem.2 (line 4) and replaced here",
        ),
        (
            "stem: {$delete: [3, -1]}\n",
            3,
            21,
            "stem.$delete.1",
            "item 3 of the base list is deleted by stem.$delete.0 (line 3) and deleted here",
        ),
        (
            "stem:\n  $replace: {0: {type: relu}}\n  $delete: 0\n",
            5,
            12,
            "stem.$delete",
            "is replaced by stem.$replace.0 (line 4) and deleted here",
        ),
        (
            "stem: {$insert: {3: [{type: relu}], -1: [{type: silu}]}}\n",
            3,
            37,
            "stem.$insert.-1",
            "items are inserted before item 3 by stem.$insert.3 (line 3) already; give them all in one list",
        ),
        # edits of the wrong shape
        (
            "stem: {1: null}\n",
            3,
            8,
            "stem.1",
            "null is not an item; to delete it, write $delete: 1",
        ),
        (
            "stem: {$insert: [{type: relu}]}\n",
            3,
            17,
            "stem.$insert",
            "$insert takes the base index to insert before and the items",
        ),
        (
            "stem: {$insert: {1: {type: relu}}}\n",
            3,
            21,
            "stem.$insert.1",
            "got a mapping; put the item in a list: [ITEM]",
        ),
        (
            "stem: {$append: []}\n",
            3,
            17,
            "stem.$append",
            "expected a list of items ($append: [ITEM, ...]), got an empty list",
        ),
        (
            "stem: {$delete: []}\n",
            3,
            17,
            "stem.$delete",
            "$delete takes a base index or a list of them",
        ),
        (
            "stem: {$replace: [{type: relu}]}\n",
            3,
            18,
            "stem.$replace",
            "$replace takes base indices and their new items",
        ),
        # edits where there is no base list
        (
            "input: {$delete: 0}\n",
            3,
            9,
            "input.$delete",
            "$delete edits a list, but input is a mapping in the base spec",
        ),
        (
            "$append: [{type: relu}]\n",
            3,
            1,
            "$append",
            "$append edits a list, but the spec is a mapping",
        ),
        (
            "input: {size: {$append: [1]}}\n",
            3,
            16,
            "input.size.$append",
            "$append has no list to edit: input.size is an integer in the base spec",
        ),
        (
            "stem: {$append: [{type: sequential, layers: {$delete: 0}}]}\n",
            3,
            46,
            "stem.$append.0.layers.$delete",
            "$delete has no list to edit: items given by $insert, $replace and $append are taken as written",
        ),
        (
            "stem: {3: {layers: {$append: [{type: relu}]}}}\n",
            3,
            21,
            "stem.3.layers.$append",
            "$append has no list to edit: stem.3.layers is not in the base spec; write the list itself",
        ),
    ],
)
def test_located_errors(
    write_spec, body: str, line: int, col: int, path: str, message: str
) -> None:
    problem = _error(_child(write_spec, body))
    assert (Path(problem.file).name, problem.line, problem.column, problem.path) == (
        "child.yaml",
        line,
        col,
        path,
    ), problem
    assert message in problem.message
    assert problem.kind == "extends"


def test_a_spec_without_a_base_takes_no_edits(write_spec) -> None:
    plain = BASE.split("stem:")[0] + "stem: {$append: [{type: relu}]}\nhead: []\n"
    problem = _error(write_spec(plain, "plain.yaml"))
    assert (Path(problem.file).name, problem.line, problem.path) == (
        "plain.yaml",
        3,
        "stem.$append",
    )
    assert problem.message == (
        "$append has no list to edit: this spec extends no base; write the list itself"
    )


def test_errors_point_into_the_file_that_wrote_the_item(write_spec) -> None:
    # a mistake in a base item that moved (two items inserted before it) is still at its line
    base = BASE.replace("{type: maxpool, kernel: 2}", "{type: maxpool, kernal: 2}")
    child = _child(write_spec, "stem: {$insert: {0: [{type: relu}, {type: relu}]}}\n", base)
    with pytest.raises(ZooError) as info:
        zoo.load_spec(child)
    problems = {(Path(p.file).name, p.line, p.column, p.path) for p in info.value.problems}
    assert ("base.yaml", 7, 21, "stem.5.kernal") in problems
    # a mistake in an inserted item is in the variant, at the item's line
    child = _child(
        write_spec, "stem:\n  $append:\n    - {type: relu}\n    - {type: conv, outt: 3}\n"
    )
    with pytest.raises(ZooError) as info:
        zoo.load_spec(child)
    problems = {(Path(p.file).name, p.line, p.column, p.path) for p in info.value.problems}
    assert ("child.yaml", 6, 20, "stem.5.outt") in problems


def test_the_cli_prints_file_line_col(capsys, write_spec) -> None:
    code, _, err = run_cli(capsys, "build", str(_child(write_spec, "stem: {$delete: [1, 9]}\n")))
    assert code == ExitCode.SPEC_ERROR
    assert "child.yaml:3:21: stem.$delete.1: index 9 is out of range" in err


# --------------------------------------------------------------------------- --set
def test_set_keeps_working_on_a_spec_with_edits() -> None:
    # squeezenet1_1 inserts a max-pool at layer 5: --set names the resolved list's items
    spec = zoo.load_spec("squeezenet1_1", ["stages.0.layers.5.kernel=2", "head.0.layers.1.out=10"])
    assert (spec.stages[0].layers[5].type, spec.stages[0].layers[5].kernel) == ("maxpool", 2)
    assert zoo.trace(spec).output == (1, 10)


def test_set_with_a_mapping_edits_a_list(capsys) -> None:
    spec = zoo.load_spec("squeezenet1_0", ["stages.0.layers={$delete: [11], 0: {out: 64}}"])
    layers = spec.stages[0].layers
    assert len(layers) == 12 and layers[0].out == 64 and layers[11].type == "fire"
    assert zoo.load_spec("resnet18", ["head={2: {out: 7}}"]).head[2].out == 7
    code, out, _ = run_cli(
        capsys, "resolve", "resnet18", "--set", "stem={$delete: -1, $append: [{type: relu}]}"
    )
    assert code == 0
    assert [layer["type"] for layer in yaml.safe_load(out)["stem"]] == [
        "conv",
        "batchnorm",
        "relu",
        "relu",
    ]


@pytest.mark.parametrize(
    ("override", "path", "message"),
    [
        ("stem={$delete: [4]}", "stem.$delete.0", "index 4 is out of range: the base list has 4"),
        ("stem={$delete: 0, 0: {out: 3}}", "stem.0", "deleted by stem.$delete and patched here"),
        ("input={$delete: 0}", "input.$delete", "$delete has no list to edit: input is a mapping"),
        ("stem.0={$delete: 0}", "stem.0.$delete", "stem.0 is a mapping, not a list"),
    ],
)
def test_set_edit_errors_are_usage_errors(override: str, path: str, message: str) -> None:
    with pytest.raises(ZooError) as info:
        zoo.load_spec("resnet18", [override])
    problem = info.value.problems[0]
    assert info.value.exit_code == ExitCode.USAGE_ERROR
    assert (problem.file, problem.path, problem.kind) == ("--set", path, "override")
    assert message in problem.message


# --------------------------------------------------------------------------- shipped specs
SPECS_WITH_EDITS = {
    # torchvision's parameter counts (its documentation's num_params)
    "squeezenet1_1": 1_235_496,
    "vgg11_bn": 132_868_840,
    "efficientnet_v2_m": 54_139_356,
    "efficientnet_v2_l": 118_515_272,
}


@pytest.mark.parametrize("name", sorted(SPECS_WITH_EDITS))
def test_shipped_specs_use_list_edits(name: str) -> None:
    text = (Path(zoo.__file__).parent.parent / "specs" / f"{name}.yaml").read_text()
    assert "$insert" in text and len(text.splitlines()) <= 20
    assert zoo.trace(name).params == SPECS_WITH_EDITS[name]


def test_squeezenet1_1_is_squeezenet1_0_with_its_pools_moved() -> None:
    layers = resolve("squeezenet1_1").data["stages"][0]["layers"]
    assert [(layer["type"], layer.get("squeeze")) for layer in layers] == [
        ("conv", None),
        ("relu", None),
        ("maxpool", None),
        ("fire", 16),
        ("fire", 16),
        ("maxpool", None),
        ("fire", 32),
        ("fire", 32),
        ("maxpool", None),
        ("fire", 48),
        ("fire", 48),
        ("fire", 64),
        ("fire", 64),
    ]
    assert (layers[0]["out"], layers[0]["kernel"], layers[0]["stride"]) == (64, 3, 2)


def test_the_json_schema_accepts_edits_in_variants_only(write_spec) -> None:
    """Editors check a file with the schema: a variant (with `extends`) is a partial spec, so
    edits pass; a whole spec's lists are lists."""
    validator = jsonschema.Draft202012Validator(json_schema())
    specs = Path(zoo.__file__).parent.parent / "specs"
    for name in SPECS_WITH_EDITS:
        assert not list(validator.iter_errors(yaml.safe_load((specs / f"{name}.yaml").read_text())))
    variant = yaml.safe_load(
        "name: v\nextends: base\nstem: {0: {out: 3}, $insert: {1: [{type: relu}]}, "
        "$delete: [2], $replace: {3: {type: silu}}, $append: [{type: relu}]}\n"
    )
    assert not list(validator.iter_errors(variant))
    whole = yaml.safe_load(BASE)
    assert not list(validator.iter_errors(whole))
    whole["stem"] = {"$append": [{"type": "relu"}]}
    assert list(validator.iter_errors(whole))


# --------------------------------------------------------------------------- properties
def _resolve_texts(base: str, child: str) -> Any:
    """Resolve ``child`` (which extends base.yaml) from texts, without files."""
    texts = {"base.yaml": base, "child.yaml": child}
    return resolve_extends(
        load_yaml(child, "child.yaml"),
        lambda path: load_yaml(texts[str(path)], str(path)),
        lambda ref, _folder: Path(ref),
    )


@st.composite
def _edits(draw: st.DrawFn) -> tuple[int, dict[str, Any]]:
    """A base list's length and random valid edits of it: each item at most one of patched,
    replaced or deleted (written as a positive or a negative index), inserts before any item."""
    n = draw(st.integers(0, 6))
    positions = st.integers(0, n - 1) if n else st.nothing()
    taken = draw(st.lists(positions, unique=True, max_size=n))
    kinds = draw(st.lists(st.sampled_from("dpr"), min_size=len(taken), max_size=len(taken)))
    edits: dict[str, Any] = {"d": {}, "p": {}, "r": {}}
    for position, kind in zip(taken, kinds, strict=True):
        edits[kind][position] = position - n if draw(st.booleans()) else position
    edits["insert"] = {p: draw(st.integers(1, 2)) for p in draw(st.lists(positions, unique=True))}
    edits["append"] = draw(st.integers(0, 2))
    return n, edits


def _relu(name: str) -> str:
    return f"{{type: relu, name: {name}}}"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(_edits())
def test_edits_match_a_model_and_every_item_keeps_its_line(
    case: tuple[int, dict[str, Any]],
) -> None:
    n, edits = case
    base = "stem:\n" + "".join(f"  - {_relu(f'b{i}')}\n" for i in range(n)) if n else "stem: []\n"
    lines = ["extends: base.yaml", "stem:"]
    lines += [f"  {index}: {{name: p{p}}}" for p, index in edits["p"].items()]
    if edits["insert"]:
        lines.append("  $insert:")
        for p, count in edits["insert"].items():
            lines += [f"    {p}:"] + [f"      - {_relu(f'i{p}_{k}')}" for k in range(count)]
    if edits["r"]:
        lines.append("  $replace:")
        lines += [f"    {index}: {{type: silu, name: r{p}}}" for p, index in edits["r"].items()]
    if edits["d"]:
        lines.append(f"  $delete: {list(edits['d'].values())}")
    if edits["append"]:
        lines += ["  $append:"] + [f"    - {_relu(f'a{k}')}" for k in range(edits["append"])]
    if len(lines) == 2:
        return  # nothing to edit
    # the model: inserts before each base item, then the item as patched or replaced, if kept
    expected: list[str] = []
    for i in range(n):
        expected += [f"i{i}_{k}" for k in range(edits["insert"].get(i, 0))]
        if i not in edits["d"]:
            expected.append(f"p{i}" if i in edits["p"] else f"r{i}" if i in edits["r"] else f"b{i}")
    expected += [f"a{k}" for k in range(edits["append"])]
    text = "\n".join(lines) + "\n"
    located = _resolve_texts(base, text)
    assert [item["name"] for item in located.data["stem"]] == expected
    # every name is marked at a line that writes it, in the file that writes it
    files = {"base.yaml": base.splitlines(), "child.yaml": lines}
    for j, name in enumerate(expected):
        file, line, _ = located.value_marks[("stem", j, "name")]
        assert name in files[file][line - 1], (j, name, text)


edit_values = st.recursive(
    st.one_of(st.integers(-8, 8), st.none(), st.booleans(), st.sampled_from(["x", "$delete"])),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.one_of(st.integers(-8, 8), st.sampled_from([*LIST_EDITS, "$x", "type", "name"])),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from(["stem", "input", "head", "new"]), edit_values, max_size=2))
def test_any_edit_fails_as_a_located_zoo_error(overlay: dict[str, Any]) -> None:
    child = yaml.safe_dump({"name": "child", "extends": "base.yaml", **overlay})
    try:
        located = _resolve_texts(BASE, child)
    except ZooError as exc:
        assert exc.problems[0].message and exc.problems[0].kind == "extends"
        assert "\n" not in exc.problems[0].format()
    else:  # no edit is left in the data
        assert not _keys(located.data) & set(LIST_EDITS)


def _keys(data: Any) -> set[Any]:
    if isinstance(data, dict):
        return set(data).union(*(_keys(v) for v in data.values()))
    if isinstance(data, list):
        return set().union(*(_keys(v) for v in data))
    return set()
