"""Comparing specs from Python: :func:`benchmark` (``zoo bench``: figures side by side) and
:func:`diff` (``zoo diff``: two specs stage by stage in network order, and the spec fields that
differ). Both return a result that shows as tables (:mod:`zoo.display`).

The function ``zoo.diff`` lives here, not in a module of its name: a submodule ``zoo.diff`` would
replace the function as an attribute of the package once anything imported it (``zoo.trace``
lives in ``tracing.py`` for the same reason).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from zoo.display import BenchTable, Tabular
from zoo.errors import usage_error
from zoo.spec.load import SpecLike, spec_argument
from zoo.spec.schema import ModelSpec
from zoo.traces import Row, parse_input_shape
from zoo.tracing import trace

if TYPE_CHECKING:
    from rich.console import RenderableType

    from zoo.render import Listing


@dataclass(frozen=True)
class StageDiff:
    """One top-level module of either spec (``None`` where the other spec has no such module)."""

    path: str
    a: Row | None
    b: Row | None

    @property
    def differs(self) -> str:
        """What differs: ``only in A``, ``only in B``, or the figures that do (``type, params``);
        empty when nothing does."""
        if self.a is None or self.b is None:
            return "only in B" if self.a is None else "only in A"
        figures = (("type", "type"), ("output", "output"), ("params", "params"), ("macs", "MACs"))
        return ", ".join(
            name for key, name in figures if getattr(self.a, key) != getattr(self.b, key)
        )


@dataclass(frozen=True)
class FieldDiff:
    """A spec field (dotted path) whose resolved value differs; ``None`` where it is absent."""

    path: str
    a: Any
    b: Any


@dataclass(frozen=True, repr=False)
class SpecDiff(Tabular):
    """Two specs compared (:func:`diff`): their top-level modules in network order and the spec
    fields that differ. Prints as its two tables (``print``, the prompt, a Jupyter cell, rich);
    ``to_pandas()`` is the stage table as a DataFrame."""

    a: str
    b: str
    stages: list[StageDiff]
    fields: list[FieldDiff]
    totals: tuple[tuple[int, int], tuple[int, int]]  # (params, macs) of A and of B

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (shapes as lists)."""
        return asdict(self)

    def rows_as_dicts(self) -> list[dict[str, Any]]:
        """One dict per stage: its path, each side's type, output, params and MACs (``a_params``,
        ``b_params``, ...; ``None`` where that side has no such module), and what differs."""
        rows = []
        for stage in self.stages:
            row: dict[str, Any] = {"path": stage.path}
            for side, found in (("a", stage.a), ("b", stage.b)):
                for key in ("type", "output", "params", "macs"):
                    row[f"{side}_{key}"] = getattr(found, key) if found else None
            rows.append({**row, "differs": stage.differs})
        return rows

    def listings(self) -> list[Listing | str]:
        """The stage table (both sides' output, params and MACs, and what differs; the rows that
        differ highlighted) and the table of the spec fields that differ."""
        from zoo.render import Column, Listing, human, number, shape_text, text

        columns = [text("stage", "Stage", 10)]
        footer = ["Total"]
        for side, (params, macs) in zip("ab", self.totals, strict=True):
            name = side.upper()
            columns += [
                Column(f"{side}_output", f"{name} output", show=shape_text),
                number(f"{side}_params", f"{name} params"),
                number(f"{side}_macs", f"{name} MACs", human),
            ]
            footer += ["", f"{params:,}", human(macs)]
        columns.append(text("differs", "Differs", 10))
        footer.append("")
        rows = [
            [
                stage.path,
                *(
                    value
                    for found in (stage.a, stage.b)
                    for value in ((found.output, found.params, found.macs) if found else [None] * 3)
                ),
                stage.differs,
            ]
            for stage in self.stages
        ]
        stages = Listing(
            title=f"{self.a} (A) vs {self.b} (B)",
            columns=columns,
            rows=rows,
            footer=footer,
            styles=["yellow" if stage.differs else "" for stage in self.stages],
        )
        if not self.fields:
            return [stages, "no spec field differs"]
        fields = Listing(
            title="spec fields that differ",
            columns=[text("field", "Field", 12), text("a", "A", 10), text("b", "B", 10)],
            rows=[[f.path, _show(f.a), _show(f.b)] for f in self.fields],
        )
        return [stages, fields]

    def render(self) -> list[Listing | RenderableType]:
        """What ``zoo diff`` prints: the tables, and a note (as text, never read as markup)."""
        from rich.text import Text

        return [Text(item) if isinstance(item, str) else item for item in self.listings()]


