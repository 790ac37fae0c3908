"""Shared fixtures: the shipped specs, and small helpers to write throwaway specs."""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from zoo.spec import shipped_spec_names

SPEC_NAMES = shipped_spec_names()

# zoo remembers `zoo list` summaries in the user's cache folder: the tests (and the zoo processes
# they start, which inherit the environment) keep theirs in a folder of their own.
os.environ["ZOO_CACHE_DIR"] = tempfile.mkdtemp(prefix="zoo-test-cache-")

# One intra-op thread: with two cores shared by other jobs, torch's second thread is often
# descheduled and the first waits on it at every op. The model-heavy test files took 210-290 s on
# two threads under load against 50 s on one; on a quiet machine, two saved only 5-15%.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write YAML text (dedented) to a temp file and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the `zoo` command in-process: (exit code, stdout, stderr)."""
    from zoo.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_rows_match(inferred: Any, measured: Any, every_row: bool = True) -> None:
    """A spec's inferred trace (zoo's arithmetic) equals the trace measured on its module (forward
    hooks and FlopCounterMode): output, parameters and MACs of every module, and the totals.
    ``every_row``: each measured module has an inferred row (not so for a plugin's module, which
    is one row of the plan)."""
    rows = {r.path: r for r in inferred.rows}
    if every_row:
        assert {r.path for r in measured.rows} <= rows.keys()
    for row in (r for r in measured.rows if r.path in rows):
        mine = rows[row.path]
        assert (mine.output, mine.params, mine.macs) == (row.output, row.params, row.macs), row.path
    assert (inferred.output, inferred.params, inferred.macs) == (
        measured.output,
        measured.params,
        measured.macs,
    )


@pytest.fixture
def regnet_widths_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's RegNet computes its widths with tensors, which cannot be read on meta: compute
    them on the CPU while the reference's modules are made on meta."""
    from torchvision.models import regnet

    original = regnet.BlockParams.from_init_params.__func__

    def on_cpu(cls, *args, **kwargs):
        with torch.device("cpu"):
            return original(cls, *args, **kwargs)

    monkeypatch.setattr(regnet.BlockParams, "from_init_params", classmethod(on_cpu))
