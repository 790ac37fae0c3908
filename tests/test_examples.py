"""The worked example in examples/digits: its recipes validate and its data script writes the
image folder zoo train reads (scikit-learn stood in for by a fake with the same interface)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
import types
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from zoo.train.data import open_data
from zoo.train.recipe import load_recipe

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "digits"


def _make_data() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_data", DIGITS / "make_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["d2l_sgd", "digits"])
def test_example_recipes_validate(name: str) -> None:
    recipe = load_recipe(DIGITS / f"{name}.yaml")
    assert recipe.resize == 28 and recipe.epochs == 20


def test_the_digits_recipe_is_the_shipped_mnist_one_scaled_to_a_small_set() -> None:
    digits, mnist = load_recipe(DIGITS / "digits.yaml"), load_recipe("mnist")
    assert digits.optimizer == mnist.optimizer and digits.schedule == mnist.schedule
    assert digits.weight_decay == mnist.weight_decay and digits.augment == mnist.augment
    assert (digits.lr, digits.batch_size, digits.normalize) == (0.01, 32, "computed")


def test_make_data_writes_a_stratified_image_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    target = np.repeat(np.arange(10), 10)  # 10 images per class
    images = rng.integers(0, 17, size=(100, 8, 8)).astype(np.float64)  # sklearn's 0..16 floats
    for name in ("sklearn", "sklearn.datasets"):  # with a spec: libraries probe find_spec
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        monkeypatch.setitem(sys.modules, name, module)
    sys.modules["sklearn.datasets"].load_digits = lambda: types.SimpleNamespace(  # type: ignore[attr-defined]
        images=images, target=target
    )

    counts = _make_data().write_digits(tmp_path, val=0.2, seed=0)
    assert counts == {"train": 80, "val": 20}
    for label in range(10):
        assert len(list((tmp_path / "val" / str(label)).glob("*.png"))) == 2
    info = open_data(str(tmp_path))  # zoo train's own reader
    assert (info.channels, info.size, len(info.train), len(info.val)) == (1, (8, 8), 80, 20)
    assert info.classes == [str(k) for k in range(10)]
    # 0..16 scaled to 0..255: image 0 of class 0 read back
    first = sorted((tmp_path / "train" / "0").glob("*.png"))[0]
    from PIL import Image

    index = int(first.stem)
    assert np.array_equal(
        np.asarray(Image.open(first)), np.round(images[index] * 255 / 16).astype(np.uint8)
    )


def test_make_data_refuses_a_folder_that_has_data(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    result = subprocess.run(
        [sys.executable, str(DIGITS / "make_data.py"), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "already holds train/ or val/" in result.stderr
