"""Find a spec (path or shipped name), read it, validate it, and locate every problem in it."""

from __future__ import annotations

import difflib
import os
import reprlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from zoo import registry
from zoo.errors import ExitCode, Problem, ZooError, ZooWarning, usage_error
from zoo.files import file_kind, open_regular
from zoo.spec.inherit import apply_overrides, check_overrides, resolve_extends
from zoo.spec.problems import Grammar, located_problems
from zoo.spec.yaml_loader import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    Located,
    SpecPath,
    decode,
    load_yaml,
)

if TYPE_CHECKING:
    # Imported where a spec is validated: building the schema of every type is most of the start-up
    # cost, and finding and reading specs (``zoo list``'s remembered summaries) needs none of it.
    from zoo.spec.schema import ModelSpec


def model_for_type(tag: str) -> type[BaseModel] | None:
    """The spec model of a ``type`` tag, built-in or registered by a plugin."""
    info = registry.get(tag)
    return info.model if info is not None else None


def known_types() -> list[str]:
    """Every valid ``type`` tag, sorted."""
    return registry.tags()


def shipped_dir(kind: str) -> Path:
    """The folder of the ``kind`` files that ship with zoo (``specs``, ``recipes``): inside the
    installed package, or the repo's own."""
    package = Path(__file__).resolve().parents[1]
    installed = package / kind
    return installed if installed.is_dir() else package.parent / kind


def shipped_specs_dir() -> Path:
    """The folder of the specs that ship with zoo: inside the installed package, or the repo's specs/."""
    return shipped_dir("specs")


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


SPEC_PATH_VARIABLE = "ZOO_SPEC_PATH"
"""Folders of the user's specs, separated by ``os.pathsep`` (``:``; ``;`` on Windows), searched
after the current folder."""

SHIPPED = "shipped"
"""The ``source`` of a shipped spec (a user spec's source is the folder it was found in)."""


@dataclass(frozen=True)
class SpecEntry:
    """A spec found by name: ``name`` (the file name less its suffix), ``path``, and ``source``,
    ``"shipped"`` or the search-path folder as written (``.`` for the current folder)."""

    name: str
    path: Path
    source: str

    @property
    def shipped(self) -> bool:
        return self.source == SHIPPED


def spec_search_path() -> list[tuple[str, Path]]:
    """The folders searched for a spec name before the shipped specs, first match wins: the current
    folder (``.``), then each ``ZOO_SPEC_PATH`` folder in order (empty entries and repeats of an
    earlier folder skipped). Each as (what the user wrote, the folder)."""
    folders = [(".", Path())]
    for entry in os.environ.get(SPEC_PATH_VARIABLE, "").split(os.pathsep):
        if entry.strip():
            folders.append((entry, Path(os.path.expanduser(entry))))
    # the shipped folder reached as a user folder (zoo run inside specs/) is still "shipped"
    seen = {os.path.realpath(shipped_specs_dir())}
    unique = []
    for written, folder in folders:
        key = os.path.realpath(folder)
        if key not in seen:
            seen.add(key)
            unique.append((written, folder))
    return unique


def _named_in(folder: Path, name: str) -> Path | None:
    """``folder/name.yaml`` (or ``.yml``) when it exists; anything there but a spec file is refused."""
    for suffix in SPEC_SUFFIXES:
        found = _existing_spec_file(folder / f"{name}{suffix}")
        if found is not None:
            return found
    return None


def _candidates(name: str, skip: str | None = None) -> list[SpecEntry]:
    """Every spec file called ``name``, in the order of the rule (the search path, then the
    shipped specs); ``skip``: a resolved file to pass over (the spec that extends ``name``)."""
    found: list[SpecEntry] = []
    seen = {skip} if skip else set()
    for written, folder in spec_search_path():
        path = _named_in(folder, name)
        if path is not None and os.path.realpath(path) not in seen:
            seen.add(os.path.realpath(path))
            found.append(SpecEntry(name, path, written))
    shipped = shipped_specs_dir() / f"{name}.yaml"
    if shipped.is_file() and os.path.realpath(shipped) not in seen:
        found.append(SpecEntry(name, shipped, SHIPPED))
    return found


def _warn_shadowing(entries: Sequence[SpecEntry]) -> None:
    """A user spec that hides a shipped one (or an earlier folder's that hides a later one's) is
    reported, so that `zoo build resnet50` never builds someone's file unannounced."""
    if len(entries) < 2:
        return
    used, hidden = entries[0], entries[1]
    other = "the shipped spec" if hidden.shipped else str(hidden.path)
    problem = Problem(
        f"the name {used.name!r} means this file, not {other}: user specs come first (the "
        f"current folder, then {SPEC_PATH_VARIABLE}); rename this file to reach the other one",
        str(used.path),
        kind="shadowed",
    )
    warnings.warn(ZooWarning(problem), stacklevel=4)


