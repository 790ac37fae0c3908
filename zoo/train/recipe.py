"""Training recipes: how a spec is trained, as validated YAML with the spec format's habits.

A recipe names the optimizer and its parameters, the learning-rate schedule (stepped once per
optimizer step), the epochs and batch size, label smoothing, gradient clipping, mixed precision,
the training augmentation and ONE normalization, shared by training and evaluation: there is no
field that gives evaluation a normalization of its own, so a test set normalized differently from
the training set (the TrashNet mistake in the seeds) cannot be written.

Recipes are read like specs (:mod:`zoo.spec.load`): located errors (``file:line:col: path:
message``), ``extends:`` (a shipped recipe's name, or a path relative to the extending file) with
the same merge rules, and ``--set`` overrides. Every field takes effect or is an error: a
parameter the chosen optimizer or schedule does not have is an unknown field, and settings that
contradict each other (a milestone past the last epoch, a warm-up with one-cycle, which has its own)
are refused at their line.

Validating a recipe imports no torch; :func:`build_optimizer`, :func:`build_scheduler` and
:func:`build_augmentation` import it when called.
"""

from __future__ import annotations

import difflib
import itertools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field, ValidationError, field_validator, model_validator

from zoo.errors import ExitCode, Problem, ZooError
from zoo.spec.fields import Bool, Float, Int, Size, SpecModel
from zoo.spec.inherit import check_overrides
from zoo.spec.load import (
    SPEC_SUFFIXES,
    read_source,
    resolve_chain,
    shipped_dir,
)
from zoo.spec.problems import Grammar, located_problems
from zoo.spec.yaml_loader import Located, SpecPath

if TYPE_CHECKING:
    import torch

# --------------------------------------------------------------------------- field types
Probability = Annotated[Float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[Float, Field(gt=0.0)]
NonNegFloat = Annotated[Float, Field(ge=0.0)]
Beta = Annotated[Float, Field(ge=0.0, lt=1.0)]
MAX_EPOCHS = 100_000
Epoch = Annotated[Int, Field(ge=1, le=MAX_EPOCHS)]
ImageSize = Annotated[Int, Field(gt=0, le=65_536)]

# --------------------------------------------------------------------------- optimizers


class SGD(SpecModel):
    """torch.optim.SGD (defaults are torch's)."""

    type: Literal["sgd"] = Field(description="Stochastic gradient descent (torch.optim.SGD).")
    momentum: Annotated[Float, Field(ge=0.0, lt=1.0)] = Field(
        0.0, description="Momentum factor (torch's `momentum`); 0 is plain SGD."
    )
    dampening: Annotated[Float, Field(ge=0.0, lt=1.0)] = Field(
        0.0, description="Dampening of the momentum (torch's `dampening`); nesterov needs 0."
    )
    nesterov: Bool = Field(
        False, description="Nesterov momentum (Sutskever et al., 2013); needs momentum > 0."
    )

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGD:
        # torch refuses the same at construction; said here, at the recipe's line
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError(
                "nesterov needs momentum > 0 and dampening 0 (torch.optim.SGD); "
                "set momentum (e.g. 0.9) or nesterov: false"
            )
        return self


class Adam(SpecModel):
    """torch.optim.Adam (defaults are torch's); its weight decay is an L2 term in the gradient."""

    type: Literal["adam"] = Field(description="Adam (Kingma & Ba, 2015; torch.optim.Adam).")
    betas: tuple[Beta, Beta] = Field(
        (0.9, 0.999), description="Decay rates of the first and second moment estimates."
    )
    eps: PositiveFloat = Field(1e-8, description="Added to the denominator for stability.")
    amsgrad: Bool = Field(False, description="The AMSGrad variant (Reddi et al., 2018).")


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019)."""

    type: Literal["adamw"] = Field(  # type: ignore[assignment]
        description="AdamW: Adam with decoupled weight decay (torch.optim.AdamW)."
    )


class RMSprop(SpecModel):
    """torch.optim.RMSprop (defaults are torch's)."""

    type: Literal["rmsprop"] = Field(description="RMSprop (Hinton, 2012; torch.optim.RMSprop).")
    alpha: Annotated[Float, Field(gt=0.0, lt=1.0)] = Field(
        0.99, description="Smoothing constant of the squared-gradient average."
    )
    eps: PositiveFloat = Field(1e-8, description="Added to the denominator for stability.")
    momentum: Annotated[Float, Field(ge=0.0, lt=1.0)] = Field(
        0.0, description="Momentum factor; 0 is none."
    )
    centered: Bool = Field(
        False, description="Normalize by an estimate of the gradient's variance (centered RMSprop)."
    )


Optimizer = Annotated[Union[SGD, Adam, AdamW, RMSprop], Field(discriminator="type")]  # noqa: UP007

# --------------------------------------------------------------------------- schedules


class _Schedule(SpecModel):
    warmup_epochs: Annotated[Int, Field(ge=0, le=MAX_EPOCHS)] = Field(
        0,
        description=(
            "Epochs of linear warm-up from warmup_start_factor * lr to lr, step by step "
            "(Goyal et al., 2017), before the schedule proper."
        ),
    )
    warmup_start_factor: Annotated[Float, Field(gt=0.0, le=1.0)] = Field(
        0.01, description="The learning rate at the first step of the warm-up, as a fraction of lr."
    )


class NoSchedule(_Schedule):
    """A constant learning rate (after the warm-up, if any)."""

    type: Literal["none"] = Field(description="A constant learning rate.")


class StepSchedule(_Schedule):
    """Multiply the learning rate by gamma every step_epochs epochs (torch's StepLR)."""

    type: Literal["step"] = Field(description="Decay by gamma every step_epochs (StepLR).")
    step_epochs: Epoch = Field(description="Epochs between decays, counted from the first epoch.")
    gamma: Annotated[Float, Field(gt=0.0, lt=1.0)] = Field(
        0.1, description="Factor the learning rate is multiplied by at each decay."
    )


class MultiStepSchedule(_Schedule):
    """Multiply the learning rate by gamma at given epochs (torch's MultiStepLR)."""

    type: Literal["multistep"] = Field(description="Decay by gamma at milestones (MultiStepLR).")
    milestones: tuple[Epoch, ...] = Field(
        min_length=1,
        description="Epochs (counted from the first, warm-up included) at which lr is decayed, increasing.",
    )
    gamma: Annotated[Float, Field(gt=0.0, lt=1.0)] = Field(
        0.1, description="Factor the learning rate is multiplied by at each milestone."
    )

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, milestones: tuple[int, ...]) -> tuple[int, ...]:
        if any(b <= a for a, b in itertools.pairwise(milestones)):
            raise ValueError("milestones must be strictly increasing, e.g. [30, 60, 80]")
        return milestones


