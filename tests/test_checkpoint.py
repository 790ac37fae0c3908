"""zoo.save and zoo.load: a checkpoint holds the weights and the spec they fit, and loads back
strictly, with every tensor equal; a file that is not one zoo wrote is one located ZooError."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import zoo
import zoo.compiler
from tests.conftest import SPEC_NAMES
from zoo.errors import ExitCode, ZooError

# BatchNorm (running stats, num_batches_tracked), a conv with a bias, a linear whose in-features
# depend on the input size: what a checkpoint must carry
SMALL = {
    "name": "small",
    "input": {"channels": 1, "size": 12},
    "stem": [{"type": "conv_bn_act", "out": 4, "kernel": 3, "name": "stem"}],
    "stages": [{"type": "basic", "out": 4, "name": "block"}],
    "head": [{"type": "flatten"}, {"type": "linear", "out": 3}],
}


def _trained(model: nn.Module) -> nn.Module:
    """``model`` with every tensor changed from its initialization, as training would leave it."""
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5)  # positive: running_var too
            else:
                tensor.add_(7)  # num_batches_tracked
    return model


def _assert_same_tensors(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key], sb[key]), key


def _error(call, *args, **kwargs) -> ZooError:
    with pytest.raises(ZooError) as caught:
        call(*args, **kwargs)
    return caught.value


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("source", [SMALL, "resnet18"])
def test_round_trip_keeps_every_tensor(tmp_path: Path, source) -> None:
    model = _trained(zoo.build(source))
    zoo.save(model, tmp_path / "m.pt")
    loaded = zoo.load(tmp_path / "m.pt")
    assert type(loaded) is type(model)
    _assert_same_tensors(model, loaded)
    assert loaded.spec.model_dump() == model.spec.model_dump()  # what the next save writes
    x = torch.randn(2, *model.input_shape)
    assert torch.equal(model.eval()(x), loaded.eval()(x))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp file left behind


def test_the_input_built_for_is_saved(tmp_path: Path) -> None:
    model = _trained(zoo.build(SMALL, input_shape=(1, 20, 16)))
    zoo.save(model, tmp_path / "m.pt", spec=SMALL)  # its input, not the spec's, is saved
    loaded = zoo.load(tmp_path / "m.pt")
    assert loaded.input_shape == (1, 20, 16)
    _assert_same_tensors(model, loaded)
    saved = torch.load(tmp_path / "m.pt", weights_only=True)  # readable without zoo
    assert saved["format"] == "zoo/1" and saved["spec"]["input"] == {
        "channels": 1,
        "size": [20, 16],
    }


def test_the_spec_saved_is_the_one_built_from_when_the_input_is_its_own(tmp_path: Path) -> None:
    spec = zoo.load_spec("resnet18")
    zoo.save(zoo.build(spec), tmp_path / "m.pt")
    assert zoo.load(tmp_path / "m.pt").spec.model_dump() == spec.model_dump()


def test_the_weights_dtype_is_kept(tmp_path: Path) -> None:
    model = _trained(zoo.build(SMALL, dtype="bfloat16"))
    zoo.save(model, tmp_path / "m.pt", spec=SMALL)
    loaded = zoo.load(tmp_path / "m.pt")
    assert loaded.stem.conv.weight.dtype == torch.bfloat16
    _assert_same_tensors(model, loaded)


def test_any_module_that_fits_the_spec_can_be_saved_with_it(tmp_path: Path) -> None:
    # torchvision's resnet18 has exactly the state_dict keys of zoo's
    reference = _trained(torchvision.models.resnet18())
    zoo.save(reference, tmp_path / "tv.pt", spec="resnet18")
    _assert_same_tensors(reference, zoo.load(tmp_path / "tv.pt"))


# --------------------------------------------------------------------------- save refuses
def test_save_refuses_a_meta_model(tmp_path: Path) -> None:
    error = _error(zoo.save, zoo.build("lenet", device="meta"), tmp_path / "m.pt")
    assert error.exit_code == ExitCode.USAGE_ERROR
    assert "the model is on the meta device: it has shapes but no weights" in str(error)
    assert not any(tmp_path.iterdir())


def test_save_needs_a_spec_for_a_module_zoo_did_not_build(tmp_path: Path) -> None:
    error = _error(zoo.save, nn.Linear(2, 3), tmp_path / "m.pt")
    assert error.exit_code == ExitCode.USAGE_ERROR
    assert "the Linear has no spec" in str(error) and "spec=..." in str(error)


def test_save_refuses_weights_that_do_not_fit_the_spec(tmp_path: Path) -> None:
    error = _error(zoo.save, zoo.build("lenet"), tmp_path / "m.pt", spec="resnet18")
    assert error.exit_code == ExitCode.USAGE_ERROR
    message = error.problems[0].message
    assert message.startswith("the model's weights do not fit the spec 'resnet18' (missing conv1")
    assert "; unexpected stages_0.weight," in message and " more" in message
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("not a model", "m.pt"), "save() takes an nn.Module to save, got str"),
        ((nn.Linear(2, 3), 3), "save() takes a file path, got int"),
        ((nn.Linear(2, 3), ""), "save() path needs a file name"),
        ((nn.Linear(2, 3), "m.pt", 5), "save() takes a ModelSpec, a spec file path"),
    ],
)
def test_save_bad_arguments(args, message: str) -> None:
    error = _error(zoo.save, *args)
    assert error.exit_code == ExitCode.USAGE_ERROR and message in str(error)


def test_save_never_writes_over_its_inputs(tmp_path: Path) -> None:
    spec = tmp_path / "spec.pt"
    spec.write_bytes(b"precious")
    error = _error(zoo.save, zoo.build("lenet"), spec, "lenet", inputs=[spec])
    assert error.exit_code == ExitCode.IO_ERROR and "it is an input of this command" in str(error)
    assert spec.read_bytes() == b"precious"


# --------------------------------------------------------------------------- strict loading
def _write(path: Path, checkpoint: object) -> Path:
    torch.save(checkpoint, path)
    return path


def _lenet_checkpoint() -> dict:
    return {
        "format": "zoo/1",
        "spec": zoo.load_spec("lenet").model_dump(mode="json"),
        "state_dict": zoo.build("lenet").state_dict(),
    }


def test_weights_that_do_not_fit_are_one_error_naming_every_kind(tmp_path: Path) -> None:
    checkpoint = _lenet_checkpoint()
    state = checkpoint["state_dict"]
    del state["head_1.bias"]
    state["extra.weight"] = torch.zeros(2)
    state["stages_0.weight"] = torch.zeros(6, 1, 3, 3)
    path = _write(tmp_path / "m.pt", checkpoint)
    error = _error(zoo.load, path)
    assert error.exit_code == ExitCode.SPEC_ERROR and len(error.problems) == 1
    problem = error.problems[0]
    assert (problem.file, problem.path, problem.kind) == (str(path), "state_dict", "weights")
    assert problem.message == (
        "its weights do not fit the model its spec builds for input 1x28x28 (missing head_1.bias; "
        "unexpected extra.weight; mis-shaped stages_0.weight (6x1x3x3 where the model has "
        "6x1x5x5)); the file, or a layer type it uses, changed after zoo wrote it"
    )


def test_a_long_list_of_keys_is_cut_short(tmp_path: Path) -> None:
    checkpoint = _lenet_checkpoint()
    checkpoint["state_dict"] = {}
    error = _error(zoo.load, _write(tmp_path / "m.pt", checkpoint))
    assert (
        "(missing stages_0.weight, stages_0.bias, stages_3.weight, stages_3.bias and 6 more)"
        in (str(error))
    )


def test_a_spec_that_does_not_validate_is_located_at_the_file(tmp_path: Path) -> None:
    checkpoint = _lenet_checkpoint()
    checkpoint["spec"]["stages"][0]["kernal"] = 5
    path = _write(tmp_path / "m.pt", checkpoint)
    error = _error(zoo.load, path)
    assert error.exit_code == ExitCode.SPEC_ERROR
    assert error.problems[0].format() == (
        f"{path}: stages.0.kernal: unknown field; did you mean 'kernel'?"
    )


# --------------------------------------------------------------------------- files that are not
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"",
            "torch.load cannot read it: it is truncated, damaged or not a PyTorch file (EOFError)",
        ),
        (b"name: lenet\n", "torch.load cannot read it: it is truncated, damaged or not a PyTorch"),
        (b"PK\x03\x04junk", "(RuntimeError: PytorchStreamReader failed reading zip archive"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "m.pt"
    path.write_bytes(content)
    error = _error(zoo.load, path)
    assert error.exit_code == ExitCode.IO_ERROR and error.problems[0].file == str(path)
    assert error.problems[0].message.startswith("not a zoo checkpoint: ")
    assert message in error.problems[0].message
    assert error.problems[0].message.endswith(
        "; zoo reads the files that zoo.save and `zoo build --output` write"
        " (a torchvision or timm state_dict goes with a spec: zoo build SPEC --weights FILE)"
    )


def test_a_truncated_checkpoint(tmp_path: Path) -> None:
    whole = _write(tmp_path / "whole.pt", _lenet_checkpoint()).read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(whole[: len(whole) // 2])
    error = _error(zoo.load, path)
    assert error.exit_code == ExitCode.IO_ERROR
    assert "it is truncated, damaged or not a PyTorch file (RuntimeError" in str(error)


@pytest.mark.parametrize(
    ("checkpoint", "message"),
    [
        (
            torchvision.models.resnet18().state_dict(),
            "it holds a dict without 'format' (a plain state_dict?)",
        ),
        ([1, 2], "it holds a list, not a dict"),
        ({"format": "zoo/2"}, "its format is 'zoo/2', and this zoo reads 'zoo/1'"),
        (
            {"format": "zoo/1", "spec": "lenet"},
            "a zoo/1 checkpoint holds a 'spec' and a 'state_dict' dict",
        ),
        (
            {"format": "zoo/1", "spec": {}, "state_dict": {"w": 1}},
            "its state_dict maps names to something besides tensors",
        ),
    ],
)
def test_files_that_are_not_zoo_checkpoints(tmp_path: Path, checkpoint, message: str) -> None:
    path = _write(tmp_path / "m.pt", checkpoint)
    error = _error(zoo.load, path)
    assert error.exit_code == ExitCode.IO_ERROR and error.problems[0].kind == "checkpoint"
    assert error.problems[0].message == (
        f"not a zoo checkpoint: {message}; zoo reads the files that zoo.save and "
        "`zoo build --output` write (a torchvision or timm state_dict goes with a spec: "
        "zoo build SPEC --weights FILE)"
    )


def test_a_pickled_module_is_never_unpickled(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.pt", nn.Linear(2, 3))
    error = _error(zoo.load, path)
    assert error.exit_code == ExitCode.IO_ERROR
    assert (
        "it holds Python objects (torch.nn.modules.linear.Linear), not only tensors "
        "(a pickled module?), and zoo runs no code from a file"
    ) in str(error)


def test_pickle_objects_inside_a_checkpoint_are_refused(tmp_path: Path) -> None:
    checkpoint = _lenet_checkpoint()
    checkpoint["spec"]["description"] = Path("x")  # any class: weights_only refuses it
    path = _write(tmp_path / "m.pt", checkpoint)
    assert "it holds Python objects (pathlib" in str(_error(zoo.load, path))


def test_missing_file_folder_and_fifo(tmp_path: Path) -> None:
    missing = _error(zoo.load, tmp_path / "none.pt")
    assert missing.exit_code == ExitCode.IO_ERROR
    assert missing.problems[0].format() == f"{tmp_path / 'none.pt'}: no such file"
    folder = _error(zoo.load, tmp_path)
    assert "it is a directory; give a checkpoint file (.pt)" in str(folder)
    fifo = tmp_path / "f.pt"
    os.mkfifo(fifo)  # reading it would block forever
    error = _error(zoo.load, fifo)
    assert error.exit_code == ExitCode.IO_ERROR
    assert (
        error.problems[0].format()
        == f"{fifo}: it is a FIFO (named pipe); give a checkpoint file (.pt)"
    )


def test_a_file_above_the_limit_is_refused_before_it_is_read(tmp_path: Path, monkeypatch) -> None:
    path = _write(tmp_path / "m.pt", _lenet_checkpoint())
    monkeypatch.setattr(zoo.compiler, "MAX_WEIGHT_BYTES", path.stat().st_size - 2**26 - 1)
    error = _error(zoo.load, path)
    assert error.exit_code == ExitCode.IO_ERROR and error.problems[0].kind == "too_large"
    assert "limit on weights; pass force=True (--force) to load it anyway" in str(error)
    assert zoo.load(path, force=True).spec_name == "lenet"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": None}, "load() takes a file path, got NoneType"),
        ({"path": "m.pt", "force": "yes"}, "force must be True or False, got 'yes'"),
        ({"path": "m.pt", "device": "gpu"}, "'gpu' is not a device"),
    ],
)
def test_load_bad_arguments(kwargs: dict, message: str) -> None:
    error = _error(zoo.load, **kwargs)
    assert error.exit_code == ExitCode.USAGE_ERROR and message in str(error)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_shipped_spec_survives_the_round_trip_a_checkpoint_makes(name: str) -> None:
    # a checkpoint holds the spec as the fields that were given: a dump with every default would
    # give fields that only some kinds allow (a 'conv' shortcut's eps) and be refused on load
    spec = zoo.load_spec(name)
    data = spec.model_dump(mode="json", exclude_unset=True)
    assert zoo.load_spec(data).model_dump() == spec.model_dump()


def test_a_spec_with_a_conv_shortcut_saves_and_loads(tmp_path: Path) -> None:
    model = zoo.build("trashnet")
    zoo.save(model, tmp_path / "t.pt")
    loaded = zoo.load(tmp_path / "t.pt")
    assert loaded.spec.model_dump() == model.spec.model_dump()
