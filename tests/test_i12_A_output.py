"""Output that fits pipes and terminals: results on stdout (plain tab-separated rows in a pipe,
tables fitted to a terminal with their numbers whole), diagnostics on stderr, `--version`, shell
completion, and tutorial specs described by the tutorials' names."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from rich.console import Console

import zoo
from tests.conftest import SPEC_NAMES, run_cli
from zoo.bench import COLUMNS
from zoo.render import Listing, fit_table, human, number, text

ROOT = Path(__file__).parents[1]
ZOO = [sys.executable, "-m", "zoo.cli"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


def _zoo(*argv: str, cwd: Path = ROOT, env: dict[str, str] | None = None):
    return subprocess.run(
        [*ZOO, *argv], capture_output=True, text=True, cwd=cwd, env=env, check=False
    )


def _on_terminal(*argv: str, columns: int) -> tuple[int, str, str]:
    """Run zoo with stdout on a pseudo-terminal ``columns`` wide: (exit code, what the terminal
    shows less its escape codes, stderr)."""
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    process = subprocess.Popen(
        [*ZOO, *argv], stdout=follower, stderr=subprocess.PIPE, cwd=ROOT, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    err = process.stderr.read().decode()
    code = process.wait()
    os.close(leader)
    shown = ANSI.sub("", b"".join(chunks).decode().replace("\r\n", "\n"))
    return code, shown, err


# --------------------------------------------------------------------------- pipes
def test_list_in_a_pipe_is_greppable_rows_on_stdout() -> None:
    result = _zoo("list")
    assert result.returncode == 0 and result.stderr == ""
    header, *lines = result.stdout.splitlines()
    assert header.split("\t") == ["name", "input", "params", "macs", "source", "description"]
    rows = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert sorted(rows) == SPEC_NAMES and all(len(r) == 6 for r in rows.values())
    traced = zoo.trace("resnet18")
    assert rows["resnet18"][:5] == [
        "resnet18", "3x224x224", str(traced.params), str(traced.macs), "shipped"
    ]  # fmt: skip
    assert [line for line in lines if "resnet" in line.split("\t")[0]]  # `zoo list | grep resnet`


def test_bench_sorted_and_cut_short_by_head() -> None:
    shell = subprocess.run(
        f"{' '.join(ZOO)} bench --all --sort macs | head -5",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        executable="/bin/bash",
        check=False,
    )
    lines = shell.stdout.splitlines()
    assert len(lines) == 5 and shell.stderr == ""
    assert lines[0].split("\t")[:5] == ["spec", "input", "params", "trainable_params", "macs"]
    macs = [int(line.split("\t")[4]) for line in lines[1:]]
    assert macs == sorted(macs, reverse=True)
    largest = max(zoo.trace(name).macs for name in SPEC_NAMES)
    assert macs[0] == largest


def test_bench_plain_rows_are_the_csv_rows_tab_separated(capsys) -> None:
    code, plain, _ = run_cli(capsys, "bench", "lenet", "resnet18")
    assert code == 0
    code, as_csv, _ = run_cli(capsys, "bench", "lenet", "resnet18", "--csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(as_csv)))
    assert rows[0] == list(COLUMNS)  # --csv unchanged: every column, latencies empty
    measured = [i for i in range(len(COLUMNS)) if any(row[i] for row in rows[1:])]
    assert [line.split("\t") for line in plain.splitlines()] == [
        [row[i] for i in measured] for row in rows
    ]


def test_json_is_unchanged(capsys) -> None:
    code, out, err = run_cli(capsys, "bench", "lenet", "--json")
    assert code == 0 and err == "" and set(json.loads(out)[0]) == set(COLUMNS)
    code, out, err = run_cli(capsys, "list", "--json")
    row = {r["name"]: r for r in json.loads(out)}["lenet"]
    assert code == 0 and err == ""
    assert row["params"] == 61_706 and row["input"] == [1, 28, 28] and row["source"] == "shipped"


def test_trace_rows_in_a_pipe(capsys) -> None:
    code, out, err = run_cli(capsys, "build", "resnet18", "--trace", "--depth", "2")
    assert code == 0 and err == ""
    header, *lines = out.splitlines()
    assert header == "layer\ttype\toutput\tparams\tmacs"
    rows = [line.split("\t") for line in lines]
    traced = zoo.trace("resnet18", depth=2)
    assert rows == [
        [r.path, r.type, "x".join(map(str, r.output)), str(r.params), str(r.macs)]
        for r in traced.rows
    ]


def test_validate_summary_on_stdout_problems_on_stderr(capsys, write_spec) -> None:
    bad = write_spec("name: t\ninput: {channels: 3, size: 8}\nhead: [{type: linear, out: 2}]\n")
    code, out, err = run_cli(capsys, "validate", "lenet", str(bad))
    assert code == 1
    assert out.splitlines() == [
        "spec\tstatus\tproblems\twarnings\tparams\tmacs",
        "lenet\tok\t0\t0\t61706\t416520",
        f"{bad}\tinvalid\t1\t0\t\t",
    ]
    assert err.startswith(f"{bad}:3:8: head.0: linear needs flat features")
    assert "lenet" not in err


def test_diagnostics_stay_on_stderr(capsys, tmp_path: Path) -> None:
    target = tmp_path / "m.pt"
    code, out, err = run_cli(capsys, "build", "lenet", "--output", str(target))
    assert code == 0
    assert out.startswith("lenet: 61,706 parameters") and f"saved {target}" in err
    assert "saved" not in out


def test_diff_in_a_pipe_is_rows(capsys) -> None:
    code, out, err = run_cli(capsys, "diff", "resnet18", "resnet34")
    assert code == 0 and err == ""
    assert "\t" in out and "layer3" in out and "┃" not in out and "│" not in out


# --------------------------------------------------------------------------- terminals
def _numbers(name: str) -> list[str]:
    traced = zoo.trace(name)
    return [f"{traced.params:,}", human(traced.macs)]


@pytest.mark.parametrize("columns", [40, 60, 80, 120])
def test_list_in_a_narrow_terminal_keeps_every_number_whole(columns: int) -> None:
    names = ["alexnet", "efficientnet_v2_s", "resnet152", "vgg19_bn", "lenet"]
    code, shown, err = _on_terminal("list", *names, columns=columns)
    assert code == 0 and err == ""
    assert "…" not in shown
    assert max(len(line) for line in shown.splitlines()) <= columns
    for name in names:
        for figure in _numbers(name):
            assert figure in shown, (name, figure)
    if columns >= 120:
        assert "efficientnet_v2_s" in shown  # wide enough: names are not folded


@pytest.mark.parametrize("columns", [60, 100])
def test_bench_in_a_narrow_terminal_keeps_every_number_whole(columns: int) -> None:
    code, shown, _ = _on_terminal("bench", "--all", columns=columns)
    assert code == 0 and "…" not in shown
    assert max(len(line) for line in shown.splitlines()) <= columns
    for name in ("vgg19_bn", "regnet_y_128gf", "lenet", "squeezenet1_1"):
        for figure in _numbers(name):
            assert figure in shown, (name, figure)


@pytest.mark.parametrize("columns", [50, 60, 200])
def test_trace_in_a_narrow_terminal_keeps_every_number_whole(columns: int) -> None:
    code, shown, _ = _on_terminal("build", "efficientnet_b0", "--trace", columns=columns)
    assert code == 0 and "…" not in shown
    assert max(len(line) for line in shown.splitlines()) <= columns
    for row in zoo.trace("efficientnet_b0").rows:
        if row.params:
            assert f"{row.params:,}" in shown, row.path


def test_terminal_table_matches_the_pipe_rows() -> None:
    _, shown, _ = _on_terminal("list", "resnet18", columns=200)
    assert "┃ Spec" in shown and "11,689,512" in shown and "1.81 G" in shown


def test_fitted_tables_never_cut_a_number() -> None:
    """Every width from 20 to 160 columns: rich draws the table no wider than asked, and every
    figure is there whole."""
    listing = Listing(
        "t",
        [
            text("name", "Name", 6),
            number("a", "Parameters (all)"),
            number("b", "Multiply-adds", human),
            text("note", "Note", 20),
        ],
        [
            ["a_long_spec_name_x", 143_667_240, 19_632_062_464, "words " * 20],
            ["b", 61_706, 416_520, "short"],
        ],
    )
    for width in range(20, 161, 7):
        console = Console(width=width, record=True, file=io.StringIO())
        console.print(fit_table(listing, width))
        shown = console.export_text()
        assert max(len(line) for line in shown.splitlines()) <= width, width
        for figure in ("143,667,240", "19.6 G", "61,706", "417 k"):
            assert figure in shown, (width, figure)


def test_plain_rows_keep_one_line_per_row() -> None:
    listing = Listing("t", [text("a", "A"), number("n", "N")], [["x\ty\nz", 3], [None, (1, 2)]])
    assert listing.plain() == "a\tn\nx y z\t3\n\t1x2\n"


# --------------------------------------------------------------------------- version, completion
def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        run_cli(capsys, "--version")
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"zoo {version('zoo')}\n"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(capsys, shell: str) -> None:
    code, out, err = run_cli(capsys, "completion", shell)
    assert code == 0 and err == "" and "_ARGCOMPLETE" in out and "zoo" in out


def _complete(line: str, cwd: Path, tmp_path: Path) -> list[str]:
    """What argcomplete answers the shell for ``line`` (the cursor at its end)."""
    answer = tmp_path / "completions"
    env = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_IFS": "\n",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
    }
    result = subprocess.run([*ZOO], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return [word.strip() for word in answer.read_text().split("\n")]


def test_completion_of_commands_and_spec_names(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "resnet20.yaml").write_text("extends: resnet18\nname: resnet20\n")
    assert _complete("zoo li", work, tmp_path) == ["list"]
    names = _complete("zoo build resnet", work, tmp_path)
    assert {"resnet18", "resnet152", "resnet20", "resnet20.yaml"} <= set(names)
    assert "lenet" not in names
    assert "resnet18" in _complete("zoo diff resnet20 resnet1", work, tmp_path)


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_script_completes_spec_names() -> None:
    script = (
        'eval "$(' + " ".join(ZOO) + ' completion bash)"\n'
        "COMP_WORDS=(zoo bench vgg1); COMP_CWORD=2; COMP_LINE='zoo bench vgg1'\n"
        "COMP_POINT=${#COMP_LINE}\n"
        "_python_argcomplete zoo\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    # the script runs `zoo` by name: put this interpreter's zoo first on PATH
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) >= {"vgg11", "vgg13_bn", "vgg19"}


# --------------------------------------------------------------------------- tutorial specs
TUTORIAL_SPECS = [
    "lenet",
    "nin",
    "inception_mnist",
    "residual_mnist",
    "notebook_resnet96",
    "trashnet",
    "d2l_resnet18",
]


@pytest.mark.parametrize("name", TUTORIAL_SPECS)
def test_tutorial_specs_name_their_tutorial_not_a_seed(name: str) -> None:
    description = yaml.safe_load((ROOT / "specs" / f"{name}.yaml").read_text())["description"]
    assert not re.search(r"\bseeds?\b", description, re.I), description
    assert re.search(r"d2l|Pytorch notes|\.ipynb|et al\.", description), description


def test_readme_zoo_table_names_no_seed() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    assert rows and not [row for row in rows if re.search(r"\bseeds?\b", row, re.I)]


def test_readme_pipe_example_is_what_zoo_prints() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("### Output in terminals and pipes", 1)[1].split("```console", 1)[1]
    block = block.split("```", 1)[0]
    commands = re.split(r"^\$ (.*)$", block, flags=re.M)[1:]
    for command, expected in zip(commands[::2], commands[1::2], strict=True):
        shell = command.replace("zoo ", " ".join(ZOO) + " ", 1)
        got = subprocess.run(
            shell, shell=True, capture_output=True, text=True, cwd=ROOT, check=False
        )
        assert got.stdout == expected.lstrip("\n"), command
