"""Variants by inheritance (``extends:``) and command-line overrides (``--set a.b=c``).

Merge rules, applied to the plain data before validation:

- a **mapping** merges into the base mapping key by key (recursively);
- a **list** replaces the base list whole;
- a **mapping with integer keys** given where the base has a list patches that list by index
  (``stages: {2: {depth: 23}}`` changes the depth of the third stage; ``-1`` is the last item);
- anything else (a scalar, or a different kind of value) replaces the base value.

Every value keeps the position of the file it came from, so errors point into the right file.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path as FilePath
from typing import Any

from zoo.errors import ExitCode, Problem, ZooError
from zoo.spec.yaml_loader import Located, SpecPath, dotted, load_yaml

MAX_EXTENDS_DEPTH = 16


def resolve_extends(located: Located, read: Any, find: Any, chain: Sequence[str] = ()) -> Located:
    """Resolve ``extends:`` recursively. ``read(path) -> Located`` and ``find(ref, relative_to)``
    are injected by the loader, so this module stays free of file-system policy."""
    data = located.data
    if not isinstance(data, dict) or "extends" not in data:
        return located
    ref = data["extends"]
    if not isinstance(ref, str) or not ref.strip():
        raise ZooError(
            located.problem(
                ("extends",), "extends must be a spec name or a relative path", "extends"
            )
        )
    chain = (*chain, str(FilePath(located.file).resolve()))
    if len(chain) > MAX_EXTENDS_DEPTH:
        raise ZooError(
            located.problem(
                ("extends",), f"more than {MAX_EXTENDS_DEPTH} levels of extends", "extends"
            )
        )
    try:
        base_file = find(ref, FilePath(located.file).parent)
    except ZooError as exc:
        problem = exc.problems[0]  # a missing base, or one refused (a directory, not .yaml, ...)
        prefix = "base spec not found: " if problem.kind == "not_found" else ""
        raise ZooError(located.problem(("extends",), prefix + problem.message, "extends")) from None
    if str(base_file.resolve()) in chain:
        cycle = " -> ".join(FilePath(f).name for f in (*chain, str(base_file.resolve())))
        raise ZooError(located.problem(("extends",), f"extends cycle: {cycle}", "extends"))
    base = resolve_extends(read(base_file), read, find, chain)
    if not isinstance(base.data, dict):
        raise ZooError(
            located.problem(("extends",), f"base spec {ref!r} is not a mapping", "extends")
        )
    merged = Located(
        copy.deepcopy(base.data), located.file, dict(base.key_marks), dict(base.value_marks)
    )
    overlay = {k: v for k, v in data.items() if k != "extends"}
    _merge_mapping(merged, merged.data, overlay, located, ())
    return merged


def _take_marks(target: Located, source: Located, path: SpecPath) -> None:
    """``path`` now holds ``source``'s value: drop the base's marks below it, copy the source's."""
    n = len(path)
    for table, source_table in (
        (target.key_marks, source.key_marks),
        (target.value_marks, source.value_marks),
    ):
        for key in [k for k in table if k[:n] == path and len(k) > n]:
            del table[key]
        table.update({k: v for k, v in source_table.items() if k[:n] == path})


def _merge_mapping(
    target: Located, base: dict[Any, Any], overlay: dict[Any, Any], source: Located, path: SpecPath
) -> None:
    for key, value in overlay.items():
        child = (*path, key)
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            _merge_mapping(target, current, value, source, child)
            _take_key_mark(target, source, child)
        elif isinstance(value, dict) and isinstance(current, list):
            _patch_list(target, current, value, source, child)
            _take_key_mark(target, source, child)
        else:
            base[key] = copy.deepcopy(value)
            _take_marks(target, source, child)


def _take_key_mark(target: Located, source: Located, path: SpecPath) -> None:
    if path in source.key_marks:
        target.key_marks[path] = source.key_marks[path]


def _patch_list(
    target: Located, base: list[Any], patch: dict[Any, Any], source: Located, path: SpecPath
) -> None:
    for index, value in patch.items():
        where = (*path, index)
        if not isinstance(index, int) or isinstance(index, bool):
            raise ZooError(
                source.problem(
                    where,
                    f"{dotted(path)} is a list in the base spec: patch it by index ({{2: {{depth: 23}}}}) "
                    "or replace it with a list",
                    "extends",
                    at_key=True,
                )
            )
        if not -len(base) <= index < len(base):
            raise ZooError(
                source.problem(
                    where,
                    f"index {index} is out of range: the base list has {len(base)} items",
                    "extends",
                    at_key=True,
                )
            )
        position = index % len(base)
        if isinstance(value, dict) and isinstance(base[position], dict):
            # marks are kept under the index as written; normalize negative indices first
            if index < 0:
                source = _renumbered(source, where, (*path, position))
            _merge_mapping(target, base[position], value, source, (*path, position))
        else:
            base[position] = copy.deepcopy(value)
            _take_marks(target, _renumbered(source, where, (*path, position)), (*path, position))


