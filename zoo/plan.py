"""Spec -> plan: walk stem, stages and head carrying the running shape, constructing nothing.

Every ``in_channels`` and ``in_features`` comes from the running shape, so no size is ever written
by hand. Each type's planner (in its own module under :mod:`zoo.types`, found through
:mod:`zoo.registry`) returns a :class:`LayerPlan`: the layer's output shape, parameters, buffers
and multiply-adds, worked out by arithmetic, its children's plans, and how to make its module.
That makes shape and cost inference (``zoo build --trace``, ``zoo bench``) independent of module
construction and of the input size, and free of torch: :mod:`zoo.compiler` turns a plan into an
``nn.Module``, importing torch only then.

This module holds what every planner shares: the plan record, the planning context, dispatch,
lists of layers, and the whole network.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zoo import registry
from zoo.errors import ExitCode, Problem, ZooError, ZooWarning
from zoo.shapes import MAX_DIM, Shape, fmt, pair
from zoo.spec.scaling import scaled
from zoo.spec.yaml_loader import Located, SpecPath, dotted

if TYPE_CHECKING:
    from types import ModuleType

    from torch import nn

    from zoo.nn import ZooNet
    from zoo.spec.schema import ModelSpec

Named = list[tuple[str, "nn.Module"]]
Make = Callable[[Named], "nn.Module"]  # the layer's module, given its children's modules

MAX_LAYERS = 100_000  # ResNet-152 has ~500; past this a spec is a mistake


def torch_nn() -> ModuleType:
    """``torch.nn``, imported when a plan is first materialized: planning needs no torch."""
    from torch import nn

    return nn


def zoo_nn() -> ModuleType:
    """:mod:`zoo.nn` (the modules zoo adds to ``torch.nn``), imported as :func:`torch_nn` is."""
    from zoo import nn

    return nn


@dataclass(eq=False)
class LayerPlan:
    """One module of a planned network: output shape and costs (its subtree's), and its children.

    ``params`` and ``buffers`` count the elements of the parameters and floating-point buffers
    (BatchNorm running statistics) of the module and everything under it; ``macs`` are per sample.
    """

    name: str
    type: str  # what the trace shows: the type tag, "basic x3" for a repeated block, ...
    out: Shape
    params: int
    macs: int
    make: Make = field(repr=False)
    children: list[LayerPlan] = field(default_factory=list)
    buffers: int = 0
    source: SpecPath = ()  # where in the spec it comes from (stages.2), for located messages
    tag: str = ""  # the registered type it was planned from ("" for parts a planner adds)
    last_norm: bool = False  # the norm zero_init_residual zeroes: the last of a residual body
    reinitializable: bool = True  # zoo can redo its initialization (see registry.TypeInfo)

    def materialize(self) -> nn.Module:
        """The module of this plan and of its children (on the current default device)."""
        return self.make([(child.name, child.materialize()) for child in self.children])

    def walk(self, prefix: str = "") -> Iterator[tuple[str, LayerPlan]]:
        """``(dotted module path, plan)`` of this plan's descendants, in execution order."""
        for child in self.children:
            path = prefix + child.name
            yield path, child
            yield from child.walk(path + ".")


@dataclass(eq=False)
class DropRate:
    """One block's stochastic depth probability: set once the whole network is planned, as it
    depends on the block's place among all of them (:func:`schedule_stochastic_depth`)."""

    p: float = 0.0


@dataclass
class PlanContext:
    """What planning one spec carries along: where the spec was read (for located errors) and the
    number of layers planned so far."""

    located: Located | None
    layers: int = 0  # planned so far, against MAX_LAYERS
    expansions: dict[int, Any] = field(default_factory=dict)  # id(preset spec) -> its expansion
    block_inputs: list[int] = field(default_factory=list)
    """Input channels of the residual blocks being planned, innermost last."""
    drop_rates: list[DropRate] = field(default_factory=list)
    """The blocks in the network's stochastic depth schedule, in network order."""
    planned_expansions: dict[SpecPath, list[Any]] = field(default_factory=dict)
    """The generic spec of each copy of a preset that expands given its input (an inverted
    residual's width follows its input channels), by the preset's spec path: what
    ``zoo resolve --expand`` writes for it."""

    def expanded_for(self, preset: Any, path: SpecPath, *args: Any) -> Any:
        """``preset.expand_for(*args)``, the generic block of one copy of a preset whose layout
        depends on its input, recorded for ``zoo resolve --expand``."""
        generic = preset.expand_for(*args)
        self.planned_expansions.setdefault(path, []).append(generic)
        return generic

    def schedule_stochastic_depth(self) -> DropRate:
        """A place in the network's stochastic depth schedule, for the next block."""
        rate = DropRate()
        self.drop_rates.append(rate)
        return rate

    def expanded(self, preset: Any) -> Any:
        """``preset.expand()`` (the generic block a preset stands for), once per preset spec: a
        stage of 36 blocks repeats one spec, and the spec outlives the plan, so its id is stable."""
        key = id(preset)
        if key not in self.expansions:
            self.expansions[key] = preset.expand()
        return self.expansions[key]

    def count_layer(self, path: SpecPath) -> None:
        self.layers += 1
        if self.layers > MAX_LAYERS:
            raise self.error(
                path,
                f"the network has more than {MAX_LAYERS:,} layers; reduce `depth` or `times`",
                "too_large",
            )

    def error(self, path: SpecPath, message: str, kind: str = "shape") -> ZooError:
        """A planning problem at ``path`` of the spec (its YAML line when the spec was read)."""
        if self.located is not None:
            return ZooError(self.located.problem(path, message, kind))
        return ZooError(Problem(message, path=dotted(path), kind=kind))


# --------------------------------------------------------------------------- making plans
def leaf(
    type_: str,
    out: Shape,
    make: Callable[[], nn.Module],
    params: int = 0,
    macs: int = 0,
    buffers: int = 0,
) -> LayerPlan:
    """A plan without children; ``make()`` returns its module."""
    return LayerPlan("", type_, out, params, macs, lambda _children: make(), [], buffers, tag=type_)


def container(
    name: str, type_: str, out: Shape, children: Sequence[LayerPlan], make: Make
) -> LayerPlan:
    """A plan whose costs are its children's; ``make(named children)`` returns its module."""
    return LayerPlan(
        name,
        type_,
        out,
        sum(c.params for c in children),
        sum(c.macs for c in children),
        make,
        list(children),
        sum(c.buffers for c in children),
    )


def sequential(named: Named) -> nn.Sequential:
    """An ``nn.Sequential`` of named modules (the ``make`` of a plain container)."""
    module = torch_nn().Sequential()
    for name, child in named:
        module.add_module(name, child)
    return module


def named_container(
    name: str, type_: str, named_plans: Sequence[tuple[str, LayerPlan]], out: Shape
) -> LayerPlan:
    """An ``nn.Sequential`` of the given plans, renamed as given."""
    children = []
    for child_name, plan in named_plans:
        plan.name = child_name
        children.append(plan)
    return container(name, type_, out, children, sequential)


def spatial(shape: Shape, ctx: PlanContext, path: SpecPath, what: str) -> tuple[int, int, int]:
    """``shape`` as (C, H, W), or a located error saying ``what`` needs a feature map."""
    if len(shape) != 3:
        raise ctx.error(
            path,
            f"{what} needs a CxHxW feature map but gets {len(shape)}-d features ({fmt(shape)}); "
            "move it before the flatten",
        )
    return shape  # type: ignore[return-value]


def check_positive(
    out: Shape, in_shape: Shape, ctx: PlanContext, path: SpecPath, what: str
) -> Shape:
    """``out``, or a located error when the input is too small for ``what`` to give any output."""
    if min(out) < 1:
        raise ctx.error(
            path,
            f"{what} turns a {fmt(in_shape)} input into {fmt(out)}: the input is too small here; "
            "use a larger input, or less stride/pooling before this layer",
        )
    return out


# --------------------------------------------------------------------------- dispatch
def plan_node(spec: Any, shape: Shape, ctx: PlanContext, path: SpecPath) -> LayerPlan:
    """Plan any layer or block spec from ``shape``; the plan's name is filled in by the caller."""
    ctx.count_layer(path)
    try:
        info = registry.of(spec)
    except KeyError:
        tag = getattr(spec, "type", type(spec).__name__)
        raise ctx.error(path, f"no type {tag!r} is registered", "type") from None
    plan = (
        _plan_repeated(info, spec, shape, ctx, path)
        if info.block
        else info.plan(spec, shape, ctx, path)
    )
    plan.tag = info.tag
    plan.reinitializable = plan.reinitializable and info.reinitializable
    _check_bounded(plan, ctx, path)
    return plan


_DIM_NAMES = {1: ("features",), 3: ("channels", "height", "width")}


def _check_bounded(plan: LayerPlan, ctx: PlanContext, path: SpecPath) -> None:
    """Every planned size obeys the bound of the spec's own sizes: fields that are each within
    bounds (a large padding, many concatenated branches, a flatten) can still add up to an absurd
    map, whose numbers of parameters and multiply-adds are then absurd too."""
    for i, size in enumerate(plan.out):
        if size > MAX_DIM:
            names = _DIM_NAMES.get(len(plan.out), ())
            dim = names[i] if names else f"dimension {i + 1}"
            raise ctx.error(
                path,
                f"{plan.type} gives a {fmt(plan.out)} output: its {dim} ({size:,}) is over the "
                f"limit of {MAX_DIM:,} for any one size; use smaller padding, channels or sizes "
                "(or a smaller input)",
                "too_large",
            )


def _plan_repeated(
    info: registry.TypeInfo, spec: Any, shape: Shape, ctx: PlanContext, path: SpecPath
) -> LayerPlan:
    if spec.depth is None:
        return info.plan(spec, shape, ctx, path, True)
    children = []
    for i in range(spec.depth):
        plan = info.plan(spec, shape, ctx, path, i == 0)
        plan.name = str(i)
        plan.tag = info.tag
        children.append(plan)
        shape = plan.out
    return container("", f"{spec.type} x{spec.depth}", shape, children, sequential)


# --------------------------------------------------------------------------- lists of layers
Item = tuple[Any, SpecPath]  # a node and its path in the spec


def expand(nodes: Sequence[Any], path: SpecPath, ctx: PlanContext, first: Any = 0) -> list[Item]:
    """Inline every ``repeat`` (recursively): a flat list of (node, spec path) pairs; the nodes
    sit at ``path + (first,)``, ``path + (first + 1,)``, ..."""
    items: list[Item] = []
    for i, node in enumerate(nodes, first):
        if registry.of(node).inline:
            inner = expand(node.layers, (*path, i, "layers"), ctx)
            if len(inner) * node.times > MAX_LAYERS:
                raise ctx.error(
                    (*path, i, "times"), f"repeats to more than {MAX_LAYERS:,} layers", "too_large"
                )
            items += inner * node.times
        else:
            items.append((node, (*path, i)))
    return items


def plan_items(
    items: Sequence[Item], shape: Shape, ctx: PlanContext, default_name: Callable[[int], str]
) -> tuple[list[LayerPlan], Shape]:
    """Plan expanded items in sequence; unnamed ones get ``default_name(position)``."""
    plans: list[LayerPlan] = []
    used: dict[str, SpecPath] = {}
    for i, (node, path) in enumerate(items):
        name = node.name or default_name(i)
        if name in used:
            raise ctx.error(
                (*path, "name"),
                f"module name {name!r} is already used by {dotted(used[name])}; names must be unique "
                "among siblings (a named layer inside a `repeat` is repeated too)",
                "name",
            )
        used[name] = path
        plan = plan_node(node, shape, ctx, path)
        plan.name = name
        plan.source = path
        plans.append(plan)
        shape = plan.out
    return plans, shape


def plan_list(
    nodes: Sequence[Any],
    shape: Shape,
    ctx: PlanContext,
    path: SpecPath,
    default_name: Callable[[int], str],
) -> tuple[list[LayerPlan], Shape]:
    """Plan a list of nodes in sequence (``repeat`` inlined); unnamed ones get ``default_name(position)``."""
    return plan_items(expand(nodes, path, ctx), shape, ctx, default_name)


# --------------------------------------------------------------------------- the whole net
_SECTIONS = ("stem", "stages", "head")


@dataclass
class NetworkPlan:
    """A planned spec: the root plan (type ``model``) and the input shape (C, H, W) it is for."""

    root: LayerPlan
    input_shape: Shape
    planned_expansions: dict[SpecPath, list[Any]] = field(default_factory=dict)
    """See :attr:`PlanContext.planned_expansions`."""

    def materialize(self) -> ZooNet:
        """The network's modules, with PyTorch's default initialization, on the default device."""
        return self.root.materialize()  # type: ignore[return-value]


def plan_spec(spec: ModelSpec, input_shape: Shape | None = None) -> NetworkPlan:
    """Plan ``spec`` for ``input_shape`` (C, H, W; default: the spec's input): arithmetic only.

    The spec's ``scale`` is applied first (:func:`zoo.spec.scaling.scaled`)."""
    spec = scaled(spec)
    if input_shape is None:
        input_shape = (spec.input.channels, *pair(spec.input.size))
    input_shape = tuple(input_shape)
    _check_input(spec, input_shape)
    ctx = PlanContext(spec._located)
    plans: list[LayerPlan] = []
    shape = input_shape
    first_use: dict[str, SpecPath] = {}
    for section in _SECTIONS:
        section_plans, shape = plan_list(
            getattr(spec, section), shape, ctx, (section,), lambda i, sec=section: f"{sec}_{i}"
        )
        for i, plan in enumerate(section_plans):
            if plan.name in first_use:
                raise ctx.error(
                    (section, i, "name"),
                    f"module name {plan.name!r} is already used by {dotted(first_use[plan.name])}; "
                    "top-level names must be unique across stem, stages and head",
                    "name",
                )
            first_use[plan.name] = (section, i)
        plans += section_plans
    _warn_unnormalized_preactivation(plans, ctx)
    schedule_stochastic_depth(spec, ctx.drop_rates)
    name = spec.name
    root = container(
        name, "model", shape, plans, lambda named: zoo_nn().ZooNet(named, name, input_shape)
    )
    return NetworkPlan(root, input_shape, ctx.planned_expansions)


def schedule_stochastic_depth(spec: ModelSpec, rates: Sequence[DropRate]) -> None:
    """Set each block's drop probability from the network's rate: linear in the block's place,
    from 0 at the first block (torchvision's EfficientNet: ``rate * i / n``; ConvNeXt:
    ``rate * i / (n - 1)``, so the last block drops at the rate itself)."""
    if spec.stochastic_depth is None:
        return  # the blocks keep p = 0: their modules are there, and do nothing
    rate, n = spec.stochastic_depth.rate, len(rates)
    last = n - 1 if spec.stochastic_depth.schedule == "linear_to_rate" else n
    for i, drop in enumerate(rates):
        drop.p = rate * i / last if last else 0.0


def _check_input(spec: ModelSpec, shape: Shape) -> None:
    """An input other than the spec's may change its size, never its channels: those are part of
    the network (the first layer's weights), so changing them is a change to the spec."""
    channels = spec.input.channels
    if len(shape) != 3 or min(shape) < 1 or max(shape) > MAX_DIM:
        message = (
            f"input shape {fmt(shape)} must be CxHxW, every size from 1 to at most {MAX_DIM:,}"
        )
    elif shape[0] != channels:
        message = (
            f"the input has {shape[0]} channels but {spec.name} takes {channels} "
            f"(its input.channels); give a {channels}xHxW input, or change the spec "
            f"(--set input.channels={shape[0]})"
        )
    else:
        return
    raise ZooError(Problem(message, kind="input"), ExitCode.USAGE_ERROR)


def _unnormalized_preactivation(
    plans: Sequence[LayerPlan], pending: LayerPlan | None
) -> LayerPlan | None:
    """The spec-level pre-activation block left without a norm after it, in execution order."""
    for plan in plans:
        info = registry.get(plan.tag)
        if info is not None and info.preactivation:
            # a stage repeated by `depth` is the thing to point at; its blocks have no source
            pending = plan if plan.source else pending
        elif info is not None and info.is_norm:
            pending = None
        else:
            pending = _unnormalized_preactivation(plan.children, pending)
    return pending


def _warn_unnormalized_preactivation(plans: Sequence[LayerPlan], ctx: PlanContext) -> None:
    """Pre-activation blocks end on a conv: without a norm after the last one, the head sees raw
    conv outputs (He et al. 2016 and timm's resnetv2 add a final BN-ReLU; seed 003's net forgot it)."""
    block = _unnormalized_preactivation(plans, None)
    if block is None:
        return
    problem = ctx.error(
        block.source,
        "the last pre-activation block is not followed by a norm: add {type: batchnorm} and "
        "{type: relu} before the head, as pre-activation ResNets do",
        "preact_final_norm",
    ).problems[0]
    warnings.warn(ZooWarning(problem), stacklevel=3)
