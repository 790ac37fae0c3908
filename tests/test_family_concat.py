"""The concat family: SqueezeNet (Fire), Inception v3 (blocks A-E) and ShuffleNetV2 equal
torchvision's, and the concat fields they are written with (pre, post, split, flat) and
channel_shuffle behave as documented, with located errors."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import shufflenetv2

import zoo
from tests.test_reference_parity import assert_same_network
from zoo.errors import ZooError
from zoo.expansion import expanded
from zoo.nn import Concat

# torchvision's Inception v3 without its auxiliary classifier (out of scope: its keys are dropped
# from the checkpoints) and without the input transform meant for its checkpoints' preprocessing.
INCEPTION_ARGS = {"aux_logits": False, "init_weights": True, "transform_input": False}
# torchvision publishes Inception v3's count with InceptionAux(768, 1000): conv0 (1x1 to 128) +
# bn, conv1 (5x5 to 768) + bn, fc (768 -> 1000).
INCEPTION_AUX_PARAMS = (768 * 128 + 2 * 128) + (128 * 768 * 25 + 2 * 768) + (768 * 1000 + 1000)

SPECS = {
    "squeezenet1_0": "SqueezeNet1_0_Weights",
    "squeezenet1_1": "SqueezeNet1_1_Weights",
    "inception_v3": "Inception_V3_Weights",
    "shufflenet_v2_x0_5": "ShuffleNet_V2_X0_5_Weights",
    "shufflenet_v2_x1_0": "ShuffleNet_V2_X1_0_Weights",
    "shufflenet_v2_x1_5": "ShuffleNet_V2_X1_5_Weights",
    "shufflenet_v2_x2_0": "ShuffleNet_V2_X2_0_Weights",
}
# Real forwards at small inputs: Inception v3's smallest is 75x75 (its two stride-2 reductions
# need a 3x3 map), the others take 32x32 down to a 1x1 map.
PARITY_SIZES = {"squeezenet1_1": 32, "shufflenet_v2_x0_5": 32, "inception_v3": 75}


def _reference(name: str) -> Callable[[], nn.Module]:
    kwargs = INCEPTION_ARGS if name == "inception_v3" else {}
    return lambda: getattr(torchvision.models, name)(**kwargs)


def _published(name: str) -> tuple[int, float, int]:
    """(parameters, GMACs, input size) of the torchvision weights' metadata, the parameters
    without the auxiliary classifier."""
    weights = getattr(torchvision.models, SPECS[name]).IMAGENET1K_V1
    params = weights.meta["num_params"]
    if name == "inception_v3":
        params -= INCEPTION_AUX_PARAMS
    return params, weights.meta["_ops"], weights.transforms().crop_size[0]


def _forward_macs(model: nn.Module, size: int) -> int:
    """FlopCounterMode's multiply-adds of one forward on meta (shapes only)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(torch.empty(1, 3, size, size, device="meta"))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("name", SPECS)
def test_equals_torchvision_on_meta(name: str) -> None:
    params, gmacs, size = _published(name)
    model = zoo.build(name, device="meta")
    with torch.device("meta"):
        reference = _reference(name)()
    assert sum(p.numel() for p in model.parameters()) == params
    assert sum(p.numel() for p in reference.parameters()) == params
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    macs = zoo.trace(name, (1, 3, size, size)).macs
    assert macs == _forward_macs(reference, size)  # exactly torchvision's own count
    # `_ops` has three decimals: shufflenet_v2_x0_5's 0.040 stands for 0.0405 (1.2% off)
    assert macs / 1e9 == pytest.approx(gmacs, rel=0.01, abs=5e-4)


def test_inception_aux_params_are_torchvision_s() -> None:
    from torchvision.models.inception import InceptionAux

    with torch.device("meta"):
        aux = InceptionAux(768, 1000)
    assert sum(p.numel() for p in aux.parameters()) == INCEPTION_AUX_PARAMS


@pytest.mark.parametrize("name", PARITY_SIZES)
def test_outputs_equal_torchvision(name: str) -> None:
    params, _, _ = _published(name)
    assert_same_network(name, _reference(name), params, size=PARITY_SIZES[name])


