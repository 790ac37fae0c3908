"""Variants by inheritance (`extends:`), `--set` overrides and `zoo resolve`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import zoo
from tests.conftest import SPEC_NAMES
from zoo.cli import main
from zoo.errors import ZooError
from zoo.spec.load import resolve, resolved_yaml, validate

BASE = """
name: base
input: {channels: 3, size: 32}
stem:
  - {type: conv, name: c1, out: 8, kernel: 3, padding: 1}
  - {type: relu}
stages:
  - {type: basic, name: s1, out: 8, depth: 2}
  - {type: basic, name: s2, out: 16, depth: 2, stride: 2}
head:
  - {type: adaptive_avgpool}
  - {type: flatten}
  - {type: linear, name: fc, out: 10}
"""


def _error(spec: Path | str, overrides: tuple[str, ...] = ()) -> zoo.Problem:
    with pytest.raises(ZooError) as info:
        zoo.trace(zoo.load_spec(spec, overrides))
    return info.value.problems[0]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_resolve_round_trips(name: str, tmp_path: Path) -> None:
    located = resolve(name)
    text = resolved_yaml(located)
    assert "extends" not in yaml.safe_load(text)
    (tmp_path / "resolved.yaml").write_text(text)
    again = zoo.load_spec(tmp_path / "resolved.yaml")
    assert again.model_dump() == zoo.load_spec(name).model_dump()
    assert zoo.trace(again).params == zoo.trace(name).params


def test_mappings_merge_lists_replace_and_patch_by_index(write_spec) -> None:
    write_spec(BASE, "base.yaml")
    child = write_spec(
        """
        name: child
        extends: base.yaml
        input: {size: 64}
        stages: {1: {depth: 3}, -1: {out: 32}}
        head:
          - {type: adaptive_avgpool}
          - {type: flatten}
          - {type: linear, out: 5}
        """,
        "child.yaml",
    )
    spec = zoo.load_spec(child)
    assert spec.name == "child" and spec.input.channels == 3 and spec.input.size == 64
    assert (spec.stages[1].depth, spec.stages[1].out, spec.stages[1].stride) == (3, 32, 2)
    assert spec.stages[0].depth == 2
    assert spec.head[2].out == 5 and spec.head[2].name is None  # the list was replaced whole


def test_shipped_name_and_chains(write_spec) -> None:
    path = write_spec("name: r200\nextends: resnet152\nstages: {2: {depth: 36}, 1: {depth: 24}}\n")
    # 16 more layer2 bottlenecks (512 -> 128 -> 512): 1x1, 3x3, 1x1 convs and three BNs each
    block = 512 * 128 + 2 * 128 + 128 * 128 * 9 + 2 * 128 + 128 * 512 + 2 * 512
    assert zoo.trace(zoo.load_spec(path)).params == 60_192_808 + 16 * block
    assert zoo.load_spec(path).description.startswith("ResNet-152")  # inherited through two files


def test_errors_point_into_the_file_that_wrote_the_value(write_spec) -> None:
    base = write_spec(BASE.replace("out: 16, depth: 2", "out: 16, depht: 2"), "base.yaml")
    child = write_spec("name: child\nextends: base.yaml\nstages: {0: {depth: 0}}\n", "child.yaml")
    with pytest.raises(ZooError) as info:
        zoo.load_spec(child)
    problems = {(Path(p.file).name, p.line, p.path) for p in info.value.problems}
    assert ("child.yaml", 3, "stages.0.depth") in problems
    assert ("base.yaml", 8, "stages.1.depht") in problems
    assert str(base).endswith("base.yaml")


@pytest.mark.parametrize(
    ("child", "line", "message"),
    [
        ("name: c\nextends: nothere\n", 2, "base spec not found"),
        ("name: c\nextends: missing/base.yaml\n", 2, "base spec not found: no such file"),
        ("name: c\nextends: 3\n", 2, "extends must be a spec name or a relative path"),
        (
            "name: c\nextends: base.yaml\nstages: {7: {depth: 1}}\n",
            3,
            "index 7 is out of range: the base list has 2 items",
        ),
        ("name: c\nextends: base.yaml\nstages: {s1: {depth: 1}}\n", 3, "patch it by index"),
    ],
)
def test_located_extends_errors(write_spec, child: str, line: int, message: str) -> None:
    write_spec(BASE, "base.yaml")
    problem = _error(write_spec(child, "child.yaml"))
    assert Path(problem.file).name == "child.yaml" and problem.line == line
    assert message in problem.message


def test_extends_cycle(write_spec) -> None:
    write_spec("name: a\nextends: b.yaml\n", "a.yaml")
    write_spec("name: b\nextends: a.yaml\n", "b.yaml")
    problem = _error(write_spec("name: c\nextends: a.yaml\n", "c.yaml"))
    assert "extends cycle: c.yaml -> a.yaml -> b.yaml -> a.yaml" in problem.message


def test_set_overrides_validated_like_the_file(write_spec) -> None:
    spec = zoo.load_spec("resnet50", ["stages.2.depth=23", "head.2.out=10", "input.size=[128, 96]"])
    assert zoo.trace(spec).params == zoo.trace("resnet101").params - 2048 * 990 - 990
    assert spec.input.size == (128, 96)
    problem = _error("resnet50", ("stages.2.depth=-1",))
    assert (problem.file, problem.path, problem.kind) == ("--set", "stages.2.depth", "greater_than")
    problem = _error("resnet50", ("stages.2.strid=2",))
    assert problem.message == "unknown field; did you mean 'stride'?"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("stages.9.depth=1", "no item stages.9: the list stages has 4 items"),
        ("name.x=1", "name is a str, not a mapping or list"),
        ("depth", "expected PATH=VALUE"),
        ("stages.0.depth=[1", "expected ',' or ']'"),
    ],
)
def test_set_errors(override: str, message: str) -> None:
    assert message in _error("resnet18", (override,)).message


def test_cli_resolve_and_set(capsys, tmp_path: Path) -> None:
    assert main(["resolve", "resnet152", "--set", "head.2.out=7"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "r.yaml").write_text(text)
    spec = zoo.load_spec(tmp_path / "r.yaml")
    assert spec.head[2].out == 7 and spec.stages[2].depth == 36
    assert main(["build", "resnet18", "--set", "stages.0.depth=0"]) == 1
    assert "--set: stages.0.depth: Input should be greater than 0" in capsys.readouterr().err
    assert validate(resolve("vgg16")).name == "vgg16"


def test_a_mapping_of_another_type_replaces_the_base_one(write_spec) -> None:
    # lenet's layer 0 is a conv (out, kernel, padding) and layer 1 a sigmoid: a patch that changes
    # a layer's type brings its own fields, none of the old type's
    child = write_spec(
        "name: child\nextends: lenet\n"
        "stages: {0: {type: conv, out: 8}, 1: {type: relu, inplace: true}}\n",
        "child.yaml",
    )
    spec = zoo.load_spec(child)
    assert (spec.stages[0].out, spec.stages[0].kernel, spec.stages[0].padding) == (8, 5, 2)
    assert spec.stages[1].type == "relu" and spec.stages[1].inplace is True
    swapped = write_spec(
        "name: swapped\nextends: lenet\nstages: {2: {type: maxpool, kernel: 2}}\n", "swapped.yaml"
    )
    # avgpool's stride 2 is not carried over: maxpool's stride defaults to its kernel
    assert zoo.load_spec(swapped).stages[2].model_dump(exclude_unset=True) == {
        "type": "maxpool",
        "kernel": 2,
    }


def test_an_unknown_field_of_a_nested_mapping_is_matched_against_its_own_fields(
    write_spec,
) -> None:
    path = write_spec(
        "name: x\ninput: {channels: 1, sise: [28, 28]}\n"
        "stages: [{type: conv, out: 4, kernel: 3}]\nhead: [{type: flatten}]\n"
    )
    with pytest.raises(ZooError) as caught:
        zoo.load_spec(path)
    assert "input.sise: unknown field; did you mean 'size'?" in str(caught.value)
