"""Small datasets written in the real on-disk formats, so torchvision's own loaders read them.

Tests never download: these helpers write, in a few milliseconds, what torchvision's classes
expect under a root folder:

- MNIST / FashionMNIST: uncompressed IDX files in ``root/MNIST/raw`` (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-...``), as ``torchvision.datasets.MNIST`` reads them;
- CIFAR-10: pickled batches in ``root/cifar-10-batches-py`` (``data_batch_1..5``, ``test_batch``,
  ``batches.meta``); CIFAR-100: ``root/cifar-100-python`` (``train``, ``test``, ``meta``);
- an image folder of PNGs (``train/`` and ``val/`` with a subfolder per class, or one folder).

Every image comes from :func:`synthetic_images`, a learnable task: class ``k`` lights up the
``k``-th horizontal band of the image over noise, so a small net (even a linear one) tells the
classes apart well above chance within a few epochs on CPU. Everything is deterministic in ``seed``.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np


def synthetic_images(
    n: int,
    num_classes: int = 10,
    size: int | tuple[int, int] = 28,
    channels: int = 1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images (N, H, W) for one channel, (N, H, W, C) for more, and their labels.

    Labels cycle through the classes (every class present even for small ``n``); class ``k`` is
    bright in band ``k`` of ``num_classes`` horizontal bands and dim noise elsewhere."""
    height, width = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    images = rng.integers(0, 80, size=(n, height, width, channels), dtype=np.uint8)
    bands = np.linspace(0, height, num_classes + 1).astype(int)
    for i, label in enumerate(labels):
        top, bottom = bands[label], max(bands[label + 1], bands[label] + 1)
        images[i, top:bottom] = rng.integers(180, 256, size=(bottom - top, width, channels))
    if channels == 1:
        images = images[..., 0]
    return images, labels.astype(np.int64)


# --------------------------------------------------------------------------- MNIST (IDX files)
def _write_idx_images(path: Path, images: np.ndarray) -> None:
    n, rows, cols = images.shape
    # magic 0x00000803: unsigned bytes (0x08), three dimensions (0x03); sizes big-endian
    path.write_bytes(
        struct.pack(">IIII", 0x0803, n, rows, cols) + images.astype(np.uint8).tobytes()
    )


def _write_idx_labels(path: Path, labels: np.ndarray) -> None:
    path.write_bytes(struct.pack(">II", 0x0801, len(labels)) + labels.astype(np.uint8).tobytes())


def write_mnist(
    root: Path | str,
    n_train: int = 64,
    n_test: int = 32,
    size: int = 28,
    seed: int = 0,
    fashion: bool = False,
) -> Path:
    """MNIST's (``fashion``: FashionMNIST's) four raw IDX files under ``root``; returns root."""
    raw = Path(root) / ("FashionMNIST" if fashion else "MNIST") / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n, offset in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = synthetic_images(n, 10, size, 1, seed + offset)
        _write_idx_images(raw / f"{split}-images-idx3-ubyte", images)
        _write_idx_labels(raw / f"{split}-labels-idx1-ubyte", labels)
    return Path(root)


def write_fashion_mnist(root: Path | str, **kwargs: int) -> Path:
    """FashionMNIST's raw IDX files under ``root/FashionMNIST/raw``."""
    return write_mnist(root, fashion=True, **kwargs)


# --------------------------------------------------------------------------- CIFAR (pickles)
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def _cifar_rows(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) -> CIFAR's rows: (N, C*H*W), each channel's plane in turn."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def _dump(path: Path, entry: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(entry, f, protocol=2)


def write_cifar10(root: Path | str, n_train: int = 64, n_test: int = 32, seed: int = 0) -> Path:
    """CIFAR-10's python batches under ``root/cifar-10-batches-py``: ``n_train`` images over the
    five training batches, ``n_test`` in ``test_batch``; returns root."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = synthetic_images(n_train, 10, 32, 3, seed)
    for b, part in enumerate(np.array_split(np.arange(n_train), 5), start=1):
        _dump(
            folder / f"data_batch_{b}",
            {
                "batch_label": f"training batch {b} of 5",
                "labels": labels[part].tolist(),
                "data": _cifar_rows(images[part]),
                "filenames": [f"img_{i}.png" for i in part],
            },
        )
    images, labels = synthetic_images(n_test, 10, 32, 3, seed + 1)
    _dump(
        folder / "test_batch",
        {
            "batch_label": "testing batch 1 of 1",
            "labels": labels.tolist(),
            "data": _cifar_rows(images),
            "filenames": [f"test_{i}.png" for i in range(n_test)],
        },
    )
    _dump(
        folder / "batches.meta",
        {"label_names": CIFAR10_CLASSES, "num_cases_per_batch": n_train // 5, "num_vis": 3072},
    )
    return Path(root)


def write_cifar100(root: Path | str, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """CIFAR-100's python files under ``root/cifar-100-python`` (``train``, ``test``, ``meta``)."""
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, offset in (("train", n_train, 0), ("test", n_test, 1)):
        images, labels = synthetic_images(n, 100, 32, 3, seed + offset)
        _dump(
            folder / name,
            {
                "filenames": [f"{name}_{i}.png" for i in range(n)],
                "batch_label": f"{name}ing batch 1 of 1",
                "fine_labels": labels.tolist(),
                "coarse_labels": (labels // 5).tolist(),
                "data": _cifar_rows(images),
            },
        )
    _dump(
        folder / "meta",
        {
            "fine_label_names": [f"class_{i:02d}" for i in range(100)],
            "coarse_label_names": [f"super_{i:02d}" for i in range(20)],
        },
    )
    return Path(root)


# --------------------------------------------------------------------------- image folder (PNGs)
def write_image_folder(
    root: Path | str,
    classes: tuple[str, ...] = ("circle", "square", "triangle"),
    n_train: int = 8,
    n_val: int = 4,
    size: int | tuple[int, int] = 16,
    channels: int = 3,
    split: bool = True,
    seed: int = 0,
) -> Path:
    """PNGs, ``n_train`` (+ ``n_val``) per class: in ``root/train/CLASS`` and ``root/val/CLASS``
    (``split``), or all ``n_train + n_val`` in ``root/CLASS``. ``channels`` 1 writes grayscale
    ('L') PNGs, 3 RGB. Returns root."""
    from PIL import Image

    root = Path(root)
    parts = (("train", n_train, 0), ("val", n_val, 1)) if split else (("", n_train + n_val, 0),)
    for folder, per_class, offset in parts:
        n = per_class * len(classes)
        images, labels = synthetic_images(n, len(classes), size, channels, seed + offset)
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            target = root / folder / classes[label]
            target.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, "L" if channels == 1 else "RGB").save(target / f"{i:04d}.png")
    return root


def write_mixed_split_folder(
    root: Path | str,
    classes: tuple[str, ...] = ("a", "b"),
    train_size: int = 16,
    val_size: int = 20,
    val_name: str = "val",
) -> Path:
    """An image folder whose ``train/`` and validation folder (``val_name``: ``val`` or ``test``)
    hold images of two sizes, ``train_size`` and ``val_size``, as when the splits were made apart.
    Returns root."""
    import shutil
    import tempfile

    root = Path(root)
    write_image_folder(root, classes, n_train=2, n_val=1, size=train_size)
    shutil.rmtree(root / "val")
    with tempfile.TemporaryDirectory() as other:
        write_image_folder(other, classes, n_train=1, n_val=1, size=val_size, seed=1)
        shutil.move(Path(other) / "val", root / val_name)
    return root
