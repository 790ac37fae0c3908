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
