"""The spec as zoo plans it (``zoo resolve --expand``): scaling applied and every preset written
as the generic block it stands for.

Most presets expand in the spec layer (``expand()``). Those whose layout follows their input
channels (an inverted residual's inner width, a ShuffleNetV2 unit's branches) expand while the
network is planned, copy by copy; the plan records those expansions, and a block whose copies
differ is written out as a ``sequential`` of its copies, which has the same modules and
``state_dict`` keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from zoo.plan import plan_spec
from zoo.spec.fields import RepeatableSpec
from zoo.spec.scaling import scaled
from zoo.spec.yaml_loader import SpecPath

if TYPE_CHECKING:
    from zoo.spec.schema import ModelSpec


def expanded(spec: ModelSpec) -> ModelSpec:
    """``spec`` with its ``scale`` applied and its presets expanded, recursively."""
    spec = scaled(spec)
    planned = plan_spec(spec).planned_expansions
    update = {
        section: _expand(getattr(spec, section), (section,), planned)
        for section in ("stem", "stages", "head")
    }
    result = spec.model_copy(update=update)
    result._located = spec._located
    return result


def _expand(value: Any, path: SpecPath, planned: dict[SpecPath, list[Any]]) -> Any:
    if isinstance(value, tuple):
        return tuple(_expand(item, (*path, i), planned) for i, item in enumerate(value))
    if not isinstance(value, BaseModel):
        return value
    if path in planned:
        value = _from_copies(value, planned[path])
    elif callable(getattr(value, "expand", None)):
        value = _carry(value, value.expand())
    update = {
        name: _expand(getattr(value, name), (*path, name), planned)
        for name in type(value).model_fields
        if isinstance(getattr(value, name), BaseModel | tuple)
    }
    return value.model_copy(update=update)


def _carry(preset: Any, generic: Any) -> Any:
    """``generic`` with the preset's own name and, for a block, the copies its ``depth`` makes (a
    generator's ``depth``, such as regnet_stages', is one of its own parameters)."""
    keys = ("name", "depth") if isinstance(preset, RepeatableSpec) else ("name",)
    carried = {
        key: getattr(preset, key)
        for key in keys
        if key in type(preset).model_fields and key in type(generic).model_fields
    }
    return generic.model_copy(update=carried)


def _from_copies(preset: Any, copies: list[Any]) -> Any:
    """The generic spec of a preset expanded at plan time: one block when every copy is the same
    (and there is one per planning), else a ``sequential`` of its copies, named as ``depth`` names
    them."""
    depth = getattr(preset, "depth", None)
    count = depth or 1
    if len(copies) % count or any(c != copies[i % count] for i, c in enumerate(copies)):
        return preset  # planned differently in different places (inside a `repeat`): kept as is
    copies = copies[:count]
    if all(copy == copies[0] for copy in copies):
        return _carry(preset, copies[0])
    from zoo.types.container import SequentialSpec

    layers = []
    for i, copy in enumerate(copies):
        # each copy is now a bare block, which takes its own stride: only the first has one
        update: dict[str, Any] = {"name": str(i)}
        if i and "stride" in type(copy).model_fields:
            update["stride"] = 1
        layers.append(copy.model_copy(update=update))
    return SequentialSpec(type="sequential", name=preset.name, layers=tuple(layers))
