"""Inverted residual families against torchvision 0.29: MobileNetV2, MobileNetV3 (large, small),
MNASNet (0.5, 0.75, 1.0, 1.3), EfficientNet B0-B7 and EfficientNetV2 S/M/L. All 18 shipped specs
have torchvision's parameters, state_dict, BatchNorm settings, stochastic depth schedule and
multiply-adds (on meta, by arithmetic); one constructor or more of each family computes the same
outputs; and the presets (``inverted_residual``, ``mbconv``, ``fused_mbconv``) refuse what they
cannot do, with the fix in the message, and give every field its effect."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torchvision
import yaml
from torch import nn
from torchvision.ops import StochasticDepth

import zoo
from tests.conftest import run_cli
from tests.test_reference_parity import assert_same_network
from zoo import ZooError

# Published by torchvision (weights metadata: `num_params`, `_ops` in GMACs at the weights' crop
# size, which is the spec's input size), written out so that a change on either side is caught.
REFERENCES = {
    "mobilenet_v2": (3_504_872, 0.301, 224),
    "mobilenet_v3_large": (5_483_032, 0.217, 224),
    "mobilenet_v3_small": (2_542_856, 0.057, 224),
    "mnasnet0_5": (2_218_512, 0.104, 224),
    "mnasnet0_75": (3_170_208, 0.215, 224),
    "mnasnet1_0": (4_383_312, 0.314, 224),
    "mnasnet1_3": (6_282_256, 0.526, 224),
    "efficientnet_b0": (5_288_548, 0.386, 224),
    "efficientnet_b1": (7_794_184, 0.687, 240),
    "efficientnet_b2": (9_109_994, 1.088, 288),
    "efficientnet_b3": (12_233_232, 1.827, 300),
    "efficientnet_b4": (19_341_616, 4.394, 380),
    "efficientnet_b5": (30_389_784, 10.266, 456),
    "efficientnet_b6": (43_040_704, 19.068, 528),
    "efficientnet_b7": (66_347_960, 37.746, 600),
    "efficientnet_v2_s": (21_458_488, 8.366, 384),
    "efficientnet_v2_m": (54_139_356, 24.582, 480),
    "efficientnet_v2_l": (118_515_272, 56.08, 480),
}


class _MNASNet(torchvision.models.MNASNet):
    """torchvision's MNASNet, reading any state_dict as its current (version 2) layout: it takes
    a state_dict without its own version metadata (zoo's) for a version 1 checkpoint, whose stem
    is 32 channels wide at every width, and rebuilds its stem that way (alpha != 1)."""

    def _load_from_state_dict(self, state_dict: Any, prefix: str, metadata: dict, *args) -> None:
        super()._load_from_state_dict(state_dict, prefix, {**metadata, "version": 2}, *args)


def _make_reference(name: str) -> nn.Module:
    if name.startswith("mnasnet") and name != "mnasnet1_0":
        return _MNASNet(float(name.removeprefix("mnasnet").replace("_", ".")))
    return getattr(torchvision.models, name)()


def _reference_on_meta(name: str) -> nn.Module:
    with torch.device("meta"):
        return _make_reference(name)


def _norms(model: nn.Module) -> dict[str, tuple[float, float]]:
    return {
        n: (m.eps, m.momentum) for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)
    }


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_torchvision_on_meta(name: str) -> None:
    """The published figures, then ours: parameters, state_dict keys and shapes, every BatchNorm's
    eps and momentum (they change outputs, and only some specs are run), the input size."""
    params, gmacs, size = REFERENCES[name]
    weights = torchvision.models.get_model_weights(name).DEFAULT
    assert (weights.meta["num_params"], weights.meta["_ops"]) == (params, gmacs)
    assert weights.transforms.keywords["crop_size"] == size
    assert zoo.load_spec(name).input.size in (size, (size, size))

    ours, reference = zoo.build(name, device="meta"), _reference_on_meta(name)
    assert sum(p.numel() for p in ours.parameters()) == params
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    expected = _norms(reference)
    assert _norms(ours).keys() == expected.keys()
    for norm, (eps, momentum) in _norms(ours).items():
        # MNASNet's momentum is 1 - 0.9997 (3e-4 up to rounding); the spec writes 0.0003
        assert (eps, momentum) == pytest.approx(expected[norm], rel=1e-9), norm


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_macs_match_published_at_the_weights_input_size(name: str) -> None:
    """Convolutions and Linears (bias excluded), the SE's two 1x1 convs included, as
    FlopCounterMode counts; the SE multiply and the pooling are not counted, as in `_ops`."""
    _, gmacs, size = REFERENCES[name]
    assert zoo.trace(name, (1, 3, size, size)).macs / 1e9 == pytest.approx(gmacs, rel=0.01)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_stochastic_depth_is_torchvisions(name: str) -> None:
    """Every EfficientNet block drops its branch with p = 0.2 * i / n over all n blocks of the
    network ('row' mode), exactly torchvision's float; MobileNet and MNASNet have none."""

    def schedule(model: nn.Module) -> dict[str, tuple[float, str]]:
        return {
            n: (m.p, m.mode) for n, m in model.named_modules() if isinstance(m, StochasticDepth)
        }

    ours, expected = schedule(zoo.build(name, device="meta")), schedule(_reference_on_meta(name))
    assert ours == expected
    assert bool(ours) == name.startswith("efficientnet")


PARITY = [
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mnasnet0_5",
    "efficientnet_b0",
    "efficientnet_v2_s",
]


@pytest.mark.parametrize("name", PARITY)
def test_outputs_equal_torchvision(name: str) -> None:
    """Strict loads both ways round and equal eval outputs (non-trivial BatchNorm statistics) at
    32x32, one of each family and both MBConv kinds: the 18 specs share these presets."""
    assert_same_network(name, lambda: _make_reference(name), REFERENCES[name][0], size=32)


def test_efficientnet_b0_trains_as_torchvision() -> None:
    """In training mode too, from the same seed: batch statistics, dropout, and stochastic depth
    drawn in the same order on the same branches (only where a block has its sum)."""
    ours = zoo.build("efficientnet_b0").train()
    reference = torchvision.models.efficientnet_b0().train()
    reference.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(4, 3, 32, 32)
    torch.manual_seed(1)
    got = ours(x)
    torch.manual_seed(1)
    torch.testing.assert_close(got, reference(x), rtol=0, atol=0)


def test_trace_prints_efficientnet_b3_stages_at_300(capsys) -> None:
    # torchvision keeps the stages in `features`, a top-level sequential that takes no level
    code, out, _ = run_cli(capsys, "build", "efficientnet_b3", "--trace", "--depth", "1")
    assert code == 0
    for row in (
        "features.0\t",
        "1x40x150x150",
        "features.1\t",
        "mbconv x2",
        "1x24x150x150",
        "1x32x75x75",
        "1x48x38x38",
        "1x96x19x19",
        "1x136x19x19",
        "1x232x10x10",
        "features.7\t",
        "1x384x10x10",
        "1x1536x10x10",
    ):
        assert row in out, row
    assert "features.1.0" not in out


# --------------------------------------------------------------------------- the presets
def _spec(blocks: list[dict], channels: int = 16, **extra: Any) -> dict:
    return {
        "name": "t",
        "input": {"channels": channels, "size": 8},
        "stages": blocks,
        **extra,
    }


def _keys(spec: dict) -> set[str]:
    return set(zoo.build(spec, device="meta").state_dict())


def test_inverted_residual_layouts() -> None:
    """mobilenet_v2: conv-bn-act groups in `conv`, no expansion conv at expansion 1; mnasnet:
    flat conv/bn/act in `layers`, always expanding; the stride on the depthwise conv."""
    block = {"type": "inverted_residual", "name": "b", "out": 24, "stride": 2}
    v2 = zoo.build(_spec([{**block, "expansion": 1}]), device="meta")
    assert sorted({k.rsplit(".", 1)[0] for k in v2.state_dict()}) == [
        "b.conv.0.0",
        "b.conv.0.1",
        "b.conv.1",
        "b.conv.2",
    ]
    assert v2.b.conv[0][0].groups == 16 and v2.b.conv[0][0].stride == (2, 2)
    mnas = zoo.build(_spec([{**block, "expansion": 3, "layout": "mnasnet"}]), device="meta")
    assert [type(m).__name__ for m in mnas.b.layers] == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU6",
        "Conv2d",
        "BatchNorm2d",
        "ReLU6",
        "Conv2d",
        "BatchNorm2d",
    ]
    assert mnas.b.layers[3].groups == 48 and mnas.b.layers[3].stride == (2, 2)
    assert mnas.b.layers[0].stride == (1, 1) and mnas.b.layers[2].inplace


