"""The layering, stated in one line and checked: spec (YAML, validation, extends) -> plan
(arithmetic) -> modules (torch) -> consumers, with no import cycles among zoo's modules.

Read from the source (imports inside functions included, ``if TYPE_CHECKING:`` blocks left out),
so a lazy import that closes a cycle is caught as surely as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1] / "zoo"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(every module ``path`` imports at run time, those imported at module level)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            skipped |= {id(n) for part in node.body for n in ast.walk(part)}
    top_level = {id(node) for node in tree.body}
    everywhere: set[str] = set()
    at_top: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        everywhere.update(names)
        if id(node) in top_level:
            at_top.update(names)
    return everywhere, at_top


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def test_no_import_cycles() -> None:
    # the package itself resolves its names lazily (PEP 562): importing zoo imports nothing
    graph = {
        name: {m for m in IMPORTS[name][0] if m in MODULES and m != name} - {"zoo"}
        for name in MODULES
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


TORCH_FREE = [
    name
    for name in MODULES
    if name.startswith(("zoo.spec", "zoo.types"))
    or name
    in (
        "zoo",
        "zoo.registry",
        "zoo.plan",
        "zoo.plugins",
        "zoo.tracing",
        "zoo.traces",
        "zoo.shapes",
        "zoo.errors",
        "zoo.files",
        "zoo.cli",
        "zoo.bench",
        "zoo.render",
        "zoo.compare",
        "zoo.display",
        "zoo.reference",
        "zoo.plot",
        "zoo.weights",
        "zoo.export",
        "zoo.summaries",
        "zoo.expansion",
        "zoo.memory",
    )
]


@pytest.mark.parametrize("name", TORCH_FREE)
def test_spec_and_plan_import_no_torch(name: str) -> None:
    """These modules never import torch when they are imported (a function may, to build)."""
    _, at_top = IMPORTS[name]
    assert not {m for m in at_top if m == "torch" or m.startswith("torch.")}


def test_the_torch_side_is_small() -> None:
    """Only making, initializing, saving and tracing modules import torch at module level."""
    with_torch = {
        name
        for name, (_, at_top) in IMPORTS.items()
        if any(m == "torch" or m.startswith("torch.") for m in at_top)
    }
    assert with_torch == {"zoo.compiler", "zoo.nn", "zoo.module_tracing"}
