"""Training data: torchvision's datasets from a local folder, image folders, one normalization.

``DATA`` is a dataset name (``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``: torchvision's
own classes reading their files under ``root``, fetched only when ``download=True``) or an image
folder: ``train/`` and ``val/`` with one subfolder per class, or one folder of class subfolders
split into training and validation by a fraction with a fixed seed.

:func:`open_data` returns the datasets untransformed (PIL images and integer labels) with what
they are (channels, size, class names); :func:`check_spec_against_data` compares them with a spec
before any step is taken; :func:`compute_normalization` measures the per-channel mean and std of
the training set; :func:`make_transforms` builds the training and evaluation pipelines, which share
ONE normalization (normalizing only the training images is the TrashNet tutorial's 55% mistake);
:func:`make_loaders` wraps both sets in DataLoaders.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import ExitCode, Problem, ZooError, describe_error

if TYPE_CHECKING:
    import torch
    from torch.utils.data import DataLoader, Dataset, Sampler

    from zoo.spec.schema import ModelSpec

__all__ = [
    "DATASETS",
    "DataInfo",
    "check_spec_against_data",
    "compute_normalization",
    "make_loaders",
    "make_transforms",
    "open_data",
]


@dataclass(frozen=True)
class _Named:
    """A dataset torchvision reads from a local root: its class and the folder its files are in."""

    title: str  # how messages name it
    cls: str  # the torchvision.datasets class
    folder: str  # where under root torchvision's class looks for its files


DATASETS: dict[str, _Named] = {
    "mnist": _Named("MNIST", "MNIST", "MNIST/raw"),
    "fashion_mnist": _Named("FashionMNIST", "FashionMNIST", "FashionMNIST/raw"),
    "cifar10": _Named("CIFAR-10", "CIFAR10", "cifar-10-batches-py"),
    "cifar100": _Named("CIFAR-100", "CIFAR100", "cifar-100-python"),
}
"""The named datasets ``DATA`` can be: name -> torchvision class and the folder under root."""

# what torchvision's ImageFolder reads (its IMG_EXTENSIONS), for the messages and the size check
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
DEFAULT_VAL_FRACTION = 0.1
_SIZE_SAMPLE = 256  # image headers read to tell whether an image folder has one size


@dataclass
class DataInfo:
    """An opened dataset: what it is, the shape of its images, its classes, and both splits.

    ``train`` and ``val`` yield ``(PIL image, class index)`` (no transform yet: the recipe's comes
    with :func:`make_loaders`). ``size`` is ``(H, W)``, or ``None`` when an image folder mixes
    sizes (it then needs a resize). ``description`` says what was opened, for messages.
    """

    name: str
    description: str
    root: Path
    channels: int
    size: tuple[int, int] | None
    classes: list[str]
    train: Dataset
    val: Dataset
    notes: list[str] = field(default_factory=list)  # e.g. the validation split that was made

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _data_error(message: str, where: str | os.PathLike[str] | None = None) -> ZooError:
    """Bad or missing data: one located line, the CLI's I/O exit code."""
    return ZooError(
        Problem(message, None if where is None else str(where), kind="data"), ExitCode.IO_ERROR
    )


