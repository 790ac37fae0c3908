"""Reading and validating specs: YAML safety, YAML 1.1 quirks, and errors located at their line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import zoo
from zoo.errors import ExitCode, ZooError

VALID_HEADER = """
name: t
input: {channels: 1, size: 8}
"""


def _problems(write_spec, text: str) -> list[str]:
    with pytest.raises(ZooError) as info:
        zoo.load_spec(write_spec(text))
    return [p.format().split(".yaml:", 1)[1] for p in info.value.problems]


def _problem_at(write_spec, text: str) -> tuple[int | None, int | None, str, str]:
    with pytest.raises(ZooError) as info:
        zoo.load_spec(write_spec(text))
    p = info.value.problems[0]
    return p.line, p.column, p.path, p.message


def test_valid_spec_round_trips(write_spec) -> None:
    spec = zoo.load_spec(
        write_spec(VALID_HEADER + "head: [{type: flatten}, {type: linear, out: 2}]\n")
    )
    assert spec.head[1].out == 2
    assert zoo.ModelSpec.model_validate(spec.model_dump()).model_dump() == spec.model_dump()


def test_unknown_field_points_at_key_with_suggestion(write_spec) -> None:
    line, col, path, message = _problem_at(
        write_spec, VALID_HEADER + "stem:\n  - {type: conv, out: 4, kernel: 3, strid: 2}\n"
    )
    assert (line, col, path) == (4, 37, "stem.0.strid")
    assert message == "unknown field; did you mean 'stride'?"


def test_unknown_type_lists_choices(write_spec) -> None:
    line, col, path, message = _problem_at(
        write_spec, VALID_HEADER + "stages:\n  - {type: basik, out: 4}\n"
    )
    assert (line, col, path) == (4, 12, "stages.0.type")
    assert message.startswith("unknown type 'basik'; did you mean 'basic'?")


def test_missing_field_points_at_mapping(write_spec) -> None:
    line, col, path, message = _problem_at(
        write_spec, VALID_HEADER + "stages:\n  - type: basic\n    depth: 2\n"
    )
    assert (line, col, path) == (4, 5, "stages.0.out")
    assert message == "missing required field 'out'"


def test_all_problems_reported_at_once(write_spec) -> None:
    problems = _problems(
        write_spec,
        VALID_HEADER
        + "stem:\n  - {type: conv, out: 0, kernel: 3}\n  - {type: relu, inplace: maybe}\n",
    )
    assert len(problems) == 2
    assert problems[0].startswith("4:23: stem.0.out: Input should be greater than 0")
    assert problems[1].startswith("5:27: stem.1.inplace: Input should be a valid boolean")


def test_duplicate_keys_rejected(write_spec) -> None:
    line, _, path, message = _problem_at(write_spec, VALID_HEADER + "name: u\n")
    assert (line, path) == (3, "name")
    assert "duplicate key 'name' (first defined at line 1)" in message


def test_yaml_syntax_error_located(write_spec) -> None:
    line, _, _, message = _problem_at(write_spec, "name: t\ninput: {channels: 1, size: 8\n")
    assert line == 3
    assert "expected ',' or '}'" in message


def test_python_tags_rejected(write_spec) -> None:
    for text in (
        "name: !!python/object/apply:os.system ['true']\n",
        "name: !!python/name:os.system ''\n",
    ):
        _, _, _, message = _problem_at(write_spec, text)
        assert "not allowed" in message or "safe loader" in message


def test_yaml_12_numbers_and_booleans(write_spec) -> None:
    spec = zoo.load_spec(
        write_spec(VALID_HEADER + "stem:\n  - {type: batchnorm, eps: 1e-5, momentum: 1E-1}\n")
    )
    assert spec.stem[0].eps == 1e-5 and spec.stem[0].momentum == 0.1
    # `on` is a string in YAML 1.2, so it is not silently taken as True
    _, _, path, _ = _problem_at(write_spec, VALID_HEADER + "stem:\n  - {type: relu, inplace: on}\n")
    assert path == "stem.0.inplace"


def test_alias_bomb_refused(write_spec) -> None:
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefg"):
        prev = "abcdefg"[i]
        rows.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    _, _, _, message = _problem_at(write_spec, "\n".join(rows) + "\n")
    assert "alias bomb" in message


@pytest.mark.parametrize("text", ["", "- 1\n- 2\n", "just a string\n"])
def test_spec_must_be_a_mapping(write_spec, text: str) -> None:
    _, _, _, message = _problem_at(write_spec, text)
    assert "a spec must be a mapping" in message


def test_needs_a_layer(write_spec) -> None:
    _, _, _, message = _problem_at(write_spec, VALID_HEADER)
    assert "at least one layer" in message


def test_missing_file_and_unknown_name() -> None:
    with pytest.raises(ZooError) as info:
        zoo.load_spec("resnet33")
    assert info.value.exit_code == ExitCode.IO_ERROR
    assert "did you mean 'resnet34'?" in str(info.value)
    with pytest.raises(ZooError, match=r"no such file: nowhere/x\.yaml"):
        zoo.load_spec("nowhere/x.yaml")


def test_bottleneck_width_must_divide(write_spec) -> None:
    _, _, path, message = _problem_at(
        write_spec, VALID_HEADER + "stages:\n  - {type: bottleneck, out: 10}\n"
    )
    assert path == "stages.0"
    assert "divisible by expansion" in message


ODD_DOCUMENTS = [
    "a: 010\nb: 0o10\nc: 0x10\nd: 1:30\ne: 1_000\nf: yes\ng: .inf\nh: ~\ni: 1e-5\n",
    "base: &b {x: 1, y: [1, 2]}\nuse:\n  <<: *b\n  y: 3\n",
    "name: ünïcödé\nlist: [é, {ü: 1}, 'ß']\n",
    "a: 1\na: 2\n",
    "a: [" * 70 + "]" * 70 + "\n",
    "a: \x07\n",
    "key: !!python/object/apply:os.system ['true']\n",
    "{unclosed: [1, 2\n",
    "\tname: tab\n",
]


def _both_loaders(text: str, monkeypatch: pytest.MonkeyPatch) -> list:
    """load_yaml's result with libyaml's parser and with PyYAML's own, as comparable values."""
    from zoo.spec import yaml_loader

    results = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(yaml_loader, "_fast_load", lambda text, located: False)
        try:
            located = yaml_loader.load_yaml(text, "x.yaml")
            results.append((located.data, located.key_marks, located.value_marks))
        except ZooError as exc:
            results.append([p.format() for p in exc.problems])
    return results


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="libyaml is not installed")
@pytest.mark.parametrize(
    "text",
    [
        *(p.read_text() for p in sorted(Path(__file__).parents[1].glob("specs/*.yaml"))),
        *(
            p.read_text(errors="replace")
            for p in sorted(Path(__file__).parent.glob("invalid/*.yaml"))
        ),
        *ODD_DOCUMENTS,
    ],
)
def test_libyaml_reads_exactly_as_pyyaml(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path (libyaml) gives the same data and line:col marks as PyYAML's, and every
    problem is reported by PyYAML's path, word for word."""
    fast, slow = _both_loaders(text, monkeypatch)
    assert fast == slow


def test_a_changed_base_is_read_again(tmp_path: Path) -> None:
    """Bases are read once per process, by path, inode, size and mtime: an edit is seen."""
    import os

    base = tmp_path / "base.yaml"
    base.write_text("name: base\ninput: {channels: 1, size: 8}\nhead: [{type: linear, out: 2}]\n")
    variant = tmp_path / "variant.yaml"
    variant.write_text("extends: base.yaml\nname: variant\nstem: [{type: flatten}]\n")
    assert zoo.trace(zoo.load_spec(variant)).output == (1, 2)
    stat = base.stat()
    base.write_text(base.read_text().replace("out: 2", "out: 3"))  # the same size
    os.utime(base, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert zoo.trace(zoo.load_spec(variant)).output == (1, 3)
