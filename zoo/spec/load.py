"""Find a spec (path or shipped name), read it, validate it, and locate every problem in it."""

from __future__ import annotations

import difflib
import os
import reprlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from zoo import registry
from zoo.errors import ExitCode, Problem, ZooError, usage_error
from zoo.files import file_kind, open_regular
from zoo.spec.inherit import apply_overrides, check_overrides, resolve_extends
from zoo.spec.schema import ModelSpec
from zoo.spec.yaml_loader import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    Located,
    SpecPath,
    decode,
    load_yaml,
)


def model_for_type(tag: str) -> type[BaseModel] | None:
    """The spec model of a ``type`` tag, built-in or registered by a plugin."""
    info = registry.get(tag)
    return info.model if info is not None else None


def known_types() -> list[str]:
    """Every valid ``type`` tag, sorted."""
    return registry.tags()


def shipped_specs_dir() -> Path:
    """The folder of the specs that ship with zoo: inside the installed package, or the repo's specs/."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "specs"
    return installed if installed.is_dir() else package.parent / "specs"


def shipped_spec_names() -> list[str]:
    """Names of the shipped specs, sorted."""
    return sorted(p.stem for p in shipped_specs_dir().glob("*.yaml"))


SPEC_SUFFIXES = (".yaml", ".yml")
"""A spec file's name ends in one of these (any case): zoo reads no other file."""


def _io_error(message: str, kind: str = "io", file: str | None = None) -> ZooError:
    return ZooError(Problem(message, file, kind=kind), ExitCode.IO_ERROR)


def _refuse_irregular(path: Path, mode: int) -> None:
    """Refuse anything but a regular file, saying what it is: reading a FIFO blocks, a device
    never ends, and neither is a spec."""
    kind = file_kind(mode)
    if kind is not None:
        raise _io_error(f"{path} is {kind}; give a spec's .yaml file")


def _has_spec_suffix(path: Path) -> bool:
    return path.suffix.lower() in SPEC_SUFFIXES


def _existing_spec_file(path: Path) -> Path | None:
    """``path`` when it is a regular .yaml/.yml file (a symlink to one too), None when nothing is
    there; anything else is refused (exit 3) without being opened, so its contents never show."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: a NUL in the name
        return None
    except OSError as exc:
        raise _io_error(f"cannot read {path}: {exc.strerror or exc}") from None
    _refuse_irregular(path, info.st_mode)
    if not _has_spec_suffix(path):
        raise _io_error(f"{path} is not a .yaml/.yml file; a spec is a YAML file named *.yaml")
    real = Path(os.path.realpath(path))
    if not _has_spec_suffix(real):
        raise _io_error(f"{path} links to {real}, which is not a .yaml/.yml file; give a spec")
    return path


def _locate(ref: str, folder: Path) -> Path:
    """``ref`` as a shipped spec name (a bare word), else as a spec file's path from ``folder``."""
    path = folder / ref
    bare = not ("/" in ref or "\\" in ref or _has_spec_suffix(Path(ref)))
    if bare:  # a name: never a local file, which needs a .yaml suffix anyway
        shipped = shipped_specs_dir() / f"{ref}.yaml"
        if shipped.is_file():
            return shipped
    found = _existing_spec_file(path)
    if found is not None:
        return found
    hint = difflib.get_close_matches(Path(ref).stem, shipped_spec_names(), n=1)
    message = f"no such file or shipped spec: {ref!r}" if bare else f"no such file: {path}"
    message += f"; did you mean {hint[0]!r}?" if hint else "; run `zoo list` for the shipped specs"
    raise _io_error(message, "not_found")


def find_spec(path_or_name: str | os.PathLike[str]) -> Path:
    """Resolve a spec argument: the name of a shipped spec, else the path of a regular
    ``.yaml``/``.yml`` file. Nothing is opened. Raises :class:`ZooError`: exit 2 when the
    argument is blank, 3 when there is no such spec or the file is not one."""
    text = os.fspath(path_or_name)
    if not text.strip():  # not the current directory: nothing was given
        raise ZooError(
            Problem(
                "no spec given: name a shipped spec (`zoo list`) or a .yaml file", kind="usage"
            ),
            ExitCode.USAGE_ERROR,
        )
    return _locate(text, Path())


_BASES: dict[tuple[str, int, int, int], Located] = {}
"""Bases read by ``extends:`` in this process, by path, inode, size and modification time: many
specs extend one base (four shipped variants extend resnet50), and a changed file is read anew.
A base is never changed by merging (the merge copies it)."""


def _read_base(path: Path) -> Located:
    try:
        info = os.stat(path)
    except OSError:
        return read_spec_file(path)  # reports what is wrong
    key = (str(path.resolve()), info.st_ino, info.st_size, info.st_mtime_ns)
    if key not in _BASES:
        _BASES[key] = read_spec_file(path)
    return _BASES[key]


