"""Custom layer types without patching zoo: register them from Python or from an installed package.

>>> from typing import Literal
>>> import zoo
>>> class SqueezeExcite(zoo.LayerSpec):
...     type: Literal["se_gate"]
...     reduction: int = 16
>>> @zoo.register_layer(SqueezeExcite)
... def build_se_gate(spec, in_shape):
...     return MySqueezeExcite(in_shape[0], spec.reduction)   # any nn.Module

A spec can then say ``{type: se_gate, reduction: 8}``: the fields are validated by the
pydantic model (errors located at their YAML line like any other), the builder receives the input
shape (C, H, W) so nothing is written by hand, and the output shape and multiply-adds are measured
by running the module once on the meta device (no memory) under ``FlopCounterMode``.

Installed packages add types through the ``zoo.plugins`` entry-point group; each entry point names
a function that zoo calls (once, when a spec first names a type it does not know) to register its
types::

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

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from zoo import registry
from zoo.errors import ZooError, describe_error
from zoo.plan import LayerPlan, PlanContext, leaf
from zoo.shapes import Shape, fmt
from zoo.spec.fields import ModuleName
from zoo.spec.yaml_loader import SpecPath

if TYPE_CHECKING:
    from torch import nn

SpecT = TypeVar("SpecT", bound=BaseModel)
PluginBuilder = Callable[[Any, tuple[int, ...]], "nn.Module"]


class LayerSpec(BaseModel):
    """Base class for the spec model of a custom layer: unknown fields are errors, and an optional
    ``name`` becomes the module name. Subclasses declare ``type: Literal["their_tag"]``.
    Specs are frozen, as zoo's own are: a spec is shared by every block planned from it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ModuleName | None = Field(None, description="Module name (state_dict key).")


def register_layer(
    spec_model: type[SpecT],
    *,
    example: Mapping[str, Any] | None = None,
    example_input: tuple[int, ...] = (4, 8, 8),
) -> Callable[[PluginBuilder], PluginBuilder]:
    """Register ``builder(spec, in_shape) -> nn.Module`` for the spec type ``spec_model``.

    ``example`` (a spec of the type, as a mapping) and ``example_input`` (its input shape, no
    batch) let a test check the type the way zoo's own are checked (``zoo.registry``).

    Registering the same class again is a no-op, and a module may replace its own earlier class
    for a tag (a reloaded module, a notebook cell run again). Raises ``TypeError`` for a malformed
    spec model or builder and ``ValueError`` for a tag built into zoo or registered by another
    package or module (both named).
    """
    if not (isinstance(spec_model, type) and issubclass(spec_model, BaseModel)):
        raise TypeError(f"register_layer takes a zoo.LayerSpec subclass, got {spec_model!r}")
    tag = registry.type_tag(spec_model)
    existing = registry.get(tag)
    if existing is not None and existing.source == registry.BUILTIN:
        raise ValueError(f"type {tag!r} is built into zoo; choose another name")
    if "name" not in spec_model.model_fields:
        raise TypeError(
            f"{spec_model.__name__} should subclass zoo.LayerSpec (it needs a `name` field)"
        )
    source = registry.current_source(f"module {spec_model.__module__}")

    def register(builder: PluginBuilder) -> PluginBuilder:
        if not callable(builder):
            raise TypeError(f"the builder must be a function (spec, in_shape), got {builder!r}")
        current = registry.get(tag)
        if current is None or current.model is not spec_model:
            registry.register(
                spec_model,
                _planner(builder),
                reinitializable=False,
                source=source,
                example=example,
                example_input=example_input,
            )
        return builder

    return register


def unregister_layer(tag_or_spec_model: str | type[BaseModel]) -> None:
    """Remove a type registered with :func:`register_layer`, by its tag or its spec model: specs
    using it become invalid again. Raises ``ValueError`` if it is not registered."""
    if isinstance(tag_or_spec_model, str):
        registry.unregister(tag_or_spec_model)
        return
    found = [info.tag for info in registry.plugins() if info.model is tag_or_spec_model]
    if not found:
        name = getattr(tag_or_spec_model, "__name__", repr(tag_or_spec_model))
        raise ValueError(f"{name} is not registered")
    registry.unregister(found[0])


def _planner(builder: PluginBuilder) -> Callable[..., LayerPlan]:
    """A plugin's ``builder(spec, in_shape) -> nn.Module`` as a planner.

    zoo cannot do a foreign module's arithmetic, so planning one builds it on the meta device
    (no memory) and measures one forward pass; it is a single row of the plan.
    """

    def plan(spec: Any, shape: Shape, ctx: PlanContext, path: SpecPath) -> LayerPlan:
        import torch  # a foreign module's arithmetic is measured, so it needs torch

        try:
            with torch.device("meta"):
                module = builder(spec, shape)
                out, macs = measure(module, shape)
        except ZooError:
            raise
        except (Exception, SystemExit) as exc:  # plugin code must not end zoo, even by sys.exit()
            message = f"{spec.type} cannot take a {fmt(shape)} input: {describe_error(exc)}"
            raise ctx.error(path, message, "plugin") from None
        buffers = sum(b.numel() for b in module.buffers() if b.is_floating_point())
        params = sum(p.numel() for p in module.parameters())
        return leaf(spec.type, out, lambda: builder(spec, shape), params, macs, buffers)

    return plan


def measure(module: nn.Module, in_shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """Output shape (no batch) and multiply-adds of one meta-device forward of ``module``."""
    import torch  # planning a plugin layer is the one time planning needs torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = module(torch.empty((1, *in_shape), device="meta"))
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the module returned {type(out).__name__}, not a tensor")
    return tuple(out.shape[1:]), counter.get_total_flops() // 2
