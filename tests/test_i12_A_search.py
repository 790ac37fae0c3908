"""Your own specs by name: the current folder, then ZOO_SPEC_PATH, then the shipped specs (first
match wins, a shadowed shipped spec reported), for every command and for `extends:`; `zoo list`
with a source column, wildcard filters and --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import zoo
from tests.conftest import SPEC_NAMES, run_cli
from zoo.errors import ZooError

RESNET20 = """\
name: resnet20
description: ResNet-20 for CIFAR-10 (He et al., 2015, section 4.2)
input: {channels: 3, size: 32}
stem:
  - {type: conv, out: 16, kernel: 3, padding: 1}
  - {type: batchnorm}
  - {type: relu, inplace: true}
stages:
  - {type: basic, out: 16, depth: 3}
  - {type: basic, out: 32, depth: 3, stride: 2}
  - {type: basic, out: 64, depth: 3, stride: 2}
head:
  - {type: adaptive_avgpool, size: 1}
  - {type: flatten}
  - {type: linear, out: 10}
"""
RESNET20_PARAMS = 272_490  # the paper's "0.27M", with 1x1 projection shortcuts


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder, with ZOO_SPEC_PATH unset."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("ZOO_SPEC_PATH", raising=False)
    return folder


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


# --------------------------------------------------------------------------- the current folder
def test_build_a_spec_of_the_current_folder_by_name(capsys, work: Path) -> None:
    _write(work, "resnet20.yaml", RESNET20)
    code, out, err = run_cli(capsys, "build", "resnet20")
    assert code == 0 and err == ""
    assert out.startswith(f"resnet20: {RESNET20_PARAMS:,} parameters")
    assert zoo.trace("resnet20").params == RESNET20_PARAMS  # the library finds it too


def test_every_command_finds_it(capsys, work: Path) -> None:
    _write(work, "resnet20.yml", RESNET20)  # .yml as well as .yaml
    assert run_cli(capsys, "validate", "resnet20")[0] == 0
    code, out, _ = run_cli(capsys, "resolve", "resnet20")
    assert code == 0 and "# resolved from resnet20.yml" in out
    code, out, _ = run_cli(capsys, "bench", "resnet20", "lenet", "--json")
    assert code == 0 and [r["params"] for r in json.loads(out)] == [RESNET20_PARAMS, 61_706]
    code, out, _ = run_cli(capsys, "diff", "resnet20", "resnet18", "--json")
    assert code == 0 and json.loads(out)["totals"][0][0] == RESNET20_PARAMS


def test_did_you_mean_covers_user_specs(capsys, work: Path) -> None:
    _write(work, "resnet20.yaml", RESNET20)
    code, _, err = run_cli(capsys, "build", "resnet2")
    assert code == 3 and "did you mean 'resnet20'?" in err
    assert "nor resnet2.yaml in the current folder" in err


# --------------------------------------------------------------------------- ZOO_SPEC_PATH
def test_spec_path_folders_in_order(capsys, work: Path, tmp_path: Path, monkeypatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _write(first, "mine.yaml", "extends: lenet\nname: mine\nhead: {-1: {out: 5}}\n")
    _write(second, "mine.yaml", "extends: lenet\nname: mine\n")
    _write(second, "other.yaml", "extends: lenet\nname: other\n")
    monkeypatch.setenv("ZOO_SPEC_PATH", os.pathsep.join([str(first), "", str(second)]))
    assert zoo.trace("other").params == 61_706
    with pytest.warns(zoo.ZooWarning, match=f"not {second / 'mine.yaml'}"):
        assert zoo.load_spec("mine").head[-1].out == 5  # the first folder's
    code, out, _ = run_cli(capsys, "list", "--json", "mine", "other")
    rows = {row["name"]: row for row in json.loads(out)}
    assert code == 0 and rows["mine"]["source"] == str(first)
    assert rows["mine"]["path"] == str(first / "mine.yaml")
    assert rows["other"]["source"] == str(second)


def test_a_missing_spec_path_folder_holds_nothing(capsys, work: Path, monkeypatch) -> None:
    monkeypatch.setenv("ZOO_SPEC_PATH", str(work / "nowhere"))
    code, out, err = run_cli(capsys, "list", "lenet")
    assert code == 0 and err == "" and "lenet\t1x28x28\t61706" in out


# --------------------------------------------------------------------------- shadowing
def test_a_user_spec_shadows_the_shipped_one_and_says_so(capsys, work: Path) -> None:
    # extends its own name: the next resnet50 on the path, the shipped one (not a cycle)
    _write(work, "resnet50.yaml", "extends: resnet50\nhead: {2: {out: 10}}\n")
    code, out, err = run_cli(capsys, "build", "resnet50")
    assert code == 0 and "[1, 3, 224, 224] -> [1, 10]" in out
    assert err.strip() == (
        "resnet50.yaml: the name 'resnet50' means this file, not the shipped spec: user specs "
        "come first (the current folder, then ZOO_SPEC_PATH); rename this file to reach the "
        "other one [shadowed]"
    )
    code, out, err = run_cli(capsys, "list", "resnet50")
    assert code == 0 and "resnet50\t3x224x224\t" in out and "\t.\t" in out
    assert "[shadowed]" in err


def test_shipped_specs_extend_shipped_bases_whatever_the_folder(capsys, work: Path) -> None:
    _write(work, "resnet50.yaml", "extends: resnet50\nhead: {2: {out: 10}}\n")
    code, out, err = run_cli(capsys, "build", "resnet50d")  # extends: resnet50 (shipped)
    assert code == 0 and "25,576,264 parameters" in out and err == ""


def test_a_user_base_is_found_by_name_from_its_own_folder(work: Path, tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    _write(lib, "resnet20.yaml", RESNET20)
    _write(lib, "resnet20_wide.yaml", "extends: resnet20\nname: w\nstages: {0: {out: 32}}\n")
    monkeypatch.setenv("ZOO_SPEC_PATH", str(lib))
    assert zoo.trace("resnet20_wide").params > RESNET20_PARAMS
    elsewhere = _write(work, "child.yaml", "extends: resnet20\nname: c\n")  # via the path
    assert zoo.trace(str(elsewhere)).params == RESNET20_PARAMS


def test_extending_a_missing_name_is_located(write_spec, work: Path) -> None:
    child = write_spec("extends: resnet2000\nname: c\n", "child.yaml")
    with pytest.raises(ZooError) as error:
        zoo.load_spec(str(child))
    problem = error.value.problems[0]
    assert (problem.line, problem.path) == (1, "extends")
    assert problem.message.startswith("base spec not found: no such file or shipped spec")


# --------------------------------------------------------------------------- zoo list
def test_list_filters_by_wildcards(capsys, work: Path) -> None:
    _write(work, "resnet20.yaml", RESNET20)
    code, out, err = run_cli(capsys, "list", "resnet*", "*_bn")
    names = [line.split("\t")[0] for line in out.splitlines()[1:]]
    assert code == 0 and err == ""
    assert names == sorted(
        n for n in [*SPEC_NAMES, "resnet20"] if n.startswith("resnet") or n.endswith("_bn")
    )
    assert "resnet20\t3x32x32\t272490\t" in out and "\t.\t" in out


def test_list_pattern_that_matches_nothing(capsys, work: Path) -> None:
    code, out, err = run_cli(capsys, "list", "resnet5", "lenet")
    assert code == 3 and "no spec name matches 'resnet5'; did you mean 'resnet50'?" in err
    assert out.splitlines()[1].startswith("lenet\t")  # what matched is still listed


def test_list_passes_over_other_yaml_and_reports_broken_specs(capsys, work: Path) -> None:
    _write(work, "docker-compose.yaml", "services: {web: {image: nginx}}\n")
    _write(work, ".pre-commit-config.yaml", "repos: []\n")
    _write(work, "notes.yaml", "- a list, not a spec\n")
    _write(work, "broken.yaml", "name: b\ninput: {channels: 3, size: 8}\nstem: [{type: cnv}]\n")
    _write(work, "garbled.yaml", "name: [unclosed\n")
    _write(work, "resnet20.yaml", RESNET20)
    code, out, err = run_cli(capsys, "list", "--json")
    names = {row["name"] for row in json.loads(out)}
    assert code == 1  # broken.yaml is a spec, and invalid
    assert "resnet20" in names and not names & {"docker-compose", "notes", "broken", "garbled"}
    assert "broken.yaml:3:15: stem.0.type: unknown type 'cnv'" in err
    assert "left out 1 YAML file(s) of the spec search path that do not parse (garbled.yaml)" in err


def test_bench_all_benches_what_list_lists(capsys, work: Path) -> None:
    _write(work, "resnet20.yaml", RESNET20)
    code, out, _ = run_cli(capsys, "bench", "--all", "--json")
    specs = [row["spec"] for row in json.loads(out)]
    assert code == 0 and len(specs) == len(SPEC_NAMES) + 1 and "resnet20" in specs


def test_the_shipped_folder_as_the_current_one_is_still_shipped(capsys, monkeypatch) -> None:
    monkeypatch.chdir(Path(zoo.spec.shipped_specs_dir()))
    monkeypatch.delenv("ZOO_SPEC_PATH", raising=False)
    code, out, err = run_cli(capsys, "list", "lenet", "--json")
    assert code == 0 and err == "" and json.loads(out)[0]["source"] == "shipped"


def test_listing_user_specs_needs_no_torch(work: Path) -> None:
    _write(work, "resnet20.yaml", RESNET20)
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "from zoo.cli import main\n"
        "assert main(['list', 'resnet2*']) == 0\n"
        "assert main(['build', 'resnet20', '--trace']) == 0\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=work, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "resnet20\t3x32x32\t272490" in result.stdout
