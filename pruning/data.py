"""Data sets from their standard on-disk formats; nothing is downloaded.

- Fashion-MNIST: the four IDX .gz files (Debian's `dataset-fashion-mnist`, or a folder);
  the project's default. When no folder is given and the system copy is absent,
  scikit-learn's bundled digits stand in (with a note saying so).
- CIFAR-10 / CIFAR-100: the "python version" pickle batches, read by an unpickler that
  only admits the numpy types those files hold.
- Tiny ImageNet: the tiny-imagenet-200 folder layout; no entry may lead outside the folder.

An explicit `data_dir` is always used: a missing folder or file is an error naming it,
never a silent fall-back to another copy. Malformed files (bad compression, headers that
do not match the data, pixels that are not bytes, labels outside the data set's classes)
give a one-line ValueError naming the file, before any resizing or training.

Every loader returns uint8-range float arrays [N, C, H, W] and integer labels; `prepare`
resizes, normalises with the training split's statistics, and splits off a validation set.
`Dataset.source` records where the images came from.

>>> d = load_dataset("digits", 8, subset=50)
>>> d.name, d.num_classes, d.source, d.train.x.shape[1:]
('digits', 10, 'scikit-learn digits (bundled)', (1, 8, 8))
>>> load_dataset("digits", 0)
Traceback (most recent call last):
    ...
ValueError: input_size must be a whole number of pixels >= 1, got 0
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from heconv.errors import InputError

from .readers import (  # noqa: F401  (the readers are part of this module's interface)
    FASHION_DIRS,
    FASHION_FILES,
    CLASSES,
    DATASETS,
    TITLES,
    DIGITS_SOURCE,
    CIFAR_LAYOUT,
    Split,
    data_folder,
    check_labels,
    read_idx,
    find_fashion_mnist,
    load_fashion_mnist,
    load_digits,
    cifar_folder,
    load_cifar,
    tiny_imagenet_folder,
    load_tiny_imagenet,
    missing_files,
)

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    in_channels: int
    input_size: int
    mean: list[float]
    std: list[float]
    note: str = ""
    source: str = ""  # where the images came from: a folder, or DIGITS_SOURCE

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        s = getattr(self, split)
        return torch.from_numpy(s.x), torch.from_numpy(s.y)


# --- preparation --------------------------------------------------------------
def resize(x: np.ndarray, size: int) -> np.ndarray:
    """Bilinear (antialiased) resize of [N, C, H, W] to size x size."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = []
    for start in range(0, len(x), 4096):
        t = torch.from_numpy(np.ascontiguousarray(x[start : start + 4096]))
        out.append(F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False).numpy())
    return np.concatenate(out)


def _check_split(name: str, split: str, s: Split, source: str) -> None:
    """What every loader promises, checked once more before the data are used."""
    if s.x.ndim != 4 or s.y.ndim != 1 or len(s.x) != len(s.y):
        raise ValueError(f"{source}: {name} {split} images {s.x.shape} and labels {s.y.shape} do not match")
    if len(s.y) == 0:
        raise ValueError(f"{source}: the {name} {split} split holds no images")
    check_labels(s.y, CLASSES[name], TITLES[name], f"{source} ({split} split)")


def load_dataset(name: str, input_size: int, data_dir: str | Path | None = None, val_fraction: float = 0.1,
                 subset: int | None = None, seed: int = 0, test_images: int | None | str = "auto") -> Dataset:
    """Load, resize, normalise and split a data set by name (one of DATASETS).

    test_images: how many test images to keep (None: the whole test split; "auto": a fifth of
    `subset` when one is given, else all).

    data_dir, when given, must hold the data set's files (for digits, bundled with
    scikit-learn, it is not used and the note says so). Only without data_dir does a
    missing Fashion-MNIST fall back to the digits, with a note and a warning.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    if isinstance(input_size, bool) or not isinstance(input_size, (int, np.integer)) or input_size < 1:
        raise ValueError(f"input_size must be a whole number of pixels >= 1, got {input_size!r}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, (int, np.integer))):
        raise ValueError(f"subset must be a whole number of images, got {subset!r}")
    if subset is not None and subset < 10:
        raise ValueError(f"subset must be at least 10 images, got {subset}")
    if data_dir is not None:
        data_folder(data_dir)
    note = ""
    if name == "fashion-mnist":
        folder = find_fashion_mnist(data_dir)  # with data_dir: that folder or an error, never the system copy
        if folder is None:
            note = ("Fashion-MNIST not found (install Debian's dataset-fashion-mnist or pass --data-dir); "
                    "using scikit-learn's digits instead")
            log.warning(note)
            name, (train, test), source = "digits", load_digits(), DIGITS_SOURCE
        else:
            (train, test), source = load_fashion_mnist(folder), str(folder.resolve())
    elif name == "digits":
        if data_dir is not None:
            note = f"digits are bundled with scikit-learn; --data-dir {data_dir} is not used"
            log.warning(note)
        (train, test), source = load_digits(), DIGITS_SOURCE
    elif data_dir is None:
        raise ValueError(f"data set {name} is read from --data-dir; none given")
    elif name in ("cifar10", "cifar100"):
        classes = 10 if name == "cifar10" else 100
        folder = cifar_folder(data_dir, classes)
        sub, train_files, test_file, _ = CIFAR_LAYOUT[classes]
        missing = missing_files(folder, train_files + (test_file,))
        if missing:  # all named at once, before reading any
            raise ValueError(f"{folder}: CIFAR-{classes} file(s) missing: {', '.join(missing)} (expected the python "
                             f"version's batches in --data-dir or its {sub}/ folder)")
        (train, test), source = load_cifar(data_dir, classes), str(folder.resolve())
    else:
        (train, test), source = load_tiny_imagenet(data_dir), str(tiny_imagenet_folder(data_dir).resolve())
    _check_split(name, "train", train, source)
    _check_split(name, "test", test, source)

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train.y))
    if subset is not None:
        order = order[:subset]
    n_val = max(1, int(round(val_fraction * len(order))))
    if n_val >= len(order):
        raise ValueError(f"{source}: {len(order)} training images are too few to split off val_fraction {val_fraction}")
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_train = resize(train.x[train_idx], input_size)
    mean = x_train.mean(axis=(0, 2, 3))
    std = x_train.std(axis=(0, 2, 3)) + 1e-6

    def norm(x: np.ndarray) -> np.ndarray:
        return ((resize(x, input_size) - mean[None, :, None, None]) / std[None, :, None, None]).astype(np.float32)

    num_classes = int(max(train.y.max(), test.y.max())) + 1
    test_x, test_y = test.x, test.y
    if test_images == "auto":
        test_images = None if subset is None else max(10, subset // 5)
    if test_images is not None:
        if isinstance(test_images, bool) or not isinstance(test_images, (int, np.integer)) or test_images < 1:
            raise InputError(f"test_images must be a whole number of images >= 1, or None for all; got {test_images!r}")
        keep = rng.permutation(len(test_y))[:test_images]
        test_x, test_y = test_x[keep], test_y[keep]
    return Dataset(
        name=name,
        train=Split(norm(x_train), train.y[train_idx]),
        val=Split(norm(train.x[val_idx]), train.y[val_idx]),
        test=Split(norm(test_x), test_y),
        num_classes=num_classes,
        in_channels=train.x.shape[1],
        input_size=input_size,
        mean=[float(m) for m in mean],
        std=[float(s) for s in std],
        note=note,
        source=source,
    )
