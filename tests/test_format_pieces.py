"""The format pieces the torchvision catalogue needs: blocks without a shortcut, stochastic depth
with a network schedule, layer scale, stride_at by dotted path, any module name torch accepts,
conv_bn_act's key layouts, an SE sized by its block's input, and scaling rules."""

from __future__ import annotations

import re

import pytest
import torch

import zoo
from zoo.errors import ZooError

HEAD = "input: {channels: 8, size: 8}\n"


def _spec(body: str, extra: str = "") -> dict:
    import yaml

    return yaml.safe_load(f"name: t\n{HEAD}{extra}stages:\n{body}")


MBLOCK = """  - type: residual
    name: {name}
    stride: {stride}
    shortcut: {{kind: none}}
    stochastic_depth: true
    body:
      - type: sequential
        name: block
        layers:
          - {{type: conv_bn_act, out: 16, kernel: 1, keys: indexed}}
          - {{type: conv_bn_act, out: 16, kernel: 3, groups: 16, keys: indexed}}
          - {{type: conv_bn_act, out: {out}, kernel: 1, act: none, keys: indexed}}
"""


def _blocks(*blocks: tuple[str, int, int]) -> str:
    return "".join(MBLOCK.format(name=n, out=o, stride=s) for n, o, s in blocks)


def test_a_block_without_shortcut_adds_only_when_the_shape_is_kept() -> None:
    spec = _spec(_blocks(("b0", 12, 2), ("b1", 12, 1)))
    model = zoo.build(spec).eval()
    keys = set(model.state_dict())
    assert "b0.block.0.0.weight" in keys and "b0.block.2.1.running_var" in keys
    assert not any("downsample" in k for k in keys)  # no projection when the shape changes
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        body0 = model.b0.block(x)
        assert torch.equal(model.b0(x), body0)  # shape changes: the body alone
        assert torch.equal(model.b1(body0), model.b1.block(body0) + body0)  # kept: a sum
    assert body0.shape == (2, 12, 4, 4)  # the stride went to the first conv, nested
    assert model.b0.block[0][0].stride == (2, 2)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [("linear", [0.0, 0.1, 0.2, 0.3]), ("linear_to_rate", [0.0, 0.4 / 3, 0.8 / 3, 0.4])],
)
def test_stochastic_depth_is_linear_over_the_whole_network(schedule, expected) -> None:
    blocks = _blocks(("b0", 12, 2), ("b1", 12, 1), ("b2", 16, 1), ("b3", 16, 1))
    spec = _spec(blocks, f"stochastic_depth: {{rate: 0.4, schedule: {schedule}}}\n")
    model = zoo.build(spec)
    got = [getattr(model, f"b{i}").stochastic_depth.p for i in range(4)]
    assert got == pytest.approx(expected)
    assert zoo.build(_spec(blocks)).b3.stochastic_depth.p == 0.0  # no rate: nothing dropped


def test_stochastic_depth_drops_the_branch_only_where_there_is_a_sum() -> None:
    spec = _spec(_blocks(("b0", 12, 2), ("b1", 12, 1)), "stochastic_depth: {rate: 0.9}\n")
    model = zoo.build(spec).train()
    model.b1.stochastic_depth.p = 0.999  # drop (almost) surely
    model.b0.stochastic_depth.p = 0.999
    torch.manual_seed(0)
    x = torch.randn(4, 12, 4, 4)
    assert torch.equal(model.b1(x), x)  # every sample's branch dropped: the identity
    y = torch.randn(4, 8, 8, 8)
    assert model.b0(y).abs().sum() > 0  # no sum, so never dropped (torchvision's MBConv)


def test_layer_scale_is_a_parameter_of_the_block() -> None:
    spec = _spec(
        "  - {type: residual, name: r, layer_scale: 0.001, body: [{type: conv, out: 8, kernel: 3, padding: 1}]}\n"
    )
    model = zoo.build(spec)
    assert model.r.layer_scale.shape == (8, 1, 1)
    assert torch.equal(model.r.layer_scale, torch.full((8, 1, 1), 0.001))
    assert zoo.trace(spec).params == sum(p.numel() for p in model.parameters())
    x = torch.randn(1, 8, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model.r(x), x + 0.001 * model.r.body_0(x))


def test_stride_at_by_dotted_path() -> None:
    body = """  - type: residual
    name: r
    stride: 2
    stride_at: f.b
    body:
      - type: sequential
        name: f
        layers:
          - {type: conv_bn_act, name: a, out: 8, kernel: 1, keys: indexed}
          - {type: conv_bn_act, name: b, out: 8, kernel: 3, keys: indexed}
"""
    model = zoo.build(_spec(body))
    assert model.r.f.a[0].stride == (1, 1) and model.r.f.b[0].stride == (2, 2)
    assert "r.downsample.1.weight" in model.state_dict()
    for at, message in [
        ("f.c", "'f' has no layer named 'c'"),
        ("f.a.x", "'f.a' is a conv_bn_act; stride_at can reach only into a sequential"),
        ("g", "no body layer is named 'g'"),
    ]:
        with pytest.raises(ZooError, match=message):
            zoo.build(_spec(body.replace("stride_at: f.b", f"stride_at: {at}")), device="meta")


