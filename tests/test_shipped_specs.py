"""Every shipped spec builds, runs forward and backward, and traces on the meta device."""

from __future__ import annotations

import pytest
import torch

import zoo
from tests.conftest import SPEC_NAMES


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_builds_runs_and_trains(name: str) -> None:
    spec = zoo.load_spec(name)
    model = zoo.build(spec)
    x = torch.randn(2, spec.input.channels, *_size(spec))
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


def _size(spec: zoo.ModelSpec) -> tuple[int, int]:
    size = spec.input.size
    return (size, size) if isinstance(size, int) else size
