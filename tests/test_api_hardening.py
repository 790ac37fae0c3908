"""The Python API under bad arguments (one clear ZooError each) and zero-init of residual blocks."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import torch
import torchvision
from torch import nn

import zoo
import zoo.module_tracing
from zoo.errors import ExitCode, ZooError

HEADER = """
name: t
input: {channels: 3, size: 16}
zero_init_residual: true
"""


def _build(write_spec, body: str) -> nn.Module:
    return zoo.build(write_spec(HEADER + textwrap.dedent(body)))


def _zeroed(model: nn.Module) -> set[str]:
    """Names of the norms whose weight is all zeros."""
    return {
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.BatchNorm2d) and m.weight is not None and not m.weight.any()
    }


# --------------------------------------------------------------------------- zero_init_residual
@pytest.mark.parametrize(
    ("block", "zeroed"),
    [
        ("{type: basic, out: 8}", "b.bn2"),
        ("{type: bottleneck, out: 16}", "b.bn3"),
        ("{type: preact_basic, out: 8}", "b.norm2"),
        ("{type: preact_bottleneck, out: 16}", "b.norm3"),
        # the last norm sits inside a conv_bn_act (an nn.Sequential conv/bn/act)
        (
            "{type: residual, body: [{type: conv_bn_act, out: 8, kernel: 3},"
            " {type: conv_bn_act, out: 8, kernel: 3, act: none}]}",
            "b.body_1.bn",
        ),
        (
            "{type: residual, body: [{type: conv_bn_act, out: 8, kernel: 3},"
            " {type: conv_bn_act, out: 8, kernel: 3}]}",
            "b.body_1.bn",
        ),
        # a plain batchnorm followed by a relu
        (
            "{type: residual, body: [{type: conv, out: 8, kernel: 3, padding: 1},"
            " {type: batchnorm}, {type: relu}]}",
            "b.body_1",
        ),
    ],
)
def test_zero_init_residual_zeroes_the_last_norm_of_every_block(
    write_spec, block: str, zeroed: str
) -> None:
    stem = "stem: [{type: conv_bn_act, name: stem, out: 8, kernel: 3}]\n"
    head = "head: [{type: batchnorm}, {type: relu}]\n"  # what pre-activation blocks need after
    model = _build(write_spec, f"{stem}stages:\n  - {{name: b, {block[1:]}\n{head}")
    assert _zeroed(model) == {zeroed}
    # so the block starts as its shortcut: its body gives exactly zero
    block_module = model.b
    x = torch.randn(2, 8, 16, 16)
    for name in (*block_module._pre, *block_module._body):
        x = block_module._modules[name](x)
    assert not x.any()


def test_zero_init_residual_leaves_the_shortcut_norm_alone(write_spec) -> None:
    model = _build(write_spec, "stages:\n  - {type: basic, name: b, out: 8, stride: 2}\n")
    assert isinstance(model.b.downsample[1], nn.BatchNorm2d)
    assert _zeroed(model) == {"b.bn2"}
    assert torch.all(model.b.downsample[1].weight == 1)


def test_zero_init_residual_skips_a_norm_without_weights(write_spec) -> None:
    model = _build(
        write_spec,
        """
        stages:
          - type: residual
            name: b
            body:
              - {type: conv, out: 3, kernel: 3, padding: 1}
              - {type: batchnorm, name: bn1}
              - {type: conv, out: 3, kernel: 3, padding: 1}
              - {type: batchnorm, name: bn2, affine: false}
        """,
    )
    assert model.b.bn2.weight is None
    assert _zeroed(model) == {"b.bn1"}  # the last norm that can be zeroed


def test_zero_init_residual_does_not_reach_into_a_nested_block(write_spec) -> None:
    model = _build(
        write_spec,
        """
        stages:
          - type: residual
            name: outer
            body:
              - {type: conv_bn_act, name: cba, out: 8, kernel: 3}
              - {type: basic, name: inner, out: 16}
        """,
    )
    # the nested block zeroes its own bn2, never its shortcut's norm, which the walk must skip
    assert _zeroed(model) == {"outer.cba.bn", "outer.inner.bn2"}


@pytest.mark.parametrize(("name", "blocks"), [("resnet18", 8), ("resnet50", 16)])
def test_zero_init_residual_matches_torchvision(name: str, blocks: int) -> None:
    ours = zoo.build(zoo.load_spec(name, ["zero_init_residual=true"]))
    reference = getattr(torchvision.models, name)(zero_init_residual=True)
    assert _zeroed(ours) == _zeroed(reference) and len(_zeroed(ours)) == blocks


# --------------------------------------------------------------------------- bad arguments
def _usage_error(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ZooError) as info:
        call(*args, **kwargs)
    assert info.value.exit_code == ExitCode.USAGE_ERROR
    [problem] = info.value.problems
    assert "\n" not in problem.message
    return problem.message


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", torch.float64, "torch.float64"])
def test_build_takes_a_floating_dtype_or_its_name(dtype: Any) -> None:
    model = zoo.build("lenet", dtype=dtype)
    expected = dtype if isinstance(dtype, torch.dtype) else getattr(torch, dtype.split(".")[-1])
    assert {p.dtype for p in model.parameters()} == {expected}


@pytest.mark.parametrize("dtype", ["int8", torch.int8, torch.complex64, "float17", 3, torch.bool])
def test_build_refuses_other_dtypes(dtype: Any) -> None:
    message = _usage_error(zoo.build, "lenet", device="meta", dtype=dtype)
    assert message.startswith(f"dtype {dtype!r} ") and "float32" in message


@pytest.mark.parametrize("shape", ["abc", "3x32x32", (3.0, 28, 28), (True, 28, 28), (1, 28), 5])
def test_build_refuses_malformed_input_shapes(shape: Any) -> None:
    assert "CxHxW" in _usage_error(zoo.build, "lenet", device="meta", input_shape=shape)


@pytest.mark.parametrize("force", ["yes", 1, None])
def test_build_refuses_a_force_that_is_not_a_bool(force: Any) -> None:
    assert "force must be True or False" in _usage_error(zoo.build, "lenet", force=force)


@pytest.mark.parametrize("spec", [None, 42, b"lenet", 3.5])
@pytest.mark.parametrize("call", [zoo.build, zoo.trace])
def test_refuses_something_that_is_not_a_spec(call: Any, spec: Any) -> None:
    message = _usage_error(call, spec)
    assert message.startswith(f"{call.__name__}() takes a ModelSpec, a spec file path")


def test_build_and_trace_take_a_mapping() -> None:
    data = {
        "name": "m",
        "input": {"channels": 3, "size": 8},
        "stem": [{"type": "conv", "out": 4, "kernel": 3}],
    }
    assert zoo.trace(data).output == (1, 4, 6, 6)
    assert zoo.build(data)(torch.randn(1, 3, 8, 8)).shape == (1, 4, 6, 6)


@pytest.mark.parametrize(
    "shape", ["abc", "1x3x32x32", (1.5, 1, 28, 28), (1, True, 28, 28), (1, 1, 28, "28"), 7]
)
@pytest.mark.parametrize("model", ["lenet", nn.Conv2d(1, 2, 3)])
def test_trace_refuses_malformed_input_shapes(model: Any, shape: Any) -> None:
    assert "[N]xCxHxW" in _usage_error(zoo.trace, model, shape)


def test_trace_of_a_plain_module_needs_an_input_shape() -> None:
    message = _usage_error(zoo.trace, nn.Conv2d(1, 2, 3))
    assert message.startswith("tracing a plain nn.Module needs an input_shape")


@pytest.mark.parametrize("depth", ["x", -1, 1.5, True])
def test_trace_refuses_a_bad_depth(depth: Any) -> None:
    message = _usage_error(zoo.trace, "lenet", depth=depth)
    assert message == f"depth must be an int >= 0 (1: the direct children) or None, got {depth!r}"


def test_trace_depth_zero_keeps_the_totals_only() -> None:
    result = zoo.trace("lenet", depth=0)
    assert result.rows == [] and result.params == zoo.trace("lenet").params


# --------------------------------------------------------------------------- tracing any nn.Module
class _Mixer(nn.Module):
    """A small net with a functional op, so rows and MACs come from hooks and the flop counter."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


