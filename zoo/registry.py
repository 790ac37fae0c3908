"""The registry of spec types: every ``type`` tag a spec may use, built in or from a plugin.

A type is registered once, in its own module (:mod:`zoo.types`, or a plugin through
:func:`zoo.register_layer`), with its spec model, its planner and the properties that other code
branches on. Everything else is derived from here: the ``type`` union of the spec format, the
list of valid tags in messages, the JSON Schema and the docs, dispatch in the planner, the
pre-activation warning, zero-init of residual bodies, and how the compiler initializes weights.

This module is the bottom of the type system: it imports no spec, plan or torch module, so each
of those can import it. Plugins installed as packages (the ``zoo.plugins`` entry-point group) are
loaded here, once, when a spec first names a type zoo does not know.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_args

from pydantic import BaseModel

from zoo.errors import Problem, ZooWarning, describe_error

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENTRY_POINT_GROUP = "zoo.plugins"
BUILTIN = "zoo"


@dataclass(frozen=True)
class TypeInfo:
    """A registered type: its tag, spec model, planner and the properties other code asks about.

    ``plan(spec, shape, ctx, path)`` returns the type's :class:`zoo.plan.LayerPlan`; a ``block``'s
    planner takes a fifth argument, ``first`` (the first of ``depth`` copies takes the stride).
    """

    tag: str
    model: type[BaseModel]
    plan: Callable[..., Any] = field(repr=False)
    block: bool = False
    """Repeatable by ``depth`` (an ``nn.Sequential`` of copies)."""
    inline: bool = False
    """Its ``layers`` are inlined, ``times`` over, into the enclosing list (``repeat``)."""
    takes_stride: bool = False
    """Its ``stride`` sets its output's stride, so a residual block's stride may replace it."""
    stride_by_default: bool = False
    """A residual block's stride goes to its first layer of such a type when ``stride_at`` is not
    given (the convs; a pool takes the stride only when named)."""
    is_norm: bool = False
    """A normalization: ends a pre-activation stack; zero-init of a residual body zeroes the last."""
    preactivation: bool = False
    """A pre-activation block: the stack of them needs a norm after it (a warning otherwise)."""
    combinator: bool = False
    """Joins branches (a residual sum, a concatenation): zeroing one norm inside cannot silence
    it, so the search for a residual body's last norm does not enter it."""
    channel_fields: tuple[str, ...] = ()
    """Its fields that count channels, which a spec's ``scale.width`` multiplies (``out`` of a conv
    or block; a linear's ``out`` counts classes and is not one)."""
    reinitializable: bool = True
    """zoo can redo the initialization of its modules after allocating them (``to_empty``): true
    of every built-in type; a plugin's module may set its weights in ``__init__``."""
    example: Mapping[str, Any] | None = None
    """A small instance of the type, planned, built and run by the type tests on ``example_input``."""
    example_input: tuple[int, ...] = (4, 8, 8)
    """The input shape (no batch) of the example: (C, H, W), or (F,) for a layer on features."""
    source: str = BUILTIN
    """``zoo``, or the package or module that registered a plugin type."""


_lock = threading.RLock()  # registration and plugin loading (a hook may read a spec: re-entrant)
_TYPES: dict[str, TypeInfo] = {}
_BY_MODEL: dict[type[BaseModel], TypeInfo] = {}


def type_tag(model: type[BaseModel]) -> str:
    """The tag of a spec model: the single value of its ``type: Literal[...]`` field."""
    found = model.model_fields.get("type")
    tags = get_args(found.annotation) if found else ()
    if len(tags) != 1 or not isinstance(tags[0], str):
        raise TypeError(f"{model.__name__} needs a field `type: Literal['its_tag']`")
    return tags[0]


