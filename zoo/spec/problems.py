"""Pydantic's validation errors as located problems (``file:line:col: path: message``), for specs
and training recipes alike: the path without the names pydantic gives the union members it
tried, and messages that say what to write (``unknown field; did you mean 'stride'?``,
``missing 'type'; one of: ...``). What differs between the two is a :class:`Grammar`."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from zoo.errors import Problem
from zoo.spec.yaml_loader import Located, SpecPath


@dataclass(frozen=True)
class Grammar:
    """What a kind of document's errors are read with; the defaults are a spec's."""

    root: type[BaseModel]
    """The model of the top-level mapping; unknown fields of a mapping without a ``type`` are
    compared with its fields too."""
    member: Callable[[str], type[BaseModel] | None]
    """The model of a ``type`` tag; None when there is no such type."""
    tags: Callable[[SpecPath], Sequence[str]]
    """The valid ``type`` tags of the node at a path."""
    also_members: tuple[str, ...] = ()
    """Names pydantic gives union members besides the ``type`` tags (a spec's ``plugin``)."""
    type_noun: Callable[[SpecPath], str] = lambda path: "type"
    """What an unknown tag at a path is called: ``unknown {noun} 'basik'``."""
    name_members: bool = False
    """Whether an unknown field of a member also names it: ``(sgd has no such field)``."""
    type_kinds: tuple[str, str] = ("unknown_type", "missing_type")
    """The kinds of a node whose ``type`` is unknown, and of one without a ``type``."""


def has_child(data: Any, key: Any) -> bool:
    """``data[key]`` exists: a mapping's key or a list's index (pydantic's ``loc`` also holds the
    names of union members it tried, which are neither)."""
    if isinstance(data, dict):
        return key in data
    return isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data)


def suggest(word: str, options: Sequence[str]) -> str:
    """The end of an "unknown ..." message: the closest of ``options``, else all of them."""
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(options)}"


def _names_member(item: Any, data: Any, grammar: Grammar) -> bool:
    """Whether a ``loc`` item that is no key of ``data`` is the name of a union member pydantic
    tried, which a path leaves out: a ``type`` tag, a generic (``tuple[int, int]``), or any member
    of a scalar union (``int | None``: scalars have no keys)."""
    return isinstance(item, str) and (
        not isinstance(data, dict)
        or grammar.member(item) is not None
        or item in grammar.also_members
        or item == "list"
        or "[" in item
    )


def _strip_members(loc: tuple[Any, ...], data: Any, grammar: Grammar) -> tuple[SpecPath, Any, Any]:
    """Drop pydantic's union-member names from ``loc``: (path, parent data, data at path)."""
    path: list[str | int] = []
    parent, current = None, data
    for item in loc:
        if has_child(current, item):
            parent, current = current, current[item]
            path.append(item)
        elif _names_member(item, current, grammar):
            continue
        else:
            parent, current = current, None
            path.append(item)
    return tuple(path), parent, current


def _model_at(path: SpecPath, mapping: Any, grammar: Grammar) -> type[BaseModel] | None:
    """The model whose fields the mapping at ``path`` may have."""
    if not path:  # even with a stray `type:` of its own
        return grammar.root
    if isinstance(mapping, dict):
        tag = mapping.get("type")
        if isinstance(tag, str) and grammar.member(tag):
            return grammar.member(tag)
        if "type" not in mapping:  # a field's own model (`input:`), else the root's
            return _field_model(grammar.root, path) or grammar.root
    return None


