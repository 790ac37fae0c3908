"""The tutorial networks of the seed documents: shapes as the tutorials print them, and parity with
plain PyTorch references written from the seeds (tests/references.py)."""

from __future__ import annotations

import json

import pytest
import torch

import zoo
from tests.references import REFERENCES
from zoo.cli import main


def _depth1(capsys, name: str) -> list[tuple[str, tuple[int, ...]]]:
    assert main(["build", name, "--json", "--depth", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    return [(row["path"], tuple(row["output"][1:])) for row in rows]


def test_notebook_resnet96_verbose_mode(capsys) -> None:
    # the notebook's `verbose` output: block 1..5 output, then output: torch.Size([1, 10])
    rows = dict(_depth1(capsys, "notebook_resnet96"))
    assert [rows[f"block{i}"] for i in range(1, 6)] == [
        (64, 45, 45), (64, 22, 22), (128, 11, 11), (256, 6, 6), (512, 1, 1),
    ]  # fmt: skip
    assert rows["classifier"] == (10,)
    assert main(["build", "notebook_resnet96", "--trace", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "\t1x64x45x45\t" in out and "\t1x512x1x1\t" in out and "\t1x10\t" in out


def test_d2l_resnet18_shapes(capsys) -> None:
    rows = dict(_depth1(capsys, "d2l_resnet18"))
    assert rows["conv1"] == (64, 112, 112)
    assert rows["maxpool"] == (64, 56, 56)
    assert [rows[f"layer{i}"] for i in range(1, 5)] == [
        (64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7),
    ]  # fmt: skip
    assert rows["avgpool"] == (512, 1, 1) and rows["fc"] == (10,)


def test_lenet_infers_the_famous_400() -> None:
    model = zoo.build("lenet")
    first_linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert first_linear.in_features == 16 * 5 * 5


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_described_source(name: str) -> None:
    # the tutorial by name: d2l's chapters, the blog post, the notebook
    description = zoo.load_spec(name).description
    assert any(word in description for word in ("d2l", "Pytorch notes", "8-resnet.ipynb"))


def _run(
    model: torch.nn.Module, x: torch.Tensor
) -> tuple[list[tuple[str, tuple[int, ...]]], torch.Tensor]:
    """(layer class, output shape) of every conv, norm and linear layer, in the order they run,
    and the output: one forward pass gives both."""
    seen: list[tuple[str, tuple[int, ...]]] = []
    kinds = (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)
    handles = [
        m.register_forward_hook(
            lambda m, _i, out: seen.append((type(m).__name__, tuple(out.shape)))
        )
        for m in model.modules()
        if isinstance(m, kinds)
    ]
    with torch.no_grad():
        out = model(x)
    for handle in handles:
        handle.remove()
    return seen, out


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_seed_reference(name: str) -> None:
    cls, input_shape, params = REFERENCES[name]
    reference = cls().eval()
    model = zoo.build(name).eval()
    assert sum(p.numel() for p in model.parameters()) == params
    assert sum(p.numel() for p in reference.parameters()) == params

    # The references register their layers in the order they run, as zoo does: copy by position.
    ours, theirs = model.state_dict(), reference.state_dict()
    assert [v.shape for v in ours.values()] == [v.shape for v in theirs.values()]
    model.load_state_dict(dict(zip(ours, theirs.values(), strict=True)), strict=True)

    x = torch.randn(2, *input_shape)
    ours_layers, ours_out = _run(model, x)
    their_layers, their_out = _run(reference, x)
    assert ours_layers == their_layers  # every stage's shapes
    torch.testing.assert_close(ours_out, their_out, rtol=0, atol=1e-5)
    assert zoo.trace(name).output == (1, *their_out.shape[1:])


def test_inception_mnist_infers_1408() -> None:
    assert zoo.build("inception_mnist").fc.in_features == 1408