def _show(value: Any) -> str | None:
    """A field's value as YAML writes it (``false``, ``1e-05``, ``[3, 5]``); None when absent."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> scalar; a pair of equal numbers (``kernel: [3, 3]``) is that number."""
    pair = isinstance(data, list | tuple) and len(data) == 2 and data[0] == data[1]
    if pair and all(isinstance(v, int) and not isinstance(v, bool) for v in data):
        data = data[0]
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(data, list | tuple):
        out = {}
        for i, value in enumerate(data):
            out.update(_flatten(value, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): data}


def merge_in_order(a: list[str], b: list[str]) -> list[tuple[str | None, str | None]]:
    """Pair the paths of two networks, each list in its network order, into one list in network
    order: a path both have is one pair, and what only one has sits where it sits in its network
    (a stem that B adds comes before B's first stage, not after A's last layer)."""
    pairs: list[tuple[str | None, str | None]] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs += [(path, path) for path in a[i1:i2]]
        else:  # what A had there, then what B has instead
            pairs += [(path, None) for path in a[i1:i2]]
            pairs += [(None, path) for path in b[j1:j2]]
    return pairs


def _network_order(keys: list[str]) -> dict[str, tuple[tuple[int, int], ...]]:
    """A sort key per dotted field path: list items by index (``stem.10`` after ``stem.9``), a
    mapping's fields in the order they first appear (a spec's fields in their declared order:
    name, description, input, stem, stages, head, ...; a field only B has after A's of that
    item)."""
    first: dict[tuple[str, ...], int] = {}
    for key in keys:
        parts = tuple(key.split("."))
        for end in range(1, len(parts) + 1):
            first.setdefault(parts[:end], len(first))
    order = {}
    for key in keys:
        parts = tuple(key.split("."))
        order[key] = tuple(
            (0, int(part)) if part.isdigit() else (1, first[parts[: i + 1]])
            for i, part in enumerate(parts)
        )
    return order


def diff(a: SpecLike, b: SpecLike, input_shape: Any = None) -> SpecDiff:
    """Compare two specs (each a spec object, a YAML path, a spec name or a mapping) at depth 1
    (at ``input_shape``, by default each spec's own input), and their validated fields (defaults
    filled in, so a field written out at its default equals one left out).

    Both are in network order: the modules as the input flows through them, a module only one
    spec has where it sits in that spec; the fields as a spec is written (stem, stages, head;
    ``stages.10`` after ``stages.9``). Bad arguments raise :class:`~zoo.errors.ZooError`.
    """
    specs = [spec_argument(side, "diff") for side in (a, b)]
    traces = [trace(spec, input_shape, depth=1) for spec in specs]
    rows = [{r.path: r for r in t.rows} for t in traces]
    stages = [
        StageDiff(
            pa if pa is not None else pb,  # type: ignore[arg-type]  (one of the two is a path)
            rows[0][pa] if pa is not None else None,
            rows[1][pb] if pb is not None else None,
        )
        for pa, pb in merge_in_order(list(rows[0]), list(rows[1]))
    ]
    flat_a, flat_b = (_flatten(spec.model_dump(mode="json")) for spec in specs)
    keys = list(dict.fromkeys([*flat_a, *flat_b]))
    order = _network_order(keys)
    fields = [
        FieldDiff(k, flat_a.get(k), flat_b.get(k))
        for k in sorted(keys, key=order.__getitem__)
        if flat_a.get(k) != flat_b.get(k)
    ]
    totals = ((traces[0].params, traces[0].macs), (traces[1].params, traces[1].macs))
    names = (specs[0].name, specs[1].name)
    if names[0] == names[1] and all(isinstance(s, str | os.PathLike) for s in (a, b)):
        names = (os.fspath(a), os.fspath(b))  # a shipped spec against an edited copy, say
    return SpecDiff(*names, stages, fields, totals)


