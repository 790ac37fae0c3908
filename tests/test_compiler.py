"""The compiler: inferred sizes, the generic combinators, presets, init, devices and shape errors."""

from __future__ import annotations

import textwrap
import warnings

import pytest
import torch
from torch import nn

import zoo
from zoo.errors import ZooError
from zoo.nn import Concat, Residual

HEADER = """
name: t
input: {channels: 3, size: 32}
"""


def _build(write_spec, body: str, **kwargs) -> nn.Module:
    return zoo.build(write_spec(HEADER + textwrap.dedent(body)), **kwargs)


def _error(write_spec, body: str) -> zoo.Problem:
    with pytest.raises(ZooError) as info:
        zoo.build(write_spec(HEADER + body), device="meta")
    assert len(info.value.problems) == 1
    return info.value.problems[0]


def test_linear_in_features_inferred(write_spec) -> None:
    path = write_spec(
        HEADER
        + """
stem:
  - {type: conv, name: c, out: 6, kernel: 5, padding: 2}
  - {type: avgpool, kernel: 2, stride: 2}
  - {type: conv, out: 16, kernel: 5}
  - {type: maxpool, kernel: 2}
head:
  - {type: flatten}
  - {type: linear, name: fc, out: 10}
"""
    )
    model = zoo.build(path)
    # at 32x32: 32 -> pool 16 -> conv 12 -> pool 6; at LeNet's 28x28, the famous 16*5*5
    assert model.fc.in_features == 16 * 6 * 6
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert zoo.build(path, input_shape=(3, 28, 28)).fc.in_features == 16 * 5 * 5


def test_generic_residual_notebook_block(write_spec) -> None:
    # seed 000's residual_block: ReLU before the add, a 1x1 shortcut conv with bias named conv3
    model = _build(
        write_spec,
        """
        stages:
          - type: residual
            name: block
            stride: 2
            shortcut: {kind: conv, name: conv3}
            body:
              - {type: conv, name: conv1, out: 8, kernel: 3, padding: 1, bias: false}
              - {type: batchnorm, name: bn1}
              - {type: relu, name: relu1}
              - {type: conv, name: conv2, out: 8, kernel: 3, padding: 1, bias: false}
              - {type: batchnorm, name: bn2}
              - {type: relu, name: relu2}
            post: [{type: relu}]
        """,
    )
    block = model.block
    assert isinstance(block, Residual)
    assert block.conv1.stride == (2, 2) and block.conv3.stride == (2, 2)
    assert block.conv3.bias is not None
    x = torch.randn(2, 3, 32, 32)
    relu = torch.relu
    expected = relu(relu(block.bn2(block.conv2(relu(block.bn1(block.conv1(x)))))) + block.conv3(x))
    torch.testing.assert_close(block(x), expected)


def test_stride_only_on_first_block(write_spec) -> None:
    model = _build(write_spec, "stages:\n  - {type: basic, name: s, out: 8, depth: 3, stride: 2}\n")
    assert [b.conv1.stride for b in model.s] == [(2, 2), (1, 1), (1, 1)]
    assert hasattr(model.s[0], "downsample") and not hasattr(model.s[1], "downsample")


def test_depth_omitted_gives_bare_block(write_spec) -> None:
    model = _build(write_spec, "stages:\n  - {type: basic, name: s, out: 3}\n")
    assert isinstance(model.s, Residual)
    assert not hasattr(model.s, "downsample")  # same shape: identity shortcut


def test_bottleneck_resnext_width_and_groups(write_spec) -> None:
    model = _build(
        write_spec, "stages:\n  - {type: bottleneck, name: s, out: 256, width: 128, groups: 32}\n"
    )
    assert model.s.conv2.groups == 32 and model.s.conv2.in_channels == 128
    assert model.s.conv3.out_channels == 256


@pytest.mark.filterwarnings("ignore::zoo.ZooWarning")  # a lone block, no head: no final norm
def test_preactivation_shortcut_from_preactivated_input(write_spec) -> None:
    model = _build(write_spec, "stages:\n  - {type: preact_basic, name: s, out: 8, stride: 2}\n")
    block = model.s.eval()
    x = torch.randn(2, 3, 32, 32)
    pre = block.act1(block.norm1(x))
    expected = block.conv2(block.act2(block.norm2(block.conv1(pre)))) + block.downsample(pre)
    torch.testing.assert_close(block(x), expected)
    conv = block.downsample.conv  # timm's DownsampleConv layout: downsample.conv.weight
    assert conv.bias is None and isinstance(conv, nn.Conv2d)


@pytest.mark.filterwarnings("ignore::zoo.ZooWarning")
def test_preactivation_identity_carries_the_raw_input(write_spec) -> None:
    model = _build(write_spec, "stages:\n  - {type: preact_basic, name: s, out: 3}\n")
    block = model.s.eval()
    x = torch.randn(2, 3, 32, 32)
    pre = block.act1(block.norm1(x))
    torch.testing.assert_close(block(x), block.conv2(block.act2(block.norm2(block.conv1(pre)))) + x)


def test_concat_branches(write_spec) -> None:
    model = _build(
        write_spec,
        """
        stages:
          - type: concat
            name: mix
            branches:
              - {type: conv, out: 4, kernel: 1}
              - [{type: conv, out: 2, kernel: 1}, {type: conv, out: 6, kernel: 3, padding: 1}]
              - {type: maxpool, name: pool, kernel: 3, stride: 1, padding: 1}
        """,
    )
    assert isinstance(model.mix, Concat)
    assert [n for n, _ in model.mix.named_children()] == ["branch1", "branch2", "pool"]
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 4 + 6 + 3, 32, 32)