class _DataDependent(_Mixer):
    """Branches on a value, which a meta tensor does not have."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.fc(y.mean((2, 3))) if y.sum() > 0 else self.fc(-y.mean((2, 3)))


def test_module_is_traced_on_the_meta_device() -> None:
    model = _Mixer()
    devices = []
    model.conv.register_forward_pre_hook(lambda m, args: devices.append(args[0].device.type))
    result = zoo.trace(model, (2, 3, 8, 8))
    assert devices == ["meta"]
    assert not any(p.is_meta for p in model.parameters()) and model.training  # left as it was
    assert result.output == (2, 4) and result.params == 3 * 8 * 9 + 8 + 16 + 36
    assert result.macs == 2 * (8 * 8 * 8 * 27 + 32)
    assert [(r.path, r.output) for r in result.rows] == [
        ("conv", (2, 8, 8, 8)),
        ("bn", (2, 8, 8, 8)),
        ("fc", (2, 4)),
    ]


def test_module_that_cannot_run_on_meta_is_traced_for_real() -> None:
    meta = zoo.trace(_Mixer(), (2, 3, 8, 8))
    real = zoo.trace(_DataDependent(), (2, 3, 8, 8))
    assert (real.output, real.params, real.macs) == (meta.output, meta.params, meta.macs)
    assert [r.path for r in real.rows] == ["conv", "fc"]


def test_real_forward_is_refused_when_it_would_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zoo.module_tracing, "free_memory_bytes", lambda device: 2**20)
    message = _usage_error(zoo.trace, _DataDependent(), (1, 3, 512, 512))
    assert message.startswith("_DataDependent cannot run on the meta device (")
    # the input (3.1 MB) and the largest output seen before it stopped (the conv's, 8.4 MB)
    assert "needs at least 11.5 MB" in message and "use a smaller input_shape" in message


def test_module_failing_on_its_input_is_a_zoo_error() -> None:
    message = _usage_error(zoo.trace, _Mixer(), (1, 4, 8, 8))
    assert message.startswith("_Mixer fails on a 1x4x8x8 input: ")
