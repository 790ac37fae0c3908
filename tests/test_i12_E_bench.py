"""`zoo bench --latency` (warm-up, repeats, median and IQR, per-call progress, thread count) and
the note an `--input` that changes a spec's parameter count gets."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch

import zoo
from tests.conftest import run_cli
from zoo.bench import (
    DEFAULT_REPEAT,
    DEFAULT_WARMUP,
    Timing,
    input_param_changes,
    measure_latency,
    time_calls,
)


def test_time_calls_warms_up_then_times_each_call() -> None:
    calls: list[tuple[str, int]] = []
    timing = time_calls(lambda: None, warmup=2, repeat=5, on_call=lambda *a: calls.append(a))
    assert calls == [("warm-up", 0), ("warm-up", 1)] + [("timed", i) for i in range(5)]
    assert len(timing.times_ms) == 5


def test_median_and_interquartile_range() -> None:
    timing = Timing((1.0, 2.0, 3.0, 4.0, 100.0))  # one slow call moves neither much
    assert timing.median_ms == 3.0
    assert timing.iqr_ms == 4.0 - 2.0
    assert Timing((5.0,)).iqr_ms == 0.0


def test_measure_latency_reports_every_call() -> None:
    model = zoo.build("lenet")
    calls: list[tuple[str, str, int]] = []
    forward, train = measure_latency(
        model, (2, 1, 28, 28), repeats=3, warmup=1, on_call=lambda *a: calls.append(a)
    )
    assert len(forward.times_ms) == len(train.times_ms) == 3
    assert calls[0] == ("forward", "warm-up", 0) and calls[-1] == ("fwd+bwd", "timed", 2)
    assert len(calls) == 2 * (1 + 3)


def test_bench_latency_options_and_thread_count(capsys) -> None:
    threads = torch.get_num_threads()
    try:
        code, out, _ = run_cli(
            capsys,
            "bench",
            "lenet",
            "--latency",
            "--warmup",
            "1",
            "--repeat",
            "4",
            "--threads",
            "1",
            "--json",
        )
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    (row,) = json.loads(out)
    assert (row["threads"], row["warmup"], row["repeat"]) == (1, 1, 4)
    assert row["latency_ms"] > 0 and row["latency_iqr_ms"] >= 0
    assert row["train_latency_ms"] > 0 and row["train_latency_iqr_ms"] >= 0
    # the defaults, and the set-up in the CSV as well
    code, out, _ = run_cli(capsys, "bench", "lenet", "--latency", "--csv")
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert (int(row["warmup"]), int(row["repeat"])) == (DEFAULT_WARMUP, DEFAULT_REPEAT)
    assert int(row["threads"]) == torch.get_num_threads()
    # without --latency there is nothing to time: no timing columns filled
    code, out, _ = run_cli(capsys, "bench", "lenet", "--json")
    assert json.loads(out)[0]["threads"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--repeat", "0", "--latency"], "expected an integer >= 1"),
        (["--warmup", "-1", "--latency"], "expected an integer >= 0"),
        (["--threads", "two", "--latency"], "expected an integer >= 1"),
        (["--repeat", "3"], "--repeat only matters with --latency"),
        (["--threads", "2"], "--threads only matters with --latency"),
        (["--optimizer", "lion"], "invalid choice"),
    ],
)
def test_bench_timing_usage_errors(capsys, argv: list[str], message: str) -> None:
    code, _, err = run_cli(capsys, "bench", "lenet", *argv)
    assert code == 2 and message in err


def test_an_input_that_changes_the_parameters_is_reported(capsys) -> None:
    # lenet's first Linear is sized by the flatten before it: 61,706 parameters at 1x28x28
    changes = input_param_changes(zoo.load_spec("lenet"), (1, 1, 20, 20))
    assert [(c.path, c.type, c.before, c.after) for c in changes] == [
        ("head_1", "linear", 48_120, 17_400)
    ]
    for argv in (["build", "lenet"], ["build", "lenet", "--trace"], ["bench", "lenet"]):
        code, out, err = run_cli(capsys, *argv, "--input", "1x20x20")
        assert code == 0, err  # a note, not an error
        assert "lenet.yaml:" in err and "head.1: note:" in err and "[input_params]" in err
        assert "30,986 parameters instead of 61,706" in err and "head_1 (linear)" in err
        assert "note" not in out
    code, out, _ = run_cli(capsys, "build", "lenet", "--input", "1x20x20", "--json")
    assert json.loads(out)["params"] == 30_986


def test_an_input_that_keeps_the_parameters_says_nothing(capsys) -> None:
    # an adaptive pooling before the flatten: any input size, the same network
    assert input_param_changes(zoo.load_spec("resnet18"), (3, 64, 64)) == []
    for argv in (["build", "resnet18"], ["bench", "resnet18"], ["build", "lenet"]):
        size = "1x28x28" if "lenet" in argv else "2x3x64x64"
        code, _, err = run_cli(capsys, *argv, "--input", size)
        assert code == 0 and "note" not in err
