"""The README's zoo table lists every shipped spec with the figures zoo computes for it."""

from __future__ import annotations

import re
from pathlib import Path

import zoo
from tests.conftest import SPEC_NAMES
from zoo.render import human

README = Path(__file__).resolve().parents[1] / "README.md"
ROW = re.compile(
    r"^\| `(?P<name>\w+)` \|.*\| (?P<input>\d+x\d+x\d+) \| (?P<params>[\d,]+) \| (?P<macs>[^|]+) \|$"
)


def test_zoo_table_matches_the_specs() -> None:
    rows = {m["name"]: m for line in README.read_text().splitlines() if (m := ROW.match(line))}
    assert sorted(rows) == SPEC_NAMES, "every shipped spec needs a row in the README's zoo table"
    for name, row in rows.items():
        result = zoo.trace(name)
        assert row["input"] == "x".join(map(str, result.input[1:])), name
        assert row["params"] == f"{result.params:,}", name
        assert row["macs"].strip() == human(result.macs), name


def test_readme_quick_start_is_two_commands() -> None:
    text = README.read_text()
    quick_start = text.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in quick_start.strip().splitlines()] == [
        "make demo",
        "make test",
    ]


def test_python_api_example_runs(capsys) -> None:
    block = (
        README.read_text().split("## Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    )
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    spec = zoo.load_spec("resnet50", overrides=["head.2.out=10"])
    assert out[0] == f"{25_557_032 - 2048 * 990 - 990} {zoo.trace(spec, (8, 3, 512, 512)).macs}"
    assert out[-1] == str(zoo.trace("vgg11", (1, 3, 224, 224)).macs)
