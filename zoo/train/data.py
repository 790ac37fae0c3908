"""Training data: torchvision's datasets from a local folder, image folders, one normalization.

``DATA`` is a dataset name (``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``: torchvision's
own classes reading their files under ``root``, fetched only when ``download=True``) or an image
folder: ``train/`` and ``val/`` (or ``test/`` when there is no ``val/``) with one subfolder per
class, or one folder of class subfolders split into training and validation by a fraction with a
fixed seed. Every image header is read when the folder is opened (a sample of a large training
set), so a file that is not an image is named before any step.

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
    "UnreadableImage",
    "check_data_source",
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
    ``./data``), or an image folder (``train/`` + ``val/`` or ``test/``, or one folder split by
    ``val_fraction``, default 0.1, with ``seed``). Missing or unreadable data raises
    :class:`ZooError` (exit code ``IO_ERROR``) naming the file or folder and the fix; ``root``
    with an image folder, or ``val_fraction`` with data that has its own validation split, is a
    usage error (``USAGE_ERROR``): neither would be used."""
    if val_fraction is not None and not (0 < val_fraction < 1):
        raise ZooError(
            Problem(f"the validation fraction must be between 0 and 1, got {val_fraction}"),
            ExitCode.USAGE_ERROR,
        )
    key = _canonical(str(name_or_path)) if not isinstance(name_or_path, Path) else None
    if key is not None:
        if val_fraction is not None:
            raise _usage(
                f"--val-fraction holds out part of an image folder without val/; "
                f"{DATASETS[key].title} has its own test split, which validates: leave it out"
            )
        return _open_named(key, Path(root if root is not None else "data"), download)
    check_data_source(name_or_path, root)
    path = Path(name_or_path).expanduser()
    if download:
        raise _usage(f"--download fetches the named datasets ({', '.join(DATASETS)}), not {path}")
    if root is not None:  # None unless given: `--data-dir` is for the named datasets only
        raise _usage(
            f"--data-dir is where the named datasets ({', '.join(DATASETS)}) are; {path} is an "
            "image folder, read where it is: leave --data-dir out"
        )
    return _open_folder(path, val_fraction, seed)


