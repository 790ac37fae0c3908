"""YAML text -> plain data plus the ``line:col`` of every key and value.

Safe by construction: only :class:`yaml.SafeLoader` tags are accepted (``!!python/...`` is an
error), duplicate keys are errors, and scalars follow the YAML 1.2 core schema exactly, not
PyYAML's YAML 1.1: ``1e-5`` is a float, ``010`` is 10, ``0o10`` is 8, ``0x10`` is 16, and
``on``/``yes``/``1:30``/``1_000``/``2024-01-31`` are strings. Keys are names (strings) or list
indices (integers). Documents too large, too deep, recursive or with too many nodes (alias bombs)
are refused before they are expanded, each at its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from zoo.errors import Problem, ZooError

SpecPath = tuple[str | int, ...]  # a place in the spec's data: ("stages", 2, "depth")
Mark = tuple[str, int, int]  # file, 1-based line, 1-based column

MAX_BYTES = 1_000_000  # shipped specs are ~1 KB; a megabyte of YAML is not a model spec
MAX_NODES = 100_000  # counted after alias expansion, so a "billion laughs" stops here
MAX_DEPTH = 64


_MERGE = "tag:yaml.org,2002:merge"
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")

# The YAML 1.2 core schema, in the order it is tried: null, bool, int, float. Anything else is a
# string: YAML 1.1's yes/no/on/off, 010 as octal, 1:30 as 90, 1_000, 0b11 and timestamps included.
_CORE_SCHEMA = (
    ("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    ("tag:yaml.org,2002:int", _INT, list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        re.compile(
            r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
            re.X,
        ),
        list("-+0123456789."),
    ),
)


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core schema (plus ``<<`` merge keys) and a nesting limit
    checked while composing, so deep nesting is refused at its line, before Python's stack runs out."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0  # collections open around the node being composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self._depth > MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nesting deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """A YAML 1.2 core integer: decimal (leading zeros allowed), ``0o`` octal or ``0x`` hex."""
    text = loader.construct_scalar(node)
    if not _INT.match(text):  # reachable through an explicit tag: `!!int 1_000`
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not an integer (YAML 1.2: 12, 0o14 or 0xC)", node.start_mark
        )
    base = {"0o": 8, "0x": 16}.get(text[:2], 10)
    try:
        return int(text[2:] if base != 10 else text, base)
    except ValueError:  # more digits than Python converts (4,300): no size is anywhere near
        raise yaml.constructor.ConstructorError(
            None, None, f"an integer of {len(text):,} digits is too long", node.start_mark
        ) from None


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag == _MERGE]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, _regexp, _first in _CORE_SCHEMA:
    _SpecLoader.add_implicit_resolver(_tag, _regexp, _first)
_SpecLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


_CSpecLoader: type | None = None
if getattr(yaml, "__with_libyaml__", False):

    class _CSpecLoader(yaml.CSafeLoader):  # type: ignore[no-redef]
        """The same schema on libyaml's parser: ten times faster, used for documents that parse
        cleanly (see :func:`_fast_load`)."""

    _CSpecLoader.yaml_implicit_resolvers = _SpecLoader.yaml_implicit_resolvers
    _CSpecLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)

_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
# libyaml composes nested collections by C recursion: tens of thousands of levels (a 100 KB
# `[[[...` or `- - - ...`) overflow the C stack, where no Python check can stop it. Every
# collection starts at one of these characters, so their count bounds the nesting; past the bound
# (never reached by a real spec: the shipped ones have at most a few hundred) PyYAML reads the
# text, and refuses nesting past MAX_DEPTH at its line.
_C_SAFE_OPENERS = 10_000


def _openers(text: str) -> int:
    return sum(text.count(c) for c in "[{-:?")


def _fast_load(text: str, located: Located) -> bool:
    """Build ``located`` from ``text`` with libyaml's parser, when it is there and the document is
    clean. Anything unusual (a parse error, a character PyYAML refuses, nesting or size past the
    limits, a duplicate key) returns False, and the pure-Python loader reads the text again to
    report the problem as it always does; so libyaml only ever speeds up documents that are fine."""
    if _CSpecLoader is None or _NON_PRINTABLE.search(text) or _openers(text) > _C_SAFE_OPENERS:
        return False
    loader = _CSpecLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            located.data = _Builder(loader, located).build(node, ())
    except (yaml.YAMLError, ZooError, RecursionError):
        located.data = None
        located.key_marks.clear()
        located.value_marks.clear()
        return False
    finally:
        loader.dispose()
    return True


@dataclass
class Located:
    """Plain data read from YAML, with the position of every key and value in it.

    After ``extends:`` is resolved, one Located holds data from several files: each mark names its
    own file, so an error in an inherited field points into the base spec.
    """

    data: Any
    file: str
    key_marks: dict[SpecPath, Mark] = field(default_factory=dict)
    value_marks: dict[SpecPath, Mark] = field(default_factory=dict)

    def position(
        self, path: SpecPath, *, at_key: bool = False
    ) -> tuple[str, int | None, int | None]:
        """``(file, line, col)`` of ``path`` (its key or its value), else of its nearest ancestor."""
        marks = (self.key_marks, self.value_marks) if at_key else (self.value_marks, self.key_marks)
        for n in range(len(path), -1, -1):
            for table in marks:
                if path[:n] in table:
                    return table[path[:n]]
        return self.file, None, None

    def problem(self, path: SpecPath, message: str, kind: str, *, at_key: bool = False) -> Problem:
        file, line, col = self.position(path, at_key=at_key)
        return Problem(message, file, line, col, dotted(path), kind)


def dotted(path: SpecPath) -> str:
    """``("stages", 2, "depth")`` -> ``"stages.2.depth"``; odd keys (spaces, dots) are quoted."""
    return ".".join(p if isinstance(p, str) and p.isidentifier() else _odd_key(p) for p in path)


def _odd_key(key: object) -> str:
    text = str(key)
    return text if isinstance(key, int) or text.replace("-", "").isalnum() else repr(text)


def _line_col(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


_PLAIN_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _key_kind(key_node: yaml.Node, key: Any) -> str | None:
    """What a mapping key is when it is not a name (a string) or a list index (an integer)."""
    if isinstance(key_node, yaml.MappingNode):
        return "a mapping"
    if isinstance(key_node, yaml.SequenceNode):
        return "a list"
    if isinstance(key, str) or (isinstance(key, int) and not isinstance(key, bool)):
        return None
    what = {bool: "a boolean", float: "a number", type(None): "null"}.get(type(key))
    return f"{what} ({key_node.value or '~'})" if what else f"a {type(key).__name__}"


class _Builder:
    def __init__(self, loader: _SpecLoader, located: Located):
        self.loader = loader
        self.located = located
        self.nodes = 0
        self.open: set[int] = set()  # ids of the collections being built around the current node

    def build(self, node: yaml.Node, path: SpecPath) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ZooError(
                self.located.problem(
                    path, f"document has more than {MAX_NODES} nodes (alias bomb?)", "yaml"
                )
            )
        if id(node) in self.open:  # `x: &x [*x]`: the data would contain itself
            raise ZooError(
                self.located.problem(
                    path,
                    "recursive alias: an anchor is used inside its own value; copy the values instead",
                    "yaml",
                    at_key=True,
                )
            )
        if len(path) > MAX_DEPTH:  # aliases and merges nest deeper than the text does
            raise ZooError(
                self.located.problem(path, f"nesting deeper than {MAX_DEPTH} levels", "yaml")
            )
        self.located.value_marks.setdefault(path, (self.located.file, *_line_col(node)))
        if isinstance(node, yaml.ScalarNode):
            return self.loader.construct_object(node, deep=True)
        if node.tag not in _PLAIN_COLLECTION_TAGS:
            # Scalars go through SafeLoader's constructors, which refuse unknown tags; collections
            # are walked here, so their tags are checked here.
            raise ZooError(
                Problem(
                    f"tag {node.tag!r} is not allowed; specs are plain YAML mappings, lists and scalars",
                    self.located.file,
                    *_line_col(node),
                    dotted(path),
                    "yaml",
                )
            )
        self.open.add(id(node))
        if isinstance(node, yaml.MappingNode):
            built: Any = self._mapping(node, path)
        else:
            built = [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        self.open.discard(id(node))
        return built

    def _mapping(self, node: yaml.MappingNode, path: SpecPath) -> dict[Any, Any]:
        # Keys written in this mapping, as opposed to keys it gets from a `<<: *anchor` merge:
        # a written key may override a merged one (YAML's merge rule), never another written one.
        written = {id(k) for k, _ in node.value if k.tag != _MERGE}
        self._check_merges(node, path)
        self.loader.flatten_mapping(node)  # resolve `<<: *anchor` merges
        out: dict[Any, Any] = {}
        merged: set[Any] = set()
        for key_node, value_node in node.value:
            key = None
            if isinstance(key_node, yaml.ScalarNode):
                key = self.loader.construct_object(key_node, deep=True)
            kind = _key_kind(key_node, key)
            if kind:
                hint = "; quote it if it is a name" if isinstance(key_node, yaml.ScalarNode) else ""
                raise ZooError(
                    Problem(
                        f"a key must be a name or a list index, not {kind}{hint}",
                        self.located.file,
                        *_line_col(key_node),
                        dotted(path),
                        "yaml",
                    )
                )
            child = (*path, key)
            if key in out and key not in merged:
                first = self.located.key_marks[child][1:]
                raise ZooError(
                    Problem(
                        f"duplicate key {key!r} (first defined at line {first[0]}); remove one of them",
                        self.located.file,
                        *_line_col(key_node),
                        dotted(child),
                        "duplicate_key",
                    )
                )
            if id(key_node) in written:
                merged.discard(key)
            else:
                merged.add(key)
            self.located.key_marks[child] = (self.located.file, *_line_col(key_node))
            self.located.value_marks.pop(child, None)
            out[key] = self.build(value_node, child)
        return out

    def _check_merges(self, node: yaml.MappingNode, path: SpecPath) -> None:
        """Refuse a ``<<`` that merges a mapping around it (or one whose own merges do): PyYAML
        would splice the mapping into itself."""
        todo, seen = [node], {id(node)}
        while todo:
            for key_node, value_node in todo.pop().value:
                if key_node.tag != _MERGE:
                    continue
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    if id(source) in self.open:
                        raise ZooError(
                            Problem(
                                "recursive merge: `<<` merges a mapping that contains it; "
                                "merge a mapping defined outside this one",
                                self.located.file,
                                *_line_col(key_node),
                                dotted(path),
                                "yaml",
                            )
                        )
                    if isinstance(source, yaml.MappingNode) and id(source) not in seen:
                        seen.add(id(source))
                        todo.append(source)


def decode(data: bytes, file: str) -> str:
    """UTF-8 bytes -> text; invalid UTF-8 is a :class:`ZooError` at the first bad byte's line:col."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[line_start : exc.start].decode("utf-8")) + 1  # characters, not bytes
        message = f"invalid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        raise ZooError(Problem(message, file, line, column, kind="yaml")) from None