def benchmark(
    specs: SpecLike | Sequence[SpecLike],
    input_shape: Any = None,
    *,
    batch: int | None = None,
    optimizer: str | None = None,
    latency: bool = False,
    device: str | None = None,
    warmup: int | None = None,
    repeat: int | None = None,
) -> BenchTable:
    """``zoo bench`` from Python: the figures of ``specs`` (one spec, or a list; each a spec
    object, a YAML path, a spec name or a mapping) side by side, as a :class:`BenchTable`.

    ``input_shape`` ((C, H, W) or (N, C, H, W)) is every spec's input; ``batch`` instead keeps
    each spec's own input size at that batch; by default each spec's input at batch 1. Counts and
    memory are arithmetic (nothing allocated; the training peak with ``optimizer``'s state, see
    :data:`zoo.memory.OPTIMIZERS`); ``latency=True`` also builds each model on ``device``
    (default ``"cpu"``) and times ``repeat`` forward and forward+backward passes after ``warmup``
    untimed ones (defaults: ``zoo.bench.DEFAULT_REPEAT``, ``DEFAULT_WARMUP``).
    Bad arguments raise :class:`~zoo.errors.ZooError`.
    """
    from zoo.bench import check_latency_memory, measure_spec
    from zoo.memory import DEFAULT_OPTIMIZER, OPTIMIZERS
    from zoo.shapes import pair

    one = isinstance(specs, str | os.PathLike | Mapping | ModelSpec)
    loaded = [spec_argument(s, "benchmark") for s in ([specs] if one else specs)]  # type: ignore[union-attr]
    if batch is not None and (input_shape is not None or not _count(batch, 1)):
        message = "batch and input_shape exclude each other" if input_shape else "batch is >= 1"
        raise usage_error(f"{message}, got batch={batch!r}")
    if optimizer is not None and optimizer not in OPTIMIZERS:
        raise usage_error(f"optimizer is one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    for name, value, least in (("warmup", warmup, 0), ("repeat", repeat, 1)):
        if value is not None and not _count(value, least):
            raise usage_error(f"{name} is an int >= {least}, got {value!r}")
    if not latency and (device, warmup, repeat) != (None, None, None):
        raise usage_error("device, warmup and repeat only matter with latency=True")
    dims = parse_input_shape(input_shape) if input_shape is not None else None
    if latency:
        from zoo.compiler import resolve_device

        target = resolve_device(device or "cpu")
        if target.type == "meta":
            raise usage_error("latency needs a device that computes (cpu, cuda)")
    rows = []
    for spec in loaded:
        if batch is not None:
            dims = parse_input_shape((batch, spec.input.channels, *pair(spec.input.size)))
        row = measure_spec(spec, dims, optimizer or DEFAULT_OPTIMIZER)
        if latency:
            check_latency_memory(row, target)
            row = _timed(spec, row, target, warmup, repeat)
        rows.append(row)
    return BenchTable(tuple(rows))


def _count(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _timed(spec: ModelSpec, row: Any, device: Any, warmup: int | None, repeat: int | None) -> Any:
    """``row`` with the forward and forward+backward times of ``spec`` built on ``device``."""
    import torch

    from zoo.bench import DEFAULT_REPEAT, DEFAULT_WARMUP, measure_latency, with_latency
    from zoo.compiler import build

    warmup = DEFAULT_WARMUP if warmup is None else warmup
    model = build(spec, device=device, input_shape=row.input[1:])
    forward, train = measure_latency(
        model, row.input, str(device), repeat or DEFAULT_REPEAT, warmup
    )
    return with_latency(row, forward, train, torch.get_num_threads(), warmup)