def check_data_source(
    name_or_path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> None:
    """Raise :func:`open_data`'s error for ``DATA`` that is neither a dataset name nor an existing
    path (``mnsit``: "no such dataset or folder 'mnsit'; did you mean 'mnist'?"), opening nothing:
    for callers that read ``DATA`` before opening it, such as the choice of a recipe."""
    if not isinstance(name_or_path, Path) and _canonical(str(name_or_path)) is not None:
        return
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise _no_such_data(str(name_or_path), path, root)


def _usage(message: str) -> ZooError:
    """An option that does not apply to this data: exit code ``USAGE_ERROR``."""
    return ZooError(Problem(message), ExitCode.USAGE_ERROR)


def _no_such_data(text: str, path: Path, root: str | os.PathLike[str] | None) -> ZooError:
    """``--data`` names no dataset and no folder: the closest dataset name or sibling folder."""
    import difflib

    from zoo.spec.problems import suggest

    bare = "/" not in text and os.sep not in text
    named = bare and _canonical(text) is None  # a Path("mnist") is a folder, not the name
    hint = suggest(text.strip().lower(), list(DATASETS)) if named else ""
    if not hint.startswith("did you mean"):
        hint = ""
        parent = path.parent
        if parent.is_dir():
            siblings = [p.name for p in parent.iterdir() if p.is_dir()]
            close = difflib.get_close_matches(path.name, siblings, n=1, cutoff=0.6)
            if close:
                guess = close[0] if bare else str(parent / close[0])
                hint = f"did you mean {guess!r}?"
    if root is not None and (Path(root) / text).exists():
        hint = (
            f"--data-dir only says where the named datasets are: give the folder's path "
            f"({Path(root) / text})"
        )
    if not hint:
        hint = (
            f"give one of {', '.join(DATASETS)} or an image folder (train/ and val/ with a "
            "subfolder per class, or one folder of class subfolders)"
        )
    return _data_error(f"no such dataset or folder {text!r}; {hint}", path)


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
    fix = "replace it with torchvision's file" + (
        "" if download else " (or delete it and add --download)"
    )
    if not named.cls.startswith("CIFAR"):  # four IDX headers: each bad file named before reading
        _check_idx_files(named, folder, fix)
    try:
        train = cls(str(root), train=True, download=download)
        val = cls(str(root), train=False, download=download)
    except Exception as exc:  # torchvision's "Dataset not found or corrupted", a bad pickle, ...
        if named.cls.startswith("CIFAR"):
            _check_cifar_files(cls, named, folder, fix)  # names the bad file, if it can tell
        hint = "" if download else ", or add --download to fetch them"
        if isinstance(exc, RuntimeError):
            raise _data_error(
                f"{named.title} under {folder}/ is incomplete or unreadable "
                f"({describe_error(exc)}); put all of torchvision's {named.title} files there{hint}",
                folder,
            ) from None
        raise _data_error(  # no network for --download, ...
            f"{named.title} under {folder}/ could not be read: {describe_error(exc)}", folder
        ) from None
    for dataset, split in ((train, "training"), (val, "test")):
        _check_targets(named, folder, dataset, split)
    data = train.data  # MNIST: uint8 tensor (N, H, W); CIFAR: uint8 array (N, H, W, C)
    channels = 1 if data.ndim == 3 else int(data.shape[3])
    size = (int(data.shape[1]), int(data.shape[2]))
    description = (
        f"{named.title} in {folder}/ ({len(train):,} training and {len(val):,} test images, "
        f"{channels}x{size[0]}x{size[1]}, {len(train.classes)} classes)"
    )
    return DataInfo(key, description, root, channels, size, list(train.classes), train, val)


# MNIST's files: IDX, a header of a magic number (0, 0, type 0x08 = unsigned bytes, dimensions)
# and one big-endian uint32 per dimension, then the values
_IDX_FILES = {
    "train-images-idx3-ubyte": 3,
    "train-labels-idx1-ubyte": 1,
    "t10k-images-idx3-ubyte": 3,
    "t10k-labels-idx1-ubyte": 1,
}


def _check_idx_files(named: _Named, folder: Path, fix: str) -> None:
    """Each of MNIST's IDX files that is there (torchvision reports missing ones, or downloads
    them) has the right magic number and the length its header gives, and each split has as many
    labels as images: else a data error naming the file and what is wrong, where torchvision
    would fail on an ``assert`` without a message or a tensor of the wrong shape."""
    counts: dict[str, int] = {}
    for name, dims in _IDX_FILES.items():
        path = folder / name
        if not path.is_file():
            continue
        kind = "image" if dims == 3 else "label"
        header = 4 + 4 * dims
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                head = f.read(header)
        except OSError as exc:
            raise _data_error(f"could not be read: {describe_error(exc)}", path) from None
        magic = 0x0800 + dims
        if head[:2] == b"\x1f\x8b":
            problem = (
                f"gzip-compressed; torchvision reads {named.title}'s files uncompressed: gunzip it"
            )
        elif len(head) < header:
            problem = f"truncated: {size} bytes, shorter than an IDX {kind} file's header; {fix}"
        elif int.from_bytes(head[:4], "big") != magic:
            problem = (
                f"not an IDX {kind} file (magic number 0x{int.from_bytes(head[:4], 'big'):08x}, "
                f"not 0x{magic:08x}): corrupt, or not {named.title}'s; {fix}"
            )
        else:
            shape = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
            want = header + math.prod(shape)
            if size == want:
                counts[name] = shape[0]
                continue
            what = f"{shape[0]:,} {kind}s" + (f" of {shape[1]}x{shape[2]}" if dims == 3 else "")
            if size < want:
                problem = (
                    f"truncated: {size:,} bytes, where its header gives {what} ({want:,} bytes)"
                )
            else:
                problem = (
                    f"{size - want:,} bytes too long for the {what} its header gives: corrupt, "
                    f"or not {named.title}'s"
                )
            problem += f"; {fix}"
        raise _data_error(problem, path)
    for split in ("train", "t10k"):
        images = counts.get(f"{split}-images-idx3-ubyte")
        labels = counts.get(f"{split}-labels-idx1-ubyte")
        if images is not None and labels is not None and images != labels:
            raise _data_error(
                f"{labels:,} labels, but {split}-images-idx3-ubyte has {images:,} images: "
                f"the two are not {named.title}'s pair; {fix.replace(' it', ' both')}",
                folder / f"{split}-labels-idx1-ubyte",
            )


def _check_cifar_files(cls: type, named: _Named, folder: Path, fix: str) -> None:
    """After torchvision failed on CIFAR's files: the first one missing, not a pickle, or without
    its rows of 3x32x32 bytes and as many labels, as a data error naming it (else nothing)."""
    import pickle

    import numpy as np

    names = [name for name, _ in cls.train_list + cls.test_list]
    for name in [*names, cls.meta["filename"]]:
        path = folder / name
        if not path.is_file():
            return  # torchvision's own message says the files are incomplete
        try:
            with open(path, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
        except Exception as exc:
            raise _data_error(
                f"not a readable pickle ({describe_error(exc)}): corrupt, or not "
                f"{named.title}'s; {fix}",
                path,
            ) from None
        entry = entry if isinstance(entry, dict) else {}
        if name == cls.meta["filename"]:
            wrong = (
                ""
                if cls.meta["key"] in entry
                else f"holds no {cls.meta['key']!r} (the class names)"
            )
        else:
            labels = entry.get("labels", entry.get("fine_labels"))
            data = np.asarray(entry.get("data", ()))
            if labels is None or not data.size or data.size % 3072:
                wrong = "holds no 'data' rows of 3x32x32 bytes and their 'labels'"
            elif data.size // 3072 != len(labels):
                wrong = f"holds {data.size // 3072:,} images but {len(labels):,} labels"
            else:
                wrong = ""
        if wrong:
            raise _data_error(f"{wrong}: corrupt, or not {named.title}'s; {fix}", path) from None


def _check_targets(named: _Named, folder: Path, dataset: Any, split: str) -> None:
    """As many labels as images, each a class index: a label out of range would fail only in the
    loss, in the middle of an epoch (or as a device-side assert on CUDA)."""
    import numpy as np

    targets = np.asarray(dataset.targets)
    classes = len(dataset.classes)
    if len(targets) != len(dataset.data):
        raise _data_error(
            f"the {named.title} {split} set has {len(dataset.data):,} images but "
            f"{len(targets):,} labels; put torchvision's {named.title} files there",
            folder,
        )
    bad = np.flatnonzero((targets < 0) | (targets >= classes))
    if len(bad):
        raise _data_error(
            f"the {named.title} {split} set has labels outside 0..{classes - 1} ({len(bad):,}, "
            f"the first {int(targets[bad[0]])} at index {int(bad[0])}): corrupt or not "
            f"{named.title}'s files; put torchvision's {named.title} files there",
            folder,
        )


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

        try:
            with open(path, "rb") as f:
                return Image.open(f).convert(self.mode)
        except Exception as exc:  # past the header check at start-up: truncated pixels, ...
            raise UnreadableImage(_unreadable(exc), path) from None


class UnreadableImage(ZooError):
    """An image that could not be read: a data error (exit code ``IO_ERROR``) naming the file.

    Made from its message and file, or from one string: a DataLoader worker's exception reaches
    the main process as its type called with the worker's traceback text, whose last line is
    ``zoo.train.data.UnreadableImage: FILE: message``; that line is read back, so the error a
    worker raised is the same one line as in the main process."""

    def __init__(self, message: str, file: str | os.PathLike[str] | None = None):
        if file is None:
            message, file = _from_traceback(message)
        super().__init__(
            Problem(message, None if file is None else str(file), kind="data"), ExitCode.IO_ERROR
        )


def _from_traceback(text: str) -> tuple[str, str | None]:
    """``(message, file)`` from the last line of a worker's traceback (see UnreadableImage)."""
    import re

    lines = text.strip().splitlines()
    line = lines[-1] if lines else text
    line = line.removeprefix(f"{__name__}.{UnreadableImage.__qualname__}: ")
    extensions = "|".join(re.escape(e) for e in IMAGE_EXTENSIONS)
    match = re.match(rf"(.*?(?:{extensions})): (.*)", line, re.IGNORECASE)
    return (match[2], match[1]) if match else (line, None)


def _unreadable(exc: BaseException) -> str:
    return f"not a readable image ({describe_error(exc)}); replace it or remove it from the folder"


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


# the names of split folders: refused as class names in a one-folder layout
_SPLIT_NAMES = ("train", "training", "val", "valid", "validation", "test", "testing")
# image headers read at start-up to find a corrupt file before any step (and the folder's size):
# every validation image, and every training image up to this many, else a sample of this many
# chosen with the seed. PIL's open reads only the header: ~60 us an image, 3 s for 50,000
_HEADER_CHECKS = 50_000


def _open_folder(path: Path, val_fraction: float | None, seed: int) -> DataInfo:
    if not path.is_dir():
        raise _data_error(f"{path} is a file; give a folder of class subfolders", path)
    notes: list[str] = []
    val_dir = _val_dir(path, notes)
    if val_dir is not None and val_fraction is not None:
        raise _usage(
            f"--val-fraction holds out part of an image folder without val/; {path} has its own "
            f"{val_dir.name}/ split, which validates: leave --val-fraction out"
        )
    train_dir = path / "train" if val_dir is not None else path
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
        with _open_image(first) as image:
            mode = image.mode
    except Exception as exc:
        raise _data_error(_unreadable(exc), first) from None
    # Grayscale folders stay one channel (MNIST-like digits); everything else becomes RGB.
    loader = _PilLoader("L" if mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB")
    channels = 1 if loader.mode == "L" else 3
    train = _image_folder(train_dir, loader)
    if val_dir is not None:
        val = _image_folder(val_dir, loader)
        if val.classes != train.classes:
            missing = sorted(set(train.classes) - set(val.classes))
            extra = sorted(set(val.classes) - set(train.classes))
            raise _data_error(
                f"{val_dir} has other classes than {train_dir} (missing: {missing or 'none'}, "
                f"extra: {extra or 'none'}); give both the same class subfolders",
                val_dir,
            )
        classes = list(train.classes)
        train_paths, val_paths = [p for p, _ in train.samples], [p for p, _ in val.samples]
        description = (
            f"the image folder {path} ({len(train):,} training and {len(val):,} validation images"
        )
        if val_dir.name != "val":
            description += f" in {val_dir.name}/"
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
        classes = list(full.classes)
        train_paths = [full.samples[i][0] for i in train.indices]
        val_paths = [full.samples[i][0] for i in val.indices]
        notes.append(f"validation: {len(val):,} images ({fraction:.0%}) held out with seed {seed}")
        description = (
            f"the image folder {path} ({len(train):,} training and {len(val):,} validation images "
            f"held out at random, seed {seed}"
        )
    train_sizes = _header_sizes(_header_sample(train_paths, seed))
    val_sizes = _header_sizes(val_paths)
    sizes = train_sizes | val_sizes
    size = next(iter(sizes)) if len(sizes) == 1 else None
    if size is not None:
        shape = f"{channels}x{size[0]}x{size[1]}"
    elif len(train_sizes) == len(val_sizes) == 1:  # each split has one size, but not the same
        (th, tw), (vh, vw) = train_sizes.pop(), val_sizes.pop()
        shape = f"{channels} channels, mixed sizes: {th}x{tw} in training, {vh}x{vw} in validation"
    else:
        shape = f"{channels} channels, mixed sizes"
    description += f", {shape}, {len(classes)} classes)"
    return DataInfo(str(path), description, path, channels, size, classes, train, val, notes)


def _val_dir(path: Path, notes: list[str]) -> Path | None:
    """The validation folder of a ``train/`` + ``val/`` (or ``test/``) layout, None for one folder
    of class subfolders; split folders taken for classes are refused."""
    has = {name: (path / name).is_dir() for name in ("train", "val", "test")}
    if has["train"] and (has["val"] or has["test"]):
        if has["val"] and has["test"]:
            notes.append(f"validation: {path}/val; {path}/test is left out (not read)")
            return path / "val"
        if has["test"]:
            notes.append(f"validation: {path}/test (there is no val/)")
        return path / ("val" if has["val"] else "test")
    splits = [name for name in _class_dirs(path) if name.lower() in _SPLIT_NAMES]
    if not splits:
        return None
    if splits == ["train"]:
        raise _data_error(
            f"{path} has train/ but no val/ or test/ beside it: add a val/ with the same class "
            f"subfolders, or give {path / 'train'} itself to hold out a fraction for validation",
            path,
        )
    raise _data_error(
        f"{path} has subfolders named like splits ({', '.join(s + '/' for s in splits)}), not "
        "classes: an image folder is train/ and val/ (or test/), each with a subfolder per class, "
        "or one folder of class subfolders",
        path,
    )


def _open_image(path: str | os.PathLike[str]) -> Any:
    from PIL import Image

    return Image.open(path)  # reads the header only; the pixels on first use


def _header_sample(paths: Sequence[str], seed: int) -> Sequence[str]:
    """``paths``, or a sample of ``_HEADER_CHECKS`` of them chosen with ``seed`` (in order)."""
    import random

    if len(paths) <= _HEADER_CHECKS:
        return paths
    picked = sorted(random.Random(seed).sample(range(len(paths)), _HEADER_CHECKS))
    return [paths[i] for i in picked]


def _header_sizes(paths: Sequence[str]) -> set[tuple[int, int]]:
    """The ``(H, W)`` of the images ``paths`` (two at most: past one, the sizes are mixed), each
    read from its header; the first that cannot be read is a data error naming it."""
    sizes: set[tuple[int, int]] = set()
    for path in paths:
        try:
            with _open_image(path) as image:
                width, height = image.size
        except Exception as exc:  # not an image, empty, unreadable, a decompression bomb
            raise _data_error(_unreadable(exc), path) from None
        if len(sizes) < 2:
            sizes.add((height, width))
    return sizes


def _split(dataset: Any, fraction: float, seed: int) -> tuple[Any, Any]:
    """A fixed random split: the same ``seed`` holds out the same images on every run."""
    import torch
    from torch.utils.data import Subset

    n = len(dataset)
    n_val = max(1, round(n * fraction)) if n > 1 else 0
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, sorted(order[n_val:])), Subset(dataset, sorted(order[:n_val]))


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