@pytest.mark.parametrize("name", ["squeezenet1_1", "inception_v3", "shufflenet_v2_x0_5"])
def test_expanded_spec_is_the_same_network(name: str) -> None:
    """`zoo resolve --expand` writes the presets as generic concats: read back, they plan to the
    same modules (fire and inception_v3_* expand; shufflenet_v2_unit depends on its input)."""
    spec = zoo.load_spec(name)
    data = expanded(spec).model_dump(mode="json", exclude_defaults=True)
    again = zoo.load_spec(data)
    original = zoo.build(spec, device="meta")
    rebuilt = zoo.build(again, device="meta")
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in original.state_dict().items()
    }
    assert zoo.trace(again).macs == zoo.trace(spec).macs


# --------------------------------------------------------------------------- the concat fields
HEADER = "name: t\ninput: {channels: 4, size: 6}\n"


def _build(write_spec, body: str) -> nn.Module:
    return zoo.build(write_spec(HEADER + textwrap.dedent(body))).eval()


def _error(write_spec, body: str) -> zoo.Problem:
    with pytest.raises(ZooError) as info:
        zoo.build(write_spec(HEADER + textwrap.dedent(body)), device="meta")
    assert len(info.value.problems) == 1
    return info.value.problems[0]


def test_flat_concat_registers_layers_on_the_block(write_spec) -> None:
    model = _build(
        write_spec,
        """
        stages:
          - type: concat
            name: mix
            flat: true
            pre: [{type: conv, name: squeeze, out: 2, kernel: 1}]
            branches:
              - {type: conv, name: a, out: 3, kernel: 1}
              - - {type: conv, out: 2, kernel: 1}
                - type: concat
                  flat: true
                  branches:
                    - {type: conv, name: b1, out: 1, kernel: [1, 3], padding: [0, 1]}
                    - {type: conv, out: 1, kernel: [3, 1], padding: [1, 0]}
            post: [{type: relu}]
        """,
    )
    assert [name for name, _ in model.mix.named_children()] == [
        "squeeze",
        "a",
        "branch2_0",
        "b1",
        "branch2_1_branch2_0",  # a nested flat concat's default names start with its own
        "post_0",
    ]
    block = model.mix
    x = torch.randn(2, 4, 6, 6)
    s = block.squeeze(x)
    t = block.branch2_0(s)
    nested = torch.cat([block.b1(t), block.branch2_1_branch2_0(t)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch.relu(torch.cat([block.a(s), nested], dim=1)))


def test_split_gives_each_branch_its_chunk_and_an_empty_branch_passes_it_on(write_spec) -> None:
    model = _build(
        write_spec,
        """
        stages:
          - type: concat
            name: unit
            split: true
            branches: [[], [{type: conv, out: 2, kernel: 1}]]
            post: [{type: channel_shuffle, name: shuffle, groups: 2}]
        """,
    )
    assert [name for name, _ in model.unit.named_children()] == ["branch1", "branch2", "shuffle"]
    assert len(model.unit.branch1) == 0  # an empty nn.Sequential, as torchvision's stride-1 unit
    x = torch.randn(2, 4, 6, 6)
    kept, transformed = x.chunk(2, dim=1)
    joined = torch.cat([kept, model.unit.branch2(transformed)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), shufflenetv2.channel_shuffle(joined, 2))


def test_an_empty_branch_without_split_carries_the_whole_input(write_spec) -> None:
    model = _build(
        write_spec,
        "stages:\n  - {type: concat, name: c, branches: [[], {type: conv, out: 3, kernel: 1}]}\n",
    )
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (1, 7, 6, 6)
    assert torch.equal(out[:, :4], x)


def test_concat_module_without_layout_runs_one_branch_per_child() -> None:
    a, b = nn.Conv2d(3, 2, 1), nn.Conv2d(3, 5, 1)
    block = Concat([("a", a), ("b", b)])
    x = torch.randn(1, 3, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.cat([a(x), b(x)], dim=1))


def test_fire_is_torchvision_s() -> None:
    from torchvision.models.squeezenet import Fire

    model = zoo.build(
        zoo.load_spec(
            {
                "name": "t",
                "input": {"channels": 6, "size": 5},
                "stages": [
                    {"type": "fire", "name": "f", "squeeze": 2, "expand1x1": 3, "expand3x3": 4}
                ],
            }
        )
    ).eval()
    reference = Fire(6, 2, 3, 4).eval()
    assert list(model.f.state_dict()) == list(reference.state_dict())
    reference.load_state_dict(model.f.state_dict(), strict=True)
    x = torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


def test_shufflenet_unit_copies_split_after_the_first() -> None:
    model = zoo.build(
        zoo.load_spec(
            {
                "name": "t",
                "input": {"channels": 4, "size": 8},
                "stages": [{"type": "shufflenet_v2_unit", "name": "stage", "out": 8, "depth": 3}],
            }
        )
    ).eval()
    reference = nn.Sequential(
        shufflenetv2.InvertedResidual(4, 8, 2),
        shufflenetv2.InvertedResidual(8, 8, 1),
        shufflenetv2.InvertedResidual(8, 8, 1),
    ).eval()
    reference.load_state_dict(model.stage.state_dict(), strict=True)
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


# --------------------------------------------------------------------------- located errors
def test_split_needs_channels_divisible_by_the_branches(write_spec) -> None:
    p = _error(
        write_spec,
        """
        stages:
          - type: concat
            split: true
            branches: [[], [], []]
        """,
    )
    assert (p.path, p.line, p.kind) == ("stages.0.split", 6, "channels")
    assert "input has 4 channels, which do not divide by 3" in p.message


def test_split_counts_the_channels_after_pre(write_spec) -> None:
    p = _error(
        write_spec,
        """
        stages:
          - type: concat
            split: true
            pre: [{type: conv, out: 5, kernel: 1}]
            branches: [[], []]
        """,
    )
    assert p.path == "stages.0.split"
    assert "input after its pre layers has 5 channels" in p.message


def test_split_needs_a_feature_map(write_spec) -> None:
    p = _error(
        write_spec,
        "stages:\n  - {type: flatten}\n  - {type: concat, split: true, branches: [[], []]}\n",
    )
    assert p.path == "stages.1.split"
    assert "needs a CxHxW feature map" in p.message


def test_flat_names_are_unique_in_the_block(write_spec) -> None:
    p = _error(
        write_spec,
        """
        stages:
          - type: concat
            flat: true
            branches:
              - {type: conv, name: a, out: 2, kernel: 1}
              - [{type: relu}, {type: conv, name: a, out: 2, kernel: 1}]
        """,
    )
    assert (p.path, p.line, p.kind) == ("stages.0.branches.1.1.name", 9, "name")
    assert "'a' is already used by stages.0.branches.0" in p.message


def test_pre_post_and_branch_names_share_the_block(write_spec) -> None:
    p = _error(
        write_spec,
        """
        stages:
          - type: concat
            pre: [{type: relu, name: branch2}]
            branches: [{type: conv, out: 2, kernel: 1}, {type: conv, out: 2, kernel: 1}]
        """,
    )
    assert p.path == "stages.0.branches.1"
    assert "'branch2' is already used by stages.0.pre.0" in p.message


def test_names_of_a_nested_flat_concat_are_the_outer_block_s(write_spec) -> None:
    p = _error(
        write_spec,
        """
        stages:
          - type: concat
            flat: true
            branches:
              - {type: conv, name: x, out: 2, kernel: 1}
              - type: concat
                flat: true
                branches: [{type: conv, name: x, out: 2, kernel: 1}]
        """,
    )
    assert p.path == "stages.0.branches.1.branches.0.name"
    assert "'x' is already used by stages.0.branches.0" in p.message


@pytest.mark.parametrize("field", ["name: inner", "depth: 2"])
def test_a_nested_flat_concat_has_no_module_of_its_own(write_spec, field: str) -> None:
    p = _error(
        write_spec,
        f"""
        stages:
          - type: concat
            flat: true
            branches:
              - type: concat
                flat: true
                {field}
                branches: [{{type: conv, out: 2, kernel: 1}}]
        """,
    )
    assert p.path == f"stages.0.branches.0.{field.split(':')[0]}"
    assert "has no module of its own" in p.message


def test_channel_shuffle_groups_must_divide_the_channels(write_spec) -> None:
    p = _error(write_spec, "stages: [{type: channel_shuffle, groups: 3}]\n")
    assert (p.path, p.kind) == ("stages.0.groups", "channels")
    assert "groups=3 must divide the channels (4)" in p.message


def test_shufflenet_unit_output_is_even(write_spec) -> None:
    p = _error(write_spec, "stages: [{type: shufflenet_v2_unit, out: 7}]\n")
    assert p.path == "stages.0"
    assert "out (7) must be even" in p.message


def test_shufflenet_unit_without_stride_keeps_its_channels(write_spec) -> None:
    p = _error(write_spec, "stages: [{type: shufflenet_v2_unit, out: 8, stride: 1}]\n")
    assert (p.path, p.kind) == ("stages.0.out", "channels")
    assert "splits its 4 input channels" in p.message and "set out: 4" in p.message