def register(model: type[BaseModel], plan: Callable[..., Any], **properties: Any) -> TypeInfo:
    """Register ``model``'s type with its planner and properties (see :class:`TypeInfo`).

    Registering the same model again from the same source replaces it (a reloaded module); a tag
    registered by another source is refused with ``ValueError`` naming both.
    """
    tag = type_tag(model)
    info = TypeInfo(tag, model, plan, **properties)
    with _lock:
        existing = _TYPES.get(tag)
        if existing is not None and existing.source != info.source:
            raise ValueError(
                f"type {tag!r} is already registered by {_describe(existing.source)}; "
                f"{_describe(info.source)} cannot register it too: rename one of them, or call "
                f"zoo.unregister_layer({tag!r}) first"
            )
        if existing is not None:
            del _BY_MODEL[existing.model]
        _TYPES[tag] = info
        _BY_MODEL[model] = info
    return info


def planner(model: type[BaseModel], **properties: Any) -> Callable[[Callable], Callable]:
    """Decorator form of :func:`register` for a type's planner function."""

    def decorate(plan: Callable) -> Callable:
        register(model, plan, **properties)
        return plan

    return decorate


def unregister(tag: str) -> TypeInfo:
    """Remove a plugin type; built-in types cannot be removed (``ValueError``)."""
    with _lock:
        info = _TYPES.get(tag)
        if info is None:
            raise ValueError(f"no type {tag!r} is registered")
        if info.source == BUILTIN:
            raise ValueError(f"type {tag!r} is built into zoo; only plugin types can be removed")
        del _TYPES[tag], _BY_MODEL[info.model]
    return info


def _describe(source: str) -> str:
    return "zoo itself" if source == BUILTIN else source


# --------------------------------------------------------------------------- lookups
def get(tag: str) -> TypeInfo | None:
    """The registered type of ``tag``, or ``None``."""
    return _TYPES.get(tag)


def of(spec: BaseModel) -> TypeInfo:
    """The registered type of a validated spec (``KeyError`` for an unregistered model)."""
    return _BY_MODEL[type(spec)]


def builtin() -> list[TypeInfo]:
    """The built-in types, in registration order (the order the docs list them)."""
    return [info for info in _TYPES.values() if info.source == BUILTIN]


def plugins() -> list[TypeInfo]:
    """The types registered by plugins."""
    return [info for info in _TYPES.values() if info.source != BUILTIN]


def tags() -> list[str]:
    """Every valid ``type`` tag, sorted (for messages)."""
    return sorted(_TYPES)


def tags_where(**properties: Any) -> list[str]:
    """The tags of the types whose properties have the given values, in registration order."""
    return [
        info.tag
        for info in _TYPES.values()
        if all(getattr(info, name) == value for name, value in properties.items())
    ]


# --------------------------------------------------------------------------- installed plugins
_loaded = False  # every entry point has been called
_loading = False  # entry points are being called (seen True only by the thread calling them)
_registering = threading.local()  # .source: the package whose entry point runs on this thread


def current_source(default: str) -> str:
    """The source a registration made now belongs to: the package whose entry point is running
    on this thread, else ``default`` (``module NAME`` for code registered from Python)."""
    return getattr(_registering, "source", None) or default


def load_entry_points() -> None:
    """Call every installed ``zoo.plugins`` entry point, once: the first call does it, and a call
    from another thread meanwhile waits until all of them ran. A plugin that fails is a warning.
    Spec loading calls it when a spec names a type that is not registered."""
    global _loaded, _loading
    if _loaded:
        return
    with _lock:
        if _loaded or _loading:  # loaded while we waited, or a hook of ours is reading a spec
            return
        _loading = True
        try:
            from importlib.metadata import entry_points  # 16 ms: only when a plugin is needed

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
    try:
        hook = entry_point.load()
        if not callable(hook):
            raise TypeError(f"it names a {type(hook).__name__}, not a function")
        hook()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a plugin must not end zoo, not even with sys.exit()
        for info in plugins():  # all or nothing: it goes without its types
            if info.source == source:
                unregister(info.tag)
        name = dist.name if dist is not None else entry_point.module
        problem = Problem(
            f"plugin {entry_point.name!r} ({entry_point.value}) of {package} failed to load: "
            f"{describe_error(exc)}; zoo goes on without it: update or uninstall {name}",
            kind="plugin",
        )
        warnings.warn(ZooWarning(problem), stacklevel=3)  # load_entry_points' caller
    finally:
        _registering.source = None
