"""Variants by inheritance (``extends:``) and command-line overrides (``--set a.b=c``).

Merge rules, applied to the plain data before validation:

- a **mapping** merges into the base mapping key by key (recursively);
- a **list** replaces the base list whole;
- a **mapping given where the base has a list** edits that list. Integer keys patch items by
  index, as a mapping merges (``stages: {2: {depth: 23}}`` changes the third stage's depth; ``-1``
  is the last item), and four keys change the list's shape::

      $insert: {5: [ITEM, ...]}   # these items go before base item 5
      $delete: [6, 11]            # or one index: $delete: 6
      $replace: {0: ITEM}         # the item as written: nothing is inherited from the old one
      $append: [ITEM, ...]        # these items go after the last one

  Every index names an item of the base list as its file writes it: the edits of one mapping
  apply together, not one after another, so deleting item 6 does not renumber item 8 and the
  order of the keys does not matter. An item is replaced or deleted at most once, and not also
  patched (two patches of one item merge in turn); inserting before an item goes with anything
  done to the item itself;
- anything else (a scalar, or a different kind of value) replaces the base value.

Every value keeps the position of the file it came from, so errors point into the right file.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Iterator, Sequence
from pathlib import Path as FilePath
from typing import Any

from zoo.errors import ExitCode, Problem, ZooError
from zoo.spec.yaml_loader import Located, Mark, SpecPath, dotted, load_yaml

MAX_EXTENDS_DEPTH = 16

LIST_EDITS = ("$insert", "$delete", "$replace", "$append")
"""The keys that edit a base list, beside index patches (see the module docstring)."""


def resolve_extends(located: Located, read: Any, find: Any, chain: Sequence[str] = ()) -> Located:
    """Resolve ``extends:`` recursively. ``read(path) -> Located`` and ``find(ref, relative_to)``
    are injected by the loader, so this module stays free of file-system policy."""
    data = located.data
    if not isinstance(data, dict) or "extends" not in data:
        # Without a base, a list edit would reach validation as a mapping where a list belongs
        # ("Input should be a valid list"), which does not say why.
        _refuse_edits(data, located, (), "this spec extends no base")
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
        if key in LIST_EDITS:
            where = dotted(path) if path else "the spec"
            raise ZooError(
                _problem(
                    source,
                    child,
                    f"{key} edits a list, but {where} is a mapping in the base spec; "
                    "give its fields instead",
                    at_key=True,
                )
            )
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict) and not _retyped(current, value):
            _merge_mapping(target, current, value, source, child)
            _take_key_mark(target, source, child)
        elif isinstance(value, dict) and isinstance(current, list):
            _patch_list(target, current, value, source, child)
            _take_key_mark(target, source, child)
        else:
            missing = key not in base
            what = "not in the base spec" if missing else f"{_kind(current)} in the base spec"
            _refuse_edits(value, source, child, f"{dotted(child)} is {what}")
            base[key] = copy.deepcopy(value)
            _take_marks(target, source, child)


def _retyped(base: dict[Any, Any], overlay: dict[Any, Any]) -> bool:
    """Whether ``overlay`` gives another ``type`` than ``base``: then it replaces the mapping
    whole, as the fields of one layer type or schedule mean nothing to another."""
    return "type" in overlay and "type" in base and overlay["type"] != base["type"]


def _take_key_mark(target: Located, source: Located, path: SpecPath) -> None:
    if path in source.key_marks:
        target.key_marks[path] = source.key_marks[path]


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    return names.get(type(value), f"a {type(value).__name__}")


def _path_text(path: SpecPath) -> str:
    """:func:`dotted`, with ``$`` keys written as they are (``stages.$delete.0``), where dotted
    quotes them as it quotes every key that is not a name."""
    return ".".join(
        p if isinstance(p, str) and p[:1] == "$" and p[1:].isidentifier() else dotted((p,))
        for p in path
    )


def _problem(located: Located, path: SpecPath, message: str, *, at_key: bool = False) -> Problem:
    file, line, col = located.position(path, at_key=at_key)
    return Problem(message, file, line, col, _path_text(path), "extends")


def _refuse_edits(value: Any, source: Located, path: SpecPath, reason: str) -> None:
    """Refuse a list edit anywhere in ``value``, a value taken as written (not merged into a base
    list): it would otherwise reach validation as an unknown field, or a mapping where a list
    belongs, without saying why. ``reason`` says why there is no base list."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key in LIST_EDITS:
                raise ZooError(
                    _problem(
                        source,
                        (*path, key),
                        f"{key} has no list to edit: {reason}; write the list itself",
                        at_key=True,
                    )
                )
            _refuse_edits(child, source, (*path, key), reason)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_edits(item, source, (*path, i), reason)


