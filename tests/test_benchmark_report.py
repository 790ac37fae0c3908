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
