"""Weights in: ``zoo.build(spec, weights=path)`` and ``zoo build SPEC --weights FILE`` load the
state_dicts torchvision and timm save (and training checkpoints and zoo's own) into the spec's
model, and weights that do not fit are one error line and a grouped report of the keys.

The files are real ``torch.save`` outputs of random-weight torchvision and timm models: nothing is
downloaded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import timm  # a test-only dependency (the dev extra)
import torch
import torchvision
from torch import nn

import zoo
from tests.conftest import run_cli
from tests.test_reference_parity import randomize_norm_statistics
from zoo.errors import ExitCode, ZooError
from zoo.weights import WeightsMismatch

SIZE = 64  # every reference pools adaptively: outputs compare at a small input


@pytest.fixture(scope="module")
def resnet18() -> nn.Module:
    """torchvision's resnet18 with random weights and BatchNorm statistics, in eval mode."""
    torch.manual_seed(1)
    model = torchvision.models.resnet18().eval()
    randomize_norm_statistics(model)
    return model


@pytest.fixture(scope="module")
def tv_file(resnet18: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(resnet18.state_dict(), path)  # as torchvision's hub files are written
    return path


def _same_outputs(a: nn.Module, b: nn.Module, shape: tuple[int, ...] = (3, SIZE, SIZE)) -> None:
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(a.eval()(x), b.eval()(x), rtol=1e-5, atol=1e-5)


def _error(call, *args, **kwargs) -> ZooError:
    with pytest.raises(ZooError) as caught:
        call(*args, **kwargs)
    return caught.value


# --------------------------------------------------------------------------- what loads
def test_a_torchvision_state_dict_loads_into_its_spec(resnet18: nn.Module, tv_file: Path) -> None:
    model = zoo.build("resnet18", weights=tv_file)
    assert model.training  # as zoo.build returns any model: the caller picks eval()
    reference = resnet18.state_dict()
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, reference[key]), key
    _same_outputs(model, resnet18)


def test_a_timm_training_checkpoint_loads(tmp_path: Path) -> None:
    # timm's train.py: the weights under 'state_dict', its arguments in an argparse.Namespace
    torch.manual_seed(2)
    reference = timm.create_model("resnet50d").eval()
    randomize_norm_statistics(reference)
    path = tmp_path / "checkpoint-3.pth.tar"
    torch.save(
        {
            "epoch": 3,
            "arch": "resnet50d",
            "state_dict": reference.state_dict(),
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
            "args": argparse.Namespace(lr=0.1, model="resnet50d"),
            "metric": 0.5,
        },
        path,
    )
    _same_outputs(zoo.build("resnet50d", weights=path), reference)


def test_a_model_entry_and_a_data_parallel_prefix(resnet18: nn.Module, tmp_path: Path) -> None:
    # torchvision's reference scripts save {"model": ..., "optimizer": ..., "epoch": ...}; a model
    # trained under DataParallel has every key under "module."
    path = tmp_path / "model_7.pth"
    state = {f"module.{key}": value for key, value in resnet18.state_dict().items()}
    torch.save({"model": state, "epoch": 7}, path)
    _same_outputs(zoo.build("resnet18", weights=path), resnet18)
    code, _, err = run_cli_weights("resnet18", path)
    assert code == 0
    assert err.splitlines()[0] == (
        f"{path}: loaded 122 tensors into resnet18 (11,689,512 parameters), from the 'model' "
        "entry of a checkpoint; the prefix 'module.' removed from every key"
    )


def test_checkpoints_from_before_num_batches_tracked_load(
    resnet18: nn.Module, tmp_path: Path
) -> None:
    # PyTorch < 0.4 wrote no BatchNorm counters: torchvision's first resnet18 file has none
    path = tmp_path / "old.pth"
    state = {k: v for k, v in resnet18.state_dict().items() if "num_batches_tracked" not in k}
    torch.save(state, path)
    model = zoo.build("resnet18", weights=path)
    assert int(model.bn1.num_batches_tracked) == 0
    _same_outputs(model, resnet18)


def test_a_zoo_checkpoint_gives_its_weights(tmp_path: Path) -> None:
    source = zoo.build("lenet")
    zoo.save(source, tmp_path / "lenet.pt")
    model = zoo.build("lenet", weights=tmp_path / "lenet.pt")
    _same_outputs(model, source, model.input_shape)


