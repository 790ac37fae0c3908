"""Find a spec (path or shipped name), read it, validate it, and locate every problem in it."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from zoo.errors import ExitCode, Problem, ZooError
from zoo.spec.inherit import apply_overrides, resolve_extends
from zoo.spec.schema import BUILTIN_TYPES, PLUGIN_TYPES, ModelSpec
from zoo.spec.yaml_loader import Located, load_yaml

MODEL_BY_TYPE: dict[str, type[BaseModel]] = {
    get_args(model.model_fields["type"].annotation)[0]: model for model in BUILTIN_TYPES
}
"""The built-in spec models by ``type`` tag (plugins add theirs to ``PLUGIN_TYPES``)."""


def model_for_type(tag: str) -> type[BaseModel] | None:
    """The spec model of a ``type`` tag, built-in or registered by a plugin."""
    return MODEL_BY_TYPE.get(tag) or PLUGIN_TYPES.get(tag)


def known_types() -> list[str]:
    """Every valid ``type`` tag, sorted."""
    return sorted({*MODEL_BY_TYPE, *PLUGIN_TYPES})


def shipped_specs_dir() -> Path:
    """The folder of the specs that ship with zoo: inside the installed package, or the repo's specs/."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "specs"
    return installed if installed.is_dir() else package.parent / "specs"


def shipped_spec_names() -> list[str]:
    """Names of the shipped specs, sorted."""
    return sorted(p.stem for p in shipped_specs_dir().glob("*.yaml"))


def find_spec(path_or_name: str | Path) -> Path:
    """Resolve a spec argument: an existing file, else the name of a shipped spec."""
    candidate = Path(path_or_name)
    if candidate.is_file():
        return candidate
    text = str(path_or_name)
    if candidate.exists():  # a directory, a device, a pipe: not something to read a spec from
        kind = "a directory" if candidate.is_dir() else "not a regular file"
        raise ZooError(
            Problem(f"{text} is {kind}; give a spec's .yaml file", kind="not_found"),
            ExitCode.IO_ERROR,
        )
    looks_like_path = candidate.suffix in (".yaml", ".yml") or "/" in text or "\\" in text
    if not looks_like_path:
        shipped = shipped_specs_dir() / f"{text}.yaml"
        if shipped.is_file():
            return shipped
    names = shipped_spec_names()
    hint = difflib.get_close_matches(candidate.stem, names, n=1)
    if looks_like_path:
        message = f"no such file: {text}"
    else:
        message = f"no such file or shipped spec: {text!r}"
    message += f"; did you mean {hint[0]!r}?" if hint else "; run `zoo list` for the shipped specs"
    raise ZooError(Problem(message, kind="not_found"), ExitCode.IO_ERROR)


def read_spec_file(path: Path) -> Located:
    """Read and parse a spec file into located plain data."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ZooError(
            Problem(f"cannot read file: {exc}", str(path), kind="io"), ExitCode.IO_ERROR
        ) from None
    return load_yaml(text, str(path))


def validate(located: Located) -> ModelSpec:
    """Validate located data against :class:`ModelSpec`; every problem is reported with its position."""
    if not isinstance(located.data, dict):
        got = "an empty file" if located.data is None else type(located.data).__name__
        raise ZooError(
            located.problem(
                (), f"a spec must be a mapping (name, input, stem, stages, head), got {got}", "type"
            )
        )
    try:
        spec = ModelSpec.model_validate(located.data)
    except ValidationError as exc:
        raise ZooError(_problems(exc, located)) from None
    spec._located = located
    return spec


def _find_base(ref: str, folder: Path) -> Path:
    """An ``extends:`` target: a path relative to the extending file, else a shipped spec name."""
    relative = folder / ref
    if relative.is_file():
        return relative
    if Path(ref).suffix in (".yaml", ".yml") or "/" in ref:
        raise ZooError(Problem(f"no such file: {relative}", kind="not_found"), ExitCode.IO_ERROR)
    return find_spec(ref)


def resolve(path_or_name: str | Path, overrides: Sequence[str] = ()) -> Located:
    """Read a spec and resolve its ``extends:`` chain and ``--set`` overrides: plain located data."""
    from zoo.plugins import load_entry_points

    load_entry_points()  # installed packages may define types this spec uses
    located = read_spec_file(find_spec(path_or_name))
    located = resolve_extends(located, read_spec_file, _find_base)
    return apply_overrides(located, overrides)


def load_spec(path_or_name: str | Path, overrides: Sequence[str] = ()) -> ModelSpec:
    """Load a spec by path or shipped name, resolve ``extends:`` and ``overrides``
    (``["stages.2.depth=23"]``), and validate it. Raises :class:`ZooError` on bad input."""
    return validate(resolve(path_or_name, overrides))


class _PlainDumper(yaml.SafeDumper):
    """Writes merged data without anchors/aliases (merges share objects; readers want them inline)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def resolved_yaml(located: Located) -> str:
    """The fully resolved spec as YAML: no ``extends``, every inherited value written out."""
    header = "# yaml-language-server: $schema=https://zoo.invalid/schemas/zoo-spec.schema.json\n"
    header += f"# resolved from {located.file}\n"
    body = yaml.dump(
        located.data, Dumper=_PlainDumper, sort_keys=False, default_flow_style=None, width=100
    )
    return header + body


