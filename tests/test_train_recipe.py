"""Recipes (zoo.train.recipe): loading, extends, --set, located errors, the JSON Schema, and the
optimizers and schedules they build, checked step by step against torch's own."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch import nn
from torch.optim import lr_scheduler as sched

from zoo.errors import ZooError
from zoo.train.recipe import (
    NORMALIZATIONS,
    RecipeSpec,
    build_augmentation,
    build_optimizer,
    build_scheduler,
    load_recipe,
    normalization_stats,
    recipe_schema,
    shipped_recipe_names,
    shipped_recipes_dir,
)

SHIPPED = ["cifar10", "cifar100", "fashion_mnist", "imagenet", "mnist"]

BASE = """\
optimizer:
  type: sgd
  momentum: 0.9
lr: 0.1
epochs: 10
batch_size: 32
normalize: cifar10
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def problems(source: Any, overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(ZooError) as info:
        load_recipe(source, overrides)
    return [p.format() for p in info.value.problems]


# --------------------------------------------------------------------------- shipped recipes
def test_shipped_recipes_are_the_expected_ones():
    assert shipped_recipe_names() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_loads(name: str):
    recipe = load_recipe(name)
    assert recipe.name == name
    assert recipe.description and len(recipe.description) > 80
    text = (shipped_recipes_dir() / f"{name}.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=../schemas/zoo-recipe.schema.json\n")
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(10))
    model(torch.zeros(1, 3, 8, 8))  # materialize the lazy layer
    optimizer = build_optimizer(recipe, model)
    scheduler = build_scheduler(recipe, optimizer, steps_per_epoch=3)
    for _ in range(recipe.epochs * 3):
        optimizer.step()
        scheduler.step()
    assert len(build_augmentation(recipe, 32)) == len(recipe.augment)


def test_published_defaults():
    cifar = load_recipe("cifar10")
    assert cifar.optimizer.type == "sgd" and cifar.optimizer.momentum == 0.9
    assert cifar.optimizer.nesterov and cifar.weight_decay == 5e-4
    assert cifar.schedule.type == "cosine"
    assert [a.type for a in cifar.augment] == ["random_crop", "horizontal_flip"]
    mnist = load_recipe("mnist")
    assert (mnist.optimizer.type, mnist.schedule.type) == ("adamw", "onecycle")


def test_recipe_is_frozen():
    recipe = load_recipe("mnist")
    with pytest.raises(ValidationError):
        recipe.lr = 1.0  # type: ignore[misc]
    assert isinstance(load_recipe("cifar10").augment, tuple)


# --------------------------------------------------------------------------- extends and --set
def test_extends_inherits_and_overrides():
    fashion = load_recipe("fashion_mnist")
    mnist = load_recipe("mnist")
    assert fashion.optimizer == mnist.optimizer and fashion.schedule == mnist.schedule
    assert (fashion.epochs, fashion.normalize) == (15, "fashion_mnist")
    assert load_recipe("cifar100").optimizer == load_recipe("cifar10").optimizer


def test_extends_a_relative_path_and_a_sibling(tmp_path: Path):
    write(tmp_path, "base.yaml", BASE)
    sub = tmp_path / "sub"
    sub.mkdir()
    child = write(sub, "child.yaml", "extends: ../base.yaml\nepochs: 20\n")
    assert load_recipe(child).epochs == 20
    # a bare name is a sibling first, then a shipped recipe; a file never extends itself
    write(tmp_path, "cifar10.yaml", "extends: cifar10\nlr: 0.05\n")
    mine = write(tmp_path, "mine.yaml", "extends: cifar10\nepochs: 3\n")
    recipe = load_recipe(mine)
    assert (recipe.lr, recipe.epochs, recipe.optimizer.nesterov) == (0.05, 3, True)


