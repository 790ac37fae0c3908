"""The compiler's inferred shapes and costs equal what a real forward pass measures."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import zoo
from tests.conftest import SPEC_NAMES, assert_rows_match
from zoo.errors import ZooError
from zoo.plan import LayerPlan, plan_spec


def _sizes(spec: zoo.ModelSpec) -> list[tuple[int, int, int, int]]:
    c = spec.input.channels
    size = spec.input.size
    h, w = (size, size) if isinstance(size, int) else size
    # the spec's own input, an odd non-square one (batch 2, so MACs scale), and a larger one
    return [(1, c, h, w), (2, c, h + 13, w + 7), (1, c, h + 32, w + 32)]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_inferred_rows_equal_forward_hooks(name: str) -> None:
    spec = zoo.load_spec(name)
    for dims in _sizes(spec):
        inferred = zoo.trace(spec, dims)
        # Shapes, parameter counts and FLOPs need no weight values, and tracing a module runs its
        # forward on meta stand-ins anyway: built on meta, it skips only the weight init (60M
        # values for resnet152, three times), not one step of what is measured.
        model = zoo.build(spec, input_shape=dims[1:], device="meta")
        measured = zoo.trace(model, dims)  # forward hooks + FlopCounterMode on the module's forward
        assert_rows_match(inferred, measured)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_macs_equal_flop_counter(name: str) -> None:
    model = zoo.build(name, device="meta")
    x = torch.zeros(3, *model.input_shape, device="meta")
    with FlopCounterMode(display=False) as counter:
        model(x)
    assert zoo.trace(name, x.shape).macs * 2 == counter.get_total_flops()


def test_trace_allocates_nothing_at_any_input_size() -> None:
    # A real forward at this size would need ~1 TB of activations: the trace is arithmetic only.
    result = zoo.trace("resnet152", (64, 3, 4096, 4096))
    assert result.output == (64, 1000)
    assert result.params == 60_192_808
    assert result.macs == zoo.trace("resnet152", (1, 3, 4096, 4096)).macs * 64


def test_depth_limits_rows() -> None:
    full = zoo.trace("resnet18")
    top = zoo.trace("resnet18", depth=1)
    assert [r.path for r in top.rows] == [
        "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "head_1", "fc",
    ]  # fmt: skip
    assert {r.depth for r in full.rows} == {1, 2, 3, 4}
    assert (top.params, top.macs) == (full.params, full.macs)
    assert [r.output for r in top.rows if r.path.startswith("layer")] == [
        (1, 64, 56, 56), (1, 128, 28, 28), (1, 256, 14, 14), (1, 512, 7, 7),
    ]  # fmt: skip


def test_children_sum_to_parent() -> None:
    result = zoo.trace("resnet50")
    rows = {r.path: r for r in result.rows}
    for path, row in rows.items():
        children = [r for p, r in rows.items() if p.rpartition(".")[0] == path]
        if children:
            assert sum(c.params for c in children) == row.params, path
            assert sum(c.macs for c in children) == row.macs, path


def test_hook_fallback_on_foreign_module_matches_compiled_spec() -> None:
    reference = torchvision.models.resnet34()
    foreign = zoo.trace(reference, (1, 3, 224, 224))
    ours = {r.path: r for r in zoo.trace("resnet34").rows}
    assert foreign.params == 21_797_672
    assert foreign.macs == zoo.trace("resnet34").macs
    shared = [r for r in foreign.rows if r.path in ours]
    assert len(shared) > 90  # every module but the shared ReLUs and the functional flatten
    for row in shared:
        assert (row.output, row.params, row.macs) == (
            ours[row.path].output,
            ours[row.path].params,
            ours[row.path].macs,
        )


def test_plain_module_needs_input_shape() -> None:
    with pytest.raises(ZooError, match="input_shape"):
        zoo.trace(torch.nn.Linear(3, 4))


@pytest.mark.parametrize("bad", [(3, 224), (0, 3, 224, 224), (1, 2, 3, 4, 5)])
def test_bad_input_shape(bad: tuple[int, ...]) -> None:
    with pytest.raises(ZooError, match=r"\[N\]xCxHxW"):
        zoo.trace("resnet18", bad)


def test_trace_json_ready() -> None:
    data = zoo.trace("resnet18", depth=1).to_dict()
    assert data["params"] == 11_689_512
    assert data["rows"][0] == {
        "path": "conv1", "type": "conv", "output": (1, 64, 112, 112), "params": 9408, "macs": 118_013_952, "depth": 1,
    }  # fmt: skip


def test_too_small_input_is_a_located_error() -> None:
    with pytest.raises(ZooError) as info:
        zoo.trace("notebook_resnet96", (1, 3, 64, 64))
    [problem] = info.value.problems
    assert problem.file.endswith("notebook_resnet96.yaml") and problem.line == 49
    assert problem.path == "stages.3.layers.1"
    assert "turns a 512x2x2 input into 512x0x0" in problem.message


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_plan_tree_is_the_module_tree(name: str) -> None:
    # The plan's arithmetic (params, buffers) against the modules it makes, node by node.
    plan = plan_spec(zoo.load_spec(name))
    with torch.device("meta"):
        modules = dict(plan.materialize().named_modules())
    planned: dict[str, LayerPlan] = {}

    def walk(node: LayerPlan, path: str) -> None:
        planned[path] = node
        for child in node.children:
            walk(child, f"{path}.{child.name}" if path else child.name)

    walk(plan.root, "")
    assert planned.keys() == modules.keys()
    for path, node in planned.items():
        module = modules[path]
        params = sum(p.numel() for p in module.parameters())
        buffers = sum(b.numel() for b in module.buffers() if b.is_floating_point())
        assert (node.params, node.buffers) == (params, buffers), path


def test_tracing_constructs_no_module(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = zoo.load_spec("googlenet")  # inception, concat and residual-free paths
    preact = zoo.load_spec("preact_resnet50")  # presets and dotted shortcut names
    made: list[str] = []
    original = torch.nn.Module.__init__

    def counting_init(self: torch.nn.Module, *args: object, **kwargs: object) -> None:
        made.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "__init__", counting_init)
    zoo.trace(spec)
    zoo.trace(preact, (4, 3, 512, 512))
    assert made == []
    zoo.build(spec, device="meta")  # the counter does see modules being made
    assert "Conv2d" in made
