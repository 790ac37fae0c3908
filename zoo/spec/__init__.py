"""The spec format (pydantic models) and how specs are found, read and validated.

Imported lazily, like :mod:`zoo`: reading this package costs nothing until a name is used, so
the planner can import the YAML locations without loading the whole format first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoo.spec.load import (
        find_spec,
        load_spec,
        shipped_spec_names,
        shipped_specs_dir,
        validate,
    )
    from zoo.spec.schema import ModelSpec

_HOMES = {
    "ModelSpec": "zoo.spec.schema",
    "find_spec": "zoo.spec.load",
    "load_spec": "zoo.spec.load",
    "shipped_spec_names": "zoo.spec.load",
    "shipped_specs_dir": "zoo.spec.load",
    "validate": "zoo.spec.load",
}

__all__ = [
    "ModelSpec",
    "find_spec",
    "load_spec",
    "shipped_spec_names",
    "shipped_specs_dir",
    "validate",
]


def __getattr__(name: str) -> Any:
    """The public names, imported from their home module on first use (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'zoo.spec' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
