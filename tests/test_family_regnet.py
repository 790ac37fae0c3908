"""RegNet (``regnet_stages``): the design-space parameters generate torchvision's stages exactly,
and the 15 shipped specs equal torchvision's constructors (parameters, state_dict, MACs; outputs
for one RegNetX and one RegNetY)."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torchvision
from torchvision.models import regnet

import zoo
from tests.test_reference_parity import assert_same_network
from zoo.errors import ZooError
from zoo.types.regnet import RegNetStagesSpec, block_params, block_widths

# Published parameter counts (torchvision's weights metadata), written out so that a change on
# either side is caught. regnet_y_128gf has only SWAG weights.
PARAMS = {
    "regnet_x_400mf": 5_495_976,
    "regnet_x_800mf": 7_259_656,
    "regnet_x_1_6gf": 9_190_136,
    "regnet_x_3_2gf": 15_296_552,
    "regnet_x_8gf": 39_572_648,
    "regnet_x_16gf": 54_278_536,
    "regnet_x_32gf": 107_811_560,
    "regnet_y_400mf": 4_344_144,
    "regnet_y_800mf": 6_432_512,
    "regnet_y_1_6gf": 11_202_430,
    "regnet_y_3_2gf": 19_436_338,
    "regnet_y_8gf": 39_381_472,
    "regnet_y_16gf": 83_590_140,
    "regnet_y_32gf": 145_046_770,
    "regnet_y_128gf": 644_812_894,
}


def _weights(name: str) -> list[torchvision.models.WeightsEnum]:
    """The published weights of ``name`` (regnet_x_1_6gf -> RegNet_X_1_6GF_Weights)."""
    return list(
        getattr(torchvision.models, f"RegNet_{name.removeprefix('regnet_').upper()}_Weights")
    )


def _trunk(name: str) -> RegNetStagesSpec:
    return zoo.load_spec(name).stages[0]


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameters_generate_torchvisions_stages(name: str) -> None:
    trunk = _trunk(name)
    reference = regnet.BlockParams.from_init_params(
        depth=trunk.depth,
        w_0=trunk.w0,
        w_a=trunk.wa,
        w_m=trunk.wm,
        group_width=trunk.group_width,
        se_ratio=trunk.se_ratio,
    )
    stages = block_params(trunk)
    assert [s.width for s in stages] == reference.widths
    assert [s.depth for s in stages] == reference.depths
    assert [s.inner // s.groups for s in stages] == reference.group_widths


def test_widths_are_torchvisions_float32_arithmetic() -> None:
    """Over random settings, the pure-Python widths equal torchvision's tensor expression, so a
    width on the edge of a rounding lands on the same side (float64 arithmetic would not)."""
    rng = random.Random(0)
    for _ in range(2000):
        depth, w0 = rng.randint(1, 40), 8 * rng.randint(1, 100)
        wa = round(rng.uniform(0, 300), rng.choice([0, 1, 2]))
        wm = rng.choice([round(rng.uniform(1.05, 3.5), 2), 1 + rng.uniform(1e-6, 1e-2)])
        continuous = torch.arange(depth) * wa + w0
        capacity = torch.round(torch.log(continuous / w0) / math.log(wm))
        expected = (torch.round(torch.divide(w0 * torch.pow(wm, capacity), 8)) * 8).int().tolist()
        assert block_widths(depth, w0, wa, wm) == expected, (depth, w0, wa, wm)


@pytest.mark.usefixtures("regnet_widths_on_cpu")
@pytest.mark.parametrize("name", sorted(PARAMS))
def test_matches_torchvision_on_meta(name: str) -> None:
    """Parameters, state_dict keys and shapes (on meta: regnet_y_128gf has 644M parameters), and
    MACs within 1% of torchvision's published figure at the weights' input size."""
    model = zoo.build(name, device="meta")
    with torch.device("meta"):
        reference = getattr(torchvision.models, name)()
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    for weights in _weights(name):
        assert weights.meta["num_params"] == PARAMS[name]
        size = weights.transforms().crop_size[0]  # 224, or 384 for SWAG's end-to-end weights
        macs = zoo.trace(name, (1, 3, size, size)).macs
        assert macs / 1e9 == pytest.approx(weights.meta["_ops"], rel=0.01), weights


def test_regnet_y_128gf_has_swag_weights_at_two_sizes() -> None:
    """Its _ops are at 224x224 for the linear-probe weights and 384x384 for the end-to-end ones."""
    by_name = {w.name: w for w in _weights("regnet_y_128gf")}
    assert set(by_name) == {"IMAGENET1K_SWAG_E2E_V1", "IMAGENET1K_SWAG_LINEAR_V1"}
    for weights_name, size in (("IMAGENET1K_SWAG_LINEAR_V1", 224), ("IMAGENET1K_SWAG_E2E_V1", 384)):
        macs = zoo.trace("regnet_y_128gf", (1, 3, size, size)).macs
        assert macs / 1e9 == pytest.approx(by_name[weights_name].meta["_ops"], rel=0.01)


@pytest.mark.usefixtures("regnet_widths_on_cpu")
@pytest.mark.parametrize("name", ["regnet_x_400mf", "regnet_y_400mf"])
def test_same_outputs_as_torchvision(name: str) -> None:
    assert_same_network(name, getattr(torchvision.models, name), PARAMS[name], size=32)


def test_trunk_layout_is_torchvisions() -> None:
    model = zoo.build("regnet_y_400mf", device="meta")
    block = model.trunk_output.block1.get_submodule("block1-0")
    assert [n for n, _ in block.named_children()] == ["f", "proj", "activation"]
    assert [n for n, _ in block.f.named_children()] == ["a", "b", "se", "c"]
    assert block.f.b[0].stride == (2, 2) and block.f.a[0].stride == (1, 1)
    assert block.f.se.fc1.out_channels == 8  # round(0.25 x 32): the block's input, not f's 48
    second = model.trunk_output.block2.get_submodule("block2-1")  # block1 has one block
    assert not hasattr(second, "proj") and second.f.b[0].stride == (1, 1)
    rows = {row.path: row.type for row in zoo.trace("regnet_y_400mf", depth=2).rows}
    assert rows["trunk_output"] == "regnet_stages" and rows["trunk_output.block4"] == "sequential"


def _stages(**fields) -> dict:
    trunk = {"type": "regnet_stages", "depth": 4, "w0": 8, "wa": 8.0, "wm": 2.0, "group_width": 4}
    return {
        "name": "t",
        "input": {"channels": 4, "size": 16},
        "stages": [{**trunk, "stem_width": 4, **fields}],
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"w0": 12}, "multiple of 8"),
        ({"wm": 1.0}, "greater than 1"),
        ({"wa": -1.0}, "greater than or equal to 0"),
        ({"se_ratio": 0.0}, "greater than 0"),
        ({"bottleneck_ratio": 0.01}, "leaves no channels inside its blocks"),
        ({"se_ratio": 0.01}, "squeezes a block of 4 input channels to none"),
        (
            {"group_width": 2, "bottleneck_ratio": 1.3},
            "4 groups do not divide its 9 inner channels",
        ),
    ],
)
def test_impossible_settings_are_validation_errors(fields: dict, message: str) -> None:
    with pytest.raises(ZooError, match=message):
        zoo.load_spec(_stages(**fields))


def test_stem_width_must_be_the_input_channels() -> None:
    spec = _stages(stem_width=8)
    with pytest.raises(ZooError, match="stem_width is 8 but the trunk's input has 4 channels"):
        zoo.trace(spec)


def test_scaled_width_keeps_the_stem_and_trunk_in_step() -> None:
    spec = _stages()
    spec["stem"] = [{"type": "conv_bn_act", "out": 4, "kernel": 3}]
    spec["scale"] = {"width": 2.0, "divisor": 8}
    model = zoo.build(spec, device="meta")
    assert model.stages_0.block1.get_submodule("block1-0").f.a[0].in_channels == 8


def test_resolve_expand_builds_the_same_network(tmp_path, capsys) -> None:
    from tests.conftest import run_cli

    code, out, _ = run_cli(capsys, "resolve", "regnet_y_400mf", "--expand")
    assert code == 0 and "regnet_stages" not in out
    path = tmp_path / "x.yaml"
    path.write_text(out)
    ours = zoo.build(str(path), device="meta").state_dict()
    theirs = zoo.build("regnet_y_400mf", device="meta").state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