def test_extends_problems_are_located(tmp_path: Path):
    missing = write(tmp_path, "a.yaml", "extends: nosuch\n")
    assert problems(missing) == [
        f"{missing}:1:10: extends: no such recipe: no nosuch.yaml beside this file nor among the "
        "shipped ones; shipped: " + ", ".join(SHIPPED)
    ]
    write(tmp_path, "x.yaml", "extends: y.yaml\n")
    cyclic = write(tmp_path, "y.yaml", "extends: x.yaml\n")
    assert "extends cycle: y.yaml -> x.yaml -> y.yaml" in problems(cyclic)[0]
    absolute = write(tmp_path, "b.yaml", f"extends: {tmp_path / 'x.yaml'}\n")
    assert "absolute path" in problems(absolute)[0]


def test_set_overrides():
    recipe = load_recipe("cifar10", ["lr=0.05", "epochs=2", "schedule.warmup_epochs=0"])
    assert (recipe.lr, recipe.epochs, recipe.schedule.warmup_epochs) == (0.05, 2, 0)
    swapped = load_recipe("cifar10", ["optimizer={type: adamw, betas: [0.9, 0.95]}"])
    assert swapped.optimizer.type == "adamw" and swapped.optimizer.betas == (0.9, 0.95)
    assert load_recipe("cifar10", ["augment.0.padding=2"]).augment[0].padding == 2
    assert load_recipe("mnist", ["clip_grad_norm=1.0"]).clip_grad_norm == 1.0
    assert load_recipe(load_recipe("mnist"), ["epochs=1"]).epochs == 1


def test_mapping_source_and_bad_sources():
    recipe = load_recipe(
        {
            "optimizer": {"type": "rmsprop"},
            "lr": 0.01,
            "epochs": 1,
            "batch_size": 8,
            "normalize": "none",
        }
    )
    assert recipe.optimizer.alpha == 0.99 and recipe.schedule.type == "none"
    for bad in (42, None):
        with pytest.raises(ZooError):
            load_recipe(bad)  # type: ignore[arg-type]
    with pytest.raises(ZooError):
        load_recipe("mnist", "lr=1")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- located errors
ERRORS = [
    # (text after BASE, or replacing it when it has `optimizer`), expected line:col, path, message part
    ("optimizer:\n  momentun: 0.9\n", "2:3", "optimizer", "missing 'type'; one of: sgd"),
    ("precision: fp8\n", "8:12", "precision", "'off', 'bf16' or 'fp16'"),
    ("lr2: 0.1\n", "8:1", "lr2", "did you mean 'lr'?"),
    ("schedule:\n  type: cosin\n", "9:9", "schedule.type", "did you mean 'cosine'?"),
    ("schedule:\n  type: step\n", "9:3", "schedule.step_epochs", "missing required field"),
    ("schedule:\n  type: step\n  step_epochs: 10\n", "10:16", "schedule.step_epochs", "no decay"),
    (
        "schedule:\n  type: multistep\n  milestones: [3, 12]\n",
        "10:19",
        "schedule.milestones.1",
        "before epoch 10",
    ),
    (
        "schedule:\n  type: multistep\n  milestones: [5, 3]\n",
        "10:15",
        "schedule.milestones",
        "strictly increasing",
    ),
    (
        "schedule:\n  type: cosine\n  warmup_epochs: 10\n",
        "10:18",
        "schedule.warmup_epochs",
        "must end before",
    ),
    (
        "schedule:\n  type: cosine\n  warmup_start_factor: 0.1\n",
        "10:24",
        "schedule.warmup_start_factor",
        "unused without warmup_epochs",
    ),
    (
        "schedule:\n  type: onecycle\n  warmup_epochs: 1\n",
        "10:3",
        "schedule.warmup_epochs",
        "unknown field",
    ),
    ("schedule:\n  type: onecycle\n", "3:13", "optimizer.momentum", "onecycle cycles"),
    ("schedule:\n  type: cosine\n  min_lr: 0.5\n", "10:11", "schedule.min_lr", "below lr"),
    ("augment:\n  - type: color_jitter\n", "9:5", "augment.0", "changes nothing"),
    ("augment:\n  - {type: random_crop, size: 0}\n", "9:31", "augment.0.size", "greater than 0"),
    (
        "augment:\n  - {type: random_resized_crop, scale: [0.9, 0.1]}\n",
        "9:40",
        "augment.0.scale",
        "low <= high",
    ),
    ("augment:\n  - padding: 4\n", "9:5", "augment.0", "missing 'type'"),
    ("normalize: trashnet\n", "7:12", "normalize", "'imagenet'"),
    ("decay_norm_and_bias: true\n", "8:22", "decay_norm_and_bias", "unused without weight_decay"),
    ("label_smoothing: 1.0\n", "8:18", "label_smoothing", "less than 1"),
    ("clip_grad_norm: .inf\n", "8:17", "clip_grad_norm", "finite"),
    ("epochs2: 3\n", "8:1", "epochs2", "did you mean 'epochs'?"),
]


