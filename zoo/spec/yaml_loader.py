"""YAML text -> plain data plus the ``line:col`` of every key and value.

Safe by construction: only :class:`yaml.SafeLoader` tags are accepted (``!!python/...`` is an
error), duplicate keys are errors, and the YAML 1.1 quirks that surprise people are fixed the
YAML 1.2 way: ``1e-5`` is a float (PyYAML reads it as a string) and ``on``/``yes``/``no`` are strings,
not booleans. Documents too large, too deep or with too many nodes (alias bombs) are refused before
they are expanded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from zoo.errors import Problem, ZooError

Path = tuple[str | int, ...]
Mark = tuple[str, int, int]  # file, 1-based line, 1-based column

MAX_BYTES = 1_000_000  # shipped specs are ~1 KB; a megabyte of YAML is not a model spec
MAX_NODES = 100_000  # counted after alias expansion, so a "billion laughs" stops here
MAX_DEPTH = 64


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and floats."""


# Drop YAML 1.1's bool (yes/no/on/off) and float resolvers, then add YAML 1.2 core-schema ones.
_SpecLoader.yaml_implicit_resolvers = {
    first: [
        (tag, rx)
        for tag, rx in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


@dataclass
class Located:
    """Plain data read from YAML, with the position of every key and value in it.

    After ``extends:`` is resolved, one Located holds data from several files: each mark names its
    own file, so an error in an inherited field points into the base spec.
    """

    data: Any
    file: str
    key_marks: dict[Path, Mark] = field(default_factory=dict)
    value_marks: dict[Path, Mark] = field(default_factory=dict)

    def position(self, path: Path, *, at_key: bool = False) -> tuple[str, int | None, int | None]:
        """``(file, line, col)`` of ``path`` (its key or its value), else of its nearest ancestor."""
        marks = (self.key_marks, self.value_marks) if at_key else (self.value_marks, self.key_marks)
        for n in range(len(path), -1, -1):
            for table in marks:
                if path[:n] in table:
                    return table[path[:n]]
        return self.file, None, None

    def problem(self, path: Path, message: str, kind: str, *, at_key: bool = False) -> Problem:
        file, line, col = self.position(path, at_key=at_key)
        return Problem(message, file, line, col, dotted(path), kind)


def dotted(path: Path) -> str:
    """``("stages", 2, "depth")`` -> ``"stages.2.depth"``; odd keys (spaces, dots) are quoted."""
    return ".".join(p if isinstance(p, str) and p.isidentifier() else _odd_key(p) for p in path)


def _odd_key(key: object) -> str:
    text = str(key)
    return text if isinstance(key, int) or text.replace("-", "").isalnum() else repr(text)


def _line_col(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


_PLAIN_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _Builder:
    def __init__(self, loader: _SpecLoader, located: Located):
        self.loader = loader
        self.located = located
        self.nodes = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ZooError(
                self.located.problem(
                    path, f"document has more than {MAX_NODES} nodes (alias bomb?)", "yaml"
                )
            )
        if len(path) > MAX_DEPTH:
            raise ZooError(
                self.located.problem(path, f"nesting deeper than {MAX_DEPTH} levels", "yaml")
            )
        self.located.value_marks.setdefault(path, (self.located.file, *_line_col(node)))
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_COLLECTION_TAGS:
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
        if isinstance(node, yaml.MappingNode):
            # Keys written in this mapping, as opposed to keys it gets from a `<<: *anchor` merge:
            # a written key may override a merged one (YAML's merge rule), never another written one.
            written = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
            self.loader.flatten_mapping(node)  # resolve `<<: *anchor` merges
            out: dict[Any, Any] = {}
            merged: set[Any] = set()
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool) or key is None:
                    raise ZooError(
                        self.located.problem(path, "mapping keys must be plain scalars", "yaml")
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
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)


def load_yaml(text: str, file: str = "<string>") -> Located:
    """Parse one YAML document into :class:`Located` data; raise :class:`ZooError` on any problem."""
    if len(text) > MAX_BYTES:
        raise ZooError(
            Problem(
                f"file is larger than {MAX_BYTES} bytes; is it really a spec?", file, kind="yaml"
            )
        )
    located = Located(None, file)
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
        if isinstance(exc, yaml.constructor.ConstructorError):
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