def load_yaml(text: str, file: str = "<string>") -> Located:
    """Parse one YAML document into :class:`Located` data; raise :class:`ZooError` on any problem."""
    if len(text) > MAX_BYTES:
        raise ZooError(
            Problem(
                f"file is larger than {MAX_BYTES} bytes; is it really a spec?", file, kind="yaml"
            )
        )
    located = Located(None, file)
    if _fast_load(text, located):
        return located
    loader = None
    try:
        loader = _SpecLoader(text)  # its reader already rejects non-printable characters
        node = loader.get_single_node()
        if node is not None:
            located.data = _Builder(loader, located).build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        if "'\\t'" in message:
            message += " (YAML indents with spaces, not tabs)"
        if "for merging" in message:
            message += "; `<<: *name` merges the mapping anchored as `&name`"
        if "could not determine a constructor" in message:  # an unknown tag, not a bad merge
            message += " (zoo reads specs with YAML's safe loader: tags such as !!python/... are not allowed)"
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ZooError(Problem(message, file, line, col, kind="yaml")) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        message = f"character #x{exc.character:04x} is not allowed in YAML (a control character); remove it"
        raise ZooError(Problem(message, file, line, col, kind="yaml")) from None
    except yaml.YAMLError as exc:
        raise ZooError(Problem(" ".join(str(exc).split()), file, kind="yaml")) from None
    except RecursionError:
        raise ZooError(Problem("YAML nesting is too deep", file, kind="yaml")) from None
    finally:
        if loader is not None:
            loader.dispose()
    return located
