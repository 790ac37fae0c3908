"""DenseNet-121/161/169/201 against torchvision's: published parameter counts and GMACs, the same
state_dict, the same outputs; the dense block against torchvision's ``_DenseBlock`` (dropout in
training included), and its validation."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torchvision
from torchvision.models.densenet import _DenseBlock

import zoo
from tests.test_reference_parity import assert_same_network, randomize_norm_statistics
from zoo.errors import ZooError
from zoo.expansion import expanded
from zoo.spec.scaling import ScaleSpec

WEIGHTS = {
    "densenet121": "DenseNet121_Weights",
    "densenet161": "DenseNet161_Weights",
    "densenet169": "DenseNet169_Weights",
    "densenet201": "DenseNet201_Weights",
}


def _published(name: str) -> dict[str, Any]:
    return getattr(torchvision.models, WEIGHTS[name]).IMAGENET1K_V1.meta


@pytest.mark.parametrize("name", sorted(WEIGHTS))
def test_densenet_matches_torchvision_on_meta(name: str) -> None:
    """Parameters equal torchvision's published count, state_dict keys (in order) and shapes equal
    the reference's, and the arithmetic MACs at 224x224 equal its published GMACs within 1%."""
    model = zoo.build(name, device="meta")
    with torch.device("meta"):
        reference = getattr(torchvision.models, name)()
    published = _published(name)
    assert sum(p.numel() for p in model.parameters()) == published["num_params"]
    ours = [(k, v.shape) for k, v in model.state_dict().items()]
    assert ours == [(k, v.shape) for k, v in reference.state_dict().items()]
    macs = zoo.trace(name, (1, 3, 224, 224)).macs
    assert macs / 1e9 == pytest.approx(published["_ops"], rel=0.01)


def test_densenet121_computes_as_torchvision() -> None:
    # 32x32 leaves a 1x1 map after the stem's /4 and the three transitions' /2 (29 is the least).
    assert_same_network(
        "densenet121",
        lambda: torchvision.models.densenet121(),
        _published("densenet121")["num_params"],
        size=32,
    )


def test_densenet_expanded_and_scaled() -> None:
    """The presets expand to a spec that builds the same network (zoo resolve --expand); a width
    multiplier scales the stem, the growth rate and the transitions."""
    spec = zoo.load_spec("densenet161")
    generic = zoo.build(expanded(spec), device="meta")
    assert [(k, v.shape) for k, v in generic.state_dict().items()] == [
        (k, v.shape) for k, v in zoo.build(spec, device="meta").state_dict().items()
    ]
    half = expanded(spec.model_copy(update={"scale": ScaleSpec(width=0.5)}))
    features = half.stages[0].layers
    assert (features[0].out, features[4].body[-1].out, features[5].layers[2].out) == (48, 24, 96)


# --------------------------------------------------------------------------- the block itself
def _net(block: dict[str, Any], channels: int = 4, size: int = 6) -> zoo.ModelSpec:
    return zoo.load_spec(
        {
            "name": "dense",
            "input": {"channels": channels, "size": size},
            "stem": [{"name": "block", **block}],
        }
    )


@pytest.mark.parametrize("drop_rate", [0.0, 0.5])
def test_dense_block_equals_torchvision_in_training(drop_rate: float) -> None:
    """Train mode: batch statistics, and dropout drawing the same mask as torchvision's F.dropout."""
    spec = _net(
        {"type": "dense_block", "layers": 3, "growth_rate": 5, "bn_size": 2, "drop_rate": drop_rate}
    )
    model = zoo.build(spec).block.train()
    reference = _DenseBlock(3, 4, bn_size=2, growth_rate=5, drop_rate=drop_rate).train()
    randomize_norm_statistics(reference)
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 4, 6, 6)
    torch.manual_seed(1)
    expected = reference(x)
    torch.manual_seed(1)
    got = model(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert got.shape == (2, 4 + 3 * 5, 6, 6)
    # the dropout is really there: a different seed gives a different mask
    torch.manual_seed(2)
    assert torch.equal(model(x), expected) == (drop_rate == 0)
    # and eval mode drops nothing (running statistics synced: ours saw one more batch)
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval(), reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-6)


def test_dense_block_keys_and_channels() -> None:
    model = zoo.build(_net({"type": "dense_block", "layers": 2, "growth_rate": 3}))
    assert [name for name, _ in model.block.named_children()] == ["denselayer1", "denselayer2"]
    assert [name for name, _ in model.block.denselayer1.named_children()] == [
        "norm1",
        "relu1",
        "conv1",
        "norm2",
        "relu2",
        "conv2",
    ]
    assert model.block.denselayer2.conv1.in_channels == 4 + 3
    assert model.block.denselayer2.conv1.out_channels == 4 * 3  # bn_size * growth_rate
    trace = zoo.trace(_net({"type": "dense_block", "layers": 5, "growth_rate": 7}))
    assert trace.output == (1, 4 + 5 * 7, 6, 6)  # input + layers * growth_rate