def test_mbconv_width_se_and_stochastic_depth() -> None:
    """The inner width from a ratio (to a multiple of 8) or given; the expansion conv only when
    the width changes; SE sized by the block input (EfficientNet) or its own (MobileNetV3), or
    none; a StochasticDepth module only for blocks in the schedule."""
    efficient = zoo.build(_spec([{"type": "mbconv", "name": "b", "out": 16, "expansion": 2.6}]))
    assert efficient.b.block[0][0].out_channels == 40  # 16 x 2.6 = 41.6 -> 40
    assert efficient.b.block[2].fc1.out_channels == 4  # block input 16 // 4
    assert efficient.b.stochastic_depth.p == 0.0  # in the schedule, with no network rate
    v3 = {
        "type": "mbconv",
        "name": "b",
        "out": 24,
        "expanded": 16,
        "se": {"type": "squeeze_excite", "gate": "hardsigmoid"},
        "stochastic_depth": False,
    }
    model = zoo.build(_spec([v3]), device="meta")
    assert isinstance(model.b.block[0][0], nn.Conv2d) and model.b.block[0][0].groups == 16
    assert model.b.block[1].fc1.out_channels == 8  # make_divisible(16 / 4, 8)
    assert isinstance(model.b.block[1].scale_activation, nn.Hardsigmoid)
    assert not hasattr(model.b, "stochastic_depth")
    assert not any(".fc1." in k for k in _keys(_spec([{**v3, "se": None}])))


