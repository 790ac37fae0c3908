"""zoo.train.data: every format opens through torchvision's own class (files written in the real
on-disk formats by tests/datasets.py, never downloaded), spec/data mismatches are located problems
with their fix, the normalization equals numpy's, and training and evaluation share it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import zoo
from tests.datasets import (
    CIFAR10_CLASSES,
    synthetic_images,
    write_cifar10,
    write_cifar100,
    write_fashion_mnist,
    write_image_folder,
    write_mixed_split_folder,
    write_mnist,
)
from zoo.errors import ExitCode, ZooError
from zoo.train.data import (
    UnreadableImage,
    check_spec_against_data,
    compute_normalization,
    make_loaders,
    make_transforms,
    open_data,
)


# --------------------------------------------------------------------------- formats
@pytest.mark.parametrize(
    ("name", "write", "cls", "classes"),
    [
        ("mnist", write_mnist, torchvision.datasets.MNIST, "0 - zero"),
        ("fashion_mnist", write_fashion_mnist, torchvision.datasets.FashionMNIST, "T-shirt/top"),
    ],
)
def test_mnist_formats_open_through_torchvision(tmp_path, name, write, cls, classes):
    write(tmp_path)
    info = open_data(name, tmp_path)
    assert isinstance(info.train, cls) and isinstance(info.val, cls)
    assert (info.channels, info.size, len(info.train), len(info.val)) == (1, (28, 28), 64, 32)
    assert info.classes[0] == classes and info.num_classes == 10
    images, labels = synthetic_images(64, 10, 28, 1, seed=0)
    for i in (0, 17, 63):
        image, label = info.train[i]
        assert image.mode == "L" and label == labels[i]
        np.testing.assert_array_equal(np.asarray(image), images[i])
    assert "64 training and 32 test images, 1x28x28, 10 classes" in info.description


@pytest.mark.parametrize("name", ["cifar10", "CIFAR-10"])
def test_cifar10_opens_through_torchvision(tmp_path, name):
    write_cifar10(tmp_path)
    info = open_data(name, tmp_path)
    assert isinstance(info.train, torchvision.datasets.CIFAR10)
    assert (info.channels, info.size, len(info.train), len(info.val)) == (3, (32, 32), 64, 32)
    assert info.classes == CIFAR10_CLASSES
    images, labels = synthetic_images(64, 10, 32, 3, seed=0)
    image, label = info.train[40]  # in data_batch_4: the five batches are read in order
    assert image.mode == "RGB" and label == labels[40]
    np.testing.assert_array_equal(np.asarray(image), images[40])


def test_cifar100_opens_through_torchvision(tmp_path):
    write_cifar100(tmp_path)
    info = open_data("cifar100", tmp_path)
    assert isinstance(info.train, torchvision.datasets.CIFAR100)
    assert (info.channels, info.size, info.num_classes) == (3, (32, 32), 100)
    images, labels = synthetic_images(100, 100, 32, 3, seed=1)
    image, label = info.val[7]
    assert label == labels[7]
    np.testing.assert_array_equal(np.asarray(image), images[7])


def test_image_folder_with_train_and_val(tmp_path):
    write_image_folder(tmp_path, n_train=5, n_val=2, size=(12, 16))
    info = open_data(tmp_path)
    assert isinstance(info.train, torchvision.datasets.ImageFolder)
    assert info.classes == ["circle", "square", "triangle"]
    assert (info.channels, info.size, len(info.train), len(info.val)) == (3, (12, 16), 15, 6)
    image, label = info.val[0]
    assert image.size == (16, 12) and image.mode == "RGB" and label == 0


def test_image_folder_split_by_fraction_with_a_fixed_seed(tmp_path):
    write_image_folder(tmp_path, n_train=8, n_val=2, channels=1, split=False)  # 30 images
    info = open_data(tmp_path, val_fraction=0.2, seed=3)
    assert info.channels == 1 and info.train[0][0].mode == "L"  # grayscale PNGs stay one channel
    assert (len(info.train), len(info.val)) == (24, 6)
    train, val = set(info.train.indices), set(info.val.indices)
    assert not train & val and train | val == set(range(30))
    assert set(open_data(tmp_path, val_fraction=0.2, seed=3).val.indices) == val  # reproducible
    assert set(open_data(tmp_path, val_fraction=0.2, seed=4).val.indices) != val
    assert "seed 3" in info.notes[0]


def test_image_folder_of_mixed_sizes_has_no_size(tmp_path):
    write_image_folder(tmp_path, classes=("a", "b"), n_train=2, n_val=1, size=8)
    Image.new("RGB", (10, 9)).save(tmp_path / "train" / "a" / "odd.png")
    info = open_data(tmp_path)
    assert info.size is None and "mixed sizes" in info.description


# --------------------------------------------------------------------------- bad data
def _one_line_error(excinfo) -> str:
    error = excinfo.value
    assert error.exit_code == ExitCode.IO_ERROR and len(error.problems) == 1
    text = error.problems[0].format()
    assert "\n" not in text
    return text


def test_missing_dataset_names_the_folder_and_download(tmp_path):
    with pytest.raises(ZooError) as excinfo:
        open_data("mnist", tmp_path)
    text = _one_line_error(excinfo)
    assert str(tmp_path / "MNIST" / "raw") in text and "--download" in text


def test_incomplete_dataset(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(ZooError) as excinfo:
        open_data("cifar10", tmp_path)
    text = _one_line_error(excinfo)
    assert "incomplete or unreadable" in text and "--download" in text


def _rewrite(path, edit):
    path.write_bytes(edit(path.read_bytes()))


@pytest.mark.parametrize(
    ("name", "edit", "expected"),
    [
        ("train-images-idx3-ubyte", lambda b: b"\x00\x00\x08\x03junk", "truncated: 8 bytes"),
        ("train-images-idx3-ubyte", lambda b: b[:1000], "header gives 64 images of 28x28"),
        ("train-images-idx3-ubyte", lambda b: b + b"\x00" * 5, "5 bytes too long"),
        (
            "t10k-labels-idx1-ubyte",
            lambda b: b"garbage\n",
            "magic number 0x67617262, not 0x00000801",
        ),
        ("train-labels-idx1-ubyte", lambda b: b"\x1f\x8b" + b, "gzip-compressed"),
        (  # a consistent file of 63 labels for 64 images
            "train-labels-idx1-ubyte",
            lambda b: b[:7] + b"\x3f" + b[8:-1],
            "63 labels, but train-images-idx3-ubyte has 64 images",
        ),
        (
            "t10k-labels-idx1-ubyte",
            lambda b: b[:-1] + b"\xc8",
            "labels outside 0..9 (1, the first 200",
        ),
    ],
)
def test_corrupt_mnist_names_the_file_and_what_is_wrong(tmp_path, name, edit, expected):
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / name
    _rewrite(path, edit)
    with pytest.raises(ZooError) as excinfo:
        open_data("mnist", tmp_path)
    text = _one_line_error(excinfo)
    assert expected in text
    # a label out of range is found in the arrays torchvision read: the folder, not one file
    assert text.startswith(f"{path.parent if 'labels outside' in text else path}: ")


def test_corrupt_cifar_names_the_file(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(b"garbage\n")
    with pytest.raises(ZooError) as excinfo:
        open_data("cifar10", tmp_path)
    text = _one_line_error(excinfo)
    assert text.startswith(f"{path}: not a readable pickle") and "--download" in text


@pytest.mark.parametrize(
    ("data", "expected"),
    [("mnsit", "did you mean 'mnist'?"), ("Fashion-MNST", "did you mean 'fashion_mnist'?")],
)
def test_a_misspelt_dataset_name_suggests_the_closest(tmp_path, monkeypatch, data, expected):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ZooError) as excinfo:
        open_data(data, tmp_path)
    text = _one_line_error(excinfo)
    assert f"no such dataset or folder {data!r}; {expected}" in text


def test_a_misspelt_folder_suggests_its_sibling(tmp_path):
    write_image_folder(tmp_path / "shapes", n_train=1, n_val=1)
    with pytest.raises(ZooError) as excinfo:
        open_data(str(tmp_path / "shapse"))
    assert f"did you mean {str(tmp_path / 'shapes')!r}?" in _one_line_error(excinfo)
    with pytest.raises(ZooError) as excinfo:  # a folder under --data-dir: give its path
        open_data("shapes", tmp_path)
    assert f"give the folder's path ({tmp_path / 'shapes'})" in _one_line_error(excinfo)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p / "nowhere", "no such dataset or folder"),
        (lambda p: p, "has no class subfolders"),
        (lambda p: (p / "a").mkdir() or p, "has no images"),
    ],
)
def test_bad_image_folders(tmp_path, make, expected):
    with pytest.raises(ZooError) as excinfo:
        open_data(make(tmp_path))
    assert expected in _one_line_error(excinfo)


def test_val_classes_must_match_train(tmp_path):
    write_image_folder(tmp_path, classes=("a", "b"), n_train=2, n_val=1, size=8)
    (tmp_path / "val" / "b").rename(tmp_path / "val" / "c")
    with pytest.raises(ZooError) as excinfo:
        open_data(tmp_path)
    assert "missing: ['b']" in _one_line_error(excinfo)


def _truncated_png(path):
    """A PNG whose header reads (PIL's open) but whose pixels do not (PIL's load)."""
    path.write_bytes(path.read_bytes()[:60])


@pytest.mark.parametrize("where", ["train", "val"])
def test_an_unreadable_image_is_named_at_start_up(tmp_path, where):
    write_image_folder(tmp_path, classes=("a", "b"), n_train=2, n_val=2, size=8)
    bad = tmp_path / where / "b" / "zzz.png"
    bad.write_bytes(b"garbage")
    with pytest.raises(ZooError) as excinfo:
        open_data(tmp_path)
    text = _one_line_error(excinfo)
    assert text.startswith(f"{bad}: not a readable image (UnidentifiedImageError")


def test_training_headers_past_the_cap_are_a_seeded_sample(tmp_path, monkeypatch):
    from zoo.train import data

    write_image_folder(tmp_path, classes=("a", "b"), n_train=6, n_val=1, size=8)
    monkeypatch.setattr(data, "_HEADER_CHECKS", 4)
    paths = [str(p) for p in sorted((tmp_path / "train").rglob("*.png"))]
    sample = data._header_sample(paths, seed=0)
    assert len(sample) == 4 and list(sample) == sorted(sample)  # in order: the disk reads ahead
    assert data._header_sample(paths, seed=0) == sample != data._header_sample(paths, seed=1)
    assert data._header_sample(paths[:4], seed=0) == paths[:4]  # up to the cap: every one


def test_an_image_that_fails_later_names_its_file(tmp_path):
    write_image_folder(tmp_path, classes=("a", "b"), n_train=2, n_val=1, size=8)
    bad = sorted((tmp_path / "train" / "b").glob("*.png"))[-1]
    _truncated_png(bad)
    info = open_data(tmp_path)  # its header reads: the start-up check passes it
    index = [p for p, _ in info.train.samples].index(str(bad))
    with pytest.raises(UnreadableImage) as excinfo:
        info.train[index]
    text = _one_line_error(excinfo)
    assert text.startswith(f"{bad}: not a readable image (OSError: image file is truncated")
    # in a DataLoader worker: torch re-raises it from its traceback text, as the same one line
    train_tf, eval_tf = make_transforms((0.5,) * 3, (0.5,) * 3)
    loader, _ = make_loaders(info, 8, train_tf, eval_tf, workers=1, persistent_workers=False)
    with pytest.raises(UnreadableImage) as excinfo:
        list(loader)
    assert _one_line_error(excinfo) == text


def test_train_and_val_of_two_sizes_need_a_resize(tmp_path, write_spec):
    write_mixed_split_folder(tmp_path, train_size=16, val_size=20)
    info = open_data(tmp_path)
    assert info.size is None
    assert "mixed sizes: 16x16 in training, 20x20 in validation" in info.description
    spec = zoo.load_spec(write_spec(SPEC.replace("channels: 1, size: 28", "channels: 3, size: 16")))
    (problem,) = [p for p in check_spec_against_data(spec, info) if p.kind == "data_size"]
    assert "resize: [16, 16]" in problem.message


def test_test_folder_validates_when_there_is_no_val(tmp_path):
    write_image_folder(tmp_path, classes=("a", "b"), n_train=2, n_val=1, size=8)
    (tmp_path / "val").rename(tmp_path / "test")
    info = open_data(tmp_path)
    assert info.classes == ["a", "b"] and (len(info.train), len(info.val)) == (4, 2)
    assert info.val.root == str(tmp_path / "test") and "validation images in test/" in (
        info.description
    )
    assert info.notes == [f"validation: {tmp_path}/test (there is no val/)"]
    write_image_folder(tmp_path, classes=("a", "b"), n_train=2, n_val=1, size=8)  # and val/ too
    info = open_data(tmp_path)
    assert info.val.root == str(tmp_path / "val") and "test is left out" in info.notes[0]
    assert open_data(tmp_path / "train").classes == ["a", "b"]  # one folder: split by fraction


def test_a_test_folder_of_another_size_needs_a_resize(tmp_path):
    write_mixed_split_folder(tmp_path, train_size=8, val_size=12, val_name="test")
    assert open_data(tmp_path).size is None


@pytest.mark.parametrize(
    ("splits", "expected"),
    [
        (("train",), "has train/ but no val/ or test/ beside it"),
        (("train", "valid"), "subfolders named like splits (train/, valid/), not classes"),
        (("val", "test"), "subfolders named like splits (test/, val/), not classes"),
    ],
)
def test_split_folders_are_not_classes(tmp_path, splits, expected):
    for split in splits:
        write_image_folder(tmp_path / split, classes=("a", "b"), n_train=2, split=False)
    with pytest.raises(ZooError) as excinfo:
        open_data(tmp_path)
    assert expected in _one_line_error(excinfo)


@pytest.mark.parametrize(
    ("data", "kwargs", "expected"),
    [
        ("mnist", {"val_fraction": 0.2}, "MNIST has its own test split"),
        ("split", {"val_fraction": 0.2}, "has its own val/ split"),
        ("test", {"val_fraction": 0.2}, "has its own test/ split"),
        ("split", {"root": "data"}, "--data-dir is where the named datasets"),
        ("flat", {"root": "data"}, "--data-dir is where the named datasets"),
    ],
)
def test_options_that_would_be_ignored_are_usage_errors(tmp_path, data, kwargs, expected):
    write_mnist(tmp_path)
    write_image_folder(tmp_path / "split", classes=("a", "b"), n_train=2, n_val=1, size=8)
    write_image_folder(tmp_path / "test", classes=("a", "b"), n_train=2, n_val=1, size=8)
    (tmp_path / "test" / "val").rename(tmp_path / "test" / "test")
    write_image_folder(tmp_path / "flat", classes=("a", "b"), n_train=2, split=False)
    source = data if data == "mnist" else tmp_path / data
    if data == "mnist":
        kwargs = {**kwargs, "root": tmp_path}
    with pytest.raises(ZooError) as excinfo:
        open_data(source, **kwargs)
    error = excinfo.value
    assert error.exit_code == ExitCode.USAGE_ERROR and len(error.problems) == 1
    assert expected in error.problems[0].format()
    if data == "flat":  # without --data-dir, --val-fraction is what splits it
        assert len(open_data(source, val_fraction=0.5).val) == 6


def test_bad_fraction_is_a_usage_error(tmp_path):
    with pytest.raises(ZooError) as excinfo:
        open_data(tmp_path, val_fraction=1.5)
    assert excinfo.value.exit_code == ExitCode.USAGE_ERROR


# --------------------------------------------------------------------------- spec against data
SPEC = """\
name: small
input: {channels: 1, size: 28}
stages:
  - {type: conv, out: 4, kernel: 3, padding: 1}
  - {type: relu}
