"""Squeeze-and-excitation against torchvision's SqueezeExcitation and timm's SEModule: the same
state_dict, the same outputs, the same squeeze channels by the same rounding rule."""

from __future__ import annotations

import pytest
import timm.layers
import torch
import torchvision.models._utils
import torchvision.ops
from torch import nn

import zoo
from zoo.shapes import make_divisible


def _net(channels: int, se: dict) -> zoo.ModelSpec:
    return zoo.load_spec(
        {
            "name": "se",
            "input": {"channels": channels, "size": [9, 7]},
            "stem": [{"name": "se", "type": "squeeze_excite", **se}],
        }
    )


def _same_function(ours: nn.Module, reference: nn.Module, channels: int) -> None:
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, channels, 9, 7)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("channels", [16, 72, 120, 960])
def test_matches_torchvision_mobilenet_v3_se(channels: int) -> None:
    """MobileNetV3's SE: squeeze _make_divisible(c // 4, 8), ReLU, hard-sigmoid gate."""
    squeeze = torchvision.models._utils._make_divisible(channels // 4, 8)
    reference = torchvision.ops.SqueezeExcitation(
        channels, squeeze, scale_activation=nn.Hardsigmoid
    )
    model = zoo.build(_net(channels, {"gate": "hardsigmoid"}))
    assert model.se.fc1.out_channels == squeeze
    _same_function(model.se, reference, channels)
    assert [n for n, _ in model.se.named_children()] == [n for n, _ in reference.named_children()]


def test_matches_torchvision_efficientnet_se() -> None:
    """EfficientNet's SE: a squeeze given by the block (its input // 4), SiLU, sigmoid gate."""
    reference = torchvision.ops.SqueezeExcitation(96, 4, activation=nn.SiLU)
    model = zoo.build(_net(96, {"squeeze": 4, "act": "silu"}))
    _same_function(model.se, reference, 96)


@pytest.mark.parametrize("channels", [64, 256, 1024, 2048])
def test_matches_timm_se_module(channels: int) -> None:
    """timm's SE-ResNet: ratio 1/16 rounded to a multiple of 8 with no round-up limit."""
    reference = timm.layers.SEModule(channels, rd_ratio=1 / 16)
    model = zoo.build(_net(channels, {"ratio": 0.0625, "round_limit": 0}))
    _same_function(model.se, reference, channels)


@pytest.mark.parametrize("divisor", [1, 4, 8, 16])
def test_make_divisible_is_torchvision_and_timm(divisor: int) -> None:
    for value in [v / 4 for v in range(1, 4000)]:
        assert make_divisible(value, divisor) == torchvision.models._utils._make_divisible(
            value, divisor
        )
        assert make_divisible(value, divisor, round_limit=0) == timm.layers.make_divisible(
            value, divisor, round_limit=0.0
        )


def test_se_counts_its_two_convs() -> None:
    result = zoo.trace(_net(64, {"squeeze": 16}))
    assert result.params == (64 * 16 + 16) + (16 * 64 + 64)
    assert result.macs == 64 * 16 + 16 * 64  # on the pooled 1x1 map; the multiply is not counted