@pytest.mark.parametrize(("extra", "where", "path", "fragment"), ERRORS)
def test_every_error_is_located(tmp_path: Path, extra: str, where: str, path: str, fragment):
    # an extra `optimizer:` replaces the base's whole (its first three lines)
    text = extra + BASE.split("\n", 3)[3] if extra.startswith("optimizer:") else BASE + extra
    # the later key wins in a merge; a second top-level key is a duplicate: replace it instead
    key = extra.split(":", 1)[0]
    if key in ("schedule", "precision", "normalize", "lr", "epochs") and key + ":" in BASE:
        text = "".join(line + "\n" for line in BASE.splitlines() if not line.startswith(key + ":"))
        text += extra
    file = write(tmp_path, "r.yaml", text)
    found = problems(file)
    assert any(p.startswith(f"{file}:{where}: {path}:") for p in found), (text, found)
    if fragment:
        assert any(fragment in p for p in found), found


def test_errors_strict_types(tmp_path: Path):
    file = write(
        tmp_path,
        "r.yaml",
        BASE.replace("lr: 0.1", 'lr: "0.1"').replace("epochs: 10", "epochs: true"),
    )
    found = problems(file)
    assert any(p.startswith(f"{file}:4:5: lr:") for p in found)
    assert any(p.startswith(f"{file}:5:9: epochs:") for p in found)
    assert problems(write(tmp_path, "e.yaml", ""))[0].endswith("got an empty file")


def test_errors_from_inherited_fields_point_into_the_base():
    found = problems("cifar10", ("optimizer.type=adamw",))
    base = shipped_recipes_dir() / "cifar10.yaml"
    assert found[0].startswith(f"{base}:10:3: optimizer.momentum: unknown field")
    assert problems("cifar10", ("optimizer.typo=1",)) == [
        "--recipe-set: optimizer.typo: unknown field; did you mean 'type'? (sgd has no such field)"
    ]
    assert problems("cifar10", ("nesterov",))[0].startswith("--recipe-set: expected PATH=VALUE")


def test_nesterov_needs_momentum():
    found = problems(
        {
            "optimizer": {"type": "sgd", "nesterov": True},
            "lr": 0.1,
            "epochs": 1,
            "batch_size": 1,
            "normalize": "none",
        }
    )
    assert found == [
        "<dict>: optimizer: nesterov needs momentum > 0 and dampening 0 (torch.optim.SGD); "
        "set momentum (e.g. 0.9) or nesterov: false"
    ]


# --------------------------------------------------------------------------- schema
def _walk_properties(schema: dict[str, Any], defs: dict[str, Any], where: str = ""):
    for name, prop in schema.get("properties", {}).items():
        yield f"{where}{name}", prop
    for sub in defs.values():
        for name, prop in sub.get("properties", {}).items():
            yield f"{sub.get('title')}.{name}", prop


def test_schema_describes_every_field():
    schema = recipe_schema()
    undescribed = [
        name
        for name, prop in _walk_properties(schema, schema.get("$defs", {}))
        if not prop.get("description")
    ]
    assert undescribed == []
    assert "extends" in schema["properties"]
    assert set(schema["else"]["required"]) == {
        "optimizer",
        "lr",
        "epochs",
        "batch_size",
        "normalize",
    }


