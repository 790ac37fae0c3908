"""The committed benchmark report: its markdown is rendered from its JSON, and its goals hold."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report() -> dict:
    return json.loads((ROOT / "benchmarks" / "report.json").read_text())


def test_markdown_is_rendered_from_the_json() -> None:
    # `make bench` writes both; a hand edit of one (or a stale one) fails here
    assert (ROOT / "benchmarks" / "report.md").read_text() == _runner().render(_report())


def test_committed_report_covers_every_shipped_spec_and_the_macs_agree() -> None:
    from zoo.spec import shipped_spec_names

    report = _report()
    assert not report["machine"]["quick"]
    checked = {row["spec"] for row in report["compile_export"]}
    assert set(shipped_spec_names()) <= checked
    for row in report["tracing"]:
        if row["torchinfo_macs"]:  # torchinfo also counts BatchNorm: within 0.1%
            assert abs(row["zoo_macs"] / row["torchinfo_macs"] - 1) < 1e-3


def test_committed_report_times_every_torch_free_command_within_its_goals() -> None:
    # measured side by side with `python -c "import torch"` in one run, so the ratio is the
    # figure to trust on a shared machine; the absolute goals are checked too
    runner = _runner()
    rows = _report()["cli_startup"]
    assert [row["command"] for row in rows] == [f"zoo {c}" for c in runner.STARTUP_COMMANDS]
    goals = runner.STARTUP_GOALS
    for row in rows:
        assert row["zoo_s"] <= goals["zoo_s"], row
        assert row["zoo_peak_mib"] <= goals["zoo_peak_mib"], row
        assert row["speedup"] >= goals["speedup"], row


def test_committed_report_trains_with_zoo_at_least_as_fast_as_a_hand_written_loop() -> None:
    # zoo.train.loop.fit against the tutorials' loop, same model, data, batch and steps, side by
    # side on the CPU; the A/A rows (hand loop against itself) give the noise floor
    runner = _runner()
    rows = _report()["training"]
    models = {name for name, *_ in runner.TRAINING_MODELS}
    fit_rows = [row for row in rows if row["candidate"] == "zoo fit"]
    assert {row["model"] for row in fit_rows} == models
    assert {row["model"] for row in rows if row["candidate"] == "hand (A/A)"} == models
    assert 1 in {row["threads"] for row in fit_rows}
    # the goal within the noise the same run measured: the hand loop timed against itself
    noise = max(abs(1 - r["ratio"]) for r in rows if r["candidate"] == "hand (A/A)")
    for row in fit_rows:
        assert row["ratio"] >= runner.TRAINING_GOAL - max(noise, 0.03), row


def test_committed_gpu_training_rows_meet_their_goals_when_a_gpu_measured_them() -> None:
    runner = _runner()
    rows = _report().get("training_gpu")
    assert rows is not None, "make bench records the GPU section, empty without CUDA"
    if not rows:
        assert "Not measured: the machine" in runner.render(_report())
        return
    models = {name for name, *_ in runner.GPU_TRAINING_MODELS}
    assert {row["model"] for row in rows} == models
    noise = max(abs(1 - r["ratio"]) for r in rows if r["candidate"].startswith("hand"))
    for row in rows:
        if row["candidate"] == "zoo fit bf16 channels_last":
            assert row["ratio"] >= runner.GPU_TRAINING_GOAL - max(noise, 0.03), row
        if row["candidate"].startswith("zoo"):
            assert row["data_wait"] <= runner.GPU_DATA_WAIT_GOAL, row


def test_the_gpu_training_benchmark_runs_its_whole_path_on_the_cpu() -> None:
    # the section needs CUDA for real figures; on the CPU (bf16 autocast and channels_last work
    # there too) a tiny run checks its code path, so a lent GPU's time goes to measuring
    runner = _runner()
    tiny = (("squeezenet1_1", ("input.size=[32, 32]",), 8, 2, True),)
    rows = runner.bench_training_gpu("cpu", tiny, repeats=1)
    assert [row["candidate"] for row in rows] == [
        "zoo fit bf16 channels_last",
        "zoo fit fp32",
        "hand fp32 (A/A)",
    ]
    for row in rows:
        assert row["device"] == "cpu" and row["input"] == "8x3x32x32" and row["steps"] == 2
        assert row["zoo_img_s"] > 0 and row["hand_img_s"] > 0 and row["ratio"] > 0
        assert (row["data_wait"] is None) == row["candidate"].startswith("hand")
        if row["data_wait"] is not None:
            assert 0 <= row["data_wait"] <= 1
    assert "| squeezenet1_1 | zoo fit bf16 channels_last | 8x3x32x32 |" in "\n".join(
        runner._render_training_gpu({"training_gpu": rows})
    )
