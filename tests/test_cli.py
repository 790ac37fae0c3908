"""The `zoo` command through its entry point: output streams, JSON, exit codes, files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo
from tests.conftest import run_cli
from zoo.cli import main

run = run_cli


def test_build_trace_depth_one_is_the_notebook_view(capsys) -> None:
    code, out, err = run(capsys, "build", "resnet34", "--trace", "--depth", "1")
    assert code == 0 and err == ""  # results go to stdout: plain rows in a pipe
    for expected in ("1x64x112x112", "1x64x56x56", "1x128x28x28", "1x256x14x14",
                     "1x512x7x7", "1x1000", "\t513000\t"):  # fmt: skip
        assert expected in out
    assert "layer1.0" not in out


def test_build_full_trace_shows_nested_paths(capsys) -> None:
    code, out, _ = run(capsys, "build", "specs/resnet18.yaml", "--trace")
    assert code == 0
    assert "layer4.0.downsample.0" in out and "\t8393728\t" in out  # layer4's parameters


def test_build_tree(capsys) -> None:
    code, out, _ = run(capsys, "build", "resnet18", "--trace", "--tree", "--depth", "2")
    assert code == 0 and "downsample" not in out and "layer2" in out and "0 basic" in out


def test_build_json_to_stdout_only(capsys) -> None:
    code, out, err = run(
        capsys, "build", "resnet50", "--json", "--input", "8x3x512x512", "--depth", "1"
    )
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["input"] == [8, 3, 512, 512] and data["output"] == [8, 1000]
    assert data["params"] == 25_557_032
    assert data["macs"] == zoo.trace("resnet50", (8, 3, 512, 512)).macs
    assert {row["depth"] for row in data["rows"]} == {1}


def test_build_summary_without_trace(capsys) -> None:
    code, out, _ = run(capsys, "build", "resnet18", "--input", "3x64x64")
    assert code == 0 and "11,689,512 parameters" in out and "[1, 3, 64, 64] -> [1, 1000]" in out


def test_output_checkpoint_reloads(capsys, tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    code, _, _ = run(capsys, "build", "resnet18", "--output", str(target))
    assert code == 0
    checkpoint = torch.load(target, weights_only=True)
    assert checkpoint["format"] == "zoo/1"
    model = zoo.build(zoo.ModelSpec.model_validate(checkpoint["spec"]))
    model.load_state_dict(checkpoint["state_dict"], strict=True)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temp file left behind


def test_output_into_missing_folder(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "build", "resnet18", "--output", str(tmp_path / "no" / "m.pt"))
    assert code == 3 and "cannot write" in err and "Traceback" not in err


def test_validate_reports_every_problem_with_position(capsys, write_spec) -> None:
    bad = write_spec(
        "name: t\ninput: {channels: 3, size: 8}\nstem:\n  - {type: conv, out: 4, kernal: 3}\n"
    )
    code, out, err = run(capsys, "validate", "resnet18", str(bad))
    assert code == 1
    assert "resnet18\tok\t" in out and f"{bad}\tinvalid\t2\t" in out  # the summary
    assert (
        f"{bad}:4:26: stem.0.kernal: unknown field; did you mean 'kernel'? [extra_forbidden]" in err
    )
    assert f"{bad}:4:5: stem.0.kernel: missing required field 'kernel' [missing]" in err


def test_validate_json(capsys, write_spec) -> None:
    bad = write_spec("name: t\ninput: {channels: 3, size: 8}\nhead: [{type: linear, out: 2}]\n")
    code, out, _ = run(capsys, "validate", str(bad), "--json")
    assert code == 1
    [result] = json.loads(out)
    assert result["ok"] is False
    assert result["problems"][0] == {
        "message": "linear needs flat features but gets a 3x8x8 feature map; "
        "add {type: flatten} (after a pooling layer) before it",
        "file": str(bad),
        "line": 3,
        "column": 8,
        "path": "head.0",
        "kind": "shape",
    }


def test_list(capsys) -> None:
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["resnet152"]["params"] == 60_192_808
    assert rows["resnet18"]["input"] == [3, 224, 224]
    code, out, _ = run(capsys, "list")
    assert code == 0 and "resnet101\t3x224x224\t44549160\t" in out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["build", "resnet18", "--input", "3x224"], 2, "--input must look like [N]xCxHxW"),
        (["build", "resnet18", "--input", "0x3x224x224"], 2, "--input must look like"),
        (["build", "resnet18", "--depth", "0"], 2, "--depth must be at least 1"),
        (["build", "resnet18", "--depth", "x"], 2, "invalid int value"),
        (["build"], 2, "required: SPEC"),
        (["frobnicate"], 2, "invalid choice"),
        (["build", "resnet33"], 3, "did you mean 'resnet34'?"),
        (["build", "missing/spec.yaml"], 3, "no such file: missing/spec.yaml"),
        (["build", "lenet", "--device", "cdua"], 2, "'cdua' is not a device; use cpu, cuda"),
        (["build", "lenet", "--device", "mps"], 2, "device 'mps' is not available here"),
        (["bench", "lenet", "--latency", "--device", "cuda:7"], 2, "'cuda:7' is not available"),
        (["bench", "lenet", "--latency", "--device", "meta"], 2, "--latency needs a device that"),
        (["bench", "lenet", "--plot", "/"], 2, "--plot needs a file name, got '/'"),
        (["bench", "lenet", "--plot", ""], 2, "--plot needs a file name, got ''"),
        (["build", "lenet", "--output", ""], 2, "--output needs a file name"),
        (["bench", "lenet", "--plot", "zoo"], 2, "must end in .png, .svg, .pdf"),
        (["bench", "--all", "lenet"], 2, "give SPEC names or --all, not both"),
        (["bench", "lenet", "--sort", "latency_ms"], 2, "--sort latency_ms needs --latency"),
        (["bench", "lenet", "--sort", ""], 2, "unknown column ''"),
        (["bench", "lenet", "--batch", "2", "--input", "1x28x28"], 2, "exclude each other"),
        (["bench", "lenet", "--input", "3x28x28"], 2, "the input has 3 channels but lenet takes 1"),
        (["diff", "lenet", "vgg11", "--input", "3x28x28"], 2, "but lenet takes 1"),
        (
            ["build", "lenet", "--input", "1x1x2000000x28"],
            2,
            "every size from 1 to at most 1,048,576",
        ),
        (
            ["build", "lenet", "--input", "2000000x1x28x28"],
            2,
            "batch 2,000,000 is more than 1,048,576",
        ),
        (["build", "lenet", "--js"], 2, "unrecognized arguments: --js"),
        (["build", "/"], 3, "/ is a directory; give a spec's .yaml file"),
        (
            ["bench", "trashnet", "--latency", "--input", "1x3x60000x60000"],
            2,
            "needs about 4,881.6 GB to time",
        ),
    ],
)
def test_bad_input_one_line_and_exit_code(capsys, argv: list[str], code: int, message: str) -> None:
    got, _, err = run(capsys, *argv)
    assert got == code
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_input_too_small_for_the_net(capsys, write_spec) -> None:
    spec = write_spec(
        "name: t\ninput: {channels: 3, size: 32}\nstem: [{type: conv, out: 4, kernel: 7}]\n"
    )
    code, _, err = run(capsys, "build", str(spec), "--input", "3x5x5")
    assert code == 1
    assert err.strip() == (
        f"{spec}:3:8: stem.0: conv (kernel 7x7, stride 1, padding 0) turns a 3x5x5 input into 4x-1x-1: "
        "the input is too small here; use a larger input, or less stride/pooling before this layer [shape]"
    )


def test_help_documents_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out and "3  a file could not be found" in out


def test_console_script_from_another_directory(tmp_path: Path) -> None:
    zoo_bin = Path(sys.executable).with_name("zoo")
    result = subprocess.run(
        [str(zoo_bin), "build", "resnet18", "--json", "--depth", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["params"] == 11_689_512


def test_warnings_are_one_located_line(capsys, write_spec) -> None:
    spec = write_spec(
        "name: t\ninput: {channels: 3, size: 32}\nstages:\n  - {type: preact_basic, out: 8}\n"
        "head: [{type: adaptive_avgpool}, {type: flatten}, {type: linear, out: 2}]\n"
    )
    code, _, err = run(capsys, "build", str(spec), "--device", "cpu")  # planned twice, warns once
    assert code == 0  # a warning, not an error
    assert f"{spec}:4:5: stages.0: the last pre-activation block is not followed by a norm" in err
    assert err.count("preact_final_norm") == 1
    code, out, _ = run(capsys, "validate", str(spec), "--json")
    assert code == 0 and json.loads(out)[0]["warnings"][0]["kind"] == "preact_final_norm"


def test_checkpoint_records_the_input_it_was_built_for(capsys, tmp_path: Path) -> None:
    path = tmp_path / "lenet40.pt"
    assert run(capsys, "build", "lenet", "--input", "1x40x36", "--output", str(path))[0] == 0
    checkpoint = torch.load(path, weights_only=True)
    spec = zoo.ModelSpec.model_validate(checkpoint["spec"])
    assert spec.input.size == (40, 36)  # the linear layer's in-features fit 40x36, not 28x28
    zoo.build(spec).load_state_dict(checkpoint["state_dict"])  # strict
    code, out, _ = run(capsys, "build", str(path))  # its own input, not lenet's 28x28
    assert code == 0 and "[1, 1, 40, 36] -> [1, 10]" in out


def test_build_traces_a_checkpoint_like_its_spec(capsys, tmp_path: Path) -> None:
    path = tmp_path / "r18.pt"
    assert run(capsys, "build", "resnet18", "--output", str(path))[0] == 0
    assert run(capsys, "build", str(path), "--trace") == run(capsys, "build", "resnet18", "--trace")
    code, out, _ = run(capsys, "build", str(path), "--json", "--input", "2x3x64x64")
    assert code == 0 and json.loads(out)["input"] == [2, 3, 64, 64]  # adaptive pooling: any size


def test_build_a_checkpoint_loads_its_weights_and_saves_them_again(capsys, tmp_path: Path) -> None:
    first, second = tmp_path / "a.pt", tmp_path / "b.PTH"
    assert run(capsys, "build", "lenet", "--output", str(first))[0] == 0
    code, _, err = run(capsys, "build", str(first), "--device", "cpu", "--output", str(second))
    assert code == 0 and f"saved {second}" in err
    a, b = (torch.load(p, weights_only=True) for p in (first, second))
    assert a["spec"] == b["spec"] and list(a["state_dict"]) == list(b["state_dict"])
    for key, tensor in a["state_dict"].items():  # the saved weights, not freshly initialized ones
        assert torch.equal(tensor, b["state_dict"][key]), key


def test_a_checkpoint_is_never_saved_over_itself(capsys, tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    assert run(capsys, "build", "lenet", "--output", str(path))[0] == 0
    before = path.read_bytes()
    code, _, err = run(capsys, "build", str(path), "--output", str(path))
    assert code == 3 and "will not write over it: it is an input of this command" in err
    assert path.read_bytes() == before


def test_a_checkpoint_takes_no_set_and_only_inputs_its_weights_fit(capsys, tmp_path: Path) -> None:
    path = tmp_path / "lenet40.pt"
    assert run(capsys, "build", "lenet", "--input", "1x40x36", "--output", str(path))[0] == 0
    code, _, err = run(capsys, "build", str(path), "--set", "head.2.out=5")
    assert (
        code == 2 and "--set changes the spec, and a checkpoint's weights fit only its own" in err
    )
    code, _, err = run(capsys, "build", str(path), "--input", "1x28x28")
    assert code == 1 and err.strip() == (
        f"{path}: state_dict: its weights do not fit the model its spec builds for input 1x28x28 "
        "(mis-shaped head_1.weight (120x896 where the model has 120x400)); they were saved for "
        "input 1x40x36 [weights]"
    )
    assert run(capsys, "build", str(path), "--input", "8x1x40x36", "--device", "cpu")[0] == 0


def test_build_refuses_a_file_that_is_not_a_zoo_checkpoint(capsys, tmp_path: Path) -> None:
    path = tmp_path / "tv.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, path)  # a plain state_dict
    code, _, err = run(capsys, "build", str(path), "--device", "cpu")
    assert code == 3 and err.strip() == (
        f"{path}: not a zoo checkpoint: it holds a dict without 'format' (a plain state_dict?); "
        "zoo reads the files that zoo.save and `zoo build --output` write (a torchvision or "
        "timm state_dict goes with a spec: zoo build SPEC --weights FILE) [checkpoint]"
    )


def test_tree_and_depth_imply_trace(capsys) -> None:
    code, out, _ = run(capsys, "build", "resnet18", "--tree")
    assert code == 0 and "layer1" in out and "conv1" in out
    code, out, _ = run(capsys, "build", "resnet18", "--depth", "1")
    assert code == 0 and "layer4" in out and "layer4.0" not in out


def test_output_files_are_text_not_markup(capsys, tmp_path: Path) -> None:
    (tmp_path / "[").mkdir()
    plot, checkpoint = tmp_path / "[/x].png", tmp_path / "[red]m.pt"  # a closing tag; a style
    code, _, err = run(capsys, "bench", "lenet", "--plot", str(plot))
    assert code == 0 and plot.is_file() and f"wrote {plot}" in err
    code, _, err = run(capsys, "build", "lenet", "--output", str(checkpoint))
    assert code == 0 and checkpoint.is_file() and f"saved {checkpoint}" in err


def test_plot_under_a_file_is_an_io_error_and_leaves_nothing(capsys, tmp_path: Path) -> None:
    blocker = tmp_path / "p.png"
    blocker.write_bytes(b"not a folder")
    code, _, err = run(capsys, "bench", "lenet", "--plot", str(blocker / "x.png"))
    assert code == 3 and "Not a directory" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]


def test_plot_format_follows_the_suffix(capsys, tmp_path: Path) -> None:
    svg = tmp_path / "zoo.svg"
    assert run(capsys, "bench", "lenet", "trashnet", "--plot", str(svg))[0] == 0
    assert "<svg" in svg.read_text()[:1000]


def test_bench_batch_keeps_each_spec_size_and_needs_no_progress_line(capsys) -> None:
    code, out, err = run(capsys, "bench", "lenet", "resnet18", "--batch", "2", "--json")
    assert code == 0 and err == ""  # no progress bar off a terminal, not even a blank line
    rows = {r["spec"]: r for r in json.loads(out)}
    assert rows["lenet"]["input"] == [2, 1, 28, 28] and rows["resnet18"]["input"] == [
        2,
        3,
        224,
        224,
    ]
    assert rows["lenet"]["macs"] == 2 * zoo.trace("lenet").macs


def test_latency_of_a_net_without_parameters(capsys, write_spec) -> None:
    spec = write_spec("name: zero\ninput: {channels: 3, size: 8}\nstages: [{type: relu}]\n")
    code, out, _ = run(capsys, "bench", str(spec), "--latency", "--json")
    assert code == 0 and json.loads(out)[0]["train_latency_ms"] > 0