def _patch_list(
    target: Located, base: list[Any], patch: dict[Any, Any], source: Located, path: SpecPath
) -> None:
    """Apply ``patch`` (index patches and list edits) to ``base``, in place, and move the marks of
    ``target`` (the merged document) with the items."""
    edit = _ListEdit(base, source, path)
    for key, value in patch.items():
        edit.read(key, value)
    edit.apply(target)


_TAKEN_AS_WRITTEN = "items given by $insert, $replace and $append are taken as written"


class _ListEdit:
    """One mapping's edits of one base list: read and checked whole (indices in range, each item
    claimed once), then applied together, so every index names an item of the base list."""

    def __init__(self, base: list[Any], source: Located, path: SpecPath):
        self.base = base
        self.source = source
        self.path = path
        # base position -> (what was done, where it is written, whether that place is a key)
        self.claims: dict[int, tuple[str, SpecPath, bool]] = {}
        self.patches: list[tuple[int, int, Any]] = []  # (position, index as written, value)
        self.replaced: dict[int, tuple[SpecPath, Any]] = {}
        self.deleted: set[int] = set()
        self.inserted: dict[int, tuple[SpecPath, list[Any]]] = {}  # before base position
        self.appended: tuple[SpecPath, list[Any]] | None = None

    def error(self, where: SpecPath, message: str, *, at_key: bool = False) -> ZooError:
        return ZooError(_problem(self.source, where, message, at_key=at_key))

    def read(self, key: Any, value: Any) -> None:
        where = (*self.path, key)
        if isinstance(key, int) and not isinstance(key, bool):
            position = self.index(key, where, at_key=True)
            if value is None:  # JSON Merge Patch deletes with null; here it would be a null item
                raise self.error(
                    where, f"null is not an item; to delete it, write $delete: {key}", at_key=True
                )
            self.claim(position, "patched", where, at_key=True)
            self.patches.append((position, key, value))
        elif key == "$insert":
            self.read_insert(value, where)
        elif key == "$delete":
            self.read_delete(value, where)
        elif key == "$replace":
            self.read_replace(value, where)
        elif key == "$append":
            self.appended = (where, self.items(value, where, "$append: [ITEM, ...]"))
        elif isinstance(key, str) and key.startswith("$"):
            close = difflib.get_close_matches(key, LIST_EDITS, n=1)
            hint = (
                f"did you mean {close[0]}?" if close else "the edits are " + ", ".join(LIST_EDITS)
            )
            raise self.error(where, f"unknown list edit {key}; {hint}", at_key=True)
        else:
            raise self.error(
                where,
                f"{dotted(self.path)} is a list in the base spec: patch it by index "
                "({2: {depth: 23}}), edit it with $insert, $delete, $replace or $append, "
                "or replace it with a list",
                at_key=True,
            )

    def index(self, key: Any, where: SpecPath, *, at_key: bool, insert: bool = False) -> int:
        """The base position ``key`` names (``-1``: the last item)."""
        if not isinstance(key, int) or isinstance(key, bool):
            raise self.error(
                where,
                f"expected an index of the base list (an integer), got {key!r}",
                at_key=at_key,
            )
        n = len(self.base)
        if not -n <= key < n:
            message = f"index {key} is out of range: the base list has {n} items"
            if insert and key == n:
                message += "; $append adds items after the last one"
            else:
                message += " (indices name the base list's items, before any edit)"
            raise self.error(where, message, at_key=at_key)
        return key % n

    def claim(self, position: int, done: str, where: SpecPath, *, at_key: bool) -> None:
        """Mark base item ``position`` as patched, replaced or deleted. Patches merge, so two
        (``{1: ..., -1: ...}`` on two items) apply in turn; anything else twice is a conflict (an
        item deleted and patched, or replaced by ``0`` and ``-3`` on three items)."""
        if position in self.claims and not (done == self.claims[position][0] == "patched"):
            first, first_where, first_at_key = self.claims[position]
            raise self.error(
                where,
                f"item {position} of the base list is {first} by "
                f"{self.place(first_where, at_key=first_at_key)} and {done} here; "
                "an item is replaced or deleted once, and then not patched",
                at_key=at_key,
            )
        self.claims[position] = (done, where, at_key)

    def place(self, where: SpecPath, *, at_key: bool) -> str:
        _, line, _ = self.source.position(where, at_key=at_key)
        return _path_text(where) + (f" (line {line})" if line is not None else "")

    def items(self, value: Any, where: SpecPath, example: str) -> list[Any]:
        """``value`` as a non-empty list of new items, which hold no list edits themselves."""
        if not isinstance(value, list) or not value:
            got = "an empty list" if value == [] else _kind(value)
            hint = "; put the item in a list: [ITEM]" if isinstance(value, dict) else ""
            raise self.error(where, f"expected a list of items ({example}), got {got}{hint}")
        for k, item in enumerate(value):
            _refuse_edits(item, self.source, (*where, k), _TAKEN_AS_WRITTEN)
        return value

    def read_insert(self, value: Any, where: SpecPath) -> None:
        if not isinstance(value, dict) or not value:
            got = "an empty mapping" if value == {} else _kind(value)
            raise self.error(
                where,
                "$insert takes the base index to insert before and the items: "
                f"$insert: {{5: [ITEM, ...]}}; got {got}",
            )
        for key, items in value.items():
            at = (*where, key)
            position = self.index(key, at, at_key=True, insert=True)
            if position in self.inserted:
                first = self.place(self.inserted[position][0], at_key=True)
                raise self.error(
                    at,
                    f"items are inserted before item {position} by {first} already; "
                    "give them all in one list",
                    at_key=True,
                )
            self.inserted[position] = (at, self.items(items, at, "$insert: {5: [ITEM, ...]}"))

    def read_delete(self, value: Any, where: SpecPath) -> None:
        if isinstance(value, dict) or value == []:
            got = "an empty list" if value == [] else "a mapping"
            raise self.error(
                where, f"$delete takes a base index or a list of them ($delete: [6, 11]); got {got}"
            )
        indices = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for k, key in indices:
            at = where if k is None else (*where, k)
            position = self.index(key, at, at_key=False)
            self.claim(position, "deleted", at, at_key=False)
            self.deleted.add(position)

    def read_replace(self, value: Any, where: SpecPath) -> None:
        if not isinstance(value, dict) or not value:
            got = "an empty mapping" if value == {} else _kind(value)
            raise self.error(
                where,
                f"$replace takes base indices and their new items ($replace: {{0: ITEM}}); got {got}",
            )
        for key, item in value.items():
            at = (*where, key)
            position = self.index(key, at, at_key=True)
            self.claim(position, "replaced", at, at_key=True)
            _refuse_edits(item, self.source, at, _TAKEN_AS_WRITTEN)
            self.replaced[position] = (at, item)

    def apply(self, target: Located) -> None:
        for position, key, value in self.patches:
            where, here = (*self.path, key), (*self.path, position)
            # marks are kept under the index as written; normalize negative indices first
            source = _renumbered(self.source, where, here) if key < 0 else self.source
            current = self.base[position]
            if (
                isinstance(value, dict)
                and isinstance(current, dict)
                and not _retyped(current, value)
            ):
                _merge_mapping(target, current, value, source, here)
            elif isinstance(value, dict) and isinstance(current, list):
                _patch_list(target, current, value, source, here)
            else:
                what = f"item {position} of the base list is {_kind(current)}"
                _refuse_edits(value, source, here, what)
                self.base[position] = copy.deepcopy(value)
                _take_marks(target, source, here)
        if self.inserted or self.deleted or self.replaced or self.appended:
            self.reshape(target)

    def reshape(self, target: Located) -> None:
        """Build the new list, and move every mark below it to its item's new index: a base
        item's marks from its old index, a new item's from where this file wrote it."""
        n = len(self.path)
        tables = (target.key_marks, target.value_marks)
        old: dict[Any, list[tuple[int, SpecPath, Mark]]] = {}
        for t, table in enumerate(tables):
            below = [k for k in table if len(k) > n and k[:n] == self.path]
            for k in below:
                old.setdefault(k[n], []).append((t, k[n + 1 :], table.pop(k)))
        items: list[Any] = []

        def add(item: Any, marks: Any) -> None:
            for t, rest, mark in marks:
                tables[t][(*self.path, len(items), *rest)] = mark
            items.append(item)

        for position, item in enumerate(self.base):
            if position in self.inserted:
                at, new = self.inserted[position]
                for k, value in enumerate(new):
                    add(copy.deepcopy(value), self.written((*at, k)))
            if position in self.deleted:
                continue
            if position in self.replaced:
                at, value = self.replaced[position]
                add(copy.deepcopy(value), self.written(at))
            else:
                add(item, old.get(position, ()))
        if self.appended is not None:
            at, new = self.appended
            for k, value in enumerate(new):
                add(copy.deepcopy(value), self.written((*at, k)))
        self.base[:] = items

    def written(self, where: SpecPath) -> Iterator[tuple[int, SpecPath, Mark]]:
        """The marks of ``where`` and below in this file, relative to ``where``."""
        n = len(where)
        for t, table in enumerate((self.source.key_marks, self.source.value_marks)):
            for k, mark in table.items():
                if k[:n] == where:
                    yield t, k[n:], mark


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


