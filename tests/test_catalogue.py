"""The whole torchvision CNN catalogue and four timm ResNet variants, shipped as specs: each one has
its reference's parameter count (as published), state_dict keys and shapes (checked on the meta
device: no weights allocated), and multiply-adds equal to FlopCounterMode's on a forward and within
1% of torchvision's published ``_ops`` at the weights' input size. The full forward parity (strict
load, equal outputs) is in the per-family tests, for at least one constructor of every family."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import zoo
from zoo.spec import shipped_spec_names

TORCHVISION = [
    "alexnet",
    "convnext_tiny",
    "convnext_small",
    "convnext_base",
    "convnext_large",
    "densenet121",
    "densenet161",
    "densenet169",
    "densenet201",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_b5",
    "efficientnet_b6",
    "efficientnet_b7",
    "efficientnet_v2_s",
    "efficientnet_v2_m",
    "efficientnet_v2_l",
    "googlenet",
    "inception_v3",
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "regnet_x_400mf",
    "regnet_x_800mf",
    "regnet_x_1_6gf",
    "regnet_x_3_2gf",
    "regnet_x_8gf",
    "regnet_x_16gf",
    "regnet_x_32gf",
    "regnet_y_400mf",
    "regnet_y_800mf",
    "regnet_y_1_6gf",
    "regnet_y_3_2gf",
    "regnet_y_8gf",
    "regnet_y_16gf",
    "regnet_y_32gf",
    "regnet_y_128gf",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0",
    "squeezenet1_0",
    "squeezenet1_1",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "wide_resnet50_2",
    "wide_resnet101_2",
]
TIMM = ["resnet50d", "resnet26t", "seresnet50", "seresnext50_32x4d"]

# The auxiliary classifiers are out of scope: their keys are dropped, as torchvision itself does
# for a model built with aux_logits=False; transform_input is for the checkpoints' preprocessing.
_TORCHVISION_ARGS = {
    "googlenet": {"aux_logits": False, "init_weights": True, "transform_input": False},
    "inception_v3": {"aux_logits": False, "init_weights": True, "transform_input": False},
}


def test_the_catalogue_is_complete() -> None:
    assert len(TORCHVISION) == 68 and len(set(TORCHVISION)) == 68
    missing = sorted(set(TORCHVISION + TIMM) - set(shipped_spec_names()))
    assert not missing, f"no shipped spec for {missing}"


def _weights(name: str) -> torchvision.models.WeightsEnum:
    """The weights whose input size the published cost is for: the first ImageNet-1K weights
    (regnet_y_128gf has only SWAG weights; its linear-probe ones are at 224x224)."""
    weights = list(torchvision.models.get_model_weights(name))
    return weights[-1] if name == "regnet_y_128gf" else weights[0]


def _aux_params(name: str) -> int:
    """Parameters of the auxiliary classifier that the published count includes (Inception v3's
    AuxLogits; GoogLeNet's published count is without its aux heads)."""
    if name != "inception_v3":
        return 0
    with torch.device("meta"):
        full = torchvision.models.inception_v3(aux_logits=True, init_weights=False)
    return sum(p.numel() for p in full.AuxLogits.parameters())


def _same_state(model: torch.nn.Module, reference: torch.nn.Module) -> None:
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert ours.keys() == theirs.keys(), (
        sorted(ours.keys() - theirs.keys())[:5],
        sorted(theirs.keys() - ours.keys())[:5],
    )
    assert ours == theirs


def _forward_macs(model: torch.nn.Module, size: int) -> int:
    """Multiply-adds of one forward, counted by torch's FlopCounterMode (shapes only, on meta)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.empty(1, 3, size, size, device="meta"))
    return counter.get_total_flops() // 2


@pytest.mark.usefixtures("regnet_widths_on_cpu")
@pytest.mark.parametrize("name", TORCHVISION)
def test_equals_torchvision(name: str) -> None:
    model = zoo.build(name, device="meta")
    with torch.device("meta"):
        reference = torchvision.models.get_model(name, **_TORCHVISION_ARGS.get(name, {}))
    _same_state(model, reference)
    meta = _weights(name).meta
    assert sum(p.numel() for p in model.parameters()) == meta["num_params"] - _aux_params(name)
    size = _weights(name).transforms().crop_size[0]
    macs = zoo.trace(name, (1, 3, size, size)).macs
    # `_ops` is published to three decimals: shufflenet_v2_x0_5's 0.0405 G is written 0.04
    assert macs / 1e9 == pytest.approx(meta["_ops"], rel=0.01, abs=5e-4)
    built = zoo.build(name, device="meta", input_shape=(3, size, size)).eval()
    assert _forward_macs(built, size) == macs


@pytest.mark.parametrize("name", TIMM)
def test_equals_timm(name: str) -> None:
    model = zoo.build(name, device="meta")
    with torch.device("meta"):
        reference = timm.create_model(name, pretrained=False)
    _same_state(model, reference)
    params = sum(p.numel() for p in reference.parameters())
    assert sum(p.numel() for p in model.parameters()) == params
    macs = zoo.trace(name, (1, 3, 224, 224)).macs
    assert _forward_macs(model.eval(), 224) == macs
    assert _forward_macs(reference.eval(), 224) == macs
