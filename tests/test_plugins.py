"""Custom layer types from Python (zoo.register_layer) and from installed packages (entry points)."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pydantic
import pytest
import torch
from torch import nn

import zoo
import zoo.plugins
from tests.conftest import run_cli
from zoo import registry
from zoo.errors import ZooError, ZooWarning


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
    type: Literal["se_gate"]
    reduction: int = 4


@pytest.fixture
def se_gate():
    @zoo.register_layer(SqueezeExciteSpec)
    def build(spec: SqueezeExciteSpec, in_shape: tuple[int, ...]) -> nn.Module:
        return SqueezeExcite(in_shape[0], spec.reduction)

    yield
    zoo.unregister_layer("se_gate")


SPEC = """
name: se_net
input: {channels: 3, size: 32}
stem:
  - {type: conv, out: 16, kernel: 3, padding: 1}
  - {type: se_gate, name: se, reduction: 4}
stages:
  - type: residual
    body:
      - {type: conv, out: 16, kernel: 3, padding: 1}
      - {type: se_gate}
head: [{type: adaptive_avgpool}, {type: flatten}, {type: linear, out: 10}]
"""


def test_registered_type_builds_and_traces(se_gate, write_spec) -> None:
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


def test_registered_fields_are_validated_at_their_line(se_gate, write_spec) -> None:
    with pytest.raises(ZooError) as info:
        zoo.load_spec(write_spec(SPEC.replace("reduction: 4", "reductoin: 4")))
    [problem] = info.value.problems
    assert (problem.line, problem.path) == (5, "stem.1.reductoin")
    assert problem.message == "unknown field; did you mean 'reduction'?"


def test_unknown_type_suggests_registered_ones(se_gate, write_spec) -> None:
    with pytest.raises(ZooError) as info:
        zoo.load_spec(write_spec(SPEC.replace("type: se_gate, name", "type: se_gat, name")))
    assert "did you mean 'se_gate'?" in info.value.problems[0].message


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
        zoo.unregister_layer(Broken)


def test_builder_that_exits_is_located(write_spec) -> None:
    class Quitter(zoo.LayerSpec):
        type: Literal["quitter"]

    @zoo.register_layer(Quitter)
    def build(spec: Quitter, in_shape: tuple[int, ...]) -> nn.Module:
        sys.exit(0)

    try:
        with pytest.raises(ZooError) as info:
            zoo.trace(
                write_spec("name: q\ninput: {channels: 3, size: 8}\nstem: [{type: quitter}]\n")
            )
        [problem] = info.value.problems
        assert (problem.line, problem.path, problem.kind) == (3, "stem.0", "plugin")
        assert problem.message == "quitter cannot take a 3x8x8 input: SystemExit: 0"
    finally:
        zoo.unregister_layer(Quitter)


def test_registration_mistakes() -> None:
    class NoTag(zoo.LayerSpec):
        kind: str = "x"

    class Clash(zoo.LayerSpec):
        type: Literal["conv"]

    with pytest.raises(TypeError, match="needs a field `type"):
        zoo.register_layer(NoTag)
    with pytest.raises(ValueError, match="built into zoo"):
        zoo.register_layer(Clash)


def test_registration_mistakes_name_what_to_do() -> None:
    with pytest.raises(TypeError, match=r"takes a zoo\.LayerSpec subclass, got 42"):
        zoo.register_layer(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="builder must be a function"):
        zoo.register_layer(SqueezeExciteSpec)("not a function")  # type: ignore[arg-type]
    assert registry.get("se_gate") is None


def test_reregistering_the_same_class_is_a_no_op(se_gate) -> None:
    planner = registry.get("se_gate").plan
    zoo.register_layer(SqueezeExciteSpec)(lambda spec, in_shape: nn.Identity())
    assert registry.get("se_gate").model is SqueezeExciteSpec
    assert registry.get("se_gate").plan is planner


def _spec_model(tag: str, module: str) -> type[zoo.LayerSpec]:
    """A spec model for ``tag`` defined, as far as zoo can tell, in ``module``."""
    return pydantic.create_model(
        "OtherSpec", __base__=zoo.LayerSpec, __module__=module, type=(Literal[tag], ...)
    )


def test_a_type_registered_from_another_module_is_refused(se_gate) -> None:
    other = _spec_model("se_gate", "other_package.layers")
    with pytest.raises(ValueError) as info:
        zoo.register_layer(other)(lambda spec, in_shape: nn.Identity())
    assert str(info.value) == (
        f"type 'se_gate' is already registered by module {__name__}; module "
        "other_package.layers cannot register it too: rename one of them, or call "
        "zoo.unregister_layer('se_gate') first"
    )
    assert registry.get("se_gate").model is SqueezeExciteSpec


def test_the_same_module_may_register_a_type_again(se_gate) -> None:
    """A notebook cell or a reloaded module defines its class anew: the new one replaces it."""
    again = _spec_model("se_gate", __name__)
    zoo.register_layer(again)(lambda spec, in_shape: nn.Identity())
    assert registry.get("se_gate").model is again


def test_unregister_layer(write_spec) -> None:
    @zoo.register_layer(SqueezeExciteSpec)
    def build(spec: SqueezeExciteSpec, in_shape: tuple[int, ...]) -> nn.Module:
        return SqueezeExcite(in_shape[0], spec.reduction)

    path = write_spec(SPEC)
    zoo.load_spec(path)
    zoo.unregister_layer(SqueezeExciteSpec)
    assert registry.get("se_gate") is None
    with pytest.raises(ZooError, match="unknown type 'se_gate'"):
        zoo.load_spec(path)
    zoo.register_layer(SqueezeExciteSpec)(build)  # by tag, this time
    zoo.unregister_layer("se_gate")
    assert registry.get("se_gate") is None


def test_unregister_layer_mistakes() -> None:
    with pytest.raises(ValueError, match="'conv' is built into zoo"):
        zoo.unregister_layer("conv")
    with pytest.raises(ValueError, match="no type 'se_gate' is registered"):
        zoo.unregister_layer("se_gate")
    with pytest.raises(ValueError, match="SqueezeExciteSpec is not registered"):
        zoo.unregister_layer(SqueezeExciteSpec)


def test_layer_specs_are_frozen(se_gate) -> None:
    spec = SqueezeExciteSpec(type="se_gate")
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        spec.reduction = 2  # type: ignore[misc]


# --------------------------------------------------------------------------- installed plugins
@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``install(dist, module, source)``: a fake installed distribution ``dist`` (version 1.0)
    whose ``zoo.plugins`` entry point ``plugin`` calls ``module:register`` (defined in ``source``).
    Entry points load again on the next spec; what they register is unregistered afterwards."""
    before = set(registry.tags())
    modules: list[str] = []
    monkeypatch.setattr(registry, "_loaded", False)

    def install(dist: str, module: str, source: str) -> None:
        root = tmp_path / dist
        root.mkdir()
        (root / f"{module}.py").write_text(textwrap.dedent(source))
        info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[zoo.plugins]\nplugin = {module}:register\n")
        monkeypatch.syspath_prepend(str(root))
        modules.append(module)

    yield install
    for tag in set(registry.tags()) - before:
        zoo.unregister_layer(tag)
    for module in modules:
        sys.modules.pop(module, None)