def _usage(message: str, path: str = "", kind: str = "usage", option: str = "--set") -> ZooError:
    return ZooError(Problem(message, option, path=path, kind=kind), ExitCode.USAGE_ERROR)


def apply_overrides(located: Located, overrides: Sequence[str], option: str = "--set") -> Located:
    """Apply ``a.b.2.c=value`` overrides in order; values are YAML scalars or flow collections
    (``null`` clears a field; an empty value is refused, as it is usually a slip).
    ``overrides`` were checked by :func:`check_overrides` before any file was read. ``option``
    is where problems they cause are located (``--set``; a recipe's are ``--recipe-set``)."""
    for text in overrides:
        dotted_path, sep, raw = text.partition("=")
        if not sep or not dotted_path.strip():
            raise _usage(
                f"expected PATH=VALUE, e.g. stages.2.depth=23; got {text!r}", option=option
            )
        value_doc = load_yaml(raw, f"{option} {dotted_path}")
        if not value_doc.value_marks:  # no YAML node at all, not even `null`
            raise _usage(
                f"{text!r} has no value; write {dotted_path}=null to clear the field",
                dotted_path,
                "override",
                option,
            )
        path = tuple(
            # a list index has a few digits; a longer number is a (bad) key, not an int to convert
            int(p) if p.lstrip("-").isdigit() and len(p) <= 9 else p
            for p in dotted_path.strip().split(".")
        )
        _set(located, path, value_doc, option)
    return located