def test_fused_mbconv_is_one_conv_when_the_width_is_kept() -> None:
    one = zoo.build(_spec([{"type": "fused_mbconv", "name": "b", "out": 24, "expansion": 1}]))
    assert len(one.b.block) == 1 and isinstance(one.b.block[0][2], nn.SiLU)
    two = zoo.build(_spec([{"type": "fused_mbconv", "name": "b", "out": 24, "expansion": 4}]))
    assert [c[0].kernel_size for c in two.b.block] == [(3, 3), (1, 1)]
    assert len(two.b.block[1]) == 2  # the projection: conv and norm, no activation


def test_a_shortcut_projection_and_the_sum() -> None:
    """By default a block that changes the shape is its body alone; a projection kind adds one;
    a block that keeps the shape adds its input."""
    block = {"type": "mbconv", "name": "b", "out": 24, "expansion": 4, "stride": 2}
    assert not any("downsample" in k for k in _keys(_spec([block])))
    projected = _spec([{**block, "shortcut": {"kind": "conv_bn"}}])
    assert "b.downsample.0.weight" in _keys(projected)
    model = zoo.build(_spec([{**block, "out": 16, "stride": 1}])).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.b.block(x) + x)


def test_scaling_multiplies_out_and_expanded() -> None:
    block = {"type": "mbconv", "name": "b", "out": 16, "expanded": 48, "depth": 2}
    model = zoo.build(_spec([block], scale={"width": 1.5, "depth": 1.5}), device="meta")
    assert len(model.b) == 3
    assert model.b[0].block[0][0].out_channels == 72 and model.b[2].block[-1][0].out_channels == 24


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"type": "mbconv", "out": 8, "expansion": 4, "kernel": 4}, "kernel 4 is even"),
        ({"type": "mbconv", "out": 8}, "give the inner width once"),
        ({"type": "mbconv", "out": 8, "expansion": 4, "expanded": 32}, "give the inner width once"),
        ({"type": "inverted_residual", "out": 8, "expansion": 0.5}, "greater than or equal to 1"),
        ({"type": "fused_mbconv", "out": 8, "expansion": 4, "se": None}, "se: unknown field"),
    ],
)
def test_invalid_presets_are_refused(block: dict, message: str) -> None:
    with pytest.raises(ZooError) as raised:
        zoo.load_spec(_spec([block]))
    assert message in str(raised.value)


def test_a_block_on_flat_features_is_a_located_error(write_spec) -> None:
    path = write_spec(
        yaml.safe_dump(
            _spec([{"type": "flatten"}, {"type": "mbconv", "out": 8, "expansion": 4}]),
            sort_keys=False,
        )
    )
    message = _error_at(path)
    assert "stages.1" in message and "mbconv needs a CxHxW feature map" in message


def _error_at(path: Any) -> str:
    with pytest.raises(ZooError) as raised:
        zoo.trace(str(path))
    return str(raised.value)