# --------------------------------------------------------------------------- pydantic -> Problem
def _strip_tags(loc: tuple[Any, ...], data: Any) -> tuple[tuple[str | int, ...], Any, Any]:
    """Drop pydantic's union-member components from ``loc``; return (path, parent data, data at path)."""
    path: list[str | int] = []
    parent, current = None, data
    for item in loc:
        if (isinstance(current, dict) and item in current) or (
            isinstance(current, list) and isinstance(item, int) and 0 <= item < len(current)
        ):
            parent, current = current, current[item]
            path.append(item)
        elif isinstance(item, str) and (
            not isinstance(current, dict)
            or model_for_type(item)
            or item in ("plugin", "list")
            or "[" in item
        ):
            continue  # a tag pydantic adds for the union member it tried (scalars have no keys)
        else:
            parent, current = current, None
            path.append(item)
    return tuple(path), parent, current


def _model_at(parent: Any) -> type[BaseModel] | None:
    if isinstance(parent, dict):
        kind = parent.get("type")
        if isinstance(kind, str) and model_for_type(kind):
            return model_for_type(kind)
        if "type" not in parent:
            return ModelSpec
    return None


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(options)}"


def _union_member_fits(error: Any) -> bool:
    """For `int | [int, int]` fields, the error of the member matching the input's kind is the useful one."""
    tried_sequence = any(isinstance(i, str) and ("tuple" in i or "list" in i) for i in error["loc"])
    return tried_sequence == isinstance(error["input"], list | tuple)


def _problems(exc: ValidationError, located: Located) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[Any, ...]] = set()
    errors = sorted(exc.errors(include_url=False), key=lambda e: not _union_member_fits(e))
    errors.sort(
        key=lambda e: [str(i) for i in e["loc"]][:1]
    )  # stable: keeps the file's field order
    for error in errors:
        path, parent, value = _strip_tags(error["loc"], located.data)
        kind, message, at_key = error["type"], error["msg"], False
        if kind == "extra_forbidden":
            model = _model_at(parent)
            fields = sorted(model.model_fields) if model else []
            message = (
                f"unknown field; {_suggest(str(path[-1]), fields)}" if fields else "unknown field"
            )
            at_key = True
        elif kind == "missing":
            message = f"missing required field '{path[-1]}'"
        elif (
            kind in ("union_tag_invalid", "union_tag_not_found")
            and isinstance(value, dict)
            and "type" in value
        ):
            tag = value["type"]
            message = f"unknown type {tag!r}; {_suggest(str(tag), known_types())}"
            path, kind = (*path, "type"), "unknown_type"
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            message = f"missing 'type'; one of: {', '.join(known_types())}"
            kind = "missing_type"
        elif kind == "value_error":
            message = message.removeprefix("Value error, ")
        problem = located.problem(path, message, kind, at_key=at_key)
        key = (problem.file, problem.line, problem.column, problem.path)
        if key not in seen:  # a union reports a mistake once per member it tried: keep the best
            seen.add(key)
            problems.append(problem)
    return problems
