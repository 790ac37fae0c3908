"""Shipped specs with a torchvision reference equal it: parameters, state_dict, outputs, MACs."""

from __future__ import annotations

import pytest
import torch
import torchvision

import zoo

# Parameter counts published by torchvision (weights metadata), written out so a change in either
# side is caught; GMACs are torchvision's `_ops` at 224x224.
REFERENCES = {
    "resnet18": (11_689_512, "ResNet18_Weights"),
    "resnet34": (21_797_672, "ResNet34_Weights"),
    "resnet50": (25_557_032, "ResNet50_Weights"),
    "resnet101": (44_549_160, "ResNet101_Weights"),
    "resnet152": (60_192_808, "ResNet152_Weights"),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_torchvision(name: str) -> None:
    params, weights_enum = REFERENCES[name]
    reference = getattr(torchvision.models, name)().eval()
    model = zoo.build(name).eval()

    assert sum(p.numel() for p in model.parameters()) == params
    assert sum(p.numel() for p in reference.parameters()) == params
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    model.load_state_dict(reference.state_dict(), strict=True)  # torchvision checkpoints load as is

    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=1e-5)

    published = getattr(torchvision.models, weights_enum).IMAGENET1K_V1.meta
    assert published["num_params"] == params
    macs = zoo.trace(name, (1, 3, 224, 224)).macs
    assert macs / 1e9 == pytest.approx(published["_ops"], rel=0.01)
