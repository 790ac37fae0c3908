"""Models out: ``torch.jit.script`` compiles every shipped spec's model (with its ``state_dict``
keys and its outputs), and ``zoo export`` writes TorchScript, ONNX and ``torch.export`` programs
by the output rules (atomic, never over an input), ONNX only with the ``onnx`` extra."""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import zoo
import zoo.export
from tests.conftest import SPEC_NAMES, run_cli
from tests.test_reference_parity import randomize_norm_statistics
from zoo.errors import ExitCode, ZooError
from zoo.nn import Concat, DenseBlock, Residual, scriptable

# TorchScript is deprecated in torch 2.14: its FutureWarnings are torch's, not zoo's
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")

HAS_ONNX = all(importlib.util.find_spec(name) for name in zoo.export.ONNX_PACKAGES)


def _script(model: nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notices
        return torch.jit.script(model)


def _kinds(model: nn.Module) -> set[str]:
    """What TorchScript compiles for ``model``: each module class, and for each of zoo's traced
    blocks the code of its forward."""
    return {getattr(m, "code", None) or type(m).__qualname__ for m in scriptable(model).modules()}


# --------------------------------------------------------------------------- torch.jit.script
def test_every_shipped_spec_scripts() -> None:
    """Every shipped spec's model compiles, with exactly its eager ``state_dict`` keys.

    Whether a model compiles is decided by the kinds of modules in it: torch.nn's layers and
    zoo's blocks, each traced into code that calls its children by name (all Tensor to Tensor),
    whatever their sizes. A spec whose every kind an earlier spec already compiled (resnet152's
    blocks are resnet50's, efficientnet_b7's are b0's) is covered by it: compiling all 80 specs
    takes about 70 s on one core, the distinct ones about 20 s."""
    compiled: set[str] = set()
    failures = []
    for name in SPEC_NAMES:
        model = zoo.build(name, device="meta")
        kinds = _kinds(model)
        if kinds <= compiled:
            continue
        try:
            scripted = _script(model)
        except Exception as exc:
            failures.append(f"{name}: {' '.join(str(exc).split())[:300]}")
            continue
        assert list(scripted.state_dict()) == list(model.state_dict()), name
        compiled |= kinds
    assert failures == []


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("resnet18", 64),  # Residual
        ("shufflenet_v2_x0_5", 64),  # Concat with split, channel shuffle
        ("inception_v3", 75),  # nested Concat joins
        ("densenet121", 64),  # DenseBlock
        ("convnext_tiny", 64),  # layer scale, stochastic depth, LayerNorm2d, ChannelLinear
        ("efficientnet_b0", 64),  # squeeze-excitation, stochastic depth
    ],
)
def test_the_scripted_model_computes_the_same(name: str, size: int) -> None:
    model = zoo.build(name, input_shape=(3, size, size)).eval()
    randomize_norm_statistics(model)
    scripted = _script(model)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert torch.equal(scripted(x), model(x))
    scripted.train()  # stochastic depth and dropout read the mode when they run
    assert scripted(x).shape == model(x).shape


def test_scripting_leaves_the_model_as_it_was() -> None:
    model = zoo.build("resnet18", device="meta")
    before = [(name, type(m)) for name, m in model.named_modules()]
    _script(model)
    assert [(name, type(m)) for name, m in model.named_modules()] == before
    assert isinstance(model.layer1[0], Residual)
    # a block scripted alone too (its parent's children are not replaced)
    block = zoo.build("densenet121", device="meta").features.denseblock1
    assert isinstance(block, DenseBlock)
    _script(block)
    assert isinstance(block, DenseBlock)


def test_the_scripted_model_shares_the_weights() -> None:
    model = zoo.build("squeezenet1_1", input_shape=(3, 64, 64))
    assert any(isinstance(m, Concat) for m in model.modules())
    scripted = _script(model)
    with torch.no_grad():
        model.features[0].weight.fill_(0.5)
    assert torch.equal(scripted.features[0].weight, model.features[0].weight)


# --------------------------------------------------------------------------- zoo export
SMALL = {
    "name": "small",
    "input": {"channels": 1, "size": 16},
    "stem": [{"type": "conv_bn_act", "out": 4, "kernel": 3, "name": "stem"}],
    "stages": [{"type": "basic", "out": 8, "stride": 2, "name": "block"}],
    "head": [
        {"type": "adaptive_avgpool", "size": 1},
        {"type": "flatten"},
        {"type": "linear", "out": 3},
    ],
}


@pytest.fixture
def small_checkpoint(tmp_path: Path) -> tuple[Path, nn.Module]:
    """A zoo checkpoint of SMALL with trained-looking weights, and its model (eval mode)."""
    model = zoo.build(SMALL)
    randomize_norm_statistics(model)
    path = tmp_path / "small.pt"
    zoo.save(model, path)
    return path, model.eval()


def _load(path: Path, format: str) -> nn.Module:
    if format == "torchscript":
        return torch.jit.load(path)
    return torch.export.load(path).module()


