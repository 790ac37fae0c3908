"""Scaling rules: a family is its base spec plus the published multipliers of each member.

``scale: {width: 1.2, depth: 1.4}`` multiplies every channel count of the spec (the fields each
type registers as ``channel_fields``: a conv's ``out``, a block's ``out``; never a linear's, which
counts classes) and every block ``depth``, with the rounding of the paper's reference code:
channels to a multiple of ``divisor`` that loses at most ``1 - round_limit`` of the value
(torchvision's ``_make_divisible``, as EfficientNet's ``adjust_channels`` and MNASNet's
``_round_to_multiple_of``), depths up (EfficientNet's ``ceil(n * depth)``). It is applied to the
validated spec, before planning, so a spec with ``scale`` plans exactly as the spec with the
scaled numbers written out (``zoo resolve --expand`` prints it).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from zoo import registry
from zoo.errors import Problem, ZooError
from zoo.shapes import make_divisible
from zoo.spec.fields import Float, Size, SpecModel
from zoo.spec.yaml_loader import SpecPath, dotted

if TYPE_CHECKING:
    from zoo.spec.schema import ModelSpec


class ScaleSpec(SpecModel):
    """Width and depth multipliers applied to the whole spec (EfficientNet's compound scaling,
    MobileNet's and MNASNet's width multiplier)."""

    width: Float = Field(
        1.0, gt=0, le=100, description="Multiplies every channel count (not a linear's outputs)."
    )
    depth: Float = Field(
        1.0, gt=0, le=100, description="Multiplies every block `depth`, rounded up."
    )
    divisor: Size = Field(8, description="Scaled channels are rounded to a multiple of this.")
    round_limit: Float = Field(
        0.9,
        ge=0,
        le=1,
        description="Round up a multiple when rounding down would lose more than 1 - this.",
    )
    keep: tuple[str, ...] = Field(
        (),
        description=(
            "Dotted spec paths of nodes left unscaled, with everything inside them "
            "(stages.0.layers.14: MNASNet's last conv keeps 1280 channels at any width)."
        ),
    )


def scaled(spec: ModelSpec) -> ModelSpec:
    """``spec`` with its ``scale`` applied (and then left out); ``spec`` itself without one."""
    scale = spec.scale
    if scale is None:
        return spec
    rule = _Rule(scale)
    update: dict[str, Any] = {"scale": None}
    for section in ("stem", "stages", "head"):
        update[section] = rule.apply(getattr(spec, section), (section,))
    for i, path in enumerate(scale.keep):
        if path not in rule.seen:
            message = f"{path!r} is not the path of a layer or block in this spec (e.g. stages.0)"
            problem_path = ("scale", "keep", i)
            located = spec._located
            problem = (
                located.problem(problem_path, message, "value")
                if located is not None
                else Problem(message, path=dotted(problem_path), kind="value")
            )
            raise ZooError(problem)
    result = spec.model_copy(update=update)
    result._located = spec._located
    return result


class _Rule:
    """One spec's scaling, applied node by node."""

    def __init__(self, scale: ScaleSpec):
        self.scale = scale
        self.keep = frozenset(scale.keep)
        self.seen: set[str] = set()

    def channels(self, value: int) -> int:
        return make_divisible(
            value * self.scale.width, self.scale.divisor, round_limit=self.scale.round_limit
        )

    def apply(self, value: Any, path: SpecPath) -> Any:
        """``value`` (a node, a tuple of them, or any other field value) scaled."""
        if isinstance(value, tuple):
            return tuple(self.apply(item, (*path, i)) for i, item in enumerate(value))
        if not isinstance(value, BaseModel):
            return value
        try:
            info = registry.of(value)
        except KeyError:
            return value  # a part of a node (a shortcut): no node inside it
        key = dotted(path)
        self.seen.add(key)
        if key in self.keep:
            self._mark_inner(value, path)
            return value
        update: dict[str, Any] = {}
        for name in info.channel_fields:
            current = getattr(value, name)
            if isinstance(current, int):
                update[name] = self.channels(current)
        if isinstance(getattr(value, "depth", None), int):
            update["depth"] = math.ceil(value.depth * self.scale.depth)
        for name in type(value).model_fields:
            field_value = getattr(value, name)
            if isinstance(field_value, BaseModel | tuple):
                scaled_value = self.apply(field_value, (*path, name))
                if scaled_value is not field_value:
                    update[name] = scaled_value
        return value.model_copy(update=update) if update else value

    def _mark_inner(self, value: Any, path: SpecPath) -> None:
        """Record the paths inside a kept node, so that ``keep`` may name them too."""
        for name in type(value).model_fields:
            field_value = getattr(value, name)
            if isinstance(field_value, tuple):
                for i, item in enumerate(field_value):
                    if isinstance(item, BaseModel):
                        self.seen.add(dotted((*path, name, i)))
                        self._mark_inner(item, (*path, name, i))