BLUR = """
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
BLUR_SPEC = "name: b\ninput: {channels: 3, size: 32}\nstem: [{type: blur_pool}]\n"


def test_entry_point_plugin(install, write_spec) -> None:
    install("zoo-blur", "zoo_blur", BLUR)
    assert zoo.trace(write_spec(BLUR_SPEC)).output == (1, 3, 16, 16)


@pytest.mark.parametrize(
    ("hook", "error"),
    [("sys.exit(0)", "SystemExit: 0"), ("raise RuntimeError('no GPU')", "RuntimeError: no GPU")],
)
def test_a_failing_plugin_is_a_warning(install, write_spec, hook: str, error: str) -> None:
    install("zoo-broken", "zoo_broken", f"import sys\ndef register():\n    {hook}\n")
    with pytest.warns(ZooWarning) as caught, pytest.raises(ZooError, match="unknown type"):
        zoo.load_spec(write_spec(BLUR_SPEC))
    [warning] = caught
    assert warning.message.problem.message == (
        f"plugin 'plugin' (zoo_broken:register) of zoo-broken 1.0 failed to load: {error}; zoo "
        "goes on without it: update or uninstall zoo-broken"
    )
    assert warning.message.problem.kind == "plugin"


def test_a_failing_plugin_goes_without_its_types(install, write_spec) -> None:
    install("zoo-half", "zoo_half", BLUR + "    raise ImportError('no scipy')\n")
    with (
        pytest.warns(ZooWarning, match="ImportError: no scipy"),
        pytest.raises(ZooError, match="unknown type 'blur_pool'"),
    ):
        zoo.load_spec(write_spec(BLUR_SPEC))
    assert registry.get("blur_pool") is None


@pytest.mark.parametrize("command", ["validate", "build"])
def test_a_plugin_that_exits_does_not_end_the_command(
    install, write_spec, capsys, monkeypatch, command: str
) -> None:
    install("zoo-quitter", "zoo_quitter", "import sys\ndef register():\n    sys.exit(0)\n")
    code, _, err = run_cli(capsys, command, str(write_spec(BLUR_SPEC)))
    assert code == 1
    # the warning that explains the error comes first, even though the command failed
    warning, error = err.strip().splitlines()
    assert "plugin 'plugin' (zoo_quitter:register) of zoo-quitter 1.0 failed to load" in warning
    assert "unknown type 'blur_pool'" in error
    if command == "validate":
        monkeypatch.setattr(registry, "_loaded", False)
        code, out, _ = run_cli(capsys, command, str(write_spec(BLUR_SPEC)), "--json")
        [result] = json.loads(out)
        assert code == 1 and result["warnings"][0]["kind"] == "plugin"


def test_two_packages_registering_one_type(install, write_spec) -> None:
    install("zoo-blur", "zoo_blur", BLUR)
    install("other-blur", "other_blur", BLUR)
    with pytest.warns(ZooWarning) as caught:
        assert zoo.trace(write_spec(BLUR_SPEC)).output == (1, 3, 16, 16)
    [warning] = caught
    message = warning.message.problem.message
    first, second = sorted(["zoo-blur", "other-blur"], key=message.index)
    assert (
        f"of {first} 1.0 failed to load: ValueError: type 'blur_pool' is already registered by "
        f"package {second} 1.0; package {first} 1.0 cannot register it too"
    ) in message
    assert registry.get("blur_pool").model.__module__ == second.replace("-", "_")


def test_a_second_thread_waits_for_plugins_to_load(install, write_spec) -> None:
    """The first spec read in a thread must see every plugin, even while another is loading them."""
    install(
        "zoo-slow",
        "zoo_slow",
        BLUR.replace("def register():", "def register():\n    started.set()\n    time.sleep(0.5)")
        + "import threading, time\nstarted = threading.Event()\n",
    )
    loader = threading.Thread(target=registry.load_entry_points)
    loader.start()
    try:
        while "zoo_slow" not in sys.modules:  # the module loads, then its hook starts
            threading.Event().wait(0.01)
        assert sys.modules["zoo_slow"].started.wait(10)
        assert zoo.trace(write_spec(BLUR_SPEC)).output == (1, 3, 16, 16)
    finally:
        loader.join()


def test_a_plugin_may_read_a_spec_while_loading(install) -> None:
    install(
        "zoo-reader",
        "zoo_reader",
        "import zoo\ndef register():\n    global spec\n    spec = zoo.load_spec('lenet')\n",
    )
    registry.load_entry_points()
    assert sys.modules["zoo_reader"].spec.name == "lenet"