def _every_entry() -> list[SpecEntry]:
    """Every ``*.yaml``/``*.yml`` file of the search path's folders (hidden ones left out), then
    every shipped spec, in the order of the rule; a name may come more than once."""
    entries = []
    for written, folder in spec_search_path():
        try:
            files = sorted(folder.iterdir())
        except OSError:  # a ZOO_SPEC_PATH folder that is missing or unreadable holds no spec
            continue
        entries += [
            SpecEntry(path.stem, path, written)
            for path in files
            if not path.name.startswith(".") and _has_spec_suffix(path) and path.is_file()
        ]
    entries += [SpecEntry(p.stem, p, SHIPPED) for p in sorted(shipped_specs_dir().glob("*.yaml"))]
    return entries


def _first_of_each(entries: Sequence[SpecEntry]) -> list[SpecEntry]:
    first: dict[str, SpecEntry] = {}
    for entry in entries:
        first.setdefault(entry.name, entry)
    return sorted(first.values(), key=lambda e: e.name)


def spec_names() -> list[SpecEntry]:
    """Every spec reachable by name, one per name (the one the rule picks), sorted by name.
    Nothing is read: for names to complete, and "did you mean" hints."""
    return _first_of_each(_every_entry())


SPEC_KEYS = ("input", "extends", "stem", "stages", "head")
"""A YAML file on the search path is listed as a spec when its top level has one of these."""


def is_spec_file(path: Path) -> bool | None:
    """Whether a YAML file found on the search path is meant as a spec: a mapping with one of a
    spec's own fields (:data:`SPEC_KEYS`), so the other YAML files of a folder (a CI config, a
    docker-compose.yaml) are passed over. None: it cannot be read or parsed, so it cannot tell."""
    try:
        data = read_spec_file(path).data
    except ZooError:
        return None
    return isinstance(data, dict) and any(key in data for key in SPEC_KEYS)


def catalogue() -> tuple[list[SpecEntry], list[Path]]:
    """The specs ``zoo list`` and ``zoo bench --all`` show, sorted by name: every shipped spec and
    every user spec on the search path (see :func:`spec_names`, :func:`is_spec_file`); and the user
    YAML files left out because they do not even parse (``zoo validate FILE`` says why)."""
    kept, unreadable = [], []
    for entry in _every_entry():
        meant = True if entry.shipped else is_spec_file(entry.path)
        if meant is None:
            unreadable.append(entry.path)
        elif meant:
            kept.append(entry)
    return _first_of_each(kept), unreadable


def _locate(ref: str, folder: Path, skip: str | None = None) -> Path:
    """``ref`` as a spec name (a bare word: see :func:`find_named`), else as a spec file's path
    from ``folder``. An ``extends:`` name is looked for in the extending file's ``folder`` first;
    ``skip`` (a resolved path) is the extending file itself, which a name never stands for."""
    path = folder / ref
    bare = not ("/" in ref or "\\" in ref or _has_spec_suffix(Path(ref)))
    if bare:  # a name: never a file without a .yaml suffix
        # a sibling of the extending file first, unannounced (as a relative import would be):
        # so a shipped spec's base is always the shipped one, whatever folder zoo runs in
        sibling = _named_in(folder, ref) if str(folder) not in ("", ".") else None
        if sibling is not None and os.path.realpath(sibling) != skip:
            return sibling
        entries = _candidates(ref, skip)
        if entries:
            _warn_shadowing(entries)
            return entries[0].path
    found = _existing_spec_file(path)  # refuses a file that is there but no spec (secret.txt)
    if found is not None:
        return found
    names = [e.name for e in spec_names()]
    hint = difflib.get_close_matches(Path(ref).stem, names, n=1)
    if bare:
        message = f"no such file or shipped spec: {ref!r}"
        searched = [w if w != "." else "the current folder" for w, _ in spec_search_path()]
        message += f" (nor {ref}.yaml in {', '.join(searched)})" if searched else ""
    else:
        message = f"no such file: {path}"
    message += f"; did you mean {hint[0]!r}?" if hint else "; run `zoo list` for the spec names"
    raise _io_error(message, "not_found")


