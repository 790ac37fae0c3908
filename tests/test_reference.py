"""The committed JSON Schema and format reference are exactly what the models generate."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import SPEC_NAMES
from zoo import registry
from zoo.reference import json_schema, json_schema_text, markdown_reference
from zoo.spec import shipped_specs_dir

ROOT = Path(__file__).resolve().parents[1]


def test_committed_schema_is_current() -> None:
    committed = (ROOT / "schemas" / "zoo-spec.schema.json").read_text()
    assert committed == json_schema_text(), "schema drifted from the models: run `make docs`"


def test_committed_reference_is_current() -> None:
    committed = (ROOT / "docs" / "spec-format.md").read_text()
    assert committed == markdown_reference(), "docs/spec-format.md drifted: run `make docs`"
    for type_name in (info.tag for info in registry.builtin()):
        assert f"### `{type_name}`" in committed


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_shipped_specs_satisfy_the_schema(name: str) -> None:
    data = yaml.safe_load((shipped_specs_dir() / f"{name}.yaml").read_text())
    jsonschema.validate(data, json_schema())


def test_schema_rejects_unknown_fields() -> None:
    data = {
        "name": "x",
        "input": {"channels": 3, "size": 8},
        "stem": [{"type": "conv", "out": 4, "kernel": 3, "strid": 2}],
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, json_schema())


def test_every_field_has_a_description() -> None:
    schema = json_schema()
    missing = [
        f"{model}.{field}"
        for model, definition in schema["$defs"].items()
        for field, prop in definition.get("properties", {}).items()
        if "description" not in prop
    ]
    assert not missing
