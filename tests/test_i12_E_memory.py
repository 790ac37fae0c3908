"""zoo.memory: the liveness analysis of a plan, against peaks measured on real models (what
PyTorch's CPU allocator reports to torch.profiler), and against peaks worked out by hand."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.bench import measure_memory, measure_spec
from zoo.memory import OPTIMIZERS, estimate_memory

GOAL = 0.15  # the issue's: within 15% of the measured peak


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_estimate_is_within_15_percent_of_the_measured_peaks(name: str) -> None:
    spec = zoo.load_spec(name)
    shape = (2, 3, 64, 64)
    estimate = estimate_memory(spec, shape, threads=torch.get_num_threads())
    measured = measure_memory(zoo.build(spec, input_shape=shape[1:]), shape)
    pairs = {
        "inference peak": (estimate.inference_peak_bytes, measured.inference_peak_bytes),
        "training peak": (estimate.train_peak_bytes, measured.train_peak_bytes),
        # the activations alone, where the old figures were off by up to 3x
        "inference activations": (
            estimate.inference_activation_bytes,
            measured.inference_activation_bytes,
        ),
        "training activations": (estimate.train_activation_bytes, measured.train_activation_bytes),
    }
    for what, (ours, theirs) in pairs.items():
        assert abs(ours / theirs - 1) <= GOAL, (what, ours, theirs)
    assert estimate.weight_bytes == measured.weight_bytes
    assert estimate.optimizer_bytes == measured.optimizer_bytes  # SGD with momentum: one copy


def _estimate(yaml_stages: list[str]) -> int:
    data = {
        "name": "t",
        "input": {"channels": 16, "size": 8},
        "stem": [{"type": "relu"}],
        "stages": yaml_stages,
    }
    return estimate_memory(zoo.load_spec(data), (2, 16, 8, 8)).inference_activation_bytes


X = 2 * 16 * 8 * 8 * 4  # one 16x8x8 map at batch 2, float32


def test_a_residual_shortcut_keeps_the_block_input_alive() -> None:
    body = [{"type": "batchnorm"}, {"type": "relu"}]
    # the caller's input, the stem's output (the block input, kept for the sum), the ReLU's
    # output, and the sum made from them
    assert _estimate([{"type": "residual", "body": body}]) == 4 * X
    # the same layers in the network's own sequence: the stem's output is freed once the
    # batchnorm has read it, and the batchnorm's once the ReLU has
    assert _estimate(body) == 3 * X
    # in a nested sequential, the network's loop still holds the stem's output meanwhile
    assert _estimate([{"type": "sequential", "layers": body}]) == 4 * X


def test_concat_branches_stay_alive_until_the_cat() -> None:
    branches = [{"type": "relu"}, {"type": "relu"}]
    # input, stem output (every branch's input), both branch outputs, and their concatenation
    assert _estimate([{"type": "concat", "branches": branches}]) == 2 * X + 2 * X + 2 * X


def test_in_place_relu_allocates_nothing() -> None:
    assert _estimate([{"type": "relu", "inplace": True}]) == 2 * X  # input, stem output
    assert _estimate([{"type": "relu"}]) == 3 * X


def test_the_hand_worked_peaks_are_the_measured_ones() -> None:
    data = {
        "name": "t",
        "input": {"channels": 16, "size": 8},
        "stem": [{"type": "relu"}],
        "stages": [
            {"type": "residual", "body": [{"type": "batchnorm"}, {"type": "relu"}]},
            {"type": "concat", "branches": [{"type": "relu"}, {"type": "relu"}]},
        ],
    }
    spec = zoo.load_spec(data)
    shape = (2, 16, 8, 8)
    estimate = estimate_memory(spec, shape)
    measured = measure_memory(zoo.build(spec), shape)
    assert estimate.inference_activation_bytes == measured.inference_activation_bytes == 6 * X


def test_optimizer_state() -> None:
    spec = zoo.load_spec("lenet")
    params = zoo.trace(spec).params
    figures = {name: estimate_memory(spec, optimizer=name) for name in OPTIMIZERS}
    assert [figures[name].optimizer_bytes for name in ("sgd", "momentum", "adam")] == [
        0,
        4 * params,
        8 * params,
    ]
    assert figures["sgd"].train_peak_bytes < figures["momentum"].train_peak_bytes
    with pytest.raises(ValueError, match="unknown optimizer"):
        estimate_memory(spec, optimizer="lion")


def test_bench_memory_columns_come_from_the_analysis(capsys) -> None:
    import json

    from tests.conftest import run_cli

    spec = zoo.load_spec("resnet50")
    estimate = estimate_memory(spec, (8, 3, 224, 224))
    row = measure_spec(spec, (8, 3, 224, 224))
    assert (row.weight_bytes, row.activation_bytes, row.inference_bytes) == (
        estimate.weight_bytes,
        estimate.inference_activation_bytes,
        estimate.inference_peak_bytes,
    )
    assert (row.train_activation_bytes, row.train_bytes, row.optimizer) == (
        estimate.train_activation_bytes,
        estimate.train_peak_bytes,
        "momentum",
    )
    code, out, _ = run_cli(capsys, "bench", "resnet50", "--batch", "8", "--json")
    assert code == 0
    (cli_row,) = json.loads(out)
    assert cli_row["inference_bytes"] == estimate.inference_peak_bytes
    assert cli_row["train_bytes"] == estimate.train_peak_bytes
    # the figure: 158 MB measured for resnet50 at batch 8, where the old estimate said 51
    assert 150e6 < cli_row["inference_bytes"] < 250e6
    code, out, _ = run_cli(
        capsys, "bench", "resnet50", "--batch", "8", "--json", "--optimizer", "adam"
    )
    assert (
        json.loads(out)[0]["train_bytes"]
        == estimate_memory(spec, (8, 3, 224, 224), "adam").train_peak_bytes
    )
