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

A plugin that fails to load (its hook raises, even ``SystemExit``) is a :class:`~zoo.ZooWarning`
naming the entry point and its package, and zoo goes on without it. A type tag belongs to one
source: a package registering a tag that another package (or module) registered is refused, and
``zoo.unregister_layer`` removes a type. Registration mistakes are programming errors, not bad
input, so they raise ``TypeError`` (a malformed spec model or builder) or ``ValueError`` (a tag
that is built in, taken or not registered), never :class:`~zoo.ZooError`.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field

from zoo.errors import Problem, ZooWarning, describe_error
from zoo.spec.load import MODEL_BY_TYPE
from zoo.spec.schema import PLUGIN_TYPES, ModuleName

if TYPE_CHECKING:
    from torch import nn

ENTRY_POINT_GROUP = "zoo.plugins"
SpecT = TypeVar("SpecT", bound=BaseModel)
PluginBuilder = Callable[[Any, tuple[int, ...]], "nn.Module"]


class LayerSpec(BaseModel):
    """Base class for the spec model of a custom layer: unknown fields are errors, and an optional
    ``name`` becomes the module name. Subclasses declare ``type: Literal["their_tag"]``.
    Specs are frozen, as zoo's own are: a spec is shared by every block planned from it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ModuleName | None = Field(None, description="Module name (state_dict key).")


# Registration and loading share one lock: a thread reading its first spec waits for the plugins
# another thread is loading. Re-entrant, as a hook may register types or even read a spec.
_lock = threading.RLock()
_loaded = False  # every entry point has been called
_loading = False  # entry points are being called (seen True only by the thread calling them)
_registering = threading.local()  # .source: the package whose entry point runs on this thread
_SOURCES: dict[str, str] = {}
"""Who registered each plugin type tag: ``package NAME VERSION`` or ``module NAME``."""


def register_layer(spec_model: type[SpecT]) -> Callable[[PluginBuilder], PluginBuilder]:
    """Register ``builder(spec, in_shape) -> nn.Module`` for the spec type ``spec_model``.

    Registering the same class again is a no-op, and a module may replace its own earlier class
    for a tag (a reloaded module, a notebook cell run again). Raises ``TypeError`` for a malformed
    spec model or builder and ``ValueError`` for a tag built into zoo or registered by another
    package or module (both named).
    """
    if not (isinstance(spec_model, type) and issubclass(spec_model, BaseModel)):
        raise TypeError(f"register_layer takes a zoo.LayerSpec subclass, got {spec_model!r}")
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
    source = getattr(_registering, "source", None) or f"module {spec_model.__module__}"

    def register(builder: PluginBuilder) -> PluginBuilder:
        from zoo.plan import register_plugin_builder, unregister_plugin_builder

        if not callable(builder):
            raise TypeError(f"the builder must be a function (spec, in_shape), got {builder!r}")
        with _lock:
            registered = PLUGIN_TYPES.get(tag)
            if registered is spec_model:
                return builder
            if registered is not None:
                if _SOURCES[tag] != source:
                    raise ValueError(
                        f"type {tag!r} is already registered by {_SOURCES[tag]}; {source} cannot "
                        f"register it too: rename one of them, or call "
                        f"zoo.unregister_layer({tag!r}) first"
                    )
                unregister_plugin_builder(registered)
            PLUGIN_TYPES[tag] = spec_model
            _SOURCES[tag] = source
            register_plugin_builder(spec_model, builder)
        return builder

    return register


def unregister_layer(tag_or_spec_model: str | type[BaseModel]) -> None:
    """Remove a type registered with :func:`register_layer`, by its tag or its spec model: specs
    using it become invalid again. Raises ``ValueError`` if it is not registered."""
    from zoo.plan import unregister_plugin_builder

    with _lock:
        if isinstance(tag_or_spec_model, str):
            tag = tag_or_spec_model
            if tag in MODEL_BY_TYPE:
                raise ValueError(
                    f"type {tag!r} is built into zoo; only plugin types can be removed"
                )
            if tag not in PLUGIN_TYPES:
                raise ValueError(f"no type {tag!r} is registered")
        else:
            found = [t for t, model in PLUGIN_TYPES.items() if model is tag_or_spec_model]
            if not found:
                name = getattr(tag_or_spec_model, "__name__", repr(tag_or_spec_model))
                raise ValueError(f"{name} is not registered")
            tag = found[0]
        unregister_plugin_builder(PLUGIN_TYPES.pop(tag))
        del _SOURCES[tag]


def measure(module: nn.Module, in_shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """Output shape (no batch) and multiply-adds of one meta-device forward of ``module``."""
    import torch  # planning a plugin layer is the one time planning needs torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = module(torch.empty((1, *in_shape), device="meta"))
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the module returned {type(out).__name__}, not a tensor")
    return tuple(out.shape[1:]), counter.get_total_flops() // 2


def load_entry_points() -> None:
    """Call every installed ``zoo.plugins`` entry point, once: the first call does it, and a call
    from another thread meanwhile waits until all of them ran. A plugin that fails is a warning."""
    global _loaded, _loading
    if _loaded:
        return
    with _lock:
        if _loaded or _loading:  # loaded while we waited, or a hook of ours is reading a spec
            return
        _loading = True
        try:
            for entry_point in entry_points(group=ENTRY_POINT_GROUP):
                _call(entry_point)
        finally:
            _loading = False
            _loaded = True


def _call(entry_point: EntryPoint) -> None:
    """Load and call one entry point, its registrations named after its package."""
    dist = entry_point.dist
    package = f"{dist.name} {dist.version}" if dist is not None else entry_point.module
    source = _registering.source = f"package {package}"
    before = set(PLUGIN_TYPES)
    try:
        hook = entry_point.load()
        if not callable(hook):
            raise TypeError(f"it names a {type(hook).__name__}, not a function")
        hook()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a plugin must not end zoo, not even with sys.exit()
        for tag in set(PLUGIN_TYPES) - before:  # all or nothing: it goes without its types
            if _SOURCES[tag] == source:
                unregister_layer(tag)
        name = dist.name if dist is not None else entry_point.module
        problem = Problem(
            f"plugin {entry_point.name!r} ({entry_point.value}) of {package} failed to load: "
            f"{describe_error(exc)}; zoo goes on without it: update or uninstall {name}",
            kind="plugin",
        )
        warnings.warn(ZooWarning(problem), stacklevel=3)  # load_entry_points' caller
    finally:
        _registering.source = None
