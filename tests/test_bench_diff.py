"""`zoo bench` and `zoo diff`: figures equal to the tracer's, machine-readable outputs, plot."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

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
    code, out, _ = run(capsys, "diff", "resnet18", "d2l_resnet18")
    assert code == 0 and "stages.1.shortcut.kind" in out
    assert (
        "\nconv1\t1x64x112x112\t9408\t118013952\t1x64x112x112\t3200\t39337984\tparams, MACs\n"
        in out
    )


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
    code, out, _ = run(capsys, "diff", "lenet", str(same))
    assert code == 0 and "x [/b] y [bold]z" in out


def _plot_of(names: list[str]) -> tuple[list, object, list, list]:
    """Draw the bench plot of ``names``; its rows, axes, drawn spec labels and their text boxes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo.plot import draw_plot

    rows = [measure_spec(zoo.load_spec(name)) for name in names]
    fig = draw_plot(rows)
    ax = fig.axes[0]
    fig.canvas.draw()  # an annotation's text is positioned when drawn
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text() in names]
    # the text's own box (an Annotation's extent would include its leader line)
    boxes = [matplotlib.text.Text.get_window_extent(label, renderer) for label in labels]
    plt.close(fig)
    return rows, ax, labels, boxes


def test_plot_labels_do_not_overlap() -> None:
    from zoo.plot import SAME_SPOT_PX, family_of

    names = zoo.spec.shipped_spec_names()
    rows, ax, labels, boxes = _plot_of(names)
    overlapping = [
        (labels[i].get_text(), labels[j].get_text())
        for i in range(len(boxes))
        for j in range(i)
        if boxes[i].overlaps(boxes[j])
    ]
    assert overlapping == []
    frame = ax.get_window_extent()
    assert all(frame.contains(b.x0, b.y0) and frame.contains(b.x1, b.y1) for b in boxes)
    # a crowded plot labels what fits, each label nearest its own point: never a wrong pairing
    assert len(labels) >= len(rows) // 3
    xy = {r.spec: ax.transData.transform((r.macs, r.params)) for r in rows}

    def gap(box, point) -> float:
        return (
            max(box.x0 - point[0], 0, point[0] - box.x1) ** 2
            + max(box.y0 - point[1], 0, point[1] - box.y1) ** 2
        ) ** 0.5

    for label, box in zip(labels, boxes, strict=True):
        own = gap(box, xy[label.get_text()])
        nearer = [n for n, p in xy.items() if gap(box, p) < own - SAME_SPOT_PX - 0.5]
        assert nearer == [], (label.get_text(), nearer)
    # the legend lists families (with their spec counts), not the 80-odd specs
    families = sorted({family_of(n) for n in names})
    legend = ax.get_legend() if len(ax.artists) == 0 else ax.artists[0]
    entries = [t.get_text() for t in legend.get_texts()]
    assert entries == [f"{f} ({sum(family_of(n) == f for n in names)})" for f in families]
    assert "resnet (7)" in entries and len(entries) < len(names) / 2


def test_plot_small_selection_labels_every_point() -> None:
    # resnet50, preact_resnet50 and resnext50_32x4d share a spot: their labels must not overlap
    names = ["resnet18", "lenet", "resnet50", "preact_resnet50", "resnext50_32x4d", "seresnet50"]
    names += ["seresnext50_32x4d", "resnet50d"]
    _, _, labels, boxes = _plot_of(names)
    assert sorted(label.get_text() for label in labels) == sorted(names)
    assert not any(boxes[i].overlaps(boxes[j]) for i in range(len(boxes)) for j in range(i))


def test_plot_families_of_spec_names() -> None:
    from zoo.plot import family_of

    expected = {
        "resnet18": "resnet",
        "resnet50d": "resnet",
        "resnext101_32x8d": "resnext",
        "wide_resnet50_2": "wide_resnet",
        "preact_resnet101": "preact_resnet",
        "seresnext50_32x4d": "seresnext",
        "regnet_y_400mf": "regnet_y",
        "regnet_x_1_6gf": "regnet_x",
        "efficientnet_b0": "efficientnet",
        "efficientnet_v2_s": "efficientnet_v2",
        "vgg16_bn": "vgg",
        "densenet121": "densenet",
        "convnext_tiny": "convnext",
        "mobilenet_v2": "mobilenet_v2",
        "mobilenet_v3_large": "mobilenet_v3",
        "shufflenet_v2_x1_0": "shufflenet_v2",
        "squeezenet1_0": "squeezenet",
        "mnasnet0_75": "mnasnet",
        "inception_v3": "inception_v3",
        "googlenet": "googlenet",
        "inception_mnist": "inception_mnist",
        "d2l_resnet18": "d2l_resnet",
        "resnetv2_50": "resnetv2",  # timm's glued-on version stays
    }
    assert {name: family_of(name) for name in expected} == expected


def test_plot_marks_input_resolution_and_family_lines() -> None:
    from matplotlib.collections import PathCollection

    # one resolution: the title says it, every marker filled, no note
    _, ax, _, _ = _plot_of(["resnet18", "resnet34", "vgg11"])
    assert ax.get_title().endswith("3 specs, input 224x224")
    assert not [t for t in ax.texts if t.get_text().startswith("Hollow")]
    # mixed: the most common resolution is filled and in the title, the others hollow and listed
    names = ["resnet18", "resnet34", "lenet", "inception_v3", "efficientnet_b0", "efficientnet_b3"]
    _, ax, _, _ = _plot_of(names)
    assert "input 224x224 (filled markers)" in ax.get_title()
    [note] = [
        t.get_text().replace("\n", " ") for t in ax.texts if t.get_text().startswith("Hollow")
    ]
    assert "28x28: lenet;" in note and "299x299: inception_v3;" in note
    assert "300x300: efficientnet_b3." in note and "resnet18" not in note
    markers = [c for c in ax.collections if isinstance(c, PathCollection)]
    hollow = sum(len(c.get_offsets()) for c in markers if tuple(c.get_facecolor()[0]) == (1,) * 4)
    assert hollow == 3 and sum(len(c.get_offsets()) for c in markers) == len(names)
    # families of two or more specs are joined in multiply-add order
    joined = [list(line.get_xdata()) for line in ax.get_lines()]
    assert [len(xs) for xs in joined] == [2, 2]  # resnet18-resnet34, efficientnet_b0-b3
    assert all(xs == sorted(xs) for xs in joined)