def test_schema_accepts_shipped_recipes_and_refuses_a_typo():
    jsonschema = pytest.importorskip("jsonschema")
    from zoo.spec.yaml_loader import load_yaml

    validator = jsonschema.Draft202012Validator(recipe_schema())
    for name in SHIPPED:
        data = load_yaml((shipped_recipes_dir() / f"{name}.yaml").read_text()).data
        assert list(validator.iter_errors(data)) == [], name
    assert list(validator.iter_errors({"extends": "mnist", "lr2": 1}))
    assert list(validator.iter_errors({"lr": 0.1}))  # required fields without a base


# --------------------------------------------------------------------------- optimizers
def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)
    )


def recipe_with(**fields: Any) -> RecipeSpec:
    data = {
        "optimizer": {"type": "sgd"},
        "lr": 0.1,
        "epochs": 4,
        "batch_size": 4,
        "normalize": "none",
        **fields,
    }
    return load_recipe(data)


def step_both(ours: torch.optim.Optimizer, theirs: torch.optim.Optimizer, a, b, steps=3):
    x = torch.randn(5, 1, 6, 6)
    for _ in range(steps):
        for model, opt in ((a, ours), (b, theirs)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("optimizer", "make"),
    [
        (
            {"type": "sgd", "momentum": 0.9, "nesterov": True},
            lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True),
        ),
        (
            {"type": "adam", "betas": [0.8, 0.99], "amsgrad": True},
            lambda g: torch.optim.Adam(g, lr=0.1, betas=(0.8, 0.99), amsgrad=True),
        ),
        ({"type": "adamw", "eps": 1e-6}, lambda g: torch.optim.AdamW(g, lr=0.1, eps=1e-6)),
        (
            {"type": "rmsprop", "alpha": 0.9, "momentum": 0.5, "centered": True},
            lambda g: torch.optim.RMSprop(g, lr=0.1, alpha=0.9, momentum=0.5, centered=True),
        ),
    ],
)
def test_optimizer_steps_as_torch(optimizer: dict[str, Any], make):
    recipe = recipe_with(optimizer=optimizer, weight_decay=0.01)
    a, b = tiny_model(), tiny_model()
    ours = build_optimizer(recipe, a)
    assert type(ours) is type(make(b.parameters()))
    decay = [p for p in b.parameters() if p.ndim > 1]
    no_decay = [p for p in b.parameters() if p.ndim <= 1]
    theirs = make(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
    )
    step_both(ours, theirs, a, b)


def test_weight_decay_groups():
    model = tiny_model()
    groups = build_optimizer(recipe_with(weight_decay=0.1), model).param_groups
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert [len(g["params"]) for g in groups] == [2, 4]  # conv and linear weights; biases, BN
    every = build_optimizer(recipe_with(weight_decay=0.1, decay_norm_and_bias=True), model)
    assert [(g["weight_decay"], len(g["params"])) for g in every.param_groups] == [(0.1, 6)]
    model[1].requires_grad_(False)  # frozen parameters are left out
    assert sum(len(g["params"]) for g in build_optimizer(recipe_with(), model).param_groups) == 4