def test_weights_take_the_dtype_and_device_asked_for(tv_file: Path, resnet18: nn.Module) -> None:
    model = zoo.build("resnet18", weights=tv_file, dtype="bfloat16", device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert torch.equal(model.conv1.weight, resnet18.conv1.weight.to(torch.bfloat16))
    assert model.bn1.num_batches_tracked.dtype == torch.long
    # the file's tensors are not shared with a model that casts them
    loaded = zoo.build("resnet18", weights=tv_file)
    assert loaded.conv1.weight.requires_grad and loaded.conv1.weight.device.type == "cpu"


def test_features_only_takes_a_classifiers_weights(resnet18: nn.Module, tv_file: Path) -> None:
    features = zoo.build("resnet18", weights=tv_file, features_only=True).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        last = features(x)[-1]
        expected = resnet18.layer4(
            resnet18.layer3(
                resnet18.layer2(
                    resnet18.layer1(
                        resnet18.maxpool(resnet18.relu(resnet18.bn1(resnet18.conv1(x))))
                    )
                )
            )
        )
    torch.testing.assert_close(last, expected)


# --------------------------------------------------------------------------- what does not fit
def _mismatched_file(resnet18: nn.Module, path: Path) -> Path:
    """resnet18's weights for 10 classes, its fc renamed, a 1-channel first conv."""
    state = dict(resnet18.state_dict())
    state["head.fc.weight"] = torch.zeros(10, 512)
    del state["fc.weight"]
    state["fc.bias"] = torch.zeros(10)
    state["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    torch.save(state, path)
    return path


def test_a_mismatch_is_one_line_then_the_keys_by_kind(resnet18: nn.Module, tmp_path: Path) -> None:
    path = _mismatched_file(resnet18, tmp_path / "bad.pth")
    error = _error(zoo.build, "resnet18", weights=path)
    assert isinstance(error, WeightsMismatch) and error.exit_code == ExitCode.SPEC_ERROR
    assert (error.missing, error.unexpected, error.misshaped) == (
        ["fc.weight"],
        ["head.fc.weight"],
        ["conv1.weight", "fc.bias"],
    )
    lines = [(p.path, p.message, p.kind) for p in error.problems]
    assert lines == [
        (
            "",
            "the weights (a state_dict) do not fit resnet18: 1 key missing from the file, "
            "1 unexpected key, 2 mis-shaped keys; change the spec (or --set) to the network "
            "the weights are for, or pick the weights of this spec",
            "weights",
        ),
        (
            "fc.weight",
            "missing: the model has it (1000x512), the file does not; nearest in the file: "
            "head.fc.weight",
            "missing_key",
        ),
        (
            "head.fc.weight",
            "unexpected: the file has it (10x512), the model does not; nearest in the model: "
            "fc.weight",
            "unexpected_key",
        ),
        (
            "conv1.weight",
            "mis-shaped: 64x1x7x7 in the file, 64x3x7x7 in the model",
            "misshaped_key",
        ),
        ("fc.bias", "mis-shaped: 10 in the file, 1000 in the model", "misshaped_key"),
    ]
    assert {p.file for p in error.problems} == {str(path)}


def test_the_cli_reports_a_mismatch_and_exits_1(
    resnet18: nn.Module, tmp_path: Path, capsys
) -> None:
    path = _mismatched_file(resnet18, tmp_path / "bad.pth")
    code, out, err = run_cli(capsys, "build", "resnet18", "--weights", str(path))
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"{path}: the weights (a state_dict) do not fit resnet18: 1 key")
    assert lines[0].endswith("[weights]")
    assert lines[1] == (
        f"{path}: fc.weight: missing: the model has it (1000x512), the file does not; "
        "nearest in the file: head.fc.weight [missing_key]"
    )
    assert lines[3] == (
        f"{path}: conv1.weight: mis-shaped: 64x1x7x7 in the file, 64x3x7x7 in the model "
        "[misshaped_key]"
    )
    code, out, _ = run_cli(capsys, "build", "resnet18", "--weights", str(path), "--json")
    problems = json.loads(out)["problems"]
    assert code == 1 and [p["kind"] for p in problems] == [
        "weights",
        "missing_key",
        "unexpected_key",
        "misshaped_key",
        "misshaped_key",
    ]
    assert problems[1]["path"] == "fc.weight"


def test_another_networks_weights_are_named_as_such(tv_file: Path, tmp_path: Path) -> None:
    error = _error(zoo.build, "resnet50", weights=tv_file, device="cpu")
    summary = error.problems[0].message
    assert summary.startswith(
        "the weights (a state_dict) do not fit resnet50: 198 keys missing from the file, "
        "24 mis-shaped keys; most of the model's keys do not fit: are they the weights of another"
    )
    # long groups are cut, with a count of the rest
    kinds = [p.kind for p in error.problems]
    assert kinds.count("missing_key") == 12 + 1
    assert error.problems[13].message == "and 186 more missing keys"
    assert len(error.missing) == 198  # all of them, for code that catches the error
    zoo.save(zoo.build("lenet"), tmp_path / "lenet.pt")
    error = _error(zoo.build, "resnet18", weights=tmp_path / "lenet.pt")
    assert error.problems[0].message.endswith(
        f"the file is a checkpoint of 'lenet': build it (`zoo build {tmp_path / 'lenet.pt'}`)"
    )


def test_weights_of_part_of_the_model_are_named_as_such(
    resnet18: nn.Module, tmp_path: Path
) -> None:
    # a backbone saved from inside a wrapper: the model's keys are the file's under "backbone."
    spec = {
        "name": "wrapped",
        "input": {"channels": 3, "size": 32},
        "stages": [
            {
                "type": "sequential",
                "name": "backbone",
                "layers": [
                    {"type": "conv", "name": "conv", "out": 4, "kernel": 3},
                    {"type": "batchnorm", "name": "bn"},
                ],
            }
        ],
    }
    path = tmp_path / "backbone.pth"
    model = zoo.build(spec)
    torch.save(model.backbone.state_dict(), path)
    message = _error(zoo.build, spec, weights=path).problems[0].message
    assert message.endswith(
        "the model's keys are the file's with the prefix 'backbone.': weights of a part of it?"
    )


# --------------------------------------------------------------------------- files that are not weights
@pytest.mark.parametrize(
    ("content", "why"),
    [
        ([1, 2], "it holds a list, not a dict"),
        ({}, "it holds an empty dict"),
        ({"epoch": 3, "weights": {}}, "it maps 'epoch' to a int, not a tensor"),
        (
            {"state_dict": {"w": 1}},
            "the 'state_dict' entry of a checkpoint maps 'w' to a int, not a tensor",
        ),
    ],
)
def test_files_without_weights(tmp_path: Path, content, why: str) -> None:
    path = tmp_path / "w.pth"
    torch.save(content, path)
    error = _error(zoo.build, "lenet", weights=path)
    assert error.exit_code == ExitCode.IO_ERROR and error.problems[0].kind == "weights_file"
    assert error.problems[0].message.startswith(
        f"no weights to load: {why}; zoo reads a state_dict"
    )


def test_a_pickled_module_is_not_run(tmp_path: Path) -> None:
    path = tmp_path / "module.pth"
    torch.save(nn.Linear(2, 2), path)  # loading it would unpickle (run) arbitrary code
    error = _error(zoo.build, "lenet", weights=path)
    assert error.exit_code == ExitCode.IO_ERROR
    assert "it holds Python objects (torch.nn.modules.linear.Linear)" in error.problems[0].message


def test_bad_weights_arguments(tv_file: Path, tmp_path: Path) -> None:
    error = _error(zoo.build, "resnet18", weights=tv_file, device="meta")
    assert error.exit_code == ExitCode.USAGE_ERROR and "meta device holds none" in str(error)
    assert _error(zoo.build, "resnet18", weights=3).exit_code == ExitCode.USAGE_ERROR
    missing = _error(zoo.build, "resnet18", weights=tmp_path / "none.pth")
    assert missing.exit_code == ExitCode.IO_ERROR and missing.problems[0].message == "no such file"
    folder = _error(zoo.build, "resnet18", weights=tmp_path)
    assert folder.exit_code == ExitCode.IO_ERROR and "it is a directory" in str(folder)


# --------------------------------------------------------------------------- the command
def run_cli_weights(spec: str, path: Path, *more: str) -> tuple[int, str, str]:
    """``zoo build SPEC --weights PATH ...`` in-process, with its output captured."""
    import contextlib
    import io

    from zoo.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["build", spec, "--weights", str(path), *more])
    return code, out.getvalue(), err.getvalue()


