"""``zoo bench --plot``: parameters against multiply-adds, log axes, every point labelled legibly.

Variants of one architecture sit almost on top of each other (resnet50, preact_resnet50,
resnext50_32x4d), so labels are placed greedily: each goes beside its point, moved up or down a
line at a time until it overlaps no label already placed, with a thin leader line when moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo.errors import usage_error
from zoo.files import write_atomically

PLOT_SUFFIXES = (".png", ".svg", ".pdf")  # the file suffix picks the format
LABEL_OFFSET = (5.0, 3.0)  # points right of and above the marker
MAX_SHIFT_LINES = 12


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise usage_error("--plot needs matplotlib: pip install 'zoo[plot]'", file="zoo") from None
    return plt


def _shifts() -> list[int]:
    """Line offsets to try, nearest first: 0, -1, 1, -2, 2, ..."""
    return [0] + [sign * k for k in range(1, MAX_SHIFT_LINES + 1) for sign in (-1, 1)]


def place_labels(ax: Any, points: Sequence[tuple[float, float]], labels: Sequence[str]) -> list:
    """Annotate ``points`` (data coordinates) with ``labels`` so that no two labels overlap
    (as far as ``MAX_SHIFT_LINES`` allows); returns the annotations."""
    fig = ax.figure
    fig.canvas.draw()  # fixes the axis limits, so data -> display transforms are final
    renderer = fig.canvas.get_renderer()
    px_per_point = fig.dpi / 72
    placed: list[Any] = []  # display-space boxes of the labels placed so far
    annotations = []
    order = sorted(range(len(points)), key=lambda i: -points[i][1])  # top to bottom
    for i in order:
        probe = ax.annotate(
            labels[i], points[i], textcoords="offset points", xytext=LABEL_OFFSET, fontsize=8
        )
        box = probe.get_window_extent(renderer)
        probe.remove()
        line = box.height / px_per_point * 1.05
        for shift in _shifts():
            moved = box.translated(0, shift * line * px_per_point)
            if not any(moved.overlaps(other) for other in placed):
                break
        placed.append(moved)
        offset = (LABEL_OFFSET[0], LABEL_OFFSET[1] + shift * line)
        leader = {"arrowstyle": "-", "lw": 0.5, "color": "0.6"} if shift else None
        annotations.append(
            ax.annotate(
                labels[i],
                points[i],
                textcoords="offset points",
                xytext=offset,
                fontsize=8,
                arrowprops=leader,
            )
        )
    return annotations


def write_plot(rows: Sequence[Any], path: Path, inputs: Sequence[str] = ()) -> None:
    """Write the parameters-against-MACs scatter of bench ``rows`` to ``path`` by the output rules
    of :mod:`zoo.files` (atomic, never over ``inputs``), as PNG, SVG or PDF by its suffix."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 7))
    try:
        points = [(r.macs, r.params) for r in rows]
        ax.scatter(*zip(*points, strict=True), s=18)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.margins(0.15)  # room for the labels of the outermost points
        ax.set_xlabel("multiply-adds (MACs)")
        ax.set_ylabel("parameters")
        ax.set_title("zoo: parameters against multiply-adds")
        ax.grid(True, which="both", alpha=0.3)
        place_labels(ax, points, [r.spec for r in rows])
        image_format = path.suffix.lower().lstrip(".")
        write_atomically(
            path,
            lambda handle: fig.savefig(handle, format=image_format, dpi=120, bbox_inches="tight"),
            inputs,
        )
    finally:
        plt.close(fig)
