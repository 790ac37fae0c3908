"""Custom layer types from Python (zoo.register_layer) and from installed packages (entry points)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Literal

import pytest
import torch
from torch import nn

import zoo
import zoo.plugins
from zoo import plan
from zoo.errors import ZooError
from zoo.spec.schema import PLUGIN_TYPES


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2018): channel gates from pooled features."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(gate)


class SqueezeExciteSpec(zoo.LayerSpec):
    type: Literal["squeeze_excite"]
    reduction: int = 4


@pytest.fixture
def squeeze_excite():
    @zoo.register_layer(SqueezeExciteSpec)
    def build(spec: SqueezeExciteSpec, in_shape: tuple[int, ...]) -> nn.Module:
        return SqueezeExcite(in_shape[0], spec.reduction)

    yield
    PLUGIN_TYPES.pop("squeeze_excite")
    plan._LAYER_BUILDERS.pop(SqueezeExciteSpec)


SPEC = """
name: se_net
input: {channels: 3, size: 32}
stem:
  - {type: conv, out: 16, kernel: 3, padding: 1}
  - {type: squeeze_excite, name: se, reduction: 4}
stages:
  - type: residual
    body:
      - {type: conv, out: 16, kernel: 3, padding: 1}
      - {type: squeeze_excite}
head: [{type: adaptive_avgpool}, {type: flatten}, {type: linear, out: 10}]
"""


def test_registered_type_builds_and_traces(squeeze_excite, write_spec) -> None:
    path = write_spec(SPEC)
    model = zoo.build(path)
    assert isinstance(model.se, SqueezeExcite) and model.se.fc1.out_channels == 4
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    inferred = zoo.trace(path, (2, 3, 40, 40))
    measured = zoo.trace(zoo.build(path, input_shape=(3, 40, 40)), (2, 3, 40, 40))
    assert (inferred.params, inferred.macs, inferred.output) == (
        measured.params,
        measured.macs,
        measured.output,
    )
    assert {r.path: r.output for r in inferred.rows}["se"] == (2, 16, 40, 40)


def test_registered_fields_are_validated_at_their_line(squeeze_excite, write_spec) -> None:
    with pytest.raises(ZooError) as info:
        zoo.load_spec(write_spec(SPEC.replace("reduction: 4", "reductoin: 4")))
    [problem] = info.value.problems
    assert (problem.line, problem.path) == (5, "stem.1.reductoin")
    assert problem.message == "unknown field; did you mean 'reduction'?"


def test_unknown_type_suggests_registered_ones(squeeze_excite, write_spec) -> None:
    with pytest.raises(ZooError) as info:
        zoo.load_spec(
            write_spec(SPEC.replace("type: squeeze_excite, name", "type: squeeze_excit, name"))
        )
    assert "did you mean 'squeeze_excite'?" in info.value.problems[0].message


def test_builder_failure_is_located(write_spec) -> None:
    class Broken(zoo.LayerSpec):
        type: Literal["broken_layer"]

    @zoo.register_layer(Broken)
    def build(spec: Broken, in_shape: tuple[int, ...]) -> nn.Module:
        return nn.Linear(7, 7)  # cannot take a feature map of 3 channels

    try:
        with pytest.raises(ZooError) as info:
            zoo.trace(
                write_spec("name: b\ninput: {channels: 3, size: 8}\nstem: [{type: broken_layer}]\n")
            )
        [problem] = info.value.problems
        assert (problem.line, problem.path, problem.kind) == (3, "stem.0", "plugin")
        assert "broken_layer cannot take a 3x8x8 input" in problem.message
    finally:
        PLUGIN_TYPES.pop("broken_layer")
        plan._LAYER_BUILDERS.pop(Broken)


def test_registration_mistakes() -> None:
    class NoTag(zoo.LayerSpec):
        kind: str = "x"

    class Clash(zoo.LayerSpec):
        type: Literal["conv"]

    with pytest.raises(TypeError, match="needs a field `type"):
        zoo.register_layer(NoTag)
    with pytest.raises(ValueError, match="built into zoo"):
        zoo.register_layer(Clash)


def test_entry_point_plugin(tmp_path: Path, write_spec, monkeypatch) -> None:
    package = tmp_path / "zoo_blur"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from typing import Literal
            from torch import nn
            import zoo

            class BlurSpec(zoo.LayerSpec):
                type: Literal["blur_pool"]
                stride: int = 2

            def register():
                @zoo.register_layer(BlurSpec)
                def build(spec, in_shape):
                    return nn.AvgPool2d(3, spec.stride, 1)
            """
        )
    )
    dist = tmp_path / "zoo_blur-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-blur\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[zoo.plugins]\nblur = zoo_blur:register\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(zoo.plugins, "_loaded", False)
    try:
        spec = write_spec("name: b\ninput: {channels: 3, size: 32}\nstem: [{type: blur_pool}]\n")
        assert zoo.trace(spec).output == (1, 3, 16, 16)
    finally:
        model = PLUGIN_TYPES.pop("blur_pool", None)
        plan._LAYER_BUILDERS.pop(model, None)
        sys.modules.pop("zoo_blur", None)