def _set(located: Located, path: SpecPath, value_doc: Located, option: str) -> None:
    def fail(message: str) -> ZooError:
        return _usage(message, dotted(path), "override", option)

    if not isinstance(located.data, dict):
        raise fail("the spec is not a mapping")
    # Every key the override creates or replaces is marked as the override's, so a problem in
    # any of them (`foo` in `foo.bar.baz=3` is an unknown field) points at the override.
    mark = (option, None, None)
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
    full = (*path[:-1], last)
    # The value's own marks, moved under `full`, all the override's: a problem inside it (an
    # index out of range) points at the override, as every other problem it causes does.
    source = Located(
        value_doc.data,
        option,
        {(*full, *k): mark for k in value_doc.key_marks},
        {(*full, *k): mark for k in value_doc.value_marks},
    )
    current = parent.get(last) if isinstance(parent, dict) else parent[last]
    try:
        if isinstance(current, list) and isinstance(value_doc.data, dict):
            # a mapping where the spec has a list edits the list, as it does in a variant file
            _patch_list(located, current, value_doc.data, source, full)
            return
        missing = isinstance(parent, dict) and last not in parent
        what = "not in the spec" if missing else f"{_kind(current)}, not a list"
        _refuse_edits(value_doc.data, source, full, f"{dotted(full)} is {what}")
    except ZooError as exc:  # the command line is wrong, not a file: a usage error
        problems = [dataclasses.replace(p, kind="override") for p in exc.problems]
        raise ZooError(problems, ExitCode.USAGE_ERROR) from None
    parent[last] = value_doc.data
    located.value_marks = {k: v for k, v in located.value_marks.items() if k[: len(full)] != full}
    located.key_marks = {k: v for k, v in located.key_marks.items() if k[: len(full)] != full}
    located.key_marks[full] = mark  # type: ignore[assignment]
    located.value_marks[full] = mark  # type: ignore[assignment]