def test_the_cli_converts_weights_to_a_zoo_checkpoint(
    resnet18: nn.Module, tv_file: Path, tmp_path: Path, capsys
) -> None:
    target = tmp_path / "r18.pt"
    code, out, err = run_cli(
        capsys, "build", "resnet18", "--weights", str(tv_file), "--output", str(target)
    )
    assert code == 0 and "resnet18: 11,689,512 parameters" in out
    assert err.splitlines() == [
        f"{tv_file}: loaded 122 tensors into resnet18 (11,689,512 parameters), from a state_dict",
        f"saved {target}",
    ]
    _same_outputs(zoo.load(target), resnet18)  # and `zoo build r18.pt` reads it back
    assert run_cli(capsys, "build", str(target), "--device", "cpu")[0] == 0


def test_the_cli_refuses_what_cannot_work(tv_file: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(
        capsys, "build", "resnet18", "--weights", str(tv_file), "--output", str(tv_file)
    )
    assert code == 3 and "will not write over it: it is an input of this command" in err
    code, _, err = run_cli(
        capsys, "build", "resnet18", "--weights", str(tv_file), "--device", "meta"
    )
    assert code == 2 and "--weights loads tensors, and --device meta holds none" in err
    zoo.save(zoo.build("lenet"), tmp_path / "lenet.pt")
    code, _, err = run_cli(capsys, "build", str(tmp_path / "lenet.pt"), "--weights", str(tv_file))
    assert code == 2 and "a checkpoint brings its own weights" in err
    # --set changes the spec the weights load into: here they no longer fit
    code, _, err = run_cli(
        capsys, "build", "resnet18", "--weights", str(tv_file), "--set", "head.2.out=10"
    )
    assert code == 1 and "fc.weight: mis-shaped: 1000x512 in the file, 10x512 in the model" in err
