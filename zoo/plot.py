"""``zoo bench --plot``: parameters against multiply-adds on log axes, drawn as papers draw them.

- **Families.** Each spec belongs to a family, its name with the variant part removed
  (:func:`family_of`: resnet18 -> resnet, regnet_y_400mf -> regnet_y, efficientnet_v2_s ->
  efficientnet_v2). A family gets one colour and one marker, its points are joined by a thin line
  in multiply-add order, and the legend lists families (with how many specs each), not specs.
- **Input size.** Counts depend on the input resolution (28x28 MNIST nets, 224 ImageNet, 299
  inception_v3, 240..600 efficientnet_b1..b7). The most common resolution is named in the title and
  drawn with filled markers; every other one is drawn hollow and listed with its specs in a note
  under the axes, so no point's resolution is left unsaid.
- **Labels.** Each point is labelled with its spec name where the label fits: beside the point
  (right, else left), moved a line at a time up or down with a thin leader line when needed, never
  over another label or any marker, never outside the axes. A handful of points (up to
  :data:`ALL_LABELS_UP_TO`) all get labels, as far as :data:`MAX_SHIFT_LINES` allows. In a
  bigger plot a label moves at most :data:`CROWDED_SHIFT_LINES` and only to where no other marker
  is nearer than its own (readers pair a label with the nearest marker); labels that do not fit
  are dropped, and the legend still names the family. Isolated points are labelled first, and one
  point of each family before the second of any, so a crowded cluster cannot take the room of the
  families around it.
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo.errors import usage_error
from zoo.files import write_atomically

PLOT_SUFFIXES = (".png", ".svg", ".pdf")  # the file suffix picks the format
LABEL_OFFSET = (5.0, 3.0)  # points beside (right of, or left of) and above the marker
LABEL_FONTSIZE = 7.5
LABEL_PAD_PX = 1.5  # clear space kept around every label, so neighbours never touch
ALL_LABELS_UP_TO = 20  # a plot of this many points or fewer labels every point
MAX_SHIFT_LINES = 12  # how far (in text lines) a label may move up or down from its point
# ... in a plot of many points: long leader lines through a crowd read worse than a missing label
CROWDED_SHIFT_LINES = 3
SAME_SPOT_PX = 2.0  # points this close are drawn on one spot (resnet50, preact_resnet50)
MARKER_SIZE = 30.0  # scatter marker area, points^2
# tab10 has 10 colours and there are 7 markers: coprime, so the first 70 families all get a
# distinct (colour, marker) pair, and neighbours in the (alphabetical) legend differ in both.
MARKERS = ("o", "s", "^", "D", "v", "p", "X")
# Size words that name a variant, not a family (convnext_tiny, mobilenet_v3_large, efficientnet_v2_s)
SIZE_WORDS = frozenset(
    {"nano", "tiny", "small", "base", "medium", "large", "huge", "giant", "s", "m", "l", "xl"}
)
_VERSION = re.compile(r"v\d+")  # a version (mobilenet_v2, inception_v3) is part of the family
# a word's letters before its first digit, keeping a glued-on version (resnetv2_50 -> resnetv2)
_HEAD = re.compile(r"([a-z]+?(?:v\d+)?)(\d.*)?", re.IGNORECASE)


def family_of(name: str) -> str:
    """The family of spec ``name``: the name with its variant part removed.

    The name is read as ``_``-separated words, and the family ends where the variant begins:

    - at a size word (tiny, small, base, large, s, m, l, ...): convnext_tiny -> convnext,
      mobilenet_v3_large -> mobilenet_v3, efficientnet_v2_s -> efficientnet_v2;
    - at a word holding a digit: a word of two or more letters then digits keeps its letters
      (resnet18, resnet50d -> resnet; vgg16_bn -> vgg; wide_resnet50_2 -> wide_resnet;
      squeezenet1_0 -> squeezenet), a later word with at most one letter before its digits is
      dropped whole (efficientnet_b0 -> efficientnet, regnet_y_400mf -> regnet_y,
      shufflenet_v2_x1_0 -> shufflenet_v2);
    - a version word ``v<digits>`` stays (mobilenet_v2, inception_v3), and so does a first word
      that is a code rather than a size (d2l_resnet18 -> d2l_resnet).

    A name with no variant part is its own family (alexnet, googlenet, residual_mnist).
    """
    kept: list[str] = []
    for word in name.split("_"):
        if _VERSION.fullmatch(word):
            kept.append(word)
            continue
        if kept and word.lower() in SIZE_WORDS:
            break
        match = _HEAD.fullmatch(word)
        if not any(c.isdigit() for c in word) or (match and match.group(2) is None):
            kept.append(word)  # a plain word, or one with a glued-on version (resnetv2)
            continue
        if match and len(match.group(1)) >= 2:  # resnet50d -> resnet
            kept.append(match.group(1))
            break
        if not kept:  # a leading code such as d2l: not a size, so part of the family
            kept.append(word)
            continue
        break  # b0, x1, 400mf, 32x4d: the variant starts here
    return "_".join(kept) or name


def resolution_of(row: Any) -> str:
    """The input resolution of a bench row, ``HxW`` (``"-"`` for an input without one)."""
    spatial = tuple(row.input[2:])
    return "x".join(str(d) for d in spatial) if spatial else "-"


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise usage_error("--plot needs matplotlib: pip install 'zoo[plot]'", file="zoo") from None
    return plt


def _shifts(max_shift: int) -> list[int]:
    """Line offsets to try, nearest first: 0, -1, 1, -2, 2, ... up to ``max_shift``."""
    return [0] + [sign * k for k in range(1, max_shift + 1) for sign in (-1, 1)]


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(a: Box, frame: Box) -> bool:
    return frame[0] <= a[0] and a[2] <= frame[2] and frame[1] <= a[1] and a[3] <= frame[3]


def _distance2(box: Box, x: float, y: float) -> float:
    """Squared distance from display point (x, y) to the nearest point of ``box``."""
    dx = max(box[0] - x, 0.0, x - box[2])
    dy = max(box[1] - y, 0.0, y - box[3])
    return dx * dx + dy * dy


def _nearest_is_own(box: Box, i: int, xy: Sequence[tuple[float, float]]) -> bool:
    """Whether no other point is clearly nearer to ``box`` than point ``i`` (a reader pairs a
    label with the nearest marker, whatever its leader line says); points within
    :data:`SAME_SPOT_PX` of each other count as one spot."""
    own = _distance2(box, *xy[i]) ** 0.5
    return all(_distance2(box, x, y) ** 0.5 >= own - SAME_SPOT_PX for x, y in xy)


def _crowding(xy: Sequence[tuple[float, float]], radius: float) -> list[int]:
    """For each display point, how many other points lie within ``radius`` pixels of it."""
    r2 = radius * radius
    return [
        sum((x - u) ** 2 + (y - v) ** 2 < r2 for u, v in xy) - 1
        for x, y in xy  # minus the point itself
    ]


def _label_order(
    xy: Sequence[tuple[float, float]], families: Sequence[str] | None, radius: float
) -> list[list[int]]:
    """Points to label, as groups of which only the first that fits is labelled: least crowded
    first; with ``families``, a group per family first (its points, least crowded first, so each
    family gets a label where any of its points has room), then every other point on its own."""
    crowding = _crowding(xy, radius)
    by_ease = sorted(range(len(xy)), key=lambda i: (crowding[i], -xy[i][1], i))
    if families is None:
        return [[i] for i in by_ease]
    groups: dict[str, list[int]] = {}
    for i in by_ease:  # a dict keeps the order of each family's least crowded point
        groups.setdefault(families[i], []).append(i)
    return list(groups.values()) + [[i] for i in by_ease]


def place_labels(
    ax: Any,
    points: Sequence[tuple[float, float]],
    labels: Sequence[str],
    families: Sequence[str] | None = None,
    max_shift: int = MAX_SHIFT_LINES,
    nearest_only: bool = False,
) -> list:
    """Annotate ``points`` (data coordinates) with ``labels`` where they fit; returns the
    annotations drawn (a label that fits nowhere is left out).

    A label fits where its box (plus :data:`LABEL_PAD_PX`) lies inside the axes and overlaps no
    label placed before it and no marker. Candidates, nearest first: right of the point, left of
    it, then each moved up or down by one more text line (up to ``max_shift`` lines), with a
    leader line. The first candidate that no other point is nearer to wins; with
    ``nearest_only`` a label without one is left out, else it takes the first that fits.
    ``families`` (one per point) orders the placing: see :func:`_label_order`.
    """
    fig = ax.figure
    fig.canvas.draw()  # fixes the axis limits, so data -> display transforms are final
    renderer = fig.canvas.get_renderer()
    px_per_point = fig.dpi / 72
    frame_box = ax.get_window_extent(renderer)
    frame = (frame_box.x0, frame_box.y0, frame_box.x1, frame_box.y1)
    xy = [tuple(p) for p in ax.transData.transform(points)]
    # every marker is an obstacle: a label must not hide a point, its own or another's
    half = (MARKER_SIZE**0.5 / 2 + 0.5) * px_per_point
    placed: list[Box] = [(x - half, y - half, x + half, y + half) for x, y in xy]
    annotations = []
    pad = LABEL_PAD_PX
    done: set[int] = set()  # points labelled, or tried and found no room

    def place(i: int) -> bool:
        """Label point ``i`` at its first free spot; whether it found one."""
        done.add(i)
        sides = []
        for dx, align in ((LABEL_OFFSET[0], "left"), (-LABEL_OFFSET[0], "right")):
            probe = ax.annotate(
                labels[i],
                points[i],
                textcoords="offset points",
                xytext=(dx, LABEL_OFFSET[1]),
                ha=align,
                fontsize=LABEL_FONTSIZE,
            )
            b = probe.get_window_extent(renderer)
            probe.remove()
            sides.append((dx, align, (b.x0 - pad, b.y0 - pad, b.x1 + pad, b.y1 + pad)))
        line = (sides[0][2][3] - sides[0][2][1] - 2 * pad) / px_per_point * 1.05  # points
        spot = fallback = None
        for shift in _shifts(max_shift):
            for dx, align, box in sides:
                up = shift * line * px_per_point
                moved = (box[0], box[1] + up, box[2], box[3] + up)
                if not _inside(moved, frame) or any(_overlaps(moved, o) for o in placed):
                    continue
                if _nearest_is_own(moved, i, xy):
                    spot = (shift, dx, align, moved)
                    break
                fallback = fallback or (shift, dx, align, moved)
            if spot is not None:
                break
        spot = spot or (None if nearest_only else fallback)
        if spot is None:
            return False  # no room: this label is left out
        shift, dx, align, moved = spot
        placed.append(moved)
        leader = {"arrowstyle": "-", "lw": 0.6, "color": "0.45"} if shift else None
        annotations.append(
            ax.annotate(
                labels[i],
                points[i],
                textcoords="offset points",
                xytext=(dx, LABEL_OFFSET[1] + shift * line),
                ha=align,
                fontsize=LABEL_FONTSIZE,
                arrowprops=leader,
            )
        )
        return True

    for group in _label_order(xy, families, radius=40 * px_per_point):
        for i in group:
            if i not in done and place(i):
                break
    return annotations


def _styles(families: Sequence[str]) -> dict[str, tuple[Any, str]]:
    """One (colour, marker) per family, in alphabetical order of the families."""
    from matplotlib import colormaps

    colours = colormaps["tab10"].colors
    return {
        family: (colours[k % len(colours)], MARKERS[k % len(MARKERS)])
        for k, family in enumerate(sorted(set(families)))
    }


def _resolution_note(rows: Sequence[Any], main: str, width: int) -> str:
    """The specs at each resolution other than ``main``, one sentence, wrapped to ``width``."""
    by_resolution: dict[str, list[str]] = {}
    for row in rows:
        resolution = resolution_of(row)
        if resolution != main:
            by_resolution.setdefault(resolution, []).append(row.spec)
    parts = [
        f"{resolution}: {', '.join(sorted(specs))}"
        for resolution, specs in sorted(by_resolution.items(), key=lambda kv: _area(kv[0]))
    ]
    return textwrap.fill("Hollow markers, other inputs: " + "; ".join(parts) + ".", width)


def _area(resolution: str) -> int:
    area = 1
    for d in resolution.split("x"):
        area *= int(d) if d.isdigit() else 0
    return area


def draw_plot(rows: Sequence[Any]) -> Any:
    """The figure of bench ``rows``: parameters against MACs, by family and input resolution."""
    plt = _pyplot()
    from matplotlib.lines import Line2D

    many = len(rows) > ALL_LABELS_UP_TO
    fig, ax = plt.subplots(figsize=(13, 8.5) if many else (10, 7))
    families = [family_of(r.spec) for r in rows]
    styles = _styles(families)
    resolutions = [resolution_of(r) for r in rows]
    counts = Counter(resolutions)
    # the most common resolution is the reference (filled); ties go to the larger input
    main = max(counts, key=lambda res: (counts[res], _area(res)))
    members: dict[str, list[int]] = {}
    for i, family in enumerate(families):
        members.setdefault(family, []).append(i)
    for family, indices in members.items():
        colour, marker = styles[family]
        indices.sort(key=lambda i: (rows[i].macs, rows[i].params))
        if len(indices) > 1:  # a family's line, in multiply-add order, under its markers
            ax.plot(
                [rows[i].macs for i in indices],
                [rows[i].params for i in indices],
                color=colour,
                lw=0.8,
                alpha=0.55,
                zorder=1,
            )
        for filled in (True, False):
            chosen = [i for i in indices if (resolutions[i] == main) is filled]
            if chosen:
                ax.scatter(
                    [rows[i].macs for i in chosen],
                    [rows[i].params for i in chosen],
                    s=MARKER_SIZE,
                    marker=marker,
                    facecolors=colour if filled else "white",
                    edgecolors=colour,
                    linewidths=0.8 if filled else 1.3,
                    zorder=3,
                )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.margins(0.08 if many else 0.15)  # room for the labels of the outermost points
    ax.set_xlabel("multiply-adds (MACs)")
    ax.set_ylabel("parameters")
    ax.grid(True, which="both", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.12)
    specs = f"{len(rows)} spec{'s' if len(rows) != 1 else ''}"
    if len(counts) == 1:
        ax.set_title(f"zoo: parameters against multiply-adds, {specs}, input {main}")
    else:
        ax.set_title(
            f"zoo: parameters against multiply-adds, {specs}, "
            f"input {main} (filled markers) or as listed below (hollow)"
        )
    handles = [
        Line2D(
            [],
            [],
            color=styles[f][0],
            marker=styles[f][1],
            lw=0.8,
            markersize=6,
            label=f"{f} ({len(members[f])})",
        )
        for f in sorted(members)
    ]
    legend = ax.legend(
        handles=handles,
        title="family (specs)",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        title_fontsize=8.5,
        frameon=False,
        ncol=1 if len(handles) <= 32 else 2,
    )
    if len(counts) > 1:
        ax.add_artist(legend)  # a second legend would replace the first
        grey = "0.35"
        size_handles = [
            Line2D([], [], ls="", marker="o", color=grey, label=f"{main} input"),
            Line2D(
                [], [], ls="", marker="o", color=grey, markerfacecolor="white", label="other input"
            ),
        ]
        ax.legend(
            handles=size_handles,
            title="input size",
            loc="lower left",
            bbox_to_anchor=(1.01, 0.0),
            fontsize=8,
            title_fontsize=8.5,
            frameon=False,
        )
        ax.annotate(
            _resolution_note(rows, main, width=150 if many else 115),
            xy=(0, 0),
            xycoords="axes fraction",
            xytext=(0, -34),
            textcoords="offset points",
            va="top",
            fontsize=8,
        )
    place_labels(
        ax,
        [(r.macs, r.params) for r in rows],
        [r.spec for r in rows],
        families,
        max_shift=CROWDED_SHIFT_LINES if many else MAX_SHIFT_LINES,
        nearest_only=many,
    )
    return fig


def write_plot(rows: Sequence[Any], path: Path, inputs: Sequence[str] = ()) -> None:
    """Write the parameters-against-MACs plot of bench ``rows`` to ``path`` by the output rules
    of :mod:`zoo.files` (atomic, never over ``inputs``), as PNG, SVG or PDF by its suffix."""
    plt = _pyplot()
    fig = draw_plot(rows)
    try:
        image_format = path.suffix.lower().lstrip(".")
        write_atomically(
            path,
            lambda handle: fig.savefig(handle, format=image_format, dpi=120, bbox_inches="tight"),
            inputs,
        )
    finally:
        plt.close(fig)