def read_spec_file(path: Path) -> Located:
    """Read and parse a spec file: a regular file (checked before it is opened, and again once it
    is), of at most ``MAX_BYTES`` (no more is ever read), in UTF-8."""
    too_large = _io_error(
        f"file is larger than {MAX_BYTES} bytes; is it really a spec?", file=str(path)
    )

    def check(info: os.stat_result) -> None:
        _refuse_irregular(path, info.st_mode)
        if info.st_size > MAX_BYTES:
            raise too_large

    try:
        with open_regular(path, check) as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise _io_error(f"cannot read the file: {exc.strerror or exc}", file=str(path)) from None
    if len(data) > MAX_BYTES:  # the size may lie (/proc) or grow after the check
        raise too_large
    return load_yaml(decode(data, str(path)), str(path))


MAPPING_FILE = "<dict>"
"""The file name problems in a spec given as a mapping carry (they have no line)."""


class _PlainCopy:
    """A copy of a spec given as a mapping, as the plain data a YAML file gives: mappings with
    name or index keys, lists, strings, numbers, booleans and null; refused (located by path)
    when it holds anything else, contains itself, or is too deep or too large."""

    def __init__(self) -> None:
        self.located = Located(None, MAPPING_FILE)
        self.nodes = 0
        self.open: set[int] = set()  # ids of the collections being copied around the current value

    def copy(self, value: Any, path: SpecPath) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self._error(path, f"the mapping has more than {MAX_NODES} values")
        if value is None or isinstance(value, str | int | float):  # bool is an int
            return value
        if id(value) in self.open:
            raise self._error(path, "the mapping contains itself; a spec is a tree of values")
        if len(path) > MAX_DEPTH:
            raise self._error(path, f"nesting deeper than {MAX_DEPTH} levels")
        self.open.add(id(value))
        if isinstance(value, Mapping):
            copied: Any = {
                self._key(key, path): self.copy(v, (*path, key)) for key, v in value.items()
            }
        elif isinstance(value, list | tuple):
            copied = [self.copy(item, (*path, i)) for i, item in enumerate(value)]
        else:
            raise self._error(
                path,
                "a spec holds mappings, lists, strings, numbers, booleans and null, "
                f"not a {type(value).__name__}",
            )
        self.open.discard(id(value))
        return copied

    def _key(self, key: Any, path: SpecPath) -> str | int:
        if isinstance(key, str) or (isinstance(key, int) and not isinstance(key, bool)):
            return key
        raise self._error(
            path, f"a key must be a name or a list index, not {key!r} (a {type(key).__name__})"
        )

    def _error(self, path: SpecPath, message: str) -> ZooError:
        return ZooError(self.located.problem(path, message, "type"))


def from_mapping(data: Mapping[Any, Any]) -> Located:
    """A spec given as a mapping, checked and copied like the data of a file (named ``<dict>``);
    the caller's mapping is never changed."""
    copier = _PlainCopy()
    copier.located.data = copier.copy(data, ())
    return copier.located


def _names_unknown_type(data: Any) -> bool:
    """Whether some mapping in ``data`` has a ``type`` no registered type has."""
    if isinstance(data, dict):
        tag = data.get("type")
        if isinstance(tag, str) and registry.get(tag) is None:
            return True
        return any(_names_unknown_type(value) for value in data.values())
    if isinstance(data, list):
        return any(_names_unknown_type(item) for item in data)
    return False


def validate(located: Located) -> ModelSpec:
    """Validate located data against :class:`ModelSpec`; every problem is reported with its position."""
    if not isinstance(located.data, dict):
        got = "an empty file" if located.data is None else type(located.data).__name__
        raise ZooError(
            located.problem(
                (), f"a spec must be a mapping (name, input, stem, stages, head), got {got}", "type"
            )
        )
    if _names_unknown_type(located.data):
        registry.load_entry_points()  # installed packages may define it (once, when first needed)
    try:
        spec = ModelSpec.model_validate(located.data)
    except ValidationError as exc:
        raise ZooError(_problems(exc, located)) from None
    spec._located = located
    return spec


def _find_base(ref: str, folder: Path) -> Path:
    """An ``extends:`` target: a shipped spec name, else a spec file's path relative to the
    extending file. An absolute path is refused: a base is named by where it lies from its child."""
    if Path(ref).is_absolute():
        raise _io_error(f"{ref} is an absolute path; give a path relative to this file")
    return _locate(ref, folder)


SpecSource = str | os.PathLike[str] | Mapping[str, Any]
"""A spec as ``load_spec`` takes it: a YAML path, a shipped spec name, or the spec's data."""