class CosineSchedule(_Schedule):
    """Cosine annealing to min_lr over the epochs after the warm-up (Loshchilov & Hutter, 2017)."""

    type: Literal["cosine"] = Field(description="Cosine annealing (CosineAnnealingLR).")
    min_lr: NonNegFloat = Field(0.0, description="The learning rate at the last step (eta_min).")


class OneCycleSchedule(SpecModel):
    """The one-cycle policy (Smith & Topin, 2019; torch's OneCycleLR) peaking at the recipe's lr.
    It has its own warm-up (pct_start), so it takes no warmup_epochs."""

    type: Literal["onecycle"] = Field(description="The one-cycle policy (OneCycleLR).")
    pct_start: Annotated[Float, Field(gt=0.0, lt=1.0)] = Field(
        0.3, description="Fraction of the steps spent raising the learning rate to lr."
    )
    div_factor: Annotated[Float, Field(ge=1.0)] = Field(
        25.0, description="The first learning rate is lr / div_factor."
    )
    final_div_factor: Annotated[Float, Field(ge=1.0)] = Field(
        1e4, description="The last learning rate is lr / div_factor / final_div_factor."
    )
    anneal: Literal["cos", "linear"] = Field(
        "cos", description="How the learning rate moves between its phases (anneal_strategy)."
    )
    three_phase: Bool = Field(
        False, description="A third phase annihilating the rate (fast.ai's schedule) when true."
    )
    cycle_momentum: Bool = Field(
        True,
        description=(
            "Cycle the momentum (SGD/RMSprop momentum, Adam's first beta) inversely to the rate, "
            "between base_momentum and max_momentum; the optimizer's own momentum is then unused."
        ),
    )
    base_momentum: Beta = Field(0.85, description="Momentum at the peak learning rate.")
    max_momentum: Beta = Field(0.95, description="Momentum at the lowest learning rates.")


Schedule = Annotated[
    Union[NoSchedule, StepSchedule, MultiStepSchedule, CosineSchedule, OneCycleSchedule],  # noqa: UP007
    Field(discriminator="type"),
]

