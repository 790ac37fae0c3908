"""The spec as zoo plans it: scaling applied and every preset written as the generic block it
stands for (``zoo resolve --expand``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from zoo.spec.fields import RepeatableSpec
from zoo.spec.scaling import scaled

if TYPE_CHECKING:
    from zoo.spec.schema import ModelSpec


def expanded(spec: ModelSpec) -> ModelSpec:
    """``spec`` with its ``scale`` applied and its presets expanded, recursively."""
    spec = scaled(spec)
    update = {section: _expand(getattr(spec, section)) for section in ("stem", "stages", "head")}
    result = spec.model_copy(update=update)
    result._located = spec._located
    return result


def _expand(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_expand(item) for item in value)
    if not isinstance(value, BaseModel):
        return value
    expand = getattr(value, "expand", None)
    if callable(expand):
        generic = expand()
        # the preset's own name, and the copies its `depth` makes, stay on the block it becomes
        # (a generator's `depth`, such as regnet_stages', is one of its own parameters)
        keys = ("name", "depth") if isinstance(value, RepeatableSpec) else ("name",)
        carried = {
            key: getattr(value, key)
            for key in keys
            if key in type(value).model_fields and key in type(generic).model_fields
        }
        value = generic.model_copy(update=carried)
    update = {
        name: _expand(getattr(value, name))
        for name in type(value).model_fields
        if isinstance(getattr(value, name), BaseModel | tuple)
    }
    return value.model_copy(update=update)