def test_inception_matches_torchvision_block() -> None:
    from torchvision.models.googlenet import Inception as TorchvisionInception

    spec = zoo.ModelSpec.model_validate(
        {
            "name": "inc",
            "input": {"channels": 192, "size": 28},
            "stages": [{"type": "inception", "name": "i", "b1": 64, "b3_reduce": 96, "b3": 128,
                        "b5_reduce": 16, "b5": 32, "b5_kernel": 3, "pool_proj": 32}],
        }
    )  # fmt: skip
    ours = zoo.build(spec).i.eval()
    reference = TorchvisionInception(192, 64, 96, 128, 16, 32, 32).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 192, 28, 28)
    torch.testing.assert_close(ours(x), reference(x))


def test_padding_same_and_conv_bn_act(write_spec) -> None:
    model = _build(
        write_spec,
        "stem:\n  - {type: conv, out: 4, kernel: 3, padding: same}\n  - {type: conv_bn_act, name: cba, out: 5, kernel: 5, act: silu}\n",
    )
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5, 32, 32)
    assert [n for n, _ in model.cba.named_children()] == ["conv", "bn", "act"]
    assert model.cba.conv.bias is None and isinstance(model.cba.act, nn.SiLU)


def test_init_and_zero_init_residual(write_spec) -> None:
    model = _build(
        write_spec, "zero_init_residual: true\nstages:\n  - {type: basic, name: s, out: 8}\n"
    )
    assert torch.all(model.s.bn2.weight == 0) and torch.all(model.s.bn1.weight == 1)
    fan_out = 8 * 9
    assert model.s.conv1.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.2)


def test_meta_device_and_dtype(write_spec) -> None:
    path = write_spec(HEADER + "stages:\n  - {type: basic, out: 8}\n")
    assert all(p.is_meta for p in zoo.build(path, device="meta").parameters())
    assert all(p.dtype == torch.float64 for p in zoo.build(path, dtype=torch.float64).parameters())


def test_unnamed_modules_named_by_section_and_index(write_spec) -> None:
    model = _build(write_spec, "stem: [{type: conv, out: 4, kernel: 3}]\nhead: [{type: flatten}]\n")
    assert [n for n, _ in model.named_children()] == ["stem_0", "head_0"]


# --------------------------------------------------------------------------- located shape errors
def test_linear_without_flatten(write_spec) -> None:
    p = _error(
        write_spec, "stem: [{type: conv, out: 4, kernel: 3}]\nhead: [{type: linear, out: 10}]\n"
    )
    assert (p.line, p.path, p.kind) == (4, "head.0", "shape")
    assert (
        "linear needs flat features but gets a 4x30x30 feature map; add {type: flatten}"
        in p.message
    )


def test_input_too_small(write_spec) -> None:
    p = _error(
        write_spec,
        "stem:\n  - {type: conv, out: 4, kernel: 3, stride: 2}\n  - {type: conv, out: 4, kernel: 16}\n",
    )
    assert (p.line, p.path) == (5, "stem.1")
    assert "turns a 4x15x15 input into 4x0x0" in p.message


def test_residual_body_and_shortcut_disagree(write_spec) -> None:
    p = _error(
        write_spec,
        "stages:\n  - type: residual\n    body: [{type: conv, out: 4, kernel: 3}]\n",
    )
    assert p.path == "stages.0.shortcut"
    assert "residual body gives 4x30x30 but the projected shortcut gives 4x32x32" in p.message
    # no body layer strides: moving a stride to the block is not the fix, padding is
    assert "put the stride on the block" not in p.message and "pad its convs" in p.message


def test_duplicate_names(write_spec) -> None:
    p = _error(
        write_spec,
        "stem:\n  - {type: conv, name: a, out: 4, kernel: 3}\n  - {type: relu, name: a}\n",
    )
    assert (p.line, p.path) == (5, "stem.1.name")
    assert "already used by stem.0" in p.message


def test_groups_must_divide(write_spec) -> None:
    p = _error(write_spec, "stem: [{type: conv, out: 4, kernel: 3, groups: 2}]\n")
    assert "groups=2 must divide both the input channels (3) and out (4)" in p.message


def test_concat_spatial_mismatch(write_spec) -> None:
    p = _error(
        write_spec,
        "stages:\n  - type: concat\n    branches:\n      - {type: conv, out: 4, kernel: 1}\n      - {type: conv, out: 4, kernel: 3}\n",
    )
    assert p.path == "stages.0.branches.1"
    assert "concatenated branches must keep the same height and width" in p.message


PREACT_NO_FINAL_NORM = """
stages:
  - {type: preact_basic, out: 8, depth: 2}
  - {type: preact_basic, out: 16, depth: 2, stride: 2}
head: [{type: adaptive_avgpool}, {type: flatten}, {type: linear, out: 10}]
"""


def test_preactivation_without_final_norm_warns_at_the_stage(write_spec) -> None:
    path = write_spec(HEADER + PREACT_NO_FINAL_NORM)
    with pytest.warns(zoo.ZooWarning) as caught:
        zoo.build(path, device="meta")
    problem = caught[0].message.problem
    assert (problem.line, problem.path, problem.kind) == (6, "stages.1", "preact_final_norm")
    assert "add {type: batchnorm} and {type: relu} before the head" in problem.message


def test_preactivation_with_final_norm_is_quiet(write_spec) -> None:
    fixed = PREACT_NO_FINAL_NORM.replace("head: [", "head: [{type: batchnorm}, {type: relu}, ")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zoo.build(write_spec(HEADER + fixed), device="meta")
        zoo.build("preact_resnet50", device="meta")