@pytest.mark.parametrize(
    ("format", "suffix"), [("torchscript", ".ts"), ("exported-program", ".pt2")]
)
def test_export_writes_a_model_that_computes_the_same(
    small_checkpoint: tuple[Path, nn.Module], tmp_path: Path, capsys, format: str, suffix: str
) -> None:
    checkpoint, model = small_checkpoint
    target = tmp_path / f"small{suffix}"
    code, out, err = run_cli(capsys, "export", str(checkpoint), "--output", str(target))
    assert code == 0 and out == ""
    assert err.startswith(f"wrote {target} ({format}, input [N, 1, 16, 16], ")
    exported = _load(target, format)
    for batch in (1, 5):  # the batch size stays free
        x = torch.randn(batch, 1, 16, 16)
        with torch.no_grad():
            torch.testing.assert_close(exported(x), model(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["small.pt", target.name])


@pytest.mark.skipif(
    not HAS_ONNX, reason="the onnx extra is not installed (pip install 'zoo[onnx]')"
)
def test_export_onnx(small_checkpoint: tuple[Path, nn.Module], tmp_path: Path, capsys) -> None:
    import numpy as np
    import onnx
    from onnx.reference import ReferenceEvaluator

    checkpoint, model = small_checkpoint
    target = tmp_path / "small.onnx"
    code, out, err = run_cli(capsys, "export", str(checkpoint), "--output", str(target))
    assert code == 0 and out == "" and err.startswith(f"wrote {target} (onnx, ")
    proto = onnx.load(target)
    onnx.checker.check_model(proto)
    (given,) = proto.graph.input
    dims = [d.dim_param or d.dim_value for d in given.type.tensor_type.shape.dim]
    assert given.name == "input" and dims == ["batch", 1, 16, 16]
    x = torch.randn(3, 1, 16, 16)
    (y,) = ReferenceEvaluator(proto).run(None, {"input": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(y, model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_a_missing_onnx_package_is_one_clear_line(monkeypatch, tmp_path: Path, capsys) -> None:
    found = importlib.util.find_spec
    monkeypatch.setattr(
        zoo.export.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxscript" else found(name, *a),
    )
    code, _, err = run_cli(capsys, "export", "lenet", "--output", str(tmp_path / "l.onnx"))
    assert code == 2 and err.strip() == (
        "zoo: ONNX export needs onnxscript, which torch.onnx.export uses and zoo does not "
        "install by default: pip install 'zoo[onnx]' [missing_dependency]"
    )
    assert not any(tmp_path.iterdir())


def test_export_spec_with_weights_and_input(tmp_path: Path, capsys) -> None:
    source = zoo.build("lenet")
    weights = tmp_path / "lenet.pth"
    torch.save(source.state_dict(), weights)
    target = tmp_path / "lenet.pt2"
    code, _, err = run_cli(
        capsys, "export", "lenet", "--weights", str(weights), "--output", str(target)
    )
    assert code == 0 and err.splitlines()[0].startswith(f"{weights}: loaded 10 tensors into lenet")
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(_load(target, "exported-program")(x), source.eval()(x))
    # --input sets the size exported for; here it would change the Linear: the weights refuse it
    code, _, err = run_cli(
        capsys, "export", "lenet", "--weights", str(weights), "--input", "1x32x32",
        "--output", str(target),
    )  # fmt: skip
    assert code == 1 and "head_1.weight: mis-shaped: 120x400 in the file, 120x576" in err


def test_export_follows_the_output_rules(tmp_path: Path, capsys, write_spec) -> None:
    spec = write_spec(
        "name: tiny\ninput: {channels: 1, size: 8}\nstages: [{type: conv, out: 2, kernel: 3}]\n"
    )
    # never over an input: the spec itself, given a name that says torchscript
    code, _, err = run_cli(
        capsys, "export", str(spec), "--format", "torchscript", "--output", str(spec)
    )
    assert code == 3 and "will not write over it: it is an input of this command" in err
    (tmp_path / "dir.pt").mkdir()
    code, _, err = run_cli(capsys, "export", str(spec), "--output", str(tmp_path / "dir.pt"))
    assert code == 3 and "it is a directory" in err
    # an existing file is replaced whole, its mode kept
    target = tmp_path / "tiny.pt"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    assert run_cli(capsys, "export", str(spec), "--output", str(target))[0] == 0
    assert target.stat().st_mode & 0o777 == 0o600 and target.read_bytes()[:2] == b"PK"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.pt", "spec.yaml", "tiny.pt"]


def test_export_arguments(tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(capsys, "export", "lenet", "--output", str(tmp_path / "l.bin"))
    assert code == 2 and "cannot tell the format from the file name" in err
    code, _, err = run_cli(
        capsys, "export", "lenet", "--output", str(tmp_path / "l.ts"), "--format", "tflite"
    )
    assert code == 2 and "invalid choice: 'tflite'" in err
    assert run_cli(capsys, "export", "lenet")[0] == 2  # --output is required
    zoo.save(zoo.build("lenet"), tmp_path / "l.pt")
    code, _, err = run_cli(
        capsys,
        "export",
        str(tmp_path / "l.pt"),
        "--set",
        "head.5.out=3",
        "--output",
        str(tmp_path / "x.ts"),
    )
    assert code == 2 and "a checkpoint brings its spec and its weights" in err


def test_export_model_in_python(tmp_path: Path) -> None:
    model = zoo.build("lenet")
    path = zoo.export.export_model(model, tmp_path / "lenet.ts")
    assert path == tmp_path / "lenet.ts" and model.training  # its mode is given back
    with pytest.raises(ZooError) as caught:
        zoo.export.export_model(zoo.build("lenet", device="meta"), tmp_path / "m.ts")
    assert caught.value.exit_code == ExitCode.USAGE_ERROR and "meta device" in str(caught.value)
    with pytest.raises(ZooError) as caught:
        zoo.export.export_model(nn.Linear(2, 2), tmp_path / "m.pt2")
    assert "give input_shape=" in str(caught.value)
    features = zoo.build("resnet18", input_shape=(3, 64, 64), features_only=True).eval()
    zoo.export.export_model(features, tmp_path / "f.pt2")
    maps = _load(tmp_path / "f.pt2", "exported-program")(torch.randn(2, 3, 64, 64))
    assert [tuple(m.shape[1:]) for m in maps] == [
        (64, 32, 32),
        (64, 16, 16),
        (128, 8, 8),
        (256, 4, 4),
        (512, 2, 2),
    ]
