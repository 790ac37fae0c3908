"""ConvNeXt (Liu et al. 2022) against torchvision 0.29: the four shipped specs have torchvision's
parameters, state_dict, LayerNorm epsilons, stochastic depth schedule and multiply-adds; the block
computes what ``CNBlock`` does (eval and training); and the new types (``layernorm``,
``channel_linear``, ``convnext_block``) refuse what they cannot do, with the fix in the message."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.convnext import CNBlock
from torchvision.ops import StochasticDepth

import zoo
from tests.conftest import assert_rows_match
from tests.test_reference_parity import assert_same_network
from zoo import ZooError

# Published by torchvision (weights metadata `num_params` and `_ops`, GMACs at 224x224), written
# out so that a change on either side is caught.
CONVNEXT = {
    "convnext_tiny": (28_589_128, 4.456, "ConvNeXt_Tiny_Weights"),
    "convnext_small": (50_223_688, 8.684, "ConvNeXt_Small_Weights"),
    "convnext_base": (88_591_464, 15.355, "ConvNeXt_Base_Weights"),
    "convnext_large": (197_767_336, 34.361, "ConvNeXt_Large_Weights"),
}


def _reference(name: str) -> nn.Module:
    with torch.device("meta"):
        return getattr(torchvision.models, name)()


@pytest.mark.parametrize("name", sorted(CONVNEXT))
def test_matches_torchvision_on_meta(name: str) -> None:
    """Parameters, state_dict keys and shapes, LayerNorm epsilons, and MACs (convs and Linears;
    FlopCounterMode and torchvision's figures count no LayerNorm, GELU or layer-scale multiply)."""
    params, gmacs, weights = CONVNEXT[name]
    published = getattr(torchvision.models, weights).IMAGENET1K_V1.meta
    assert (published["num_params"], published["_ops"]) == (params, gmacs)

    ours, reference = zoo.build(name, device="meta"), _reference(name)
    assert sum(p.numel() for p in ours.parameters()) == params
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    norms = {n: m.eps for n, m in reference.named_modules() if isinstance(m, nn.LayerNorm)}
    assert {n: ours.get_submodule(n).eps for n in norms} == norms
    assert set(norms.values()) == {1e-6}

    macs = zoo.trace(name, (1, 3, 224, 224)).macs
    assert macs / 1e9 == pytest.approx(gmacs, rel=0.01)


@pytest.mark.parametrize("name", sorted(CONVNEXT))
def test_stochastic_depth_schedule_is_torchvisions(name: str) -> None:
    """Block i of n drops with p = rate * i / (n - 1), the rate of each constructor (0.1 tiny,
    0.4 small, 0.5 base and large), every block in torchvision's 'row' mode."""

    def schedule(model: nn.Module) -> dict[str, tuple[float, str]]:
        return {
            n: (m.p, m.mode) for n, m in model.named_modules() if isinstance(m, StochasticDepth)
        }

    ours, expected = schedule(zoo.build(name, device="meta")), schedule(_reference(name))
    assert ours.keys() == expected.keys()
    for block, (p, mode) in expected.items():
        assert ours[block][0] == pytest.approx(p, rel=1e-12, abs=1e-15), block
        assert ours[block][1] == mode
    assert max(p for p, _ in ours.values()) == pytest.approx(
        zoo.load_spec(name).stochastic_depth.rate
    )


def test_convnext_tiny_equals_torchvision() -> None:
    assert_same_network("convnext_tiny", torchvision.models.convnext_tiny, 28_589_128, size=32)


def test_convnext_tiny_equals_torchvision_with_trained_scales() -> None:
    """As above, with every LayerNorm's scale and shift and every layer scale far from their
    initial 1 / 0 / 1e-6: at 1e-6 each block's branch is a millionth of its output, so only this
    shows that the blocks' LayerNorms and Linears compute what torchvision's do."""
    model = zoo.build("convnext_tiny").eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            if name.endswith("layer_scale"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.5 + 0.25)
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                c = module.normalized_shape
                module.weight.copy_(torch.rand(c, generator=generator) * 0.5 + 0.75)
                module.bias.copy_(torch.randn(c, generator=generator) * 0.1)
    reference = _reference("convnext_tiny").eval()
    reference.load_state_dict(model.state_dict(), strict=True, assign=True)
    x = torch.randn(2, 3, 32, 32, generator=generator)
    with torch.no_grad():
        expected = reference(x)
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5 * expected.abs().max())


def _block_net(channels: int, **block: object) -> zoo.ModelSpec:
    return zoo.load_spec(
        {
            "name": "block",
            "input": {"channels": channels, "size": [9, 7]},
            "stochastic_depth": {"rate": 0.5, "schedule": "linear_to_rate"},
            "stages": [{"type": "convnext_block", "name": "cn", "out": channels, **block}],
        }
    )


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_block_is_cnblock(mode: str) -> None:
    """One block against ``CNBlock`` with a layer scale of 0.5, in eval mode and in training
    mode, where stochastic depth drops whole samples of the scaled branch: with the same random
    stream, both drop the same ones (the net's only block drops with the whole rate)."""
    ours = zoo.build(_block_net(8, layer_scale=0.5)).cn
    reference = CNBlock(8, layer_scale=0.5, stochastic_depth_prob=0.5)
    assert ours.stochastic_depth.p == 0.0  # the first (and only) block of a linear schedule
    ours.stochastic_depth.p = 0.5
    ours.load_state_dict(reference.state_dict(), strict=True)
    ours.train(mode == "train")
    reference.train(mode == "train")
    x = torch.randn(16, 8, 9, 7)
    with torch.no_grad():
        torch.manual_seed(3)
        expected = reference(x)
        torch.manual_seed(3)
        torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-6)


