"""timm's ResNet variants (timm 1.0.31 is the reference): ResNet-D (deep stem, average-pooled
shortcut with timm's Identity slot at stride 1), the tiered stem of ResNet-26-T, and SE-ResNe(X)t
with timm's SEModule after bn3."""

from __future__ import annotations

import pytest
import timm  # a test-only dependency (the dev extra)
import torch

import zoo
from tests.test_reference_parity import assert_same_network

# Parameter counts of timm.create_model(name, pretrained=False), written out so that a change on
# either side is caught.
PARAMS = {
    "resnet50d": 25_576_264,
    "resnet26t": 16_011_872,
    "seresnet50": 28_088_024,
    "seresnext50_32x4d": 27_559_896,
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_matches_timm_on_meta(name: str) -> None:
    model = zoo.build(name, device="meta")
    with torch.device("meta"):
        reference = timm.create_model(name, pretrained=False)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]
    assert sum(p.numel() for p in reference.parameters()) == PARAMS[name]
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }


@pytest.mark.parametrize("name", ["resnet26t", "seresnext50_32x4d"])
def test_same_outputs_as_timm(name: str) -> None:
    assert_same_network(name, lambda: timm.create_model(name, pretrained=False), PARAMS[name])


def test_resnet_d_layout() -> None:
    """The stride-1 shortcut of layer1 keeps timm's empty pooling slot; later ones pool."""
    model = zoo.build("resnet50d", device="meta")
    first, second = model.layer1[0].downsample, model.layer2[0].downsample
    assert isinstance(first[0], torch.nn.Identity) and first[1].stride == (1, 1)
    assert isinstance(second[0], torch.nn.AvgPool2d) and second[1].stride == (1, 1)
    assert [m.out_channels for m in model.conv1 if isinstance(m, torch.nn.Conv2d)] == [32, 32, 64]
    tiered = zoo.build("resnet26t", device="meta").conv1
    assert [m.out_channels for m in tiered if isinstance(m, torch.nn.Conv2d)] == [24, 32, 64]


def test_se_squeeze_is_timms() -> None:
    """make_divisible(C / 16, 8, round_limit=0): 256 -> 16 ... 2048 -> 128, after bn3."""
    model = zoo.build("seresnet50", device="meta")
    squeezes = [getattr(model, f"layer{i}")[0].se.fc1.out_channels for i in range(1, 5)]
    assert squeezes == [16, 32, 64, 128]
    names = [n for n, _ in model.layer1[0].named_children()]
    assert names.index("se") == names.index("bn3") + 1