def resolve(source: SpecSource, overrides: Sequence[str] = ()) -> Located:
    """Read a spec and resolve its ``extends:`` chain and ``--set`` overrides: plain located data.
    A mapping is read like a file's data; its ``extends:`` is relative to the current folder."""
    check_overrides(overrides)
    if isinstance(source, Mapping):
        located = from_mapping(source)
    elif isinstance(source, str | os.PathLike):
        located = read_spec_file(find_spec(source))
    else:
        raise ZooError(
            Problem(
                "a spec is a YAML path, a shipped spec name or a mapping, "
                f"got {type(source).__name__}",
                kind="usage",
            ),
            ExitCode.USAGE_ERROR,
        )
    located = resolve_extends(located, _read_base, _find_base)
    return apply_overrides(located, overrides)


def load_spec(source: SpecSource, overrides: Sequence[str] = ()) -> ModelSpec:
    """Load a spec (a YAML path, a shipped spec name, or its data as a mapping), resolve
    ``extends:`` and ``overrides`` (``["stages.2.depth=23"]``), and validate it.
    Raises :class:`ZooError` on bad input, arguments of the wrong type included."""
    return validate(resolve(source, overrides))


SpecLike = ModelSpec | SpecSource
"""What ``build`` and ``trace`` accept as a spec: a spec object, or what :func:`load_spec` reads (a
YAML path or shipped name, or the spec's data as a mapping)."""


def spec_argument(value: Any, function: str, also: str = "") -> ModelSpec:
    """The spec that the ``spec_or_path`` argument of ``function`` names (see :data:`SpecLike`);
    ``also`` names what else the function accepts (checked by the caller)."""
    if isinstance(value, ModelSpec):
        return value
    if isinstance(value, str | os.PathLike | Mapping):
        return load_spec(value)
    raise usage_error(
        f"{function}() takes a ModelSpec, a spec file path or shipped name, or a mapping{also}, "
        f"got {reprlib.repr(value)}"
    )


class _PlainDumper(yaml.SafeDumper):
    """Writes merged data without anchors/aliases (merges share objects; readers want them inline)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def resolved_yaml(located: Located, data: Any = None) -> str:
    """The fully resolved spec as YAML: no ``extends``, every inherited value written out
    (``data``: the spec's data in another form, e.g. expanded, instead of the file's)."""
    header = "# yaml-language-server: $schema=https://zoo.invalid/schemas/zoo-spec.schema.json\n"
    header += f"# resolved from {located.file}\n"
    body = yaml.dump(
        located.data if data is None else data,
        Dumper=_PlainDumper,
        sort_keys=False,
        default_flow_style=None,
        width=100,
    )
    return header + body


# --------------------------------------------------------------------------- pydantic -> Problem
def _has_child(data: Any, key: Any) -> bool:
    """``data[key]`` exists: a mapping's key or a list's index (pydantic's ``loc`` also holds the
    names of union members it tried, which are neither)."""
    if isinstance(data, dict):
        return key in data
    return isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data)


def _strip_tags(loc: tuple[Any, ...], data: Any) -> tuple[tuple[str | int, ...], Any, Any]:
    """Drop pydantic's union-member components from ``loc``; return (path, parent data, data at path)."""
    path: list[str | int] = []
    parent, current = None, data
    for item in loc:
        if _has_child(current, item):
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
    if tried_sequence:  # pydantic went inside, so the input was a sequence, unless refused whole
        return error["type"] not in ("tuple_type", "list_type")
    return not isinstance(error["input"], list | tuple)


def _scalar_or_sequence_union(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...] | None:
    """The ``loc`` of the field when ``loc`` goes through a member of a scalar-or-sequence union
    (``kernel: int | [int, int]``): pydantic names the member tried right after the field, where the
    data holds a scalar or a list, not a mapping. ``None`` for errors of any other field."""
    current = data
    for n, item in enumerate(loc):
        if _has_child(current, item):
            current = current[item]
        elif isinstance(item, str) and not isinstance(current, dict):
            return loc[:n]
        elif not isinstance(current, dict) or item in current:
            return None
    return None


def _problems(exc: ValidationError, located: Located) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[Any, ...]] = set()
    errors = exc.errors(include_url=False)
    # `kernel: [true, 3]` fails both members of `int | [int, int]`; only the errors of the member
    # that fits the kind of value written (here the pair's) say what is wrong
    unions = [_scalar_or_sequence_union(e["loc"], located.data) for e in errors]
    fitted = {u for u, e in zip(unions, errors, strict=True) if u and _union_member_fits(e)}
    errors = [
        e for u, e in zip(unions, errors, strict=True) if u not in fitted or _union_member_fits(e)
    ]
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
    # in the order they are written (stable: one place keeps its order); no line goes last
    problems.sort(key=lambda p: (p.file or "", p.line is None, p.line or 0, p.column or 0))
    return problems
