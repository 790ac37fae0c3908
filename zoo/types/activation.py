"""Activations: one table, ``ACTIVATIONS``, of every activation zoo knows (its spec model and its
``torch.nn`` class). ``conv_bn_act``'s ``act`` field and every planner read the same table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from zoo import registry
from zoo.plan import LayerPlan, PlanContext, leaf, torch_nn
from zoo.shapes import Shape
from zoo.spec.fields import Bool, Float, NamedSpec
from zoo.spec.yaml_loader import SpecPath


class _InPlace(NamedSpec):
    inplace: Bool = Field(
        False, description="Compute in place (saves memory; PyTorch's default is False)."
    )


class ReLUSpec(_InPlace):
    type: Literal["relu"] = Field(description="nn.ReLU.")


class ReLU6Spec(_InPlace):
    type: Literal["relu6"] = Field(description="nn.ReLU6.")


class LeakyReLUSpec(_InPlace):
    type: Literal["leaky_relu"] = Field(description="nn.LeakyReLU.")
    negative_slope: Float = Field(0.01, description="Slope for negative inputs.")


class GELUSpec(NamedSpec):
    type: Literal["gelu"] = Field(description="nn.GELU.")
    approximate: Literal["none", "tanh"] = Field(
        "none", description="Exact erf or the tanh approximation."
    )


class SiLUSpec(_InPlace):
    type: Literal["silu"] = Field(description="nn.SiLU (swish).")


class HardswishSpec(_InPlace):
    type: Literal["hardswish"] = Field(description="nn.Hardswish.")


class HardsigmoidSpec(_InPlace):
    type: Literal["hardsigmoid"] = Field(
        description="nn.Hardsigmoid (MobileNetV3's gate: relu6(x + 3) / 6)."
    )


class SigmoidSpec(NamedSpec):
    type: Literal["sigmoid"] = Field(description="nn.Sigmoid.")


class TanhSpec(NamedSpec):
    type: Literal["tanh"] = Field(description="nn.Tanh.")


@dataclass(frozen=True)
class Activation:
    """An activation: its spec model and the ``torch.nn`` class it makes."""

    model: type[NamedSpec]
    torch_class: str

    @property
    def inplace(self) -> bool:
        """Whether the module can compute in place (its spec has an ``inplace`` field)."""
        return "inplace" in self.model.model_fields


ACTIVATIONS: dict[str, Activation] = {
    registry.type_tag(model): Activation(model, torch_class)
    for model, torch_class in (
        (ReLUSpec, "ReLU"),
        (ReLU6Spec, "ReLU6"),
        (LeakyReLUSpec, "LeakyReLU"),
        (GELUSpec, "GELU"),
        (SiLUSpec, "SiLU"),
        (HardswishSpec, "Hardswish"),
        (HardsigmoidSpec, "Hardsigmoid"),
        (SigmoidSpec, "Sigmoid"),
        (TanhSpec, "Tanh"),
    )
}

ActivationTag = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]
"""An activation's tag: the values of a field that names an activation."""
ActivationName = Literal[(*ACTIVATIONS, "none")]  # type: ignore[valid-type]
"""An activation's tag, or ``none``: the values of ``conv_bn_act``'s ``act`` field."""


def activation_plan(tag: str, shape: Shape, **options: Any) -> LayerPlan:
    """The plan of activation ``tag`` on ``shape`` (activations keep the shape and cost nothing)."""
    torch_class = ACTIVATIONS[tag].torch_class
    return leaf(tag, shape, lambda: getattr(torch_nn(), torch_class)(**options))


def plan_activation(spec: NamedSpec, shape: Shape, ctx: PlanContext, path: SpecPath) -> LayerPlan:
    return activation_plan(spec.type, shape, **spec.model_dump(exclude={"type", "name"}))  # type: ignore[attr-defined]


for _tag, _activation in ACTIVATIONS.items():
    registry.register(_activation.model, plan_activation, example={"type": _tag})