# --------------------------------------------------------------------------- augmentation


class RandomCrop(SpecModel):
    """transforms.v2.RandomCrop with padding: the CIFAR augmentation (He et al., 2016)."""

    type: Literal["random_crop"] = Field(description="A random crop of a padded image.")
    size: ImageSize | None = Field(
        None, description="Side of the square crop; left out: the image's own size."
    )
    padding: Annotated[Int, Field(ge=0, le=65_536)] = Field(
        4, description="Pixels added on every side before cropping."
    )
    padding_mode: Literal["constant", "edge", "reflect", "symmetric"] = Field(
        "constant", description="How the padding is filled (constant: zeros)."
    )


class HorizontalFlip(SpecModel):
    """transforms.v2.RandomHorizontalFlip."""

    type: Literal["horizontal_flip"] = Field(description="Mirror the image left to right.")
    p: Annotated[Float, Field(gt=0.0, le=1.0)] = Field(0.5, description="Probability of a flip.")


class RandomResizedCrop(SpecModel):
    """transforms.v2.RandomResizedCrop: the ImageNet augmentation (Szegedy et al., 2015)."""

    type: Literal["random_resized_crop"] = Field(
        description="A crop of random area and aspect ratio, resized to size."
    )
    size: ImageSize | None = Field(
        None, description="Side of the square output; left out: the spec's input size."
    )
    scale: tuple[
        Annotated[Float, Field(gt=0.0, le=1.0)], Annotated[Float, Field(gt=0.0, le=1.0)]
    ] = Field((0.08, 1.0), description="Range of the crop's area, as fractions of the image's.")
    ratio: tuple[PositiveFloat, PositiveFloat] = Field(
        (3 / 4, 4 / 3), description="Range of the crop's aspect ratio (width / height)."
    )

    @field_validator("scale", "ratio")
    @classmethod
    def _range(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        if bounds[0] > bounds[1]:
            raise ValueError("a [low, high] range: low <= high")
        return bounds


class ColorJitter(SpecModel):
    """transforms.v2.ColorJitter: each factor drawn from [max(0, 1 - x), 1 + x] (hue: [-x, x])."""

    type: Literal["color_jitter"] = Field(
        description="Random brightness, contrast, saturation, hue."
    )
    brightness: NonNegFloat = Field(0.0, description="Brightness jitter; 0 leaves it.")
    contrast: NonNegFloat = Field(0.0, description="Contrast jitter; 0 leaves it.")
    saturation: NonNegFloat = Field(
        0.0, description="Saturation jitter (colour images); 0 leaves it."
    )
    hue: Annotated[Float, Field(ge=0.0, le=0.5)] = Field(
        0.0, description="Hue jitter, at most 0.5 (colour images); 0 leaves it."
    )

    @model_validator(mode="after")
    def _does_something(self) -> ColorJitter:
        if not (self.brightness or self.contrast or self.saturation or self.hue):
            raise ValueError(
                "color_jitter changes nothing; give brightness, contrast, saturation or hue"
            )
        return self


Augmentation = Annotated[
    Union[RandomCrop, HorizontalFlip, RandomResizedCrop, ColorJitter],  # noqa: UP007
    Field(discriminator="type"),
]

# --------------------------------------------------------------------------- normalization

NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # per-channel mean and std of the training set, in [0, 1] pixel values
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    # the per-pixel std (not the often-copied 0.2023, 0.1994, 0.2010, a std of batch means)
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
"""Mean and std of the named normalizations; ``none`` and ``computed`` are not stats."""

Normalization = Literal[
    "imagenet", "mnist", "fashion_mnist", "cifar10", "cifar100", "none", "computed"
]


def normalization_stats(name: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Mean and std of a named normalization; None for ``none`` (pixels in [0, 1]). ``computed``
    is the training set's and is computed from the data (:mod:`zoo.train.data`), not here."""
    if name == "none":
        return None
    if name not in NORMALIZATIONS:
        raise ValueError(f"{name!r} has no fixed statistics; known: {', '.join(NORMALIZATIONS)}")
    return NORMALIZATIONS[name]


# --------------------------------------------------------------------------- the recipe


class RecipeSpec(SpecModel):
    """How a network is trained. One normalization serves training and evaluation alike."""

    name: str | None = Field(None, description="The recipe's name (the file's name by default).")
    description: str | None = Field(
        None, description="What the recipe is for, and the published recipe it follows."
    )
    optimizer: Optimizer = Field(
        description="The optimizer (`type`: sgd, adam, adamw, rmsprop) and its own parameters."
    )
    lr: PositiveFloat = Field(
        description="Learning rate (the peak rate for onecycle; the rate after warm-up otherwise)."
    )
    weight_decay: NonNegFloat = Field(
        0.0, description="Weight decay (L2 for sgd/adam/rmsprop, decoupled for adamw)."
    )
    decay_norm_and_bias: Bool = Field(
        False,
        description=(
            "Apply weight decay to biases and normalization weights too (every parameter of "
            "one dimension or less); false keeps them out of it, as published recipes do."
        ),
    )
    schedule: Schedule = Field(
        default_factory=lambda: NoSchedule(type="none"),
        description="Learning-rate schedule (`type`: none, step, multistep, cosine, onecycle), stepped every batch.",
    )
    epochs: Epoch = Field(description="Passes over the training set.")
    batch_size: Annotated[Int, Field(ge=1, le=65_536)] = Field(
        description="Training images per optimizer step (the global batch across processes)."
    )
    label_smoothing: Annotated[Float, Field(ge=0.0, lt=1.0)] = Field(
        0.0, description="Label smoothing of the cross-entropy loss (Szegedy et al., 2016)."
    )
    clip_grad_norm: PositiveFloat | None = Field(
        None, description="Clip the gradients' global L2 norm to this value; null: no clipping."
    )
    precision: Literal["off", "bf16", "fp16"] = Field(
        "off",
        description="Automatic mixed precision: off (fp32), bf16, or fp16 (with a gradient scaler).",
    )
    augment: tuple[Augmentation, ...] = Field(
        (),
        description="Training-only augmentation, applied in order before normalization; evaluation gets none.",
    )
    normalize: Normalization = Field(
        description=(
            "The one normalization of training AND evaluation images: a named dataset's statistics, "
            "`computed` from the training set, or `none`."
        )
    )
    resize: Size | tuple[Size, Size] | None = Field(
        None,
        description=(
            "Resize training AND evaluation images to this size (an int, or [height, width]) "
            "before augmentation: data of another size than the spec's input (CIFAR's 32x32 for "
            "a 224x224 net)."
        ),
    )


_TAGGED = {
    "optimizer": (SGD, Adam, AdamW, RMSprop),
    "schedule": (NoSchedule, StepSchedule, MultiStepSchedule, CosineSchedule, OneCycleSchedule),
    "augment": (RandomCrop, HorizontalFlip, RandomResizedCrop, ColorJitter),
}
_MODEL_OF_TAG = {
    m.model_fields["type"].annotation.__args__[0]: m for ms in _TAGGED.values() for m in ms
}


# --------------------------------------------------------------------------- finding recipes
def shipped_recipes_dir() -> Path:
    """The folder of the recipes that ship with zoo: in the installed package, else the repo's."""
    return shipped_dir("recipes")


def shipped_recipe_names() -> list[str]:
    """Names of the shipped recipes, sorted."""
    return sorted(p.stem for p in shipped_recipes_dir().glob("*.yaml"))


def _io_error(message: str, kind: str = "no_recipe") -> ZooError:
    return ZooError(Problem(message, kind=kind), ExitCode.IO_ERROR)


def _is_name(ref: str) -> bool:
    return not ("/" in ref or "\\" in ref or Path(ref).suffix.lower() in SPEC_SUFFIXES)


def find_recipe(
    ref: str | os.PathLike[str], folder: Path = Path(), skip: str | None = None
) -> Path:
    """A recipe argument or ``extends:`` target: a bare name is a sibling ``NAME.yaml`` of the
    extending file (never the file itself), else a shipped recipe; anything else is a .yaml path
    relative to ``folder``. Raises :class:`ZooError` (exit 3) when there is none."""
    text = os.fspath(ref)
    if not text.strip():
        raise ZooError(
            Problem("no recipe given: name a shipped recipe or a .yaml file", kind="usage"),
            ExitCode.USAGE_ERROR,
        )
    if _is_name(text):
        candidates = [folder / f"{text}{s}" for s in SPEC_SUFFIXES] if str(folder) != "." else []
        candidates.append(shipped_recipes_dir() / f"{text}.yaml")
        for path in candidates:
            if path.is_file() and os.path.realpath(path) != skip:
                return path
        hint = difflib.get_close_matches(text, shipped_recipe_names(), n=1)
        also = (
            f"did you mean {hint[0]!r}?"
            if hint
            else f"shipped: {', '.join(shipped_recipe_names())}"
        )
        beside = "" if str(folder) == "." else " beside this file nor"
        raise _io_error(f"no such recipe: no {text}.yaml{beside} among the shipped ones; {also}")
    path = folder / text
    if Path(text).suffix.lower() not in SPEC_SUFFIXES:
        raise _io_error(f"{path} is not a .yaml/.yml file; a recipe is a YAML file", "io")
    if not path.exists():
        raise _io_error(f"no such file: {path}")
    return path


RecipeSource = Union[str, os.PathLike, Mapping[str, Any], RecipeSpec]  # noqa: UP007
"""A recipe as :func:`load_recipe` takes it: a shipped name, a YAML path, its data, or a recipe."""


def resolve_recipe(source: RecipeSource, overrides: Sequence[str] = ()) -> Located:
    """Read a recipe and resolve ``extends:`` and ``--set`` overrides: plain located data."""
    check_overrides(overrides)
    if isinstance(source, RecipeSpec):
        source = source.model_dump(mode="json", exclude_unset=True)
    located = read_source(
        source, find_recipe, "a recipe is a shipped name, a YAML path, a mapping or a RecipeSpec"
    )
    return resolve_chain(located, overrides, find_recipe, option="--recipe-set")


def load_recipe(source: RecipeSource, overrides: Sequence[str] = ()) -> RecipeSpec:
    """Load a recipe (a shipped name such as ``"cifar10"``, a YAML path, a mapping, or a
    :class:`RecipeSpec`), resolve ``extends:`` and ``overrides`` (``["lr=0.05"]``), validate it.
    Raises :class:`ZooError` with every problem located (``file:line:col: path: message``)."""
    if isinstance(source, RecipeSpec) and not overrides:
        return source
    return validate_recipe(resolve_recipe(source, overrides))


def validate_recipe(located: Located) -> RecipeSpec:
    """Validate located data as a :class:`RecipeSpec`, then check the fields against each other."""
    if not isinstance(located.data, dict):
        got = "an empty file" if located.data is None else type(located.data).__name__
        raise ZooError(
            located.problem(
                (), f"a recipe must be a mapping (optimizer, lr, ...), got {got}", "type"
            )
        )
    try:
        recipe = RecipeSpec.model_validate(located.data)
    except ValidationError as exc:
        raise ZooError(located_problems(exc, located, _GRAMMAR)) from None
    problems = [located.problem(path, message, "recipe") for path, message in _conflicts(recipe)]
    if problems:
        raise ZooError(problems)
    return recipe


def _conflicts(recipe: RecipeSpec) -> list[tuple[SpecPath, str]]:
    """Settings that are each valid but contradict each other: (path, message)."""
    found: list[tuple[SpecPath, str]] = []
    schedule, optimizer = recipe.schedule, recipe.optimizer
    if isinstance(schedule, OneCycleSchedule):
        if schedule.cycle_momentum:
            written = optimizer.model_fields_set & {"momentum", "betas"}
            if written:
                field = sorted(written)[0]
                found.append(
                    (
                        ("optimizer", field),
                        f"onecycle cycles the momentum, so optimizer.{field} is unused; leave "
                        "it out, or set schedule.cycle_momentum: false",
                    )
                )
            if schedule.base_momentum > schedule.max_momentum:
                found.append(
                    (("schedule", "base_momentum"), "base_momentum must be <= max_momentum")
                )
        else:
            unused = schedule.model_fields_set & {"base_momentum", "max_momentum"}
            for field in sorted(unused):
                found.append(
                    (("schedule", field), f"{field} is unused when cycle_momentum is false")
                )
    elif schedule.warmup_epochs >= recipe.epochs:
        found.append(
            (
                ("schedule", "warmup_epochs"),
                f"the warm-up ({schedule.warmup_epochs} epochs) must end before the last of "
                f"the {recipe.epochs} epochs; shorten it (--recipe-set "
                f"schedule.warmup_epochs={recipe.epochs - 1}) or train longer (--epochs "
                f"{schedule.warmup_epochs + 1})",
            )
        )
    elif "warmup_start_factor" in schedule.model_fields_set and schedule.warmup_epochs == 0:
        found.append(
            (("schedule", "warmup_start_factor"), "unused without warmup_epochs; give both")
        )
    if isinstance(schedule, StepSchedule) and schedule.step_epochs >= recipe.epochs:
        found.append(
            (
                ("schedule", "step_epochs"),
                f"no decay happens within {recipe.epochs} epochs; use a smaller step_epochs",
            )
        )
    if isinstance(schedule, MultiStepSchedule):
        for i, epoch in enumerate(schedule.milestones):
            if epoch >= recipe.epochs or epoch <= schedule.warmup_epochs:
                found.append(
                    (
                        ("schedule", "milestones", i),
                        f"milestone {epoch} must lie after the warm-up "
                        f"({schedule.warmup_epochs} epochs) and before epoch {recipe.epochs}",
                    )
                )
    if isinstance(schedule, CosineSchedule) and schedule.min_lr >= recipe.lr:
        found.append((("schedule", "min_lr"), f"min_lr must be below lr ({recipe.lr})"))
    if recipe.weight_decay == 0 and "decay_norm_and_bias" in recipe.model_fields_set:
        found.append((("decay_norm_and_bias",), "unused without weight_decay; give both"))
    return found


# --------------------------------------------------------------------------- located errors
def _union(path: SpecPath) -> str:
    """The tagged union a node at ``path`` is a member of: ``optimizer``, ``schedule``, ``augment``."""
    return next(p for p in path if isinstance(p, str))


def _tags(path: SpecPath) -> list[str]:
    """The valid tags of a node at ``path``, in the order of its union."""
    return [m.model_fields["type"].annotation.__args__[0] for m in _TAGGED[_union(path)]]


_GRAMMAR = Grammar(
    RecipeSpec,
    _MODEL_OF_TAG.get,
    _tags,
    type_noun=lambda path: f"{_union(path)} type",
    name_members=True,
    type_kinds=("union_tag_invalid", "union_tag_not_found"),
)


def recipe_schema() -> dict[str, Any]:
    """The JSON Schema of recipe files (editor completion and hover text): every field with its
    description; ``extends`` allowed, and nothing required in a recipe that extends another."""
    schema = RecipeSpec.model_json_schema()
    required = schema.pop("required", [])
    schema["properties"] = {
        "extends": {
            "type": "string",
            "description": "A recipe this one changes: a shipped recipe's name or a relative path.",
        },
        **schema["properties"],
    }
    schema["if"] = {"required": ["extends"]}
    schema["else"] = {"required": required}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "zoo recipe",
        **schema,
    }


# --------------------------------------------------------------------------- building


def recipe_schema_text() -> str:
    """:func:`recipe_schema` as the committed ``schemas/zoo-recipe.schema.json`` holds it."""
    import json

    return json.dumps(recipe_schema(), indent=2) + "\n"


def parameter_groups(recipe: RecipeSpec, model: torch.nn.Module) -> list[dict[str, Any]]:
    """The model's trainable parameters in optimizer groups: with weight decay, and (unless
    ``decay_norm_and_bias``) biases and normalization weights (ndim <= 1) in a group without."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ZooError(Problem("the model has no trainable parameters", kind="recipe"))
    if recipe.weight_decay == 0 or recipe.decay_norm_and_bias:
        return [{"params": params, "weight_decay": recipe.weight_decay}]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}]
    groups.append({"params": no_decay, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def build_optimizer(recipe: RecipeSpec, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The recipe's torch optimizer over ``model``'s trainable parameters."""
    import torch

    groups = parameter_groups(recipe, model)
    opt = recipe.optimizer
    if isinstance(opt, SGD):
        momentum = opt.momentum
        cycled = isinstance(recipe.schedule, OneCycleSchedule) and recipe.schedule.cycle_momentum
        if cycled and momentum == 0:
            # OneCycleLR overwrites the momentum every step; start where it starts, so that
            # SGD keeps a momentum buffer (it has none with momentum 0 at construction)
            momentum = recipe.schedule.max_momentum
        return torch.optim.SGD(
            groups, lr=recipe.lr, momentum=momentum, dampening=opt.dampening, nesterov=opt.nesterov
        )
    if isinstance(opt, Adam):  # AdamW too
        cls = torch.optim.AdamW if isinstance(opt, AdamW) else torch.optim.Adam
        return cls(groups, lr=recipe.lr, betas=opt.betas, eps=opt.eps, amsgrad=opt.amsgrad)
    return torch.optim.RMSprop(
        groups,
        lr=recipe.lr,
        alpha=opt.alpha,
        eps=opt.eps,
        momentum=opt.momentum,
        centered=opt.centered,
    )


def build_scheduler(
    recipe: RecipeSpec, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The recipe's schedule as a torch scheduler stepped once per optimizer step
    (``epochs * steps_per_epoch`` steps in all); epochs in the recipe become steps here."""
    from torch.optim import lr_scheduler as sched

    if (
        not isinstance(steps_per_epoch, int)
        or isinstance(steps_per_epoch, bool)
        or steps_per_epoch < 1
    ):
        raise ZooError(
            Problem(
                f"steps_per_epoch must be a positive int, got {steps_per_epoch!r}", kind="usage"
            ),
            ExitCode.USAGE_ERROR,
        )
    s = recipe.schedule
    total = recipe.epochs * steps_per_epoch
    if isinstance(s, OneCycleSchedule):
        # torch divides by each phase's length in steps: a phase of no step is a ZeroDivisionError
        def fits(steps: int) -> bool:
            up = s.pct_start * steps
            return up > 1 and steps - 1 - (2 * up - 2 if s.three_phase else up - 1) > 0

        if not fits(total):
            epochs = next(
                e for e in itertools.count(recipe.epochs + 1) if fits(e * steps_per_epoch)
            )
            raise ZooError(
                Problem(
                    f"one-cycle over {total} steps ({recipe.epochs} epochs of {steps_per_epoch}) "
                    f"is too short: its rise (pct_start {s.pct_start}) and fall each need more "
                    f"than one step; train longer (--epochs {epochs}), with a smaller batch "
                    "(--batch), or another schedule",
                    kind="usage",
                ),
                ExitCode.USAGE_ERROR,
            )
        return sched.OneCycleLR(
            optimizer,
            max_lr=recipe.lr,
            total_steps=total,
            pct_start=s.pct_start,
            anneal_strategy=s.anneal,
            cycle_momentum=s.cycle_momentum,
            base_momentum=s.base_momentum,
            max_momentum=s.max_momentum,
            div_factor=s.div_factor,
            final_div_factor=s.final_div_factor,
            three_phase=s.three_phase,
        )
    warm = s.warmup_epochs * steps_per_epoch
    main: sched.LRScheduler
    if isinstance(s, NoSchedule):
        main = sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
    elif isinstance(s, StepSchedule | MultiStepSchedule):
        # epochs count from the first (as published recipes write them: decay at 30, 60, 80
        # with 5 warm-up epochs); the scheduler after a warm-up counts from its end
        epochs = (
            range(s.step_epochs, recipe.epochs, s.step_epochs)
            if isinstance(s, StepSchedule)
            else s.milestones
        )
        main = sched.MultiStepLR(
            optimizer, milestones=[e * steps_per_epoch - warm for e in epochs], gamma=s.gamma
        )
    else:
        main = sched.CosineAnnealingLR(optimizer, T_max=total - warm, eta_min=s.min_lr)
    if warm == 0:
        return main
    warmup = sched.LinearLR(
        optimizer, start_factor=s.warmup_start_factor, end_factor=1.0, total_iters=warm
    )
    return sched.SequentialLR(optimizer, [warmup, main], milestones=[warm])


def build_augmentation(recipe: RecipeSpec, image_size: int) -> list[Any]:
    """The training augmentation as torchvision.transforms.v2 transforms, in the recipe's order,
    for square images of side ``image_size`` (the size a crop without ``size`` keeps)."""
    from torchvision.transforms import v2

    out: list[Any] = []
    for item in recipe.augment:
        if isinstance(item, RandomCrop):
            out.append(
                v2.RandomCrop(
                    item.size or image_size, padding=item.padding, padding_mode=item.padding_mode
                )
            )
        elif isinstance(item, HorizontalFlip):
            out.append(v2.RandomHorizontalFlip(p=item.p))
        elif isinstance(item, RandomResizedCrop):
            out.append(
                v2.RandomResizedCrop(
                    item.size or image_size, scale=item.scale, ratio=item.ratio, antialias=True
                )
            )
        else:
            out.append(
                v2.ColorJitter(
                    brightness=item.brightness or None,
                    contrast=item.contrast or None,
                    saturation=item.saturation or None,
                    hue=item.hue or None,
                )
            )
    return out