def test_block_without_layer_scale_or_stochastic_depth() -> None:
    """``layer_scale: null`` leaves out the parameter, ``stochastic_depth: false`` the module."""
    plain = zoo.build(_block_net(8, layer_scale=None, stochastic_depth=False), device="meta").cn
    names = {n for n, _ in plain.named_parameters()} | {n for n, _ in plain.named_modules()}
    assert not any("layer_scale" in n or "stochastic_depth" in n for n in names)
    full = zoo.build(_block_net(8), device="meta").cn
    count = sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in plain.parameters())
    assert count == 8  # the (8, 1, 1) layer scale


def test_block_costs() -> None:
    """Depthwise 7x7 conv, two Linears at every position (C -> 4C -> C); LayerNorm's 2C."""
    c, hw = 8, 9 * 7
    result = zoo.trace(_block_net(c))
    assert result.params == (c * 49 + c) + 2 * c + (c * 4 * c + 4 * c) + (4 * c * c + c) + c
    assert result.macs == hw * (c * 49 + 2 * 4 * c * c)


# --------------------------------------------------------------------------- the new types
def _net(channels: int, size: int, *layers: dict) -> zoo.ModelSpec:
    return zoo.load_spec(
        {"name": "net", "input": {"channels": channels, "size": size}, "stem": list(layers)}
    )


def _problem(spec: object) -> zoo.Problem:
    with pytest.raises(ZooError) as info:
        zoo.trace(spec if isinstance(spec, zoo.ModelSpec) else zoo.load_spec(spec))
    return info.value.problems[0]


def test_layernorm_on_flat_features_is_nn_layernorm() -> None:
    spec = _net(6, 2, {"type": "flatten"}, {"type": "layernorm", "name": "ln", "affine": False})
    model = zoo.build(spec)
    assert type(model.ln) is nn.LayerNorm and model.ln.normalized_shape == (24,)
    assert model.ln.weight is None and model.ln.eps == 1e-5
    assert_rows_match(zoo.trace(spec, (2, 6, 2, 2)), zoo.trace(model, (2, 6, 2, 2)))


def test_layernorm_on_a_map_normalizes_each_position_over_channels() -> None:
    model = zoo.build(_net(6, 5, {"type": "layernorm", "name": "ln", "eps": 1e-6}))
    x = torch.randn(2, 6, 5, 5) * 3 + 1
    with torch.no_grad():
        expected = nn.functional.layer_norm(x.movedim(1, -1), (6,), eps=1e-6).movedim(-1, 1)
        torch.testing.assert_close(model(x), expected)
    assert model.ln.weight.shape == model.ln.bias.shape == (6,)


def test_channel_linear_has_linear_weights_and_counts_every_position() -> None:
    spec = _net(4, 6, {"type": "channel_linear", "name": "fc", "out": 10})
    model = zoo.build(spec)
    assert model.fc.weight.shape == (10, 4) and model.fc.bias.shape == (10,)
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        expected = torch.einsum("nchw,oc->nohw", x, model.fc.weight) + model.fc.bias[:, None, None]
        torch.testing.assert_close(model(x), expected)
    assert zoo.trace(spec).macs == 6 * 6 * 4 * 10  # bias not counted, as FlopCounterMode's mm


@pytest.mark.parametrize(
    ("layers", "path", "message"),
    [
        (
            [{"type": "flatten"}, {"type": "channel_linear", "out": 3}],
            "stem.1",
            "channel_linear works on the channels of a CxHxW feature map but gets flat features "
            "(96); use {type: linear} on features",
        ),
        (  # a linear on a map keeps its own advice: flatten first
            [{"type": "linear", "out": 3}],
            "stem.0",
            "linear needs flat features but gets a 6x4x4 feature map; add {type: flatten}",
        ),
        (
            [{"type": "convnext_block", "out": 8}],
            "stem.0.out",
            "a convnext_block keeps its channels, but its input has 6 and out is 8: set out: 6",
        ),
        (
            [{"type": "flatten"}, {"type": "convnext_block", "out": 96}],
            "stem.1",
            "convnext_block needs a CxHxW feature map",
        ),
    ],
)
def test_plan_errors(layers: list, path: str, message: str) -> None:
    problem = _problem(_net(6, 4, *layers))
    assert problem.path == path
    assert problem.message.startswith(message)


@pytest.mark.parametrize(
    ("layer", "field"),
    [
        ({"type": "layernorm", "eps": 0.0}, "eps"),
        ({"type": "layernorm", "eps": -1e-6}, "eps"),
        ({"type": "layernorm", "affine": 1}, "affine"),
        ({"type": "channel_linear", "out": 0}, "out"),
        ({"type": "channel_linear"}, "out"),
        ({"type": "convnext_block", "out": 6, "layer_scale": 0.0}, "layer_scale"),
        ({"type": "convnext_block", "out": 6, "expansion": 0}, "expansion"),
        ({"type": "convnext_block", "out": 6, "stride": 2}, "stride"),  # it never downsamples
        ({"type": "convnext_block", "out": 6, "shortcut": {"kind": "conv"}}, "shortcut"),
    ],
)
def test_field_errors(layer: dict, field: str) -> None:
    with pytest.raises(ZooError) as info:
        _net(6, 4, layer)
    assert f"stem.0.{field}" in {p.path for p in info.value.problems}