head:
  - {type: adaptive_avgpool, size: 1}
  - {type: flatten}
  - {type: linear, out: 7}
"""


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    return open_data("cifar10", write_cifar10(tmp_path_factory.mktemp("cifar")))


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return open_data("mnist", write_mnist(tmp_path_factory.mktemp("mnist")))


def test_matching_spec_and_data_have_no_problem(mnist):
    assert check_spec_against_data(zoo.load_spec("lenet"), mnist) == []


def test_mismatches_are_located_with_their_fix(write_spec, cifar):
    path = write_spec(SPEC)
    problems = check_spec_against_data(zoo.load_spec(path), cifar)
    assert [(p.file, p.line, p.path, p.kind) for p in problems] == [
        (str(path), 2, "input.channels", "data_channels"),
        (str(path), 2, "input.size", "data_size"),
        (str(path), 9, "head.2.out", "data_classes"),
    ]
    channels, size, classes = (p.message for p in problems)
    assert "--set input.channels=3" in channels
    # adaptive pooling takes any size: changing the spec's size is offered besides the resize
    assert "resize: [28, 28]" in size and "--set input.size=[32,32]" in size
    assert "outputs 7 classes but cifar10 has 10" in classes and "--set head.2.out=10" in classes
    fixed = zoo.load_spec(path, ["input.channels=3", "input.size=[32,32]", "head.2.out=10"])
    assert check_spec_against_data(fixed, cifar) == []


def test_size_fix_is_only_a_resize_when_the_net_needs_its_size(cifar):
    # a kernel-33 conv cannot plan at CIFAR's 32x32: only a resize fixes the size
    spec = zoo.load_spec(
        {
            "name": "fixed",
            "input": {"channels": 3, "size": 64},
            "stages": [{"type": "conv", "out": 4, "kernel": 33}],
            "head": [{"type": "flatten"}, {"type": "linear", "out": 10}],
        }
    )
    (problem,) = check_spec_against_data(spec, cifar)
    assert problem.path == "input.size" and "--set" not in problem.message


@pytest.mark.parametrize(
    ("spec", "path"), [("resnet18", "head.2.out"), ("squeezenet1_0", "head.0.layers.1.out")]
)
def test_class_fix_points_at_the_layer_that_sets_the_classes(cifar, spec, path):
    problems = check_spec_against_data(zoo.load_spec(spec), cifar)
    (classes,) = [p for p in problems if p.kind == "data_classes"]
    assert classes.path == path and classes.line is not None
    assert f"--set {path}=10" in classes.message


# --------------------------------------------------------------------------- normalization
def test_normalization_equals_numpy_on_arrays(mnist, cifar):
    for info, array in ((mnist, mnist.train.data.numpy()[..., None]), (cifar, cifar.train.data)):
        pixels = array.reshape(-1, array.shape[-1]).astype(np.float64) / 255
        mean, std = compute_normalization(info.train, chunk=10)  # several chunks
        np.testing.assert_allclose(mean, pixels.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(std, pixels.std(axis=0), rtol=1e-9)


def test_normalization_equals_numpy_on_an_image_folder_split(tmp_path):
    write_image_folder(tmp_path, n_train=4, n_val=1, split=False)
    info = open_data(tmp_path, val_fraction=0.3)
    pixels = np.stack([np.asarray(info.train[i][0]) for i in range(len(info.train))])
    pixels = pixels.reshape(-1, 3).astype(np.float64) / 255
    mean, std = compute_normalization(info.train)
    np.testing.assert_allclose(mean, pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, pixels.std(axis=0), rtol=1e-9)


def test_normalization_of_a_subset_of_an_array_dataset(cifar):
    subset = torch.utils.data.Subset(cifar.train, [3, 5, 8, 13])
    pixels = cifar.train.data[[3, 5, 8, 13]].reshape(-1, 3).astype(np.float64) / 255
    np.testing.assert_allclose(compute_normalization(subset)[0], pixels.mean(axis=0), rtol=1e-12)


# --------------------------------------------------------------------------- transforms, loaders
def test_training_and_evaluation_share_one_normalization(cifar):
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    train, evaluation = make_transforms(mean, std)
    image, _ = cifar.val[0]
    expected = (
        torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
        - torch.tensor(mean)[:, None, None]
    ) / torch.tensor(std)[:, None, None]
    for transform in (train, evaluation):
        out = transform(image)
        assert out.dtype == torch.float32 and out.shape == (3, 32, 32)
        torch.testing.assert_close(out, expected)


def test_augmentation_is_training_only_and_resize_is_shared(cifar):
    from torchvision.transforms import v2

    train, evaluation = make_transforms((0.5,) * 3, (0.5,) * 3, [v2.RandomHorizontalFlip(1.0)], 24)
    image, _ = cifar.val[0]
    a, b = train(image), evaluation(image)
    assert a.shape == b.shape == (3, 24, 24)
    torch.testing.assert_close(a, b.flip(-1))


def test_normalization_must_fit_the_channels(mnist):
    with pytest.raises(ZooError) as excinfo:
        make_transforms((0.5,) * 3, (0.2,) * 3, channels=mnist.channels)
    assert "3 channels but the images have 1" in str(excinfo.value)
    with pytest.raises(ZooError):
        make_transforms((0.5,), (0.0,))


def test_loaders_batch_and_shuffle_reproducibly(mnist):
    mean, std = compute_normalization(mnist.train)
    train_tf, eval_tf = make_transforms(mean, std)
    loaders = [
        make_loaders(mnist, 16, train_tf, eval_tf, generator=torch.Generator().manual_seed(1))
        for _ in range(2)
    ]
    (train, val), (train2, _) = loaders
    assert not train.pin_memory or torch.cuda.is_available()
    x, y = next(iter(train))
    assert x.shape == (16, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    torch.testing.assert_close(y, next(iter(train2))[1])  # same generator seed, same order
    _, y_val = next(iter(val))
    assert y_val.tolist() == [int(mnist.val[i][1]) for i in range(16)]  # in order
    assert abs(float(torch.cat([b[0] for b in train]).mean())) < 1e-4  # normalized


def test_loaders_with_workers_and_a_sampler(mnist):
    train_tf, eval_tf = make_transforms((0.1,), (0.3,))
    sampler = torch.utils.data.SequentialSampler(range(len(mnist.train)))
    train, _ = make_loaders(mnist, 32, train_tf, eval_tf, workers=1, sampler=sampler)
    assert train.persistent_workers and train.num_workers == 1 and train.sampler is sampler
    labels = torch.cat([y for _, y in train])
    assert labels.tolist() == [int(mnist.train[i][1]) for i in range(64)]
    with pytest.raises(ZooError):
        make_loaders(mnist, 0, train_tf, eval_tf)


def test_lenient_cifar_classes_pickle(cifar):
    import pickle

    again = pickle.loads(pickle.dumps(cifar.train))
    assert isinstance(again, torchvision.datasets.CIFAR10) and len(again) == 64


# --------------------------------------------------------------------------- the synthetic task
def test_synthetic_task_is_learnable():
    """Classes tell apart by simple features: the nearest class mean already gets them right."""
    train_x, train_y = synthetic_images(200, 10, 16, 1, seed=0)
    test_x, test_y = synthetic_images(100, 10, 16, 1, seed=1)
    means = np.stack([train_x[train_y == k].mean(axis=0) for k in range(10)]).reshape(10, -1)
    distances = ((test_x.reshape(100, 1, -1).astype(float) - means[None]) ** 2).sum(-1)
    assert (distances.argmin(1) == test_y).mean() > 0.9
    assert np.array_equal(synthetic_images(20, seed=5)[0], synthetic_images(20, seed=5)[0])