def _canonical(name: str) -> str | None:
    """``"CIFAR-10"``, ``"fashion-mnist"``, ... -> the key in :data:`DATASETS`, else None."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    aliases = {k.replace("_", ""): k for k in DATASETS}
    return aliases.get(key)


# --------------------------------------------------------------------------- opening
def open_data(
    name_or_path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    val_fraction: float | None = None,
    seed: int = 0,
) -> DataInfo:
    """Open ``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100`` under ``root`` (default
    ``./data``), or an image folder (``train/`` + ``val/``, or one folder split by
    ``val_fraction``, default 0.1, with ``seed``). Missing or unreadable data raises
    :class:`ZooError` (exit code ``IO_ERROR``) naming the folder and the fix."""
    if val_fraction is not None and not (0 < val_fraction < 1):
        raise ZooError(
            Problem(f"the validation fraction must be between 0 and 1, got {val_fraction}"),
            ExitCode.USAGE_ERROR,
        )
    key = _canonical(str(name_or_path)) if not isinstance(name_or_path, Path) else None
    if key is not None:
        return _open_named(key, Path(root if root is not None else "data"), download)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise _data_error(
            f"no such dataset or folder {str(name_or_path)!r}: give one of "
            f"{', '.join(DATASETS)} or an image folder (train/ and val/ with a subfolder per "
            "class, or one folder of class subfolders)",
            path,
        )
    if download:
        raise ZooError(
            Problem(f"--download fetches the named datasets ({', '.join(DATASETS)}), not {path}"),
            ExitCode.USAGE_ERROR,
        )
    return _open_folder(path, val_fraction, seed)


def _open_named(key: str, root: Path, download: bool) -> DataInfo:
    from torchvision import datasets

    named = DATASETS[key]
    folder = root / named.folder
    cls = getattr(datasets, named.cls)
    if named.cls.startswith("CIFAR"):
        cls = _LENIENT_CIFAR[named.cls]
    if not download and not folder.is_dir():
        raise _data_error(
            f"{named.title} not found: no {folder}/; put torchvision's {named.title} files there, "
            f"or add --download to fetch them (or --data-dir to look elsewhere)",
            folder,
        )
    try:
        train = cls(str(root), train=True, download=download)
        val = cls(str(root), train=False, download=download)
    except RuntimeError as exc:  # torchvision's "Dataset not found or corrupted"
        hint = "" if download else ", or add --download to fetch them"
        raise _data_error(
            f"{named.title} under {folder}/ is incomplete or unreadable ({describe_error(exc)}); "
            f"put all of torchvision's {named.title} files there{hint}",
            folder,
        ) from None
    except Exception as exc:  # a truncated file, a bad pickle, no network for --download
        raise _data_error(
            f"{named.title} under {folder}/ could not be read: {describe_error(exc)}", folder
        ) from None
    data = train.data  # MNIST: uint8 tensor (N, H, W); CIFAR: uint8 array (N, H, W, C)
    channels = 1 if data.ndim == 3 else int(data.shape[3])
    size = (int(data.shape[1]), int(data.shape[2]))
    description = (
        f"{named.title} in {folder}/ ({len(train):,} training and {len(val):,} test images, "
        f"{channels}x{size[0]}x{size[1]}, {len(train.classes)} classes)"
    )
    return DataInfo(key, description, root, channels, size, list(train.classes), train, val)


def _lenient_cifar(base: type) -> type:
    """torchvision's CIFAR class checking that its files exist rather than their published MD5s,
    so that files in CIFAR's format that are not the published ones (a subset, a re-packed or
    generated copy, the tests') load too. Downloading still checks the archive's MD5."""

    def _check_integrity(self: Any) -> bool:
        folder = Path(self.root, self.base_folder)
        return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)

    def _load_meta(self: Any) -> None:
        import pickle

        path = Path(self.root, self.base_folder, self.meta["filename"])
        if not path.is_file():
            raise RuntimeError(f"{path.name} not found")
        with open(path, "rb") as infile:
            data = pickle.load(infile, encoding="latin1")
        self.classes = data[self.meta["key"]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

    return type(
        base.__name__,
        (base,),
        {
            "_check_integrity": _check_integrity,
            "_load_meta": _load_meta,
            "__module__": __name__,
            "__qualname__": f"_LENIENT_{base.__name__}",
        },
    )


class _LenientCifar:
    """The lenient CIFAR classes, made on first use (importing torchvision is not free)."""

    def __init__(self) -> None:
        self._classes: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        if name not in self._classes:
            from torchvision import datasets

            self._classes[name] = _lenient_cifar(getattr(datasets, name))
            globals()[f"_LENIENT_{name}"] = self._classes[name]  # picklable for workers
        return self._classes[name]


_LENIENT_CIFAR = _LenientCifar()


def __getattr__(name: str) -> Any:
    """``_LENIENT_CIFAR10`` and ``_LENIENT_CIFAR100`` on first use, so that pickle finds them in a
    DataLoader worker that imported this module afresh (spawn, on macOS and Windows)."""
    if name.startswith("_LENIENT_CIFAR"):
        return _LENIENT_CIFAR[name.removeprefix("_LENIENT_")]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _PilLoader:
    """Open an image as ``mode`` ('L' or 'RGB'): one channel count for the whole folder
    (torchvision's default loader makes every image RGB). A class, so workers can pickle it."""

    def __init__(self, mode: str):
        self.mode = mode

    def __call__(self, path: str) -> Any:
        from PIL import Image

        with open(path, "rb") as f:
            return Image.open(f).convert(self.mode)


def _class_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_folder(folder: Path, loader: _PilLoader) -> Any:
    from torchvision.datasets import ImageFolder

    try:
        return ImageFolder(str(folder), loader=loader)
    except (FileNotFoundError, OSError) as exc:  # a class subfolder with no image in it
        raise _data_error(
            f"{folder}: {describe_error(exc)}; every class subfolder needs at least one image "
            f"({', '.join(IMAGE_EXTENSIONS)})",
            folder,
        ) from None


def _first_image(folder: Path) -> Path | None:
    for class_dir in _class_dirs(folder):
        for path in sorted((folder / class_dir).rglob("*")):
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                return path
    return None


def _open_folder(path: Path, val_fraction: float | None, seed: int) -> DataInfo:
    from PIL import Image, UnidentifiedImageError

    if not path.is_dir():
        raise _data_error(f"{path} is a file; give a folder of class subfolders", path)
    split = (path / "train").is_dir() and (path / "val").is_dir()
    train_dir = path / "train" if split else path
    if not _class_dirs(train_dir):
        raise _data_error(
            f"{train_dir} has no class subfolders: an image folder holds one subfolder per class "
            "(train/ and val/ each with them, or the class subfolders directly)",
            train_dir,
        )
    first = _first_image(train_dir)
    if first is None:
        raise _data_error(
            f"{train_dir} has no images ({', '.join(IMAGE_EXTENSIONS)}) in its class subfolders",
            train_dir,
        )
    try:
        with Image.open(first) as image:
            mode = image.mode
    except (OSError, UnidentifiedImageError) as exc:
        raise _data_error(
            f"{first} is not a readable image: {describe_error(exc)}", first
        ) from None
    # Grayscale folders stay one channel (MNIST-like digits); everything else becomes RGB.
    loader = _PilLoader("L" if mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB")
    channels = 1 if loader.mode == "L" else 3
    train = _image_folder(train_dir, loader)
    notes: list[str] = []
    if split:
        val = _image_folder(path / "val", loader)
        if val.classes != train.classes:
            missing = sorted(set(train.classes) - set(val.classes))
            extra = sorted(set(val.classes) - set(train.classes))
            raise _data_error(
                f"{path}/val has other classes than {path}/train (missing: {missing or 'none'}, "
                f"extra: {extra or 'none'}); give both the same class subfolders",
                path / "val",
            )
        classes, samples = list(train.classes), [p for p, _ in train.samples]
        description = (
            f"the image folder {path} ({len(train):,} training and {len(val):,} validation images"
        )
    else:
        fraction = DEFAULT_VAL_FRACTION if val_fraction is None else val_fraction
        full = train
        train, val = _split(full, fraction, seed)
        if len(train) == 0 or len(val) == 0:
            raise _data_error(
                f"{path} has {len(full)} images: too few to hold out {fraction:.0%} for validation; "
                "add images or give a train/ and val/ folder",
                path,
            )
        classes, samples = list(full.classes), [p for p, _ in full.samples]
        notes.append(f"validation: {len(val):,} images ({fraction:.0%}) held out with seed {seed}")
        description = (
            f"the image folder {path} ({len(train):,} training and {len(val):,} validation images "
            f"held out at random, seed {seed}"
        )
    size = _common_size(samples)
    shape = f"{channels}x{size[0]}x{size[1]}" if size else f"{channels} channels, mixed sizes"
    description += f", {shape}, {len(classes)} classes)"
    return DataInfo(str(path), description, path, channels, size, classes, train, val, notes)


def _split(dataset: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    """A fixed random split: the same ``seed`` holds out the same images on every run."""
    import torch
    from torch.utils.data import Subset

    n = len(dataset)
    n_val = max(1, round(n * fraction)) if n > 1 else 0
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, sorted(order[n_val:])), Subset(dataset, sorted(order[:n_val]))


def _common_size(paths: Sequence[str]) -> tuple[int, int] | None:
    """``(H, W)`` when the images (a sample of their headers) share one size, else None."""
    from PIL import Image

    step = max(1, len(paths) // _SIZE_SAMPLE)
    sizes = set()
    for path in paths[::step]:
        with Image.open(path) as image:  # reads the header only
            sizes.add(image.size)
        if len(sizes) > 1:
            return None
    (width, height) = sizes.pop()
    return height, width


# --------------------------------------------------------------------------- spec vs data
def resized(info: DataInfo, resize: int | Sequence[int] | None) -> DataInfo:
    """``info`` as a recipe's ``resize`` makes its images (the same data, another size)."""
    if resize is None:
        return info
    size = (resize, resize) if isinstance(resize, int) else tuple(resize)
    return dataclasses.replace(info, size=size)


def check_spec_against_data(spec: ModelSpec, info: DataInfo) -> list[Problem]:
    """What stops ``spec`` from training on ``info``: input channels, input size and the number of
    classes against the network's output, each a problem located at the spec's line with its fix
    (``--set input.channels=1``, ``--set head.5.out=10``, or a resize in the recipe). Empty when
    the two fit."""
    from zoo.plan import plan_spec

    problems: list[Problem] = []
    where = _locator(spec)
    channels = spec.input.channels
    height, width = (
        (spec.input.size, spec.input.size) if isinstance(spec.input.size, int) else spec.input.size
    )
    if channels != info.channels:
        problems.append(
            where(
                ("input", "channels"),
                f"{spec.name} takes {channels}-channel images but {info.name} has {info.channels}; "
                f"change the spec (--set input.channels={info.channels})",
                "data_channels",
            )
        )
    if info.size is None:
        problems.append(
            where(
                ("input", "size"),
                f"the images of {info.name} have different sizes; resize them to the spec's "
                f"{height}x{width} in the recipe (resize: [{height}, {width}])",
                "data_size",
            )
        )
    elif info.size != (height, width):
        h, w = info.size
        fits = _plans_at(spec, (channels, h, w))
        fix = f"resize them in the recipe (resize: [{height}, {width}])"
        if fits:  # the network takes the data's size as it is: changing the spec is a fix too
            fix += f", or change the spec (--set input.size=[{h},{w}])"
        problems.append(
            where(
                ("input", "size"),
                f"{spec.name} takes {height}x{width} images but {info.name} has {h}x{w}; {fix}",
                "data_size",
            )
        )
    plan = plan_spec(spec)
    out = plan.root.out
    classes = info.num_classes
    if len(out) != 1:
        problems.append(
            where(
                ("head",),
                f"{spec.name} outputs {'x'.join(map(str, out))} per image, not one score per "
                f"class; end the head with flatten and a {classes}-output linear layer",
                "data_classes",
            )
        )
    elif out[0] != classes:
        source = _classifier_source(spec, plan.root, out[0])
        if source is not None:
            dotted_path = ".".join(map(str, source))
            problems.append(
                where(
                    (*source, "out"),
                    f"{spec.name} outputs {out[0]} classes but {info.name} has {classes}; "
                    f"change its last layer (--set {dotted_path}.out={classes})",
                    "data_classes",
                )
            )
        else:
            problems.append(
                where(
                    ("head",),
                    f"{spec.name} outputs {out[0]} classes but {info.name} has {classes}; "
                    f"make its last layer give {classes} outputs",
                    "data_classes",
                )
            )
    return problems


def _locator(spec: ModelSpec) -> Callable[[tuple[Any, ...], str, str], Problem]:
    located = spec._located

    def where(path: tuple[Any, ...], message: str, kind: str) -> Problem:
        if located is not None:
            return located.problem(path, message, kind)
        return Problem(message, path=".".join(map(str, path)), kind=kind)

    return where


def _plans_at(spec: ModelSpec, shape: tuple[int, int, int]) -> bool:
    """Whether the network plans at ``shape`` (adaptive pooling before the head: any size)."""
    from zoo.plan import plan_spec

    try:
        plan_spec(spec, shape)
    except ZooError:
        return False
    return True


def _spec_node(spec: ModelSpec, path: Sequence[Any]) -> Any:
    node: Any = spec
    for part in path:
        try:
            node = node[part] if isinstance(part, int) else getattr(node, part)
        except (IndexError, KeyError, AttributeError, TypeError):
            return None
    return node


def _classifier_source(spec: ModelSpec, root: Any, outputs: int) -> tuple[Any, ...] | None:
    """Where in the spec the layer that sets the class count is: the last layer in execution
    order with an integer ``out`` field giving ``outputs`` channels or features."""
    found: tuple[Any, ...] | None = None

    def walk(plans: Sequence[Any]) -> None:
        nonlocal found
        for plan in plans:
            if plan.source and plan.out and plan.out[0] == outputs:
                node = _spec_node(spec, plan.source)
                if isinstance(getattr(node, "out", None), int):
                    found = tuple(plan.source)
            walk(plan.children)

    walk(root.children)
    return found


# --------------------------------------------------------------------------- normalization
def compute_normalization(
    train_dataset: Any, chunk: int = 4096
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (population, as numpy's ``std``) of the training images scaled to
    [0, 1], in one pass: straight over the arrays of MNIST and CIFAR (a subset included), image by
    image for an image folder. Accumulates in float64, so large sets lose no precision."""
    import numpy as np

    total = count = None
    squares = None
    for batch in _pixel_batches(train_dataset, chunk):  # uint8 (N, C, H*W)
        values = batch.astype(np.float64) / 255.0
        s = values.sum(axis=(0, 2))
        q = np.square(values).sum(axis=(0, 2))
        n = values.shape[0] * values.shape[2]
        total = s if total is None else total + s
        squares = q if squares is None else squares + q
        count = n if count is None else count + n
    if total is None or not count:
        raise _data_error("the training set is empty: no images to compute a normalization from")
    mean = total / count
    var = np.maximum(squares / count - np.square(mean), 0.0)
    return tuple(float(m) for m in mean), tuple(float(math.sqrt(v)) for v in var)


def _pixel_batches(dataset: Any, chunk: int) -> Any:
    """uint8 arrays (N, C, H*W) covering every image of ``dataset`` once."""
    import numpy as np
    from torch.utils.data import Subset

    indices = None
    while isinstance(dataset, Subset):  # a held-out split: read its images from the arrays below
        inner = list(dataset.indices)
        indices = inner if indices is None else [inner[i] for i in indices]
        dataset = dataset.dataset
    data = getattr(dataset, "data", None)
    if data is not None and hasattr(data, "shape") and len(data.shape) in (3, 4):
        array = data.numpy() if hasattr(data, "numpy") else np.asarray(data)
        if indices is not None:
            array = array[np.asarray(indices, dtype=np.int64)]
        for start in range(0, len(array), chunk):
            part = array[start : start + chunk]
            if part.ndim == 3:  # MNIST: (N, H, W)
                yield part.reshape(len(part), 1, -1)
            else:  # CIFAR: (N, H, W, C)
                yield part.reshape(len(part), -1, part.shape[3]).transpose(0, 2, 1)
        return
    for i in range(len(dataset)) if indices is None else indices:
        image = np.asarray(dataset[i][0])
        if image.ndim == 2:
            image = image[:, :, None]
        yield image.reshape(1, -1, image.shape[2]).transpose(0, 2, 1)


# --------------------------------------------------------------------------- transforms, loaders
def make_transforms(
    mean: Sequence[float],
    std: Sequence[float],
    augmentation: Sequence[Callable[[Any], Any]] = (),
    resize: int | Sequence[int] | None = None,
    channels: int | None = None,
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The training and evaluation pipelines (torchvision.transforms.v2): both resize and
    normalize the SAME way; only training adds ``augmentation`` (v2 transforms, applied to uint8
    images before scaling). ``resize`` is ``(H, W)`` or an int for a square. With ``channels``
    (the data's), a normalization for another channel count is refused here rather than in the
    first batch of a DataLoader worker."""
    import torch
    from torchvision.transforms import v2

    if len(mean) != len(std) or any(s <= 0 for s in std):
        raise ZooError(
            Problem(f"normalization needs one mean and one std > 0 per channel, got {mean}, {std}"),
            ExitCode.USAGE_ERROR,
        )
    if channels is not None and len(mean) != channels:
        raise ZooError(
            Problem(
                f"the normalization has {len(mean)} channels but the images have {channels}; "
                "use one for this data (normalize: computed measures it on the training set)",
                kind="data_channels",
            ),
            ExitCode.USAGE_ERROR,
        )
    head: list[Any] = [v2.ToImage()]
    if resize is not None:
        size = [resize, resize] if isinstance(resize, int) else list(resize)
        head.append(v2.Resize(size, antialias=True))
    tail = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    train = v2.Compose([*head, *augmentation, *tail])
    evaluation = v2.Compose([*head, *tail])
    return train, evaluation


class TransformedDataset:
    """``dataset`` with ``transform`` applied to each image (labels unchanged), so one opened
    dataset serves any pipeline. A top-level class: DataLoader workers pickle it."""

    def __init__(self, dataset: Any, transform: Callable[[Any], Any]):
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, target = self.dataset[index]
        return self.transform(image), target


def make_loaders(
    info: DataInfo,
    batch: int,
    train_transform: Callable[[Any], Any],
    eval_transform: Callable[[Any], Any],
    workers: int = 0,
    pin_memory: bool | None = None,
    persistent_workers: bool = True,
    sampler: Sampler | None = None,
    val_sampler: Sampler | None = None,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> tuple[DataLoader, DataLoader]:
    """DataLoaders for ``info.train`` (shuffled by ``generator``, or drawn by ``sampler``, e.g. a
    DistributedSampler) and ``info.val`` (in order, or by ``val_sampler``).

    Workers stay alive between epochs (``persistent_workers``) when there are any; memory is
    pinned only where a CUDA device is there to copy to (``pin_memory=None``: whenever it is)."""
    import torch
    from torch.utils.data import DataLoader

    if batch < 1 or workers < 0:
        raise ZooError(
            Problem(f"the batch size must be >= 1 and workers >= 0, got {batch} and {workers}"),
            ExitCode.USAGE_ERROR,
        )
    cuda = torch.cuda.is_available()
    pin = cuda if pin_memory is None else (pin_memory and cuda)
    common: dict[str, Any] = {
        "batch_size": batch,
        "num_workers": workers,
        "pin_memory": pin,
        # persistent workers only exist with workers; torch refuses the flag without them
        "persistent_workers": persistent_workers and workers > 0,
    }
    if workers > 0:
        common["prefetch_factor"] = 4
    train = DataLoader(
        TransformedDataset(info.train, train_transform),
        shuffle=sampler is None,
        sampler=sampler,
        generator=generator,
        drop_last=drop_last,
        **common,
    )
    val = DataLoader(
        TransformedDataset(info.val, eval_transform), shuffle=False, sampler=val_sampler, **common
    )
    return train, val