# --------------------------------------------------------------------------- schedules
def lrs(scheduler: sched.LRScheduler, optimizer: torch.optim.Optimizer, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def ours_and_torch(schedule: dict[str, Any], make, spe: int = 5, epochs: int = 4, **fields):
    recipe = recipe_with(schedule=schedule, epochs=epochs, **fields)
    opt = build_optimizer(recipe, tiny_model())
    ours = lrs(build_scheduler(recipe, opt, spe), opt, epochs * spe)
    ref_opt = torch.optim.SGD(tiny_model().parameters(), lr=recipe.lr)
    theirs = lrs(make(ref_opt, spe), ref_opt, epochs * spe)
    return ours, theirs


@pytest.mark.parametrize(
    ("schedule", "make"),
    [
        ({"type": "none"}, lambda o, spe: sched.LambdaLR(o, lambda s: 1.0)),
        (
            {"type": "step", "step_epochs": 1, "gamma": 0.5},
            lambda o, spe: sched.StepLR(o, step_size=spe, gamma=0.5),
        ),
        (
            {"type": "multistep", "milestones": [1, 3]},
            lambda o, spe: sched.MultiStepLR(o, milestones=[spe, 3 * spe]),
        ),
        (
            {"type": "cosine", "min_lr": 0.001},
            lambda o, spe: sched.CosineAnnealingLR(o, T_max=4 * spe, eta_min=0.001),
        ),
        (
            {"type": "onecycle", "cycle_momentum": False, "pct_start": 0.2, "anneal": "linear"},
            lambda o, spe: sched.OneCycleLR(
                o,
                max_lr=0.1,
                total_steps=4 * spe,
                pct_start=0.2,
                anneal_strategy="linear",
                cycle_momentum=False,
            ),
        ),
        (
            {"type": "onecycle", "cycle_momentum": False, "three_phase": True},
            lambda o, spe: sched.OneCycleLR(
                o, max_lr=0.1, total_steps=4 * spe, three_phase=True, cycle_momentum=False
            ),
        ),
    ],
)
def test_schedule_steps_as_torch(schedule: dict[str, Any], make):
    ours, theirs = ours_and_torch(schedule, make)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)


def test_onecycle_cycles_momentum_as_torch():
    recipe = recipe_with(schedule={"type": "onecycle"}, optimizer={"type": "adamw"})
    opt = build_optimizer(recipe, tiny_model())
    scheduler = build_scheduler(recipe, opt, 3)
    ref = torch.optim.AdamW(tiny_model().parameters(), lr=0.1)
    ref_scheduler = sched.OneCycleLR(ref, max_lr=0.1, total_steps=12)
    for _ in range(11):
        assert opt.param_groups[0]["betas"] == ref.param_groups[0]["betas"]
        assert opt.param_groups[0]["lr"] == ref.param_groups[0]["lr"]
        opt.step(), ref.step(), scheduler.step(), ref_scheduler.step()
    sgd = build_optimizer(recipe_with(schedule={"type": "onecycle"}), tiny_model())
    build_scheduler(recipe_with(schedule={"type": "onecycle"}), sgd, 3)
    assert sgd.param_groups[0]["momentum"] == 0.95  # cycled: SGD keeps a momentum buffer


def test_warmup_then_cosine_and_steps():
    spe, warm, epochs, lr = 4, 2, 6, 0.1
    recipe = recipe_with(
        schedule={"type": "cosine", "warmup_epochs": warm, "warmup_start_factor": 0.25},
        epochs=epochs,
    )
    opt = build_optimizer(recipe, tiny_model())
    got = lrs(build_scheduler(recipe, opt, spe), opt, epochs * spe)
    w, total = warm * spe, epochs * spe
    expected = [lr * (0.25 + 0.75 * s / w) for s in range(w)] + [
        0.5 * lr * (1 + math.cos(math.pi * (s - w) / (total - w))) for s in range(w, total)
    ]
    assert got == pytest.approx(expected, rel=1e-9)
    # milestones count epochs from the first, warm-up included (decay at epoch 4 = step 16)
    recipe = recipe_with(
        schedule={"type": "multistep", "milestones": [4], "warmup_epochs": warm}, epochs=epochs
    )
    opt = build_optimizer(recipe, tiny_model())
    got = lrs(build_scheduler(recipe, opt, spe), opt, epochs * spe)
    assert got[w:] == pytest.approx([lr] * (16 - w) + [lr * 0.1] * (total - 16))
    recipe = recipe_with(schedule={"type": "none", "warmup_epochs": 1}, epochs=2)
    opt = build_optimizer(recipe, tiny_model())
    assert lrs(build_scheduler(recipe, opt, 2), opt, 4) == pytest.approx([0.001, 0.0505, 0.1, 0.1])


