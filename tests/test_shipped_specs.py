"""Every shipped spec builds, runs forward and backward, and traces on the meta device."""

from __future__ import annotations

import pytest
import torch

import zoo
from tests.conftest import SPEC_NAMES
from zoo.errors import ZooError
from zoo.nn import ZooNet

# Which parameters get a gradient does not depend on the input size, but a train step of a ResNet at
# 224x224 costs seconds on 2 cores: the model as shipped takes its step at 64x64 where it accepts that
# input (adaptive pooling before its head). Its own size runs on meta below and in test_trace.py.
TRAIN_SIZE = 64
# Past this many parameters a CPU train step costs more in allocation and weight gradients than the
# check is worth on CI (regnet_y_128gf: 645M, 5 GB with its gradients); those build on meta below,
# and their reference parity is checked on meta in test_catalogue.py.
MAX_TRAIN_PARAMS = 150_000_000


def _trainable(name: str) -> bool:
    return zoo.trace(name).params <= MAX_TRAIN_PARAMS


@pytest.mark.parametrize("name", [n for n in SPEC_NAMES if _trainable(n)])
def test_builds_runs_and_trains(name: str) -> None:
    # Stochastic depth off: at batch 2 it may drop a block for both samples, and then that block's
    # weights get no gradient in this one step, rightly (the check is for weights never used).
    spec = zoo.load_spec(name).model_copy(update={"stochastic_depth": None})
    model = zoo.build(spec)
    x = torch.randn(_train_shape(model))
    out = model(x)
    trace = zoo.trace(spec, x.shape)
    assert tuple(out.shape) == trace.output
    out.square().mean().backward()
    missing = [
        n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert not missing, f"parameters without a gradient: {missing[:5]}"
    assert sum(p.numel() for p in model.parameters()) == trace.params


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_builds_on_meta_without_memory(name: str) -> None:
    model = zoo.build(name, device="meta")
    assert all(p.is_meta for p in model.parameters())
    out = model(torch.zeros(1, model.input_shape[0], *model.input_shape[1:], device="meta"))
    assert tuple(out.shape) == zoo.trace(name).output


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_spec_is_documented(name: str) -> None:
    spec = zoo.load_spec(name)
    assert spec.name == name, "a spec's name must match its file name"
    assert len(spec.description) > 20
    first_line = zoo.spec.shipped_specs_dir().joinpath(f"{name}.yaml").read_text().splitlines()[0]
    assert first_line.startswith("# yaml-language-server: $schema=")


def _train_shape(model: ZooNet) -> tuple[int, int, int, int]:
    """Batch 2 (batch norm needs two samples to train) at the model's own input size capped at
    TRAIN_SIZE if the model runs on that, else at its own size (a stem that shrinks 64x64 to
    nothing, or a head whose flatten fixes the size)."""
    channels, height, width = model.input_shape
    small = (2, channels, min(height, TRAIN_SIZE), min(width, TRAIN_SIZE))
    try:
        zoo.trace(model, small)  # a forward of this very module on meta stand-ins: no memory
    except ZooError:
        return (2, channels, height, width)
    return small