def find_named(name: str) -> SpecEntry | None:
    """The spec ``name`` stands for: the first ``name.yaml`` (or ``.yml``) in the current folder,
    then in each ``ZOO_SPEC_PATH`` folder, then among the shipped specs; None when there is none.
    A user spec that shadows another is reported as a :class:`ZooWarning` (kind ``shadowed``)."""
    entries = _candidates(name)
    _warn_shadowing(entries)
    return entries[0] if entries else None


def find_spec(path_or_name: str | os.PathLike[str]) -> Path:
    """Resolve a spec argument: a spec name (see :func:`find_named`), else the path of a regular
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
        from zoo.spec.schema import ModelSpec

        spec = ModelSpec.model_validate(located.data)
    except ValidationError as exc:
        tags = known_types()
        grammar = Grammar(ModelSpec, model_for_type, lambda path: tags, also_members=("plugin",))
        raise ZooError(located_problems(exc, located, grammar)) from None
    spec._located = located
    return spec


class _Bases:
    """``find`` and ``read`` for :func:`resolve_extends`. An ``extends:`` target is a spec name
    (a sibling of the extending file, then as :func:`find_named` finds it, never the extending file
    itself: ``./resnet50.yaml`` can extend ``resnet50``, the shipped one), else a spec file's path
    relative to the extending file. An absolute path is refused: a base is named by where it lies
    from its child."""

    def __init__(self, top: Located, locate: Callable[..., Path]):
        # the chain is resolved one file at a time (find its base, read it, then find that one's
        # base), so the file read last is the one whose extends: is looked up next
        self.extending = top.file
        self.locate = locate  # (ref, folder, skip=the extending file) -> the base's path

    def read(self, path: Path) -> Located:
        located = _read_base(path)
        self.extending = str(path)
        return located

    def find(self, ref: str, folder: Path) -> Path:
        if Path(ref).is_absolute():
            raise _io_error(f"{ref} is an absolute path; give a path relative to this file")
        return self.locate(ref, folder, skip=os.path.realpath(self.extending))


def resolve_chain(
    located: Located,
    overrides: Sequence[str] = (),
    locate: Callable[..., Path] | None = None,
    option: str = "--set",
) -> Located:
    """``located`` with its ``extends:`` chain merged in and ``overrides`` applied; bases are
    found by ``locate(ref, folder, skip=...)`` (default: as specs are found; recipes pass theirs).
    Problems the overrides cause are located at ``option`` (the command-line option they came
    from)."""
    bases = _Bases(located, locate or _locate)
    return apply_overrides(resolve_extends(located, bases.read, bases.find), overrides, option)


SpecSource = str | os.PathLike[str] | Mapping[str, Any]
"""A spec as ``load_spec`` takes it: a YAML path, a shipped spec name, or the spec's data."""


def resolve(source: SpecSource, overrides: Sequence[str] = ()) -> Located:
    """Read a spec and resolve its ``extends:`` chain and ``--set`` overrides: plain located data.
    A mapping is read like a file's data; its ``extends:`` is relative to the current folder."""
    check_overrides(overrides)
    located = read_source(
        source, find_spec, "a spec is a YAML path, a shipped spec name or a mapping"
    )
    return resolve_chain(located, overrides)


def read_source(source: Any, find: Callable[[Any], Path], accepted: str) -> Located:
    """The located data of a document given as a mapping (read like a file's data) or as a path
    or shipped name (found by ``find``); anything else is a usage error: ``accepted``, got X."""
    if isinstance(source, Mapping):
        return from_mapping(source)
    if isinstance(source, str | os.PathLike):
        return read_spec_file(find(source))
    raise ZooError(
        Problem(f"{accepted}, got {type(source).__name__}", kind="usage"), ExitCode.USAGE_ERROR
    )


def load_spec(source: SpecSource, overrides: Sequence[str] = ()) -> ModelSpec:
    """Load a spec (a YAML path, a shipped spec name, or its data as a mapping), resolve
    ``extends:`` and ``overrides`` (``["stages.2.depth=23"]``), and validate it.
    Raises :class:`ZooError` on bad input, arguments of the wrong type included."""
    return validate(resolve(source, overrides))


SpecLike = Union["ModelSpec", SpecSource]  # a string: ModelSpec is imported lazily
"""What ``build`` and ``trace`` accept as a spec: a spec object, or what :func:`load_spec` reads (a
YAML path or shipped name, or the spec's data as a mapping)."""


def spec_argument(value: Any, function: str, also: str = "") -> ModelSpec:
    """The spec that the ``spec_or_path`` argument of ``function`` names (see :data:`SpecLike`);
    ``also`` names what else the function accepts (checked by the caller)."""
    from zoo.spec.schema import ModelSpec

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
