"""Every registered type, checked by its own example (``registry.TypeInfo.example``), so a type
that no shipped spec uses is covered as well as one that many do; a plugin's type too.

For each: the example covers the type, the plan tree is the module tree (parameters and buffers
node by node), the inferred rows equal forward hooks and ``FlopCounterMode`` on real forward passes
at two input sizes, and it builds on the meta device.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pytest
import torch
from torch import nn

import zoo
from tests.conftest import assert_rows_match
from zoo import registry
from zoo.plan import plan_spec


class ChannelGate(nn.Module):
    """A plugin's module: channels scaled by a learned gate (squeeze-and-excitation's core)."""

    def __init__(self, channels: int):
        super().__init__()
        self.gate = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.gate(x.mean((2, 3), keepdim=True)))


class ChannelGateSpec(zoo.LayerSpec):
    type: Literal["channel_gate"]


PLUGIN = "channel_gate"
TAGS = [info.tag for info in registry.builtin()] + [PLUGIN]


@pytest.fixture
def info(request: pytest.FixtureRequest) -> Iterator[registry.TypeInfo]:
    tag = request.param
    if tag != PLUGIN:
        yield registry.get(tag)
        return
    zoo.register_layer(ChannelGateSpec, example={"type": PLUGIN}, example_input=(6, 5, 7))(
        lambda spec, in_shape: ChannelGate(in_shape[0])
    )
    try:
        yield registry.get(PLUGIN)
    finally:
        zoo.unregister_layer(PLUGIN)


def _example(info: registry.TypeInfo) -> zoo.ModelSpec:
    """The type's example as a whole (one-layer) spec; a layer on features gets a flatten first."""
    assert info.example is not None, f"register {info.tag!r} with an example"
    shape = info.example_input
    if len(shape) == 3:
        data = {"input": {"channels": shape[0], "size": list(shape[1:])}, "stem": [info.example]}
    else:
        data = {
            "input": {"channels": shape[0], "size": 1},
            "stem": [{"type": "flatten"}, info.example],
        }
    return zoo.load_spec({"name": f"example_{info.tag}", **data})


@pytest.mark.filterwarnings("ignore::zoo.ZooWarning")  # a lone pre-activation block lacks a norm
@pytest.mark.parametrize("info", TAGS, indirect=True)
def test_every_type_by_its_example(info: registry.TypeInfo) -> None:
    spec = _example(info)
    plan = plan_spec(spec)
    # the example covers the type (a repeat is inlined: its layers are there, not itself)
    assert info.inline or info.tag in {node.tag for _, node in plan.root.walk()}

    # the plan's arithmetic is the modules it makes, node by node
    with torch.device("meta"):
        modules = dict(plan.materialize().named_modules())
    planned = dict(plan.root.walk())
    if info.source == registry.BUILTIN:
        assert planned.keys() == modules.keys() - {""}
    else:  # a plugin's module is one row of the plan: zoo measures it, it does not see inside
        assert planned.keys() <= modules.keys()
    for path, node in planned.items():
        module = modules[path]
        params = sum(p.numel() for p in module.parameters())
        buffers = sum(b.numel() for b in module.buffers() if b.is_floating_point())
        assert (node.params, node.buffers) == (params, buffers), path

    # inferred rows equal a real forward's hooks and FlopCounterMode, at two input sizes
    c, *size = (spec.input.channels, *zoo.plan.pair(spec.input.size))
    for dims in ((1, c, *size), (2, c, size[0] + 3, size[1] + 5)):
        if len(info.example_input) == 1 and dims[0] == 2:
            dims = (2, c, *size)  # a flattened input's size is part of the layer
        inferred = zoo.trace(spec, dims)
        measured = zoo.trace(zoo.build(spec, input_shape=dims[1:]), dims)
        assert_rows_match(inferred, measured, every_row=info.source == registry.BUILTIN)

    # and it builds on the meta device, allocating nothing
    meta = zoo.build(spec, device="meta")
    assert all(p.device.type == "meta" for p in meta.parameters())


def test_every_builtin_type_has_an_example() -> None:
    assert [info.tag for info in registry.builtin() if info.example is None] == []
