"""The spec format (pydantic models) and how specs are found, read and validated."""

from zoo.spec.load import find_spec, load_spec, shipped_spec_names, shipped_specs_dir, validate
from zoo.spec.schema import ModelSpec

__all__ = [
    "ModelSpec",
    "find_spec",
    "load_spec",
    "shipped_spec_names",
    "shipped_specs_dir",
    "validate",
]
