"""Containers: ``sequential`` (a named group, an ``nn.Sequential``) and ``repeat`` (layers inlined
``times`` over into the enclosing list, with no module of its own)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from zoo import registry
from zoo.plan import LayerPlan, PlanContext, container, expand, plan_items, plan_list, sequential
from zoo.shapes import Shape
from zoo.spec.fields import Count, RepeatableSpec, SpecModel
from zoo.spec.yaml_loader import SpecPath

if TYPE_CHECKING:
    from zoo.spec.schema import Node


class SequentialSpec(RepeatableSpec):
    """A named group of layers (an ``nn.Sequential``), optionally repeated ``depth`` times."""

    type: Literal["sequential"] = Field(
        description="A group of layers run in order (nn.Sequential)."
    )
    layers: tuple[Node, ...] = Field(min_length=1, description="The layers, in order.")


class RepeatSpec(SpecModel):
    """Its layers, ``times`` times over, inlined into the enclosing list (no container module).

    torchvision's VGG keeps all its convs in one flat ``features`` Sequential; ``repeat`` writes
    that compactly while keeping the flat indices (``features.0``, ``features.2``, ...).
    """

    type: Literal["repeat"] = Field(
        description="Inline its layers `times` times into the enclosing list."
    )
    times: Count = Field(description="How many times to repeat the layers.")
    layers: tuple[Node, ...] = Field(
        min_length=1, description="The layers to repeat (unnamed, or names clash)."
    )


@registry.planner(
    SequentialSpec,
    block=True,
    example={"type": "sequential", "depth": 2, "layers": [{"type": "conv", "out": 4, "kernel": 1}]},
)
def plan_sequential(
    spec: SequentialSpec, shape: Shape, ctx: PlanContext, path: SpecPath, first: bool
) -> LayerPlan:
    plans, out = plan_list(spec.layers, shape, ctx, (*path, "layers"), str)
    return container("", "sequential", out, plans, sequential)


@registry.planner(
    RepeatSpec,
    inline=True,
    example={"type": "repeat", "times": 2, "layers": [{"type": "relu"}, {"type": "identity"}]},
)
def plan_repeat(spec: RepeatSpec, shape: Shape, ctx: PlanContext, path: SpecPath) -> LayerPlan:
    """A repeat where one layer stands (a concat branch): an ``nn.Sequential`` of its layers,
    ``times`` over. In a list of layers it is inlined instead (:func:`zoo.plan.expand`)."""
    items = expand((spec,), path[:-1], ctx, first=path[-1])
    plans, out = plan_items(items, shape, ctx, str)
    return container("", "sequential", out, plans, sequential)