def test_module_names_may_be_digits_and_dashes() -> None:
    spec = _spec(
        "  - {type: sequential, name: block1, layers: [{type: conv, name: block1-0, out: 4, kernel: 1}, "
        '{type: relu, name: "7"}]}\n'
    )
    keys = set(zoo.build(spec, device="meta").state_dict())
    assert keys == {"block1.block1-0.weight", "block1.block1-0.bias"}
    for bad in ("_private", "a.b", "forward", ""):
        with pytest.raises(ZooError):
            zoo.load_spec(_spec(f"  - {{type: relu, name: '{bad}'}}\n"))


def test_conv_bn_act_key_layouts() -> None:
    for keys, names in [("named", ["conv", "bn", "act"]), ("indexed", ["0", "1", "2"])]:
        spec = _spec(f"  - {{type: conv_bn_act, name: c, out: 4, kernel: 3, keys: {keys}}}\n")
        model = zoo.build(spec, device="meta")
        assert [n for n, _ in model.c.named_children()] == names


def test_squeeze_sized_by_the_block_input() -> None:
    body = """  - type: residual
    name: r
    shortcut: {kind: none}
    body:
      - {type: conv_bn_act, out: 32, kernel: 1}
      - {type: squeeze_excite, name: se, ratio: 0.25, divisor: 1, of: block_input}
      - {type: conv_bn_act, out: 8, kernel: 1}
"""
    model = zoo.build(_spec(body), device="meta")
    assert model.r.se.fc1.out_channels == 2  # 8 // 4, not 32 // 4
    outside = "  - {type: squeeze_excite, of: block_input}\n"
    with pytest.raises(ZooError, match="in none; use of: input"):
        zoo.build(_spec(outside), device="meta")


def test_avgpool_shortcut_keeps_timms_slots_at_stride_one() -> None:
    body = (
        "  - {type: basic, name: r, out: 16, shortcut: {kind: avgpool_conv_bn}}\n"
        "  - {type: basic, name: s, out: 32, stride: 2, shortcut: {kind: avgpool_conv_bn}}\n"
    )
    model = zoo.build(_spec(body), device="meta")
    assert isinstance(model.r.downsample[0], torch.nn.Identity)
    assert isinstance(model.s.downsample[0], torch.nn.AvgPool2d)
    assert "r.downsample.1.weight" in model.state_dict()


SCALED = """  - {type: conv_bn_act, name: stem, out: 32, kernel: 3}
  - {type: basic, name: s1, out: 20, depth: 2}
  - {type: conv_bn_act, name: last, out: 1280, kernel: 1}
  - {type: adaptive_avgpool}
  - {type: flatten}
  - {type: linear, name: fc, out: 10}
"""


def test_scale_multiplies_channels_and_depths_with_the_reference_rounding() -> None:
    spec = _spec(SCALED, "scale: {width: 1.1, depth: 1.2}\n")
    model = zoo.build(spec, device="meta")
    assert model.stem.conv.out_channels == 32  # 35.2 -> 32
    assert len(model.s1) == 3  # ceil(2 * 1.2)
    assert model.s1[0].conv1.out_channels == 24  # 22 -> 24
    assert model.last.conv.out_channels == 1408  # EfficientNet-B2's 4 * 352
    assert model.fc.out_features == 10  # classes are not channels
    kept = _spec(SCALED, "scale: {width: 0.5, keep: [stages.2]}\n")
    assert zoo.build(kept, device="meta").last.conv.out_channels == 1280
    assert zoo.build(kept, device="meta").stem.conv.out_channels == 16


def test_scale_keep_names_an_existing_node() -> None:
    spec = _spec(SCALED, "scale: {width: 0.5, keep: [stages.9]}\n")
    with pytest.raises(ZooError, match=re.escape("'stages.9' is not the path of a layer")):
        zoo.trace(spec)


PRESETS = re.compile(
    r"type: (basic|bottleneck|preact_\w+|inception\w*|fire|mbconv|fused_mbconv|"
    r"inverted_residual|shufflenet_v2_unit|dense_block|dense_transition|convnext_block|"
    r"regnet_stages)\b"
)


@pytest.mark.parametrize(
    "name",
    [
        "resnet50",
        "googlenet",
        "preact_resnet18",
        "efficientnet_b0",
        "mnasnet0_5",
        "shufflenet_v2_x0_5",
        "mobilenet_v3_small",
    ],
)
def test_resolve_expand_builds_the_same_network(name, tmp_path, capsys) -> None:
    from tests.conftest import run_cli

    code, out, _ = run_cli(capsys, "resolve", name, "--expand")
    assert code == 0
    assert not PRESETS.search(out)  # presets expanded at plan time (mbconv, ...) included
    path = tmp_path / "x.yaml"
    path.write_text(out)
    ours = zoo.build(str(path), input_shape=(3, 32, 32)).eval()
    theirs = zoo.build(name, input_shape=(3, 32, 32)).eval()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_resolve_expand_applies_the_scale(tmp_path, capsys) -> None:
    import yaml

    from tests.conftest import run_cli

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_spec(SCALED, "scale: {width: 2.0}\n")))
    code, out, _ = run_cli(capsys, "resolve", str(path), "--expand")
    assert code == 0 and "scale" not in out and "out: 2560" in out and "out: 10" in out


def test_trunc_normal_init_is_convnexts() -> None:
    spec = _spec(
        "  - {type: conv, name: c, out: 64, kernel: 3}\n  - {type: flatten}\n"
        "  - {type: linear, name: fc, out: 200}\n",
        "init: trunc_normal\n",
    )
    model = zoo.build(spec)
    for layer in (model.c, model.fc):
        assert 0.015 < layer.weight.std() < 0.025 and not layer.bias.any()
