"""`zoo list` remembers each spec's summary between runs, keyed by the spec's resolved data and
zoo's own modules: a changed spec, base or zoo gives a new summary; a bad cache only a slower run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import zoo
from zoo import summaries
from zoo.summaries import FILE_NAME, SummaryCache

LENET = Path(zoo.__file__).parents[1] / "specs" / "lenet.yaml"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(summaries.CACHE_ENV, str(folder))
    return folder


def _summary(path: Path):
    run = SummaryCache()
    result = run.summary(path)
    run.save()
    return result


def test_a_remembered_summary_is_not_validated_again(cache: Path, monkeypatch) -> None:
    first = _summary(LENET)
    assert (first.params, first.input) == (61_706, (1, 28, 28))
    assert (cache / FILE_NAME).is_file()

    def fail(located):
        raise AssertionError("validated again")

    monkeypatch.setattr(summaries, "validate", fail)
    assert _summary(LENET) == first


def test_a_changed_spec_or_base_is_summarized_anew(cache: Path, tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(LENET.read_text())
    variant = tmp_path / "variant.yaml"
    variant.write_text("extends: base.yaml\nname: variant\n")
    assert _summary(variant).params == 61_706
    base.write_text(LENET.read_text().replace("out: 120", "out: 60"))
    assert _summary(variant).params != 61_706  # the base's change reaches the variant's key


def test_a_corrupt_or_foreign_cache_is_only_a_slower_run(cache: Path) -> None:
    cache.mkdir()
    for content in ("{not json", json.dumps({"format": 1, "entries": []}), "[]"):
        (cache / FILE_NAME).write_text(content)
        assert _summary(LENET).params == 61_706
    key = next(iter(json.loads((cache / FILE_NAME).read_text())["entries"]))
    (cache / FILE_NAME).write_text(json.dumps({"format": 1, "entries": {key: {"params": "x"}}}))
    assert _summary(LENET).params == 61_706  # an entry of another shape is recomputed


def test_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(summaries.CACHE_ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _summary(LENET).params == 61_706
    assert not any(tmp_path.iterdir())


def test_an_unwritable_cache_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(summaries.CACHE_ENV, str(blocker / "cache"))  # under a regular file
    assert _summary(LENET).params == 61_706


def test_zoo_list_with_a_warm_cache_builds_no_schema(cache: Path, tmp_path: Path) -> None:
    env = {**__import__("os").environ, summaries.CACHE_ENV: str(cache)}
    code = (
        "import sys\nfrom zoo.cli import main\nsys.argv = ['zoo', 'list', 'lenet', '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('schema' if 'zoo.spec.schema' in sys.modules else 'no schema', file=sys.stderr)\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        for _ in range(2)
    ]
    assert [r.stderr.strip().splitlines()[-1] for r in runs] == ["schema", "no schema"]
    assert json.loads(runs[0].stdout) == json.loads(runs[1].stdout)


@pytest.mark.parametrize("extra", [[], ["--batch", "4"], ["--optimizer", "adam"]])
def test_remembered_bench_rows_equal_computed_ones(cache: Path, capsys, extra) -> None:
    from tests.conftest import run_cli

    argv = ["bench", "lenet", "resnet18", "googlenet", "--json", *extra]
    cold = run_cli(capsys, *argv)
    warm = run_cli(capsys, *argv)
    assert cold[0] == warm[0] == 0 and json.loads(cold[1]) == json.loads(warm[1])
    assert len(json.loads((cache / FILE_NAME).read_text())["entries"]) == 3
