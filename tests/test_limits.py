"""Absurd specs are refused quickly and before memory is allocated."""

from __future__ import annotations

import time

import pytest

import zoo
from zoo.cli import main
from zoo.errors import ZooError

HEADER = "name: big\ninput: {channels: 3, size: 32}\n"


def _problem(write_spec, body: str, **build_kwargs) -> zoo.Problem:
    start = time.perf_counter()
    with pytest.raises(ZooError) as info:
        zoo.build(write_spec(HEADER + body), **build_kwargs)
    assert time.perf_counter() - start < 30  # refused, not attempted
    return info.value.problems[0]


def test_depth_of_a_million(write_spec) -> None:
    problem = _problem(write_spec, "stages: [{type: basic, out: 8, depth: 1000000}]\n")
    assert (problem.path, problem.line) == ("stages.0.depth", 3)
    assert "less than or equal to 1000" in problem.message


def test_a_billion_channels(write_spec) -> None:
    problem = _problem(write_spec, "stem: [{type: conv, out: 1000000000, kernel: 3}]\n")
    assert problem.path == "stem.0.out" and "less than or equal to 1048576" in problem.message


def test_nested_repeats_hit_the_layer_budget(write_spec) -> None:
    body = (
        "stem:\n  - type: repeat\n    times: 1000\n    layers:\n"
        "      - {type: repeat, times: 1000, layers: [{type: relu}]}\n"
    )
    problem = _problem(write_spec, body, device="meta")
    assert problem.kind == "too_large" and "more than 100,000 layers" in problem.message
    assert problem.path == "stem.0.times"


def test_weight_memory_limit(write_spec, capsys, tmp_path) -> None:
    body = "head: [{type: flatten}, {type: linear, out: 1048576}]\n"  # 3*32*32 x 2^20 = 12 GiB
    problem = _problem(write_spec, body)
    assert (
        problem.kind == "too_large"
        and "12.0 GiB" in problem.message
        and "--force" in problem.message
    )
    assert zoo.build(write_spec(HEADER + body), device="meta")  # shapes only: fine
    code = main(["build", str(write_spec(HEADER + body)), "--output", str(tmp_path / "m.pt")])
    assert code == 1 and "limit" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()


def test_a_ten_billion_parameter_variant_costs_no_memory_to_count(write_spec, capsys) -> None:
    import resource

    from zoo.bench import measure_spec

    body = (
        "stem: [{type: conv, out: 4096, kernel: 3, padding: 1}]\n"
        "stages: [{type: basic, out: 8192, depth: 9, stride: 2}]\n"
        "head: [{type: adaptive_avgpool}, {type: flatten}, {type: linear, out: 1000}]\n"
    )
    path = write_spec(HEADER + body)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    row = measure_spec(zoo.load_spec(path), (8, 3, 1024, 1024))
    traced = zoo.trace(path, (8, 3, 1024, 1024))
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert row.params == traced.params > 10_000_000_000  # 40 GB of float32 weights
    assert row.weight_bytes > 40e9
    assert grown < 100_000  # KiB: counting it allocated nothing of the sort
    assert main(["bench", str(path), "--json"]) == 0
    assert '"params": 10' in capsys.readouterr().out


def test_a_padding_that_makes_a_map_too_large(write_spec) -> None:
    # each field is within its bound; the planned map is not: 32 + 2 * 1,000,000 - 2 rows
    problem = _problem(write_spec, "stem: [{type: conv, out: 4, kernel: 3, padding: 1000000}]\n")
    assert (problem.line, problem.column, problem.path) == (3, 8, "stem.0")
    assert problem.kind == "too_large"
    assert (
        "conv gives a 4x2000030x2000030 output: its height (2,000,030) is over the limit of 1,048,576"
        in (problem.message)
    )


def test_flattened_features_are_bounded(write_spec) -> None:
    body = "stem: [{type: conv, out: 2048, kernel: 1}]\nhead: [{type: flatten}]\n"
    problem = _problem(write_spec, body, device="meta")
    assert (problem.line, problem.path, problem.kind) == (4, "head.0", "too_large")
    assert "its features (2,097,152) are over the limit of 1,048,576" in problem.message
    assert "pool before the flatten" in problem.message


def test_concatenated_channels_are_bounded(write_spec) -> None:
    body = (
        "stages:\n  - type: concat\n    branches:\n"
        "      - {type: conv, out: 1048576, kernel: 1}\n      - {type: conv, out: 1, kernel: 1}\n"
    )
    problem = _problem(write_spec, body, device="meta")
    assert (problem.line, problem.path) == (4, "stages.0")
    assert "its channels (1,048,577) is over the limit of 1,048,576" in problem.message
