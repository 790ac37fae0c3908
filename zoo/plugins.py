"""Custom layer types without patching zoo: register them from Python or from an installed package.

>>> from typing import Literal
>>> import zoo
>>> class SqueezeExcite(zoo.LayerSpec):
...     type: Literal["squeeze_excite"]
...     reduction: int = 16
>>> @zoo.register_layer(SqueezeExcite)
... def build_squeeze_excite(spec, in_shape):
...     return MySqueezeExcite(in_shape[0], spec.reduction)   # any nn.Module

A spec can then say ``{type: squeeze_excite, reduction: 8}``: the fields are validated by the
pydantic model (errors located at their YAML line like any other), the builder receives the input
shape (C, H, W) so nothing is written by hand, and the output shape and multiply-adds are measured
by running the module once on the meta device (no memory) under ``FlopCounterMode``.

Installed packages add types through the ``zoo.plugins`` entry-point group; each entry point names
a function that zoo calls (once, before reading the first spec) to register its types::

    [project.entry-points."zoo.plugins"]
    my_layers = "my_package.zoo_types:register"
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar, get_args

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from zoo.errors import Problem, ZooWarning
from zoo.spec.load import MODEL_BY_TYPE
from zoo.spec.schema import PLUGIN_TYPES, ModuleName

ENTRY_POINT_GROUP = "zoo.plugins"
SpecT = TypeVar("SpecT", bound=BaseModel)
PluginBuilder = Callable[[Any, tuple[int, ...]], nn.Module]


class LayerSpec(BaseModel):
    """Base class for the spec model of a custom layer: unknown fields are errors, and an optional
    ``name`` becomes the module name. Subclasses declare ``type: Literal["their_tag"]``."""

    model_config = ConfigDict(extra="forbid")

    name: ModuleName | None = Field(None, description="Module name (state_dict key).")


def register_layer(spec_model: type[SpecT]) -> Callable[[PluginBuilder], PluginBuilder]:
    """Register ``builder(spec, in_shape) -> nn.Module`` for the spec type ``spec_model``."""
    field = spec_model.model_fields.get("type")
    tags = get_args(field.annotation) if field else ()
    if len(tags) != 1 or not isinstance(tags[0], str):
        raise TypeError(f"{spec_model.__name__} needs a field `type: Literal['its_tag']`")
    tag = tags[0]
    if tag in MODEL_BY_TYPE:
        raise ValueError(f"type {tag!r} is built into zoo; choose another name")
    if "name" not in spec_model.model_fields:
        raise TypeError(
            f"{spec_model.__name__} should subclass zoo.LayerSpec (it needs a `name` field)"
        )

    def register(builder: PluginBuilder) -> PluginBuilder:
        from zoo.plan import register_plugin_builder

        PLUGIN_TYPES[tag] = spec_model
        register_plugin_builder(spec_model, builder)
        return builder

    return register


def measure(module: nn.Module, in_shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """Output shape (no batch) and multiply-adds of one meta-device forward of ``module``."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = module(torch.empty((1, *in_shape), device="meta"))
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the module returned {type(out).__name__}, not a tensor")
    return tuple(out.shape[1:]), counter.get_total_flops() // 2


_loaded = False


def load_entry_points() -> None:
    """Call every installed ``zoo.plugins`` entry point once; a broken plugin is a warning."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            hook = entry_point.load()
            if callable(hook):
                hook()
        except Exception as exc:  # a third-party plugin must not take zoo down with it
            problem = Problem(
                f"plugin {entry_point.name!r} ({entry_point.value}) failed to load: {exc}",
                kind="plugin",
            )
            warnings.warn(ZooWarning(problem), stacklevel=2)