def _renumbered(source: Located, old: SpecPath, new: SpecPath) -> Located:
    n = len(old)

    def move(table: dict[SpecPath, Any]) -> dict[SpecPath, Any]:
        return {(new + k[n:] if k[:n] == old else k): v for k, v in table.items()}

    return Located(source.data, source.file, move(source.key_marks), move(source.value_marks))


# --------------------------------------------------------------------------- --set overrides
def check_overrides(overrides: object) -> None:
    """Refuse (usage error) ``overrides`` that are not a list of ``PATH=VALUE`` strings: a bare
    string would otherwise be taken one character at a time."""
    if isinstance(overrides, str):
        hint = f"overrides=[{overrides!r}]"
    elif not isinstance(overrides, Sequence) or isinstance(overrides, bytes | bytearray):
        hint = "e.g. overrides=['stages.2.depth=23']"
    else:
        for i, item in enumerate(overrides):
            if not isinstance(item, str):
                raise _usage(
                    f"overrides[{i}] must be a string like 'stages.2.depth=23', "
                    f"got {type(item).__name__}"
                )
        return
    raise _usage(
        f"overrides must be a list of PATH=VALUE strings, {hint}; got {type(overrides).__name__}"
    )


def _usage(message: str, path: str = "", kind: str = "usage") -> ZooError:
    return ZooError(Problem(message, "--set", path=path, kind=kind), ExitCode.USAGE_ERROR)


def apply_overrides(located: Located, overrides: Sequence[str]) -> Located:
    """Apply ``a.b.2.c=value`` overrides in order; values are YAML scalars or flow collections
    (``null`` clears a field; an empty value is refused, as it is usually a slip).
    ``overrides`` were checked by :func:`check_overrides` before any file was read."""
    for text in overrides:
        dotted_path, sep, raw = text.partition("=")
        if not sep or not dotted_path.strip():
            raise _usage(f"expected PATH=VALUE, e.g. stages.2.depth=23; got {text!r}")
        value_doc = load_yaml(raw, f"--set {dotted_path}")
        if not value_doc.value_marks:  # no YAML node at all, not even `null`
            raise _usage(
                f"{text!r} has no value; write {dotted_path}=null to clear the field",
                dotted_path,
                "override",
            )
        path = tuple(
            # a list index has a few digits; a longer number is a (bad) key, not an int to convert
            int(p) if p.lstrip("-").isdigit() and len(p) <= 9 else p
            for p in dotted_path.strip().split(".")
        )
        _set(located, path, value_doc)
    return located


def _set(located: Located, path: SpecPath, value_doc: Located) -> None:
    def fail(message: str) -> ZooError:
        return _usage(message, dotted(path), "override")

    if not isinstance(located.data, dict):
        raise fail("the spec is not a mapping")
    # Every key the override creates or replaces is marked as the override's, so a problem in
    # any of them (`foo` in `foo.bar.baz=3` is an unknown field) points at the override.
    mark = ("--set", None, None)
    parent: Any = located.data
    for depth, key in enumerate(path[:-1]):
        here = dotted(path[: depth + 1])
        if isinstance(parent, dict):
            if key not in parent:
                parent[key] = {}
                located.key_marks[path[: depth + 1]] = mark  # type: ignore[assignment]
                located.value_marks[path[: depth + 1]] = mark  # type: ignore[assignment]
            parent = parent[key]
        elif isinstance(parent, list):
            if not isinstance(key, int) or not -len(parent) <= key < len(parent):
                raise fail(
                    f"no item {here}: the list {dotted(path[:depth])} has {len(parent)} items"
                )
            parent = parent[key]
        else:
            raise fail(
                f"{dotted(path[:depth])} is a {type(parent).__name__}, not a mapping or list"
            )
    last = path[-1]
    if isinstance(parent, list):
        if not isinstance(last, int) or not -len(parent) <= last < len(parent):
            raise fail(f"no such item: the list {dotted(path[:-1])} has {len(parent)} items")
        last = last % len(parent)
    elif not isinstance(parent, dict):
        raise fail(f"{dotted(path[:-1])} is a {type(parent).__name__}, not a mapping or list")
    parent[last] = value_doc.data
    full = (*path[:-1], last)
    located.value_marks = {k: v for k, v in located.value_marks.items() if k[: len(full)] != full}
    located.key_marks = {k: v for k, v in located.key_marks.items() if k[: len(full)] != full}
    located.key_marks[full] = mark  # type: ignore[assignment]
    located.value_marks[full] = mark  # type: ignore[assignment]
