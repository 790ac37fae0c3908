"""Input hardening (issue 9): what zoo reads, how it reads it, and where it says a problem is.

Files: size, type and name are checked before a byte is read, and a file that is not a spec is
never echoed. YAML: the 1.2 core schema exactly, keys that are names or list indices, recursive
aliases and deep nesting refused at their line. API: ``load_spec`` takes a mapping, and refuses
anything else it cannot read with a ``ZooError``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import zoo
from tests.conftest import run_cli
from zoo.errors import ExitCode, ZooError
from zoo.spec.load import find_spec, resolve
from zoo.spec.yaml_loader import load_yaml

SECRET = "admin:$6$hunter2Hash:19000:0:99999:7:::"

SPEC = """
name: t
input: {channels: 1, size: 8}
head: [{type: flatten}, {type: linear, out: 2}]
"""

DATA = {
    "name": "t",
    "input": {"channels": 1, "size": 8},
    "head": [{"type": "flatten"}, {"type": "linear", "out": 2}],
}


def _error(spec: object, overrides: object = ()) -> ZooError:
    with pytest.raises(ZooError) as info:
        zoo.load_spec(spec, overrides)  # type: ignore[arg-type]
    return info.value


def _child(write_spec, ref: str) -> Path:
    return write_spec(f"name: child\nextends: {ref}\n", "child.yaml")


# --------------------------------------------------------------------------- 9: size first
def _sparse(path: Path) -> Path:
    with path.open("wb") as handle:
        handle.truncate(6 * 2**30)  # 6 GB of nothing: reading it whole would exhaust memory
    return path


def test_huge_spec_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = _sparse(tmp_path / "big.yaml")
    error = _error(big)
    assert error.exit_code == ExitCode.IO_ERROR
    assert "larger than 1000000 bytes" in error.problems[0].message
    assert error.problems[0].file == str(big)


def test_huge_base_is_refused_before_it_is_read(tmp_path: Path, write_spec) -> None:
    _sparse(tmp_path / "big.yaml")
    error = _error(_child(write_spec, "big.yaml"))
    assert error.exit_code == ExitCode.IO_ERROR
    assert "larger than 1000000 bytes" in error.problems[0].message


def test_one_byte_over_the_limit_is_refused(write_spec) -> None:
    from zoo.spec.yaml_loader import MAX_BYTES

    path = write_spec("#" * MAX_BYTES + "\n")
    assert "larger than" in _error(path).problems[0].message


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: t\ndescription: ÿ\nsize: é".encode() + b"\xe9t\n")  # then Latin-1
    error = _error(path)
    problem = error.problems[0]
    assert error.exit_code == ExitCode.SPEC_ERROR
    assert (problem.line, problem.column) == (3, 8)  # columns count characters, not bytes
    assert problem.message.startswith("invalid UTF-8 (byte 0xe9)")


# --------------------------------------------------------------------------- 10: what is read
@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET + "\n")
    return path


def _assert_not_echoed(error: ZooError) -> None:
    assert "hunter2" not in str(error) and "admin" not in str(error)


def test_spec_argument_must_be_a_yaml_file(secret: Path) -> None:
    error = _error(secret)
    assert error.exit_code == ExitCode.IO_ERROR and len(error.problems) == 1
    assert "is not a .yaml/.yml file" in error.problems[0].message
    _assert_not_echoed(error)


def test_absolute_spec_path_that_is_no_yaml_is_refused(secret: Path) -> None:
    assert secret.is_absolute()
    error = _error(str(secret))
    assert error.exit_code == ExitCode.IO_ERROR
    _assert_not_echoed(error)


def test_symlink_named_yaml_to_a_non_yaml_file_is_refused(tmp_path: Path, secret: Path) -> None:
    link = tmp_path / "innocent.yaml"
    link.symlink_to(secret)
    error = _error(link)
    assert "links to" in error.problems[0].message and "not a .yaml/.yml file" in str(error)
    _assert_not_echoed(error)


def test_yaml_symlink_to_a_yaml_file_is_read(tmp_path: Path, write_spec) -> None:
    (tmp_path / "latest.yaml").symlink_to(write_spec(SPEC, "v3.yml"))
    assert zoo.load_spec(tmp_path / "latest.yaml").name == "t"


def test_directory_spec_is_reported_as_a_directory(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").mkdir()
    error = _error(tmp_path / "d.yaml")
    assert error.exit_code == ExitCode.IO_ERROR
    assert "is a directory" in error.problems[0].message


def test_fifo_spec_is_reported_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p.yaml")  # opening it for reading would wait for a writer forever
    error = _error(tmp_path / "p.yaml")
    assert error.exit_code == ExitCode.IO_ERROR
    assert "is a FIFO" in error.problems[0].message


@pytest.mark.parametrize("spec", ["", "   "])
def test_empty_spec_argument_is_a_usage_error(spec: str) -> None:
    with pytest.raises(ZooError) as info:
        find_spec(spec)
    assert info.value.exit_code == ExitCode.USAGE_ERROR
    assert info.value.problems[0].message.startswith("no spec given")


def test_cli_empty_spec_argument(capsys) -> None:
    code, _, err = run_cli(capsys, "build", "")
    assert code == ExitCode.USAGE_ERROR
    assert "no spec given" in err and "directory" not in err


def test_shipped_name_wins_over_a_local_folder_of_that_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lenet").mkdir()
    assert zoo.load_spec("lenet").name == "lenet"


def _extends_error(write_spec, ref: str) -> ZooError:
    error = _error(_child(write_spec, ref))
    problem = error.problems[0]
    assert (Path(problem.file).name, problem.line, problem.path) == ("child.yaml", 2, "extends")
    _assert_not_echoed(error)
    return error


def test_extends_refuses_a_file_that_is_not_yaml(write_spec, secret: Path) -> None:
    error = _extends_error(write_spec, "secret.txt")
    assert "secret.txt is not a .yaml/.yml file" in error.problems[0].message


@pytest.mark.parametrize("name", ["passwd.yaml", "secret.txt"])
def test_extends_refuses_absolute_paths(tmp_path: Path, write_spec, name: str) -> None:
    target = tmp_path / name
    target.write_text(SECRET + "\n")
    error = _extends_error(write_spec, str(target))
    assert "absolute path" in error.problems[0].message


def test_extends_reports_a_directory_as_a_directory(tmp_path: Path, write_spec) -> None:
    (tmp_path / "d.yaml").mkdir()
    error = _extends_error(write_spec, "d.yaml")
    assert "d.yaml is a directory" in error.problems[0].message
    assert "not found" not in error.problems[0].message


def test_extends_reports_a_fifo_without_blocking(tmp_path: Path, write_spec) -> None:
    os.mkfifo(tmp_path / "p.yaml")
    error = _extends_error(write_spec, "p.yaml")
    assert "p.yaml is a FIFO" in error.problems[0].message


def test_extends_relative_paths_and_shipped_names_still_work(tmp_path: Path, write_spec) -> None:
    write_spec(SPEC, "base.yaml")
    (tmp_path / "variants").mkdir()
    child = write_spec("name: child\nextends: ../base.yaml\n", "variants/child.yaml")
    assert zoo.load_spec(child).head[1].out == 2
    shipped = write_spec("name: r\nextends: resnet18\nhead: {2: {out: 7}}\n", "r.yaml")
    assert zoo.load_spec(shipped).head[2].out == 7


# --------------------------------------------------------------------------- 11: YAML 1.2 core
@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("010", 10),
        ("-010", -10),
        ("+12", 12),
        ("0o10", 8),
        ("0x10", 16),
        ("0xFf", 255),
        ("1:30", "1:30"),
        ("190:20:30", "190:20:30"),
        ("1_000", "1_000"),
        ("0b11", "0b11"),
        ("+0x1", "+0x1"),
        ("0o8", "0o8"),
        ("2024-01-31", "2024-01-31"),  # no timestamps in the core schema
        ("=", "="),
        ("1e-5", 1e-5),
        ("-.inf", -math.inf),
        ("yes", "yes"),
        ("on", "on"),
        ("True", True),
        ("~", None),
        ("null", None),
        ("NULL", None),
        ("nUll", "nUll"),
        ("", None),
        ("!!int 010", 10),
    ],
)
def test_scalars_follow_the_yaml_12_core_schema(raw: str, value: object) -> None:
    assert load_yaml(f"v: {raw}\n").data == {"v": value}


def test_leading_zero_is_decimal_in_a_spec(write_spec) -> None:
    spec = zoo.load_spec(write_spec(SPEC.replace("channels: 1", "channels: 010")))
    assert spec.input.channels == 10


def test_explicit_int_tag_on_a_non_integer_is_located() -> None:
    with pytest.raises(ZooError) as info:
        load_yaml("a: 1\nv: !!int 1_000\n")
    problem = info.value.problems[0]
    assert (problem.line, problem.column) == (2, 4)
    assert "not an integer" in problem.message and "python" not in problem.message


# --------------------------------------------------------------------------- 13: --set values
def test_empty_set_value_is_refused() -> None:
    error = _error("resnet18", ["stages.0.depth="])
    assert error.exit_code == ExitCode.USAGE_ERROR
    assert "no value" in str(error) and "stages.0.depth=null" in str(error)


def test_explicit_null_is_taken_where_the_field_takes_null() -> None:
    assert zoo.load_spec("resnet18", ["stages.0.depth=null"]).stages[0].depth is None
    assert _error("resnet18", ["head.2.out=~"]).problems[0].path == "head.2.out"


# --------------------------------------------------------------------------- 16: locations
def test_set_errors_point_at_the_override_for_every_path_it_created() -> None:
    problem = _error("resnet18", ["foo.bar.baz=3"]).problems[0]
    assert (problem.file, problem.line, problem.path) == ("--set", None, "foo")
    assert problem.message.startswith("unknown field")
    problem = _error("resnet18", ["stages.0.extra.deep=3"]).problems[0]
    assert (problem.file, problem.path) == ("--set", "stages.0.extra")


def test_problems_are_in_line_order(write_spec) -> None:
    path = write_spec(
        "name: t\ninput: {channels: 1, size: 8}\n"
        "stem: [{type: conv, out: 0, kernel: 3}]\n"
        "head: [{type: flatten}, {type: linear, out: 0}]\n"
    )
    problems = _error(path).problems
    assert [(p.line, p.path) for p in problems] == [(3, "stem.0.out"), (4, "head.1.out")]


def test_merge_errors_carry_no_tag_hint() -> None:
    with pytest.raises(ZooError) as info:
        load_yaml("a: 1\nb: {<<: 3}\n")
    problem = info.value.problems[0]
    assert (problem.line, problem.column) == (2, 9)
    assert "merg" in problem.message and "python" not in problem.message


def test_recursive_alias_is_refused_at_its_line() -> None:
    with pytest.raises(ZooError) as info:
        load_yaml("a: 1\nx: &x\n  - 1\n  - *x\n")
    problem = info.value.problems[0]
    assert (problem.line, problem.path) == (2, "x.1")
    assert problem.message.startswith("recursive alias")


def test_recursive_merge_through_an_ancestor_is_refused() -> None:
    with pytest.raises(ZooError) as info:
        load_yaml("x: &x\n  b: 1\n  c:\n    <<: *x\n")
    problem = info.value.problems[0]
    assert (problem.line, problem.column) == (4, 5)
    assert problem.message.startswith("recursive merge")


def test_deep_nesting_is_located() -> None:
    with pytest.raises(ZooError) as info:  # deep enough to exhaust Python's stack
        load_yaml("a: 1\nx: " + "[" * 3000 + "]" * 3000 + "\n")
    problem = info.value.problems[0]
    assert (problem.line, problem.column) == (2, 4 + 64)  # the 65th `[`
    assert "nesting deeper than 64 levels" in problem.message


# --------------------------------------------------------------------------- 18: the API
def test_load_spec_takes_a_mapping() -> None:
    data = {**DATA, "head": [dict(layer) for layer in DATA["head"]]}
    spec = zoo.load_spec(data, ["head.1.out=5"])
    assert spec.head[1].out == 5
    assert data["head"][1]["out"] == 2  # the caller's mapping is left alone


def test_mapping_errors_name_the_mapping() -> None:
    problem = _error({**DATA, "input": {"channels": 0, "size": 8}}).problems[0]
    assert (problem.file, problem.line, problem.path) == ("<dict>", None, "input.channels")


def test_mapping_extends_is_relative_to_the_current_folder(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "base.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    spec = zoo.load_spec({"name": "child", "extends": "base.yaml", "head": {1: {"out": 3}}})
    assert (spec.name, spec.head[1].out) == ("child", 3)


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({**DATA, True: 1}, "", "a key must be a name or a list index, not True (a bool)"),
        ({**DATA, "input": {"channels": 1, "size": {8}}}, "input.size", "not a set"),
        ({**DATA, "input": {"channels": 1, "size": b"8"}}, "input.size", "not a bytes"),
    ],
)
def test_mapping_holds_plain_data_only(data: dict, path: str, message: str) -> None:
    problem = _error(data).problems[0]
    assert problem.path == path and message in problem.message


def test_mapping_that_contains_itself_is_refused() -> None:
    data: dict = {**DATA}
    data["loop"] = data
    assert "contains itself" in _error(data).problems[0].message


@pytest.mark.parametrize("spec", [None, 123, b"lenet", ["lenet"], 1.5])
def test_load_spec_refuses_what_is_not_a_spec(spec: object) -> None:
    error = _error(spec)
    assert error.exit_code == ExitCode.USAGE_ERROR and error.problems[0].kind == "usage"
    assert f"got {type(spec).__name__}" in error.problems[0].message


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("head.2.out=5", "overrides=['head.2.out=5']"),
        (None, "a list of PATH=VALUE strings"),
        (["head.2.out=5", 5], "overrides[1] must be a string"),
    ],
)
def test_overrides_must_be_a_list_of_strings(overrides: object, message: str) -> None:
    error = _error("resnet18", overrides)
    assert error.exit_code == ExitCode.USAGE_ERROR and message in str(error)


def test_resolve_and_build_take_a_mapping() -> None:
    assert resolve(DATA).data == DATA
    model = zoo.build(DATA, device="meta")
    assert sum(p.numel() for p in model.parameters()) == 64 * 2 + 2


@pytest.mark.parametrize(
    ("kernel", "path", "message"),
    [
        ("[true, 3]", "stem.0.kernel.0", "Input should be a valid integer"),
        ("[1, 2000000]", "stem.0.kernel.1", "Input should be less than or equal to 1048576"),
        ("[1, 2, 3]", "stem.0.kernel", "Tuple should have at most 2 items after validation"),
        ("x", "stem.0.kernel", "Input should be a valid integer"),
    ],
)
def test_a_pair_field_reports_only_the_member_that_fits(write_spec, kernel, path, message) -> None:
    """`kernel: int | [int, int]`: a list is judged as a pair and a scalar as an int, once."""
    spec = write_spec(
        f"name: t\ninput: {{channels: 3, size: 8}}\nstem: [{{type: conv, out: 2, kernel: {kernel}}}]\n"
    )
    with pytest.raises(ZooError) as info:
        zoo.load_spec(spec)
    [problem] = info.value.problems
    assert problem.path == path and problem.message.startswith(message)


# --------------------------------------------------------------------------- found in review
ZOO = str(Path(sys.executable).parent / "zoo")


@pytest.mark.parametrize(
    "text",
    ["a: " + "[" * 50_000 + "]" * 50_000 + "\n", "- " * 50_000 + "1\n"],
    ids=["flow", "block"],
)
def test_very_deep_nesting_is_a_located_error_not_a_crash(tmp_path: Path, text: str) -> None:
    """libyaml composes by C recursion: 50,000 levels overflowed its stack (a segfault) before the
    depth check could run; such a text is left to PyYAML, which stops at 64 levels."""
    spec = tmp_path / "deep.yaml"
    spec.write_text(text)
    result = subprocess.run([ZOO, "validate", str(spec)], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert "nesting deeper than 64 levels" in result.stderr and "Traceback" not in result.stderr


def test_huge_integers_are_one_line(capsys, tmp_path: Path) -> None:
    """Python's int() refuses strings of more than 4,300 digits: no such number reaches it."""
    digits = "9" * 5000
    spec = tmp_path / "big.yaml"
    spec.write_text(
        f"name: t\ninput: {{channels: 1, size: 8}}\nstem: [{{type: conv, out: {digits}}}]\n"
    )
    code, _, err = run_cli(capsys, "validate", str(spec))
    assert code == 1 and f"{spec}:3:26: an integer of 5,000 digits is too long" in err
    code, _, err = run_cli(capsys, "build", "lenet", "--input", f"1x{digits}x28x28")
    assert code == 2 and "--input must look like" in err
    code, _, err = run_cli(capsys, "validate", "resnet18", "--set", f"stages.{digits}.depth=2")
    assert code == 2 and "the list stages has 4 items" in err
    assert "Traceback" not in err


def test_shipped_specs_take_the_fast_path() -> None:
    """The libyaml path is really used (the equality test would pass if it never were)."""
    from zoo.spec.yaml_loader import Located, _fast_load

    for path in sorted((Path(__file__).parents[1] / "specs").glob("*.yaml")):
        assert _fast_load(path.read_text(), Located(None, str(path))), path.name