def test_generic_block_concatenates_every_output() -> None:
    """Copies may add any channels; the block gives the input's plus every copy's."""
    spec = _net(
        {
            "type": "densely_connected",
            "layers": 3,
            "prefix": "",
            "body": [{"type": "conv", "out": 2, "kernel": 3, "padding": 1, "name": "conv"}],
        }
    )
    model = zoo.build(spec).eval()
    assert [name for name, _ in model.block.named_children()] == ["1", "2", "3"]
    assert [model.block.get_submodule(f"{i}.conv").in_channels for i in (1, 2, 3)] == [4, 6, 8]
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        out = model(x)
        first = model.block.get_submodule("1")(x)
        second = model.block.get_submodule("2")(torch.cat([x, first], 1))
    assert out.shape == (1, 10, 6, 6)
    torch.testing.assert_close(out[:, :4], x)
    torch.testing.assert_close(out[:, 4:6], first)
    torch.testing.assert_close(out[:, 6:8], second)


def test_dense_transition_is_torchvisions() -> None:
    from torchvision.models.densenet import _Transition

    model = zoo.build(_net({"type": "dense_transition", "out": 3}, channels=6)).eval()
    reference = _Transition(6, 3).eval()
    randomize_norm_statistics(reference)
    model.block.load_state_dict(reference.state_dict(), strict=True)
    assert [n for n, _ in model.block.named_children()] == ["norm", "relu", "conv", "pool"]
    x = torch.randn(2, 6, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


# --------------------------------------------------------------------------- errors
HEADER = "name: t\ninput: {channels: 4, size: 8}\n"


def _problem(write_spec, body: str) -> zoo.Problem:
    with pytest.raises(ZooError) as info:
        zoo.trace(write_spec(HEADER + body))
    return info.value.problems[0]


@pytest.mark.parametrize(
    ("fields", "path", "message"),
    [
        ("layers: 0, growth_rate: 4", "stem.0.layers", "greater than 0"),
        ("layers: 2, growth_rate: 0", "stem.0.growth_rate", "greater than 0"),
        ("layers: 2, growth_rate: 4, drop_rate: 1.0", "stem.0.drop_rate", "less than 1"),
        ("layers: 2, growth_rate: 4, drop_rate: -0.1", "stem.0.drop_rate", "greater than"),
        ("layers: 2, growth_rate: 4, bn_size: 0", "stem.0.bn_size", "greater than 0"),
        ("layers: 2, growth_rate: 4, growth: 4", "stem.0.growth", "did you mean"),
        ("layers: 2", "stem.0.growth_rate", "required"),
        ("layers: 2, growth_rate: 600000, bn_size: 4", "stem.0", "bn_size * growth_rate"),
    ],
)
def test_dense_block_fields_are_validated(write_spec, fields: str, path: str, message: str) -> None:
    problem = _problem(write_spec, f"stem:\n  - {{type: dense_block, {fields}}}\n")
    assert problem.path == path and problem.line == 4, problem
    assert message in problem.message


def test_a_layer_that_changes_the_size_is_located(write_spec) -> None:
    problem = _problem(
        write_spec,
        "stem:\n"
        "  - type: densely_connected\n"
        "    layers: 2\n"
        "    body:\n"
        "      - {type: conv, out: 2, kernel: 3, padding: 1, stride: 2}\n",
    )
    assert (problem.path, problem.line) == ("stem.0.body", 7)
    assert "denselayer1 turns its 4x8x8 input into 2x4x4" in problem.message
    assert "must keep the height and width" in problem.message


def test_a_layer_error_points_into_the_body(write_spec) -> None:
    problem = _problem(
        write_spec,
        "stem:\n"
        "  - type: densely_connected\n"
        "    layers: 2\n"
        "    body: [{type: conv, out: 2, kernel: 9}]\n",
    )
    assert problem.path == "stem.0.body.0" and "too small" in problem.message


@pytest.mark.parametrize(
    "node", ["{type: dense_block, layers: 2, growth_rate: 4}", "{type: dense_transition, out: 2}"]
)
def test_dense_layers_need_a_feature_map(write_spec, node: str) -> None:
    problem = _problem(write_spec, f"stem:\n  - {{type: flatten}}\n  - {node}\n")
    assert (problem.path, problem.line) == ("stem.1", 5)
    assert "needs a CxHxW feature map" in problem.message


@pytest.mark.parametrize("prefix", ["'a.b'", "_x", "'dense layer'"])
def test_the_prefix_makes_module_names(write_spec, prefix: str) -> None:
    problem = _problem(
        write_spec,
        f"stem:\n  - {{type: densely_connected, layers: 1, prefix: {prefix}, body: [{{type: relu}}]}}\n",
    )
    assert problem.path == "stem.0.prefix" and "pattern" in problem.message


def test_body_names_must_be_unique(write_spec) -> None:
    problem = _problem(
        write_spec,
        "stem:\n"
        "  - type: densely_connected\n"
        "    layers: 1\n"
        "    body: [{type: relu, name: a}, {type: relu, name: a}]\n",
    )
    assert problem.path == "stem.0.body.1.name" and "already used" in problem.message
