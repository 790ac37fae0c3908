"""Generated references of the spec format: the JSON Schema and the markdown field reference.

Both come from the pydantic models, so they cannot disagree with what zoo accepts; tests fail
when the committed copies (``schemas/zoo-spec.schema.json``, ``docs/spec-format.md``) drift.
Regenerate them with ``make docs``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from zoo import registry
from zoo.spec.schema import InputSpec, ModelSpec
from zoo.types.residual import ShortcutSpec

SCHEMA_ID = "https://zoo.invalid/schemas/zoo-spec.schema.json"


def _node_union(node: Any, mapping: dict[str, str]) -> Any:
    """Rewrite each layer union for editors: drop the plugin member (it accepts anything, which would
    make every `oneOf` ambiguous) and name the `type` discriminator, so completion offers the tags."""
    if isinstance(node, dict):
        if "oneOf" in node and {} in node["oneOf"]:
            members = [m for m in node["oneOf"] if m != {}]
            return {
                **node,
                "oneOf": members,
                "discriminator": {"propertyName": "type", "mapping": mapping},
            }
        return {k: _node_union(v, mapping) for k, v in node.items()}
    if isinstance(node, list):
        return [_node_union(v, mapping) for v in node]
    return node


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a spec file, for editor completion and hover docs."""
    mapping = {info.tag: f"#/$defs/{info.model.__name__}" for info in registry.builtin()}
    full = _node_union(ModelSpec.model_json_schema(), mapping)
    defs = full.pop("$defs")
    extends = {
        "type": "string",
        "description": (
            "Inherit from a shipped spec (by name) or a YAML file (relative path); this file's "
            "mappings merge into the base and a list replaces the base list; a mapping where the "
            "base has a list edits it: {index: ...} patches items, $insert/$delete/$replace/"
            "$append change the list."
        ),
    }
    # A variant (with `extends`) is a partial spec: same fields and hover docs, nothing required.
    variant = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "extends": extends,
            **{
                name: {"description": prop.get("description", "")}
                for name, prop in full["properties"].items()
            },
        },
    }
    full["properties"] = {"extends": extends, **full["properties"]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "zoo model spec",
        "if": {"type": "object", "required": ["extends"]},
        "then": variant,
        "else": full,
        "$defs": defs,
    }


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


def _default(model: type[BaseModel], name: str) -> str:
    info = model.model_fields[name]
    if info.is_required():
        return "**required**"
    value = info.default_factory() if info.default is PydanticUndefined else info.default  # type: ignore[call-arg,misc]
    if isinstance(
        value, BaseModel
    ):  # a nested default: show only what differs from its own defaults
        value = value.model_dump(exclude_defaults=True)
    return f"`{json.dumps(value)}`"


def _fields(model: type[BaseModel]) -> list[str]:
    lines = ["| field | default | description |", "|---|---|---|"]
    for name, info in model.model_fields.items():
        if name == "type":
            continue
        description = (info.description or "").replace("|", "\\|")
        lines.append(f"| `{name}` | {_default(model, name)} | {description} |")
    return lines


def _doc(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split()).replace("``", "`")


def markdown_reference() -> str:
    """Markdown reference of every spec type and field."""
    out = [
        "# Spec format reference",
        "",
        "Generated from the pydantic models by `make docs`; do not edit by hand.",
        "A test fails when this file and the models disagree.",
        "",
        "## The file",
        "",
        _doc(ModelSpec),
        "",
        *_fields(ModelSpec),
        "",
        "### `input`",
        "",
        _doc(InputSpec),
        "",
        *_fields(InputSpec),
        "",
        "## Types",
        "",
        "Every item of `stem`, `stages`, `head` (and of `layers`, `body`, `branches`, ...) is one of these,",
        "selected by its `type`.",
        "",
    ]
    for info in registry.builtin():
        type_doc = info.model.model_fields["type"].description or ""
        out += [f"### `{info.tag}`", "", _doc(info.model) or type_doc, "", *_fields(info.model), ""]
    out += [
        "### `shortcut` (of residual blocks)",
        "",
        _doc(ShortcutSpec),
        "",
        *_fields(ShortcutSpec),
        "",
    ]
    return "\n".join(out)
