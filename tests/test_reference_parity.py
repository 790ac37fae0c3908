"""Shipped specs with a torchvision or timm reference equal it: parameters, state_dict, outputs, MACs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import timm  # a test-only dependency (the dev extra)
import torch
import torchvision
from torch import nn

import zoo

# Parameter counts published by torchvision (weights metadata), written out so a change in either
# side is caught; GMACs are torchvision's `_ops` at 224x224.
REFERENCES = {
    "resnet18": (11_689_512, "ResNet18_Weights"),
    "resnet34": (21_797_672, "ResNet34_Weights"),
    "resnet50": (25_557_032, "ResNet50_Weights"),
    "resnet101": (44_549_160, "ResNet101_Weights"),
    "resnet152": (60_192_808, "ResNet152_Weights"),
    "resnext50_32x4d": (25_028_904, "ResNeXt50_32X4D_Weights"),
    "wide_resnet50_2": (68_883_240, "Wide_ResNet50_2_Weights"),
    "googlenet": (6_624_904, "GoogLeNet_Weights"),
    "vgg11": (132_863_336, "VGG11_Weights"),
    "vgg16": (138_357_544, "VGG16_Weights"),
    "alexnet": (61_100_840, "AlexNet_Weights"),
}
TIMM_REFERENCES = {
    "preact_resnet18": ("resnetv2_18", 11_687_720),
    "preact_resnet34": ("resnetv2_34", 21_795_880),
    "preact_resnet50": ("resnetv2_50", 25_549_352),
    "preact_resnet101": ("resnetv2_101", 44_541_480),
}


def _torchvision_model(name: str) -> torch.nn.Module:
    if name == "googlenet":  # no auxiliary heads; no input transform (that is for its checkpoint)
        return torchvision.models.googlenet(
            aux_logits=False, init_weights=True, transform_input=False
        )
    return getattr(torchvision.models, name)()


# Every reference pools adaptively before its head, so outputs compare at any input size that keeps
# a feature map; at 64x64 the forward costs a twelfth of 224x224 on every layer. The 224x224 numbers
# (MACs against torchvision's published GMACs) are checked by the arithmetic trace.
PARITY_SIZE = 64


def randomize_norm_statistics(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial running statistics (and affine weights), so that an eval
    forward tests them too: with the fresh 0/1 statistics a norm swapped for another, or one whose
    eps or buffers are misplaced, would still compute the same."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                c = module.num_features
                module.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(c, generator=generator) * 0.5 + 0.75)
                if module.affine:
                    module.weight.copy_(torch.rand(c, generator=generator) * 0.5 + 0.75)
                    module.bias.copy_(torch.randn(c, generator=generator) * 0.1)


def assert_same_network(
    name: str,
    make_reference: Callable[[], nn.Module],
    params: int,
    size: int = PARITY_SIZE,
    rtol: float = 1e-5,
) -> None:
    """The compiled spec ``name`` and the reference that ``make_reference`` builds have the same
    parameters and state_dict, take each other's weights as they are, and compute the same
    (eval mode, non-trivial BatchNorm statistics, a ``size`` x ``size`` input)."""
    model = zoo.build(name).eval()
    randomize_norm_statistics(model)
    # The reference is built on meta and takes our weights: a strict load fails on a missing key,
    # an unexpected one or a shape either way round, so its checkpoints load into ours as well.
    # This skips the reference's own init (138M values for vgg16), and ours keeps every layer in
    # play: torchvision's googlenet init makes its features ~1e-11, its output the fc bias alone.
    with torch.device("meta"):
        reference = make_reference().eval()
    assert sum(p.numel() for p in model.parameters()) == params
    assert sum(p.numel() for p in reference.parameters()) == params
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    reference.load_state_dict(model.state_dict(), strict=True, assign=True)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = reference(x)
        scale = expected.abs().max().item()
        torch.testing.assert_close(model(x), expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_torchvision(name: str) -> None:
    params, weights_enum = REFERENCES[name]
    assert_same_network(name, lambda: _torchvision_model(name), params)

    published = getattr(torchvision.models, weights_enum).IMAGENET1K_V1.meta
    assert published["num_params"] == params
    macs = zoo.trace(name, (1, 3, 224, 224)).macs
    assert macs / 1e9 == pytest.approx(published["_ops"], rel=0.01)


@pytest.mark.parametrize("name", sorted(TIMM_REFERENCES))
def test_matches_timm_resnetv2(name: str) -> None:
    timm_name, params = TIMM_REFERENCES[name]
    assert_same_network(name, lambda: timm.create_model(timm_name, pretrained=False), params)