def test_scheduler_state_round_trips():
    recipe = load_recipe("cifar10", ["epochs=3"])
    opt = build_optimizer(recipe, tiny_model())
    scheduler = build_scheduler(recipe, opt, 4)
    lrs(scheduler, opt, 5)
    opt2 = build_optimizer(recipe, tiny_model())
    resumed = build_scheduler(recipe, opt2, 4)
    opt2.load_state_dict(opt.state_dict())
    resumed.load_state_dict(scheduler.state_dict())
    assert lrs(resumed, opt2, 7) == lrs(scheduler, opt, 7)


def test_bad_steps_per_epoch():
    recipe = load_recipe("mnist")
    opt = build_optimizer(recipe, tiny_model())
    for bad in (0, 1.5, True):
        with pytest.raises(ZooError):
            build_scheduler(recipe, opt, bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- augmentation, normalization
def test_augmentation_maps_to_transforms_v2():
    from torchvision.transforms import v2

    recipe = recipe_with(
        augment=[
            {"type": "random_crop", "padding": 4, "padding_mode": "reflect"},
            {"type": "horizontal_flip", "p": 1.0},
            {"type": "random_resized_crop", "size": 16, "scale": [0.5, 1.0]},
            {"type": "color_jitter", "brightness": 0.4},
        ]
    )
    transforms = build_augmentation(recipe, 32)
    assert [type(t) for t in transforms] == [
        v2.RandomCrop,
        v2.RandomHorizontalFlip,
        v2.RandomResizedCrop,
        v2.ColorJitter,
    ]
    assert transforms[0].size == (32, 32) and transforms[0].padding_mode == "reflect"
    assert transforms[2].scale == (0.5, 1.0) and transforms[3].contrast is None
    image = torch.rand(3, 32, 32)
    assert v2.Compose(transforms)(image).shape == (3, 16, 16)
    flipped = build_augmentation(recipe_with(augment=[{"type": "horizontal_flip", "p": 1.0}]), 8)
    assert torch.equal(flipped[0](image), image.flip(-1))


def test_one_normalization_for_training_and_evaluation():
    assert normalization_stats("none") is None
    assert normalization_stats("mnist") == ((0.1307,), (0.3081,))
    for name, (mean, std) in NORMALIZATIONS.items():
        assert len(mean) == len(std) in (1, 3), name
    with pytest.raises(ValueError):
        normalization_stats("computed")
    # nothing gives evaluation a normalization of its own
    assert not any("eval" in f or "test" in f for f in RecipeSpec.model_fields)
    assert "eval_normalize" in problems(recipe_with().model_dump() | {"eval_normalize": "none"})[0]


def test_committed_recipe_schema_is_current() -> None:
    from zoo.train.recipe import recipe_schema_text

    committed = (Path(__file__).parents[1] / "schemas" / "zoo-recipe.schema.json").read_text()
    assert committed == recipe_schema_text(), "recipe schema drifted: run `make docs`"


def test_a_one_cycle_too_short_to_rise_and_fall_is_refused() -> None:
    import torch

    from zoo.train.recipe import build_optimizer, build_scheduler, load_recipe

    recipe = load_recipe("mnist", ["epochs=1"])
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ZooError, match="is too short"):
        build_scheduler(recipe, build_optimizer(recipe, model), 3)
    assert build_scheduler(recipe, build_optimizer(recipe, model), 16) is not None


def test_a_schedule_of_another_type_replaces_the_base_one(tmp_path: Path) -> None:
    # mnist's one-cycle has a pct_start, which means nothing to a cosine schedule
    path = tmp_path / "cosine.yaml"
    path.write_text("name: cosine\nextends: mnist\nschedule: {type: cosine, warmup_epochs: 1}\n")
    recipe = load_recipe(path)
    assert recipe.schedule.type == "cosine" and recipe.schedule.warmup_epochs == 1
    assert recipe.optimizer == load_recipe("mnist").optimizer  # the rest still merges
