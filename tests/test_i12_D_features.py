"""``zoo.build(spec, features_only=True, out_indices=...)``: the stages' feature maps as a list,
with timm's ``feature_info`` (channels, reduction, module name) worked out from the plan: the last
module at each reduction of the input, over the whole network."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import timm  # a test-only dependency (the dev extra)
import torch

import zoo
from tests.conftest import SPEC_NAMES
from tests.test_reference_parity import randomize_norm_statistics
from zoo.compiler import feature_points
from zoo.errors import ExitCode, ZooError
from zoo.nn import FeatureNet
from zoo.plan import plan_spec


def _points(name: str, input_shape=None) -> list[tuple[str, int, int]]:
    model = zoo.build(name, device="meta", input_shape=input_shape, features_only=True)
    info = model.feature_info
    return list(zip(info.module_name(), info.channels(), info.reduction(), strict=True))


@pytest.mark.parametrize("name", ["resnet50", "inception_v3"])
def test_the_points_are_timms(name: str) -> None:
    reference = timm.create_model(name, features_only=True).feature_info
    model = zoo.build(name, device="meta", features_only=True)
    assert model.feature_info.channels() == reference.channels()
    assert model.feature_info.reduction() == reference.reduction()
    if name == "resnet50":  # the same modules; timm names the stem's activation act1
        assert model.feature_info.channels() == [64, 256, 512, 1024, 2048]
        assert model.feature_info.reduction() == [2, 4, 8, 16, 32]
        assert model.feature_info.module_name() == ["relu", "layer1", "layer2", "layer3", "layer4"]
    else:  # unpadded convs (299 -> 149 -> 147 -> 73 ...) still reduce by 2, 4, 8, 16, 32
        assert model.feature_info.module_name() == reference.module_name()


def test_the_maps_are_timms_with_the_same_weights() -> None:
    reference = timm.create_model("resnet50", features_only=True).eval()
    randomize_norm_statistics(reference)
    model = zoo.build("resnet50", input_shape=(3, 64, 64), features_only=True).eval()
    model.load_state_dict(reference.state_dict())  # the same keys: the network's, less fc
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        mine, theirs = model(x), reference(x)
    assert len(mine) == len(theirs) == 5
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a, b)


def test_torchvision_layouts_are_opened() -> None:
    # the stages inside torchvision's `features` and RegNet's `trunk_output`
    assert _points("efficientnet_b0") == [
        ("features.1", 16, 2),
        ("features.2", 24, 4),
        ("features.3", 40, 8),
        ("features.5", 112, 16),
        ("features.8", 1280, 32),
    ]
    assert _points("regnet_y_400mf") == [
        ("stem", 32, 2),
        ("trunk_output.block1", 48, 4),
        ("trunk_output.block2", 104, 8),
        ("trunk_output.block3", 208, 16),
        ("trunk_output.block4", 440, 32),
    ]
    # every layer in one Sequential: the ReLU before each pooling, and the last pooling
    assert _points("vgg16") == [
        ("features.3", 64, 1),
        ("features.8", 128, 2),
        ("features.15", 256, 4),
        ("features.22", 512, 8),
        ("features.29", 512, 16),
        ("features.30", 512, 32),
    ]
    # the final norm of a pre-activation net is in its head: the last map at /32 is after it
    assert _points("preact_resnet18")[-1] == ("head_1", 512, 32)


def test_every_shipped_spec_has_feature_points() -> None:
    # arithmetic on the plan: no module is made
    for name in SPEC_NAMES:
        spec = zoo.load_spec(name)
        plan = plan_spec(spec)
        info, steps, indices = feature_points(spec, plan)
        reductions = [e["reduction"] for e in info]
        assert reductions == sorted(set(reductions)) and reductions[0] >= 1, name
        assert indices == tuple(range(len(info))) and [e["index"] for e in info] == list(indices)
        modules = dict(plan.root.walk())
        for entry in info:
            assert entry["num_chs"] == modules[entry["module"]].out[0], name
            assert entry["module"] in steps, name


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("resnet18", (3, 96, 80)),
        ("efficientnet_b0", (3, 64, 64)),
        ("densenet121", (3, 64, 64)),
        ("shufflenet_v2_x0_5", (3, 64, 64)),
        ("lenet", None),
        ("regnet_x_400mf", (3, 64, 64)),
    ],
)
def test_the_maps_have_the_shapes_feature_info_gives(name: str, shape) -> None:
    model = zoo.build(name, input_shape=shape, features_only=True).eval()
    assert isinstance(model, FeatureNet)
    c, h, w = model.input_shape
    with torch.no_grad():
        maps = model(torch.randn(2, c, h, w))
    info = model.feature_info
    assert [m.shape[1] for m in maps] == info.channels()
    # each map is the output of the module feature_info names, as the trace has it
    rows = {row.path: row.output for row in zoo.trace(name, (2, c, h, w)).rows}
    assert [tuple(m.shape) for m in maps] == [rows[module] for module in info.module_name()]
    if name == "resnet18":  # padded convs: a reduction r gives ceil(size / r)
        assert [m.shape[2:] for m in maps] == [(-(-h // r), -(-w // r)) for r in info.reduction()]


def test_out_indices() -> None:
    model = zoo.build("resnet50", device="meta", features_only=True, out_indices=(1, -1))
    assert model.feature_info.out_indices == (1, 4)
    assert model.feature_info.module_name() == ["layer1", "layer4"]
    assert model.feature_info.channels(0) == 64 and model.feature_info.reduction([0, 2]) == [2, 8]
    assert model.feature_info.get_dicts(keys=["num_chs"]) == [{"num_chs": 256}, {"num_chs": 2048}]
    assert len(model.feature_info) == 5 and model.feature_info[3]["module"] == "layer3"
    # an int is the last n, as timm reads it; the modules after the last point are left out
    model = zoo.build("resnet50", device="meta", features_only=True, out_indices=2)
    assert model.feature_info.out_indices == (3, 4)
    model = zoo.build("resnet50", device="meta", features_only=True, out_indices=(0, 1))
    assert [name for name, _ in model.named_children()] == [
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1",
    ]
    model = zoo.build("efficientnet_b0", device="meta", features_only=True, out_indices=(2,))
    assert list(model.state_dict())[-1].startswith("features.3.")  # features.4 on are left out


@pytest.mark.parametrize(
    ("out_indices", "message"),
    [
        ((5,), "out_indices [5]: 5 is not a feature index"),
        ((0, -6), "out_indices [0, -6]: -6 is not a feature index"),
        (6, "out_indices=6 asks for the last 6 feature maps"),
        ((), "out_indices must be a tuple of feature indices or an int, got ()"),
        ((True,), "out_indices [True]: True is not a feature index"),
    ],
)
def test_bad_out_indices(out_indices, message: str) -> None:
    with pytest.raises(ZooError) as caught:
        zoo.build("resnet50", device="meta", features_only=True, out_indices=out_indices)
    assert caught.value.exit_code == ExitCode.USAGE_ERROR
    assert caught.value.problems[0].message == (
        f"{message}; resnet50 has 5 feature maps (0: relu (64 channels, /2), 1: layer1 (256 "
        "channels, /4), 2: layer2 (512 channels, /8), 3: layer3 (1024 channels, /16), 4: layer4 "
        "(2048 channels, /32))"
    )


def test_out_indices_needs_features_only() -> None:
    with pytest.raises(ZooError) as caught:
        zoo.build("resnet50", device="meta", out_indices=(1,))
    assert "pass features_only=True with it" in str(caught.value)


def test_a_net_without_maps_is_refused() -> None:
    spec = {
        "name": "mlp",
        "input": {"channels": 1, "size": 4},
        "stem": [{"type": "flatten"}],
        "head": [{"type": "linear", "out": 2}],
    }
    with pytest.raises(ZooError) as caught:
        zoo.build(spec, device="meta", features_only=True)
    assert "mlp has no feature maps" in str(caught.value)


def test_the_feature_net_scripts() -> None:
    model = zoo.build("efficientnet_b0", input_shape=(3, 64, 64), features_only=True).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(scripted(x), model(x), strict=True):
            assert torch.equal(a, b)
    assert list(scripted.state_dict()) == list(model.state_dict())


def test_the_readme_example_runs(capsys) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("### Weights in, models out", 1)[1]
    block = section.split("```python", 1)[1].split("```", 1)[0]
    exec(compile(block, "README.md", "exec"), {})
    assert capsys.readouterr().out == "[256, 512, 1024, 2048] [4, 8, 16, 32]\n"
