"""Commands that build no model never import torch: they give the same output with torch made
unimportable as with torch loaded, and `import zoo` (loading, validating, tracing specs) imports none.

Each mode runs every command in one subprocess (a fresh interpreter, so nothing is imported yet).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BAD = "name: t\ninput: {channels: 1, size: 8}\nstem: [{type: conv, out: 2}]\n"

COMMANDS = [
    ["validate", "resnet18", "{bad}"],
    ["validate", "resnet18", "--json"],
    ["list"],
    ["list", "--json"],
    ["resolve", "resnet50", "--set", "stages.2.depth=23"],
    ["schema"],
    ["diff", "resnet50", "resnext50_32x4d"],
    ["diff", "lenet", "trashnet", "--json"],
    ["build", "resnet152", "--trace"],
    ["build", "googlenet", "--json", "--input", "2x3x320x320"],
    ["build", "{bad}", "--json"],
    ["bench", "--all", "--sort", "macs"],
    ["bench", "lenet", "resnet18", "--csv"],
]

RUNNER = textwrap.dedent(
    """
    import contextlib, io, json, sys
    if sys.argv[1] == "without":
        sys.modules["torch"] = None  # `import torch` now raises ImportError
    else:
        import torch  # noqa: F401  (the reference: torch loaded)
    from zoo.cli import main

    results = []
    for argv in json.loads(sys.argv[2]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        results.append([code, out.getvalue(), err.getvalue()])
    loaded = [m for m, module in sys.modules.items() if module is not None]
    results.append(sorted(m for m in loaded if m == "torch" or m.startswith("torch.")))
    print(json.dumps(results))
    """
)


def _run(mode: str, commands: list[list[str]]) -> list:
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, mode, json.dumps(commands)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[1],
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_commands_that_build_nothing_need_no_torch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    commands = [[arg.format(bad=bad) for arg in argv] for argv in COMMANDS]
    *without, imported = _run("without", commands)
    *reference, _ = _run("with", commands)
    assert imported == []
    for argv, got, expected in zip(commands, without, reference, strict=True):
        assert got == expected, argv
    codes = [code for code, _, _ in without]
    assert codes == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]
    assert all(out or err for _, out, err in without)  # each command said something


def test_building_says_torch_is_needed_and_nothing_else_breaks() -> None:
    """With torch unimportable, only what builds a model fails, and it fails as ImportError."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None
        import zoo
        spec = zoo.load_spec("resnet18")
        assert zoo.trace(spec).params == 11_689_512
        assert zoo.trace({"name": "t", "input": {"channels": 1, "size": 8},
                          "head": [{"type": "flatten"}]}).output == (1, 64)
        try:
            zoo.build(spec)
        except ImportError:
            print("ImportError")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ImportError"


@pytest.mark.parametrize(
    "code",
    [
        "import zoo",
        "import zoo; zoo.ModelSpec; zoo.ZooError; zoo.register_layer",
        "import zoo; zoo.trace(zoo.load_spec('googlenet'), (8, 3, 512, 512))",
        "import zoo.cli, zoo.compare, zoo.display, zoo.render, zoo.bench, zoo.reference, zoo.plan",
    ],
)
def test_import_zoo_imports_no_torch(code: str) -> None:
    script = f"{code}\nimport sys\nprint('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
