"""`zoo bench` and `zoo diff`: figures equal to the tracer's, machine-readable outputs, plot."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import torch

import zoo
from tests.conftest import run_cli
from zoo.bench import measure_spec

run = run_cli


def test_bench_all_json(capsys) -> None:
    code, out, _ = run(capsys, "bench", "--all", "--json", "--sort", "params")
    assert code == 0
    rows = json.loads(out)
    params = [r["params"] for r in rows]
    assert params == sorted(params, reverse=True) and params[-1] < params[0]
    assert len(rows) == len(zoo.spec.shipped_spec_names())
    by_name = {r["spec"]: r for r in rows}
    resnet50 = by_name["resnet50"]
    assert resnet50["params"] == 25_557_032 and resnet50["macs"] == zoo.trace("resnet50").macs
    model = zoo.build("resnet50")
    tensors = sum(
        t.numel() for t in [*model.parameters(), *model.buffers()] if t.is_floating_point()
    )
    assert resnet50["weight_bytes"] == tensors * 4
    assert resnet50["latency_ms"] is None


def test_activation_estimates() -> None:
    row = measure_spec(zoo.load_spec("vgg11"), (2, 3, 224, 224))
    # the largest adjacent pair: the first conv's output and its ReLU's (64x224x224 each), batch 2
    assert row.activation_bytes == 2 * (64 + 64) * 224 * 224 * 4
    assert row.train_activation_bytes > row.activation_bytes
    # every layer output is kept for backward: a real forward saves at most that much
    saved: list[int] = []
    model = zoo.build("vgg11")
    x = torch.randn(2, 3, 224, 224)
    with torch.autograd.graph.saved_tensors_hooks(
        lambda t: saved.append(t.numel()) or t, lambda t: t
    ):
        model(x)
    assert (
        sum(saved) * 4
        <= 2 * row.train_activation_bytes + sum(p.numel() for p in model.parameters()) * 4
    )


def test_bench_latency_csv_and_plot(capsys, tmp_path: Path) -> None:
    plot = tmp_path / "zoo.png"
    code, out, _ = run(
        capsys, "bench", "lenet", "trashnet", "--latency", "--csv", "--plot", str(plot)
    )
    assert code == 0 and plot.stat().st_size > 10_000
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["spec"] for r in rows] == ["lenet", "trashnet"]
    assert rows[0]["input"] == "1x1x28x28" and float(rows[0]["latency_ms"]) > 0
    assert float(rows[1]["train_latency_ms"]) > 0


def test_bench_usage_errors(capsys) -> None:
    assert run(capsys, "bench")[0] == 2
    code, _, err = run(capsys, "bench", "lenet", "--sort", "speed")
    assert code == 2 and "unknown column 'speed'" in err


def test_diff(capsys) -> None:
    code, out, _ = run(capsys, "diff", "resnet50", "resnet101", "--json")
    assert code == 0
    data = json.loads(out)
    stages = {s["path"]: s for s in data["stages"]}
    assert stages["layer3"]["a"]["params"] < stages["layer3"]["b"]["params"]
    assert stages["layer4"]["a"] == stages["layer4"]["b"]
    assert {f["path"]: (f["a"], f["b"]) for f in data["fields"]}["stages.2.depth"] == (6, 23)
    assert data["totals"] == [
        [25_557_032, zoo.trace("resnet50").macs],
        [44_549_160, zoo.trace("resnet101").macs],
    ]
    code, _, err = run(capsys, "diff", "resnet18", "d2l_resnet18")
    assert code == 0 and "stages.1.shortcut.kind" in err and "≠" in err


def test_diff_compares_validated_fields(capsys, write_spec) -> None:
    # the same net written differently: pairs spelled out, defaults written, markup-like text
    text = (Path(__file__).parent.parent / "specs" / "lenet.yaml").read_text()
    text = text.replace("kernel: 5, padding: 2}", "kernel: [5, 5], padding: [2, 2], stride: 1}")
    text = re.sub(r"description: >-\n(  .*\n)+", "description: 'x [/b] y [bold]z'\n", text)
    same = write_spec(text)
    code, out, _ = run(capsys, "diff", "lenet", str(same), "--json")
    data = json.loads(out)
    assert code == 0 and [f["path"] for f in data["fields"]] == ["description"]
    assert (data["a"], data["b"]) == ("lenet", str(same))  # same spec name: told apart by path
    code, _, err = run(capsys, "diff", "lenet", str(same))
    assert code == 0 and "x [/b] y [bold]z" in err


def test_plot_labels_do_not_overlap() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.plot import place_labels

    rows = [measure_spec(zoo.load_spec(name)) for name in zoo.spec.shipped_spec_names()]
    fig, ax = plt.subplots(figsize=(10, 7))
    points = [(r.macs, r.params) for r in rows]
    ax.scatter(*zip(*points, strict=True))
    ax.set_xscale("log")
    ax.set_yscale("log")
    labels = place_labels(ax, points, [r.spec for r in rows])
    fig.canvas.draw()  # an annotation's text is positioned when drawn
    renderer = fig.canvas.get_renderer()
    # the text's own box (an Annotation's extent would include its leader line)
    boxes = [matplotlib.text.Text.get_window_extent(label, renderer) for label in labels]
    plt.close(fig)
    assert sorted(label.get_text() for label in labels) == sorted(r.spec for r in rows)
    # resnet50, preact_resnet50 and resnext50_32x4d share a spot: their labels must not
    overlapping = [
        (labels[i].get_text(), labels[j].get_text())
        for i in range(len(boxes))
        for j in range(i)
        if boxes[i].overlaps(boxes[j])
    ]
    assert overlapping == []