def _field_model(model: type[BaseModel], path: SpecPath) -> type[BaseModel] | None:
    """The one model the value at ``path`` below ``model`` is, following field annotations
    (through ``X | None`` and list items); None where that is not one model (a tagged union)."""
    current: Any = model
    for key in path:
        if isinstance(key, int):
            args = [a for a in typing.get_args(current) if a is not type(None)]
            if typing.get_origin(current) not in (list, tuple) or len(args) != 1:
                return None
            current = args[0]
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(key))
        if field is None:
            return None
        current = field.annotation
        members = [a for a in typing.get_args(current) if a is not type(None)]
        if typing.get_origin(current) in (typing.Union, types.UnionType) and len(members) == 1:
            current = members[0]
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unknown_field(path: SpecPath, parent: Any, grammar: Grammar) -> str:
    model = _model_at(path[:-1], parent, grammar)
    if model is None or not model.model_fields:
        return "unknown field"
    message = f"unknown field; {suggest(str(path[-1]), sorted(model.model_fields))}"
    if grammar.name_members and model is not grammar.root:
        message += f" ({parent['type']} has no such field)"
    return message


def _union_member_fits(error: Any) -> bool:
    """For `int | [int, int]` fields, the error of the member matching the input's kind is the useful one."""
    tried_sequence = any(isinstance(i, str) and ("tuple" in i or "list" in i) for i in error["loc"])
    if tried_sequence:  # pydantic went inside, so the input was a sequence, unless refused whole
        return error["type"] not in ("tuple_type", "list_type")
    return not isinstance(error["input"], list | tuple)


def _scalar_or_sequence_union(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...] | None:
    """The ``loc`` of the field when ``loc`` goes through a member of a scalar-or-sequence union
    (``kernel: int | [int, int]``): pydantic names the member tried right after the field, where the
    data holds a scalar or a list, not a mapping. ``None`` for errors of any other field."""
    current = data
    for n, item in enumerate(loc):
        if has_child(current, item):
            current = current[item]
        elif isinstance(item, str) and not isinstance(current, dict):
            return loc[:n]
        elif not isinstance(current, dict) or item in current:
            return None
    return None


def _fitting(errors: list[Any], data: Any) -> list[Any]:
    """`kernel: [true, 3]` fails both members of `int | [int, int]`; only the errors of the member
    that fits the kind of value written (here the pair's) say what is wrong."""
    unions = [_scalar_or_sequence_union(e["loc"], data) for e in errors]
    fitted = {u for u, e in zip(unions, errors, strict=True) if u and _union_member_fits(e)}
    return [
        e for u, e in zip(unions, errors, strict=True) if u not in fitted or _union_member_fits(e)
    ]


def located_problems(exc: ValidationError, located: Located, grammar: Grammar) -> list[Problem]:
    """Every error of ``exc`` as a :class:`Problem` at its place in ``located``, in the order
    they are written, one per place."""
    problems: list[Problem] = []
    seen: set[tuple[Any, ...]] = set()
    for error in _fitting(exc.errors(include_url=False), located.data):
        path, parent, value = _strip_members(error["loc"], located.data, grammar)
        kind, message, at_key = error["type"], error["msg"], False
        if kind == "extra_forbidden":
            message, at_key = _unknown_field(path, parent, grammar), True
        elif kind == "missing":
            message = f"missing required field '{path[-1]}'"
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            tags = grammar.tags(path)
            if isinstance(value, dict) and "type" in value:
                tag = value["type"]
                message = f"unknown {grammar.type_noun(path)} {tag!r}; {suggest(str(tag), tags)}"
                path, kind = (*path, "type"), grammar.type_kinds[0]
            else:
                message, kind = f"missing 'type'; one of: {', '.join(tags)}", grammar.type_kinds[1]
        elif kind == "model_attributes_type":  # a tagged union's member given no mapping
            message = f"expected a mapping with a 'type', got {type(error['input']).__name__}"
        elif kind == "value_error":
            message = message.removeprefix("Value error, ")
        problem = located.problem(path, message, kind, at_key=at_key)
        key = (problem.file, problem.line, problem.column, problem.path)
        if key not in seen:  # a union reports a mistake once per member it tried: keep the best
            seen.add(key)
            problems.append(problem)
    # in the order they are written (stable: one place keeps its order); no line goes last
    problems.sort(key=lambda p: (p.file or "", p.line is None, p.line or 0, p.column or 0))
    return problems
