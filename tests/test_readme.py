"""The README's zoo table lists every shipped spec with the figures zoo computes for it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
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


def test_design_walkthroughs_run_as_written() -> None:
    """docs/design.md's "Adding a layer type" and "Adding a block type" code, run verbatim (in a
    fresh interpreter, so the registry of this test run is untouched): the new types validate,
    plan, build and run, and the plan's counts are the modules'."""
    design = (Path(__file__).parents[1] / "docs" / "design.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", design, re.S)
    assert len(blocks) == 2
    script = (
        "import json, sys, torch, zoo\n"
        "for code in json.loads(sys.argv[1]):\n"
        "    exec(compile(code, 'docs/design.md', 'exec'), {'__name__': 'walkthrough'})\n"
        "spec = zoo.load_spec({'name': 'w', 'input': {'channels': 3, 'size': 16}, 'stem': "
        "[{'type': 'conv', 'out': 8, 'kernel': 3}, {'type': 'groupnorm', 'groups': 4}], "
        "'stages': [{'type': 'double_conv', 'out': 16, 'stride': 2, 'depth': 2}]})\n"
        "model = zoo.build(spec)\n"
        "assert zoo.trace(spec).params == sum(p.numel() for p in model.parameters())\n"
        "assert model(torch.randn(2, 3, 16, 16)).shape == (2, 16, 7, 7)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(blocks)], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
