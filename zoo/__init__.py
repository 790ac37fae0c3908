"""zoo: convolutional architectures from declarative YAML specs.

>>> import zoo
>>> spec = zoo.load_spec("resnet34")          # a shipped name or a path to a YAML file
>>> model = zoo.build(spec)                   # a plain nn.Module (device="meta" for shapes only)
>>> result = zoo.trace(spec, (3, 224, 224))   # rows of path, type, output shape, params, MACs
>>> zoo.summary("resnet34", depth=1)          # the same, torchinfo's name: prints as a table
>>> zoo.benchmark(["resnet18", "resnet50"], batch=8)  # zoo bench: a table of their figures
>>> zoo.diff("resnet50", "resnet50d")         # zoo diff: stage by stage, and fields that differ
>>> zoo.save(model, "r34.pt")                 # weights and spec; zoo.load("r34.pt") reads both

Traces, benchmarks and diffs show as tables in Jupyter, in rich and at the prompt, and turn into
pandas DataFrames with ``.to_pandas()`` (see :mod:`zoo.display`).
Bad input (a spec, a path, an argument) raises :class:`ZooError`; custom layer types are added
with :func:`register_layer` and removed with :func:`unregister_layer` (see :mod:`zoo.plugins`).

``import zoo`` imports nothing else: each name below is imported on first use, so reading,
validating and tracing specs never imports torch; only building a model (or tracing a module) does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoo.checkpoint import load, save
    from zoo.compare import SpecDiff, benchmark, diff
    from zoo.compiler import build
    from zoo.display import BenchTable
    from zoo.errors import ExitCode, Problem, ZooError, ZooWarning
    from zoo.plugins import LayerSpec, register_layer, unregister_layer
    from zoo.spec import ModelSpec, load_spec
    from zoo.traces import Row, Trace
    from zoo.tracing import trace
    from zoo.tracing import trace as summary

_HOMES = {
    "load": "zoo.checkpoint",
    "save": "zoo.checkpoint",
    "SpecDiff": "zoo.compare",
    "benchmark": "zoo.compare",
    "diff": "zoo.compare",
    "build": "zoo.compiler",
    "BenchTable": "zoo.display",
    "ExitCode": "zoo.errors",
    "Problem": "zoo.errors",
    "ZooError": "zoo.errors",
    "ZooWarning": "zoo.errors",
    "LayerSpec": "zoo.plugins",
    "register_layer": "zoo.plugins",
    "unregister_layer": "zoo.plugins",
    "ModelSpec": "zoo.spec",
    "load_spec": "zoo.spec",
    "Row": "zoo.traces",
    "Trace": "zoo.traces",
    "trace": "zoo.tracing",
    "summary": "zoo.tracing:trace",  # torchinfo's name for it
}

__all__ = [
    "BenchTable",
    "ExitCode",
    "LayerSpec",
    "ModelSpec",
    "Problem",
    "Row",
    "SpecDiff",
    "Trace",
    "ZooError",
    "ZooWarning",
    "benchmark",
    "build",
    "diff",
    "load",
    "load_spec",
    "register_layer",
    "save",
    "summary",
    "trace",
    "unregister_layer",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The public names, imported from their home module on first use (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    module, _, attribute = _HOMES[name].partition(":")  # "module:attribute" for an alias
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
