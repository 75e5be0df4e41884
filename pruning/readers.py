"""Readers of the data sets' standard on-disk formats, each checking what it reads.

Fashion-MNIST IDX .gz files, scikit-learn's bundled digits, CIFAR python pickle batches
(an unpickler that admits only numpy arrays), the Tiny ImageNet folder layout (no entry
may lead outside the folder). Malformed files give a one-line ValueError naming them.
Each loader returns (train, test) Splits of uint8-range float arrays [N, C, H, W].
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heconv.errors import InputError

log = logging.getLogger(__name__)

FASHION_DIRS = (Path("/usr/share/datasets/fashion-mnist"), Path("/usr/share/fashion-mnist"))
FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# Every data set's number of classes: labels must lie in 0..classes-1.
CLASSES = {"fashion-mnist": 10, "digits": 10, "cifar10": 10, "cifar100": 100, "tiny-imagenet": 200}
DATASETS = tuple(CLASSES)
TITLES = {"fashion-mnist": "Fashion-MNIST", "digits": "digits", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
          "tiny-imagenet": "Tiny ImageNet"}
DIGITS_SOURCE = "scikit-learn digits (bundled)"
CIFAR_LAYOUT = {  # classes: (sub-folder, training batches, test batch, label key)
    10: ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", b"labels"),
    100: ("cifar-100-python", ("train",), "test", b"fine_labels"),
}


@dataclass
class Split:
    x: np.ndarray  # [N, C, H, W] float32
    y: np.ndarray  # [N] int64


# --- checks -------------------------------------------------------------------
def data_folder(data_dir: str | Path) -> Path:
    """An explicit --data-dir, which must be an existing folder."""
    if str(data_dir) == "":
        raise InputError("--data-dir is empty; give the folder holding the data set's files")
    root = Path(data_dir)
    if not root.is_dir():
        raise InputError(f"--data-dir {root}: {'not a folder' if root.exists() else 'no such folder'}")
    return root


def missing_files(folder: Path, names) -> list[str]:
    return [n for n in names if not (folder / n).is_file()]


def check_labels(y: np.ndarray, classes: int, title: str, where: str | Path) -> None:
    """Labels must lie in 0..classes-1; `where` (a file) is named in the error.

    >>> check_labels(np.array([0, 9, 255]), 10, "Fashion-MNIST", "labels.gz")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    heconv.errors.InputError: labels.gz: label 255 at position 2 is outside 0..9 (Fashion-MNIST has 10 classes; ...
    """
    bad = np.flatnonzero((y < 0) | (y >= classes))
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{where}: label {y[i]} at position {i} is outside 0..{classes - 1} ({title} has {classes} "
                         f"classes; {bad.size} of {y.size} labels out of range)")


# --- raw readers --------------------------------------------------------------
def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (optionally .gz): magic 0x0000 08 <ndim>, big-endian sizes, uint8 data."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found (expected an IDX file such as train-images-idx3-ubyte.gz)")
    gz = path.suffix == ".gz"
    try:
        with (gzip.open if gz else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a cut stream an EOFError
        why = f"corrupted or truncated: {e}" if gz else str(e)
        raise InputError(f"{path}: cannot be read as {'gzip' if gz else 'IDX'} ({why})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise InputError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4].hex()}, expected 000008xx)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InputError(f"{path}: truncated IDX header ({ndim} sizes announced, file holds {len(raw)} bytes)")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    expected, held = math.prod(shape), len(raw) - header  # Python ints: no overflow on absurd sizes
    if held != expected:
        raise InputError(f"{path}: header says {shape} ({expected} bytes), file holds {held}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def find_fashion_mnist(data_dir: str | Path | None = None) -> Path | None:
    """The folder holding the four Fashion-MNIST files.

    With data_dir: that folder or its fashion-mnist/ sub-folder, else a ValueError naming the
    folder and the missing files. Without: the system copy (FASHION_DIRS), or None.
    """
    names = [f for pair in FASHION_FILES.values() for f in pair]
    if data_dir is None:
        return next((d for d in FASHION_DIRS if not missing_files(d, names)), None)
    root = data_folder(data_dir)
    best = min((root, root / "fashion-mnist"), key=lambda d: len(missing_files(d, names)))  # a tie keeps root
    missing = missing_files(best, names)
    if missing:
        raise InputError(f"{best}: Fashion-MNIST file(s) missing: {', '.join(missing)} (--data-dir must hold the "
                         f"four IDX .gz files, or a fashion-mnist/ folder with them)")
    return best


def load_fashion_mnist(folder: str | Path) -> tuple[Split, Split]:
    folder = Path(folder)
    out = []
    for split in ("train", "test"):
        images_file, labels_file = (folder / f for f in FASHION_FILES[split])
        images, labels = read_idx(images_file), read_idx(labels_file)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise InputError(f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match")
        check_labels(labels, CLASSES["fashion-mnist"], "Fashion-MNIST", labels_file)
        out.append(Split(images[:, None].astype(np.float32), labels.astype(np.int64)))
    return out[0], out[1]


def load_digits() -> tuple[Split, Split]:
    """scikit-learn's bundled 8x8 digits (values 0..16 scaled to 0..255), split 80/20 by a fixed seed."""
    from sklearn.datasets import load_digits as _digits

    d = _digits()
    x = (d.images * (255.0 / 16.0)).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    cut = int(0.8 * len(y))
    return Split(x[order[:cut]], y[order[:cut]]), Split(x[order[cut:]], y[order[cut:]])


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles of dicts of bytes, lists and numpy arrays: admit only those."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _read_cifar_batch(path: Path, label_key: bytes, classes: int = 100) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise InputError(f"{path}: file not found (expected a CIFAR python batch)")
    try:
        with open(path, "rb") as f:
            d = _NumpyOnlyUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - a malformed pickle can raise almost anything
        raise InputError(f"{path}: not a CIFAR python batch ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict) or b"data" not in d or label_key not in d:
        raise InputError(f"{path}: expected a dict with b'data' and {label_key!r}")
    try:
        x, y = np.asarray(d[b"data"]), np.asarray(d[label_key])
    except (ValueError, TypeError) as e:
        raise InputError(f"{path}: b'data' or {label_key!r} is not an array ({e})") from None
    if x.dtype != np.uint8:
        raise InputError(f"{path}: b'data' has dtype {x.dtype}; expected uint8 pixels (0..255)")
    if y.size == 0:
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise InputError(f"{path}: {label_key!r} has dtype {y.dtype}; expected whole-number class labels")
    if x.ndim != 2 or x.shape[1] != 3072 or y.ndim != 1 or len(x) != len(y):
        raise InputError(f"{path}: data {x.shape} and labels {y.shape}; expected [N, 3072] (3x32x32 images) and [N]")
    check_labels(y, classes, f"CIFAR-{classes}", path)
    return x.reshape(-1, 3, 32, 32).astype(np.float32), y.astype(np.int64)


def cifar_folder(data_dir: str | Path, classes: int) -> Path:
    """data_dir's cifar-10-batches-py/ or cifar-100-python/ folder if there is one, else data_dir itself."""
    root = data_folder(data_dir)
    sub = root / CIFAR_LAYOUT[classes][0]
    return sub if sub.is_dir() else root


def load_cifar(data_dir: str | Path, classes: int) -> tuple[Split, Split]:
    if classes not in CIFAR_LAYOUT:
        raise InputError(f"CIFAR has 10 or 100 classes, not {classes}")
    folder = cifar_folder(data_dir, classes)
    _, train_files, test_file, key = CIFAR_LAYOUT[classes]
    train = [_read_cifar_batch(folder / f, key, classes) for f in train_files]
    test = _read_cifar_batch(folder / test_file, key, classes)
    return Split(np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])), Split(*test)


def tiny_imagenet_folder(data_dir: str | Path) -> Path:
    """data_dir's tiny-imagenet-200/ folder if there is one, else data_dir itself."""
    root = data_folder(data_dir)
    return root / "tiny-imagenet-200" if (root / "tiny-imagenet-200").is_dir() else root


def load_tiny_imagenet(data_dir: str | Path) -> tuple[Split, Split]:
    """tiny-imagenet-200: wnids.txt, train/<wnid>/images/*.JPEG, val/images + val_annotations.txt.

    Its test labels are not public, so its labelled val split serves as the test split.
    The whole layout is checked before any image is decoded; every entry (a symlink, an
    annotation's file name) must resolve inside data_dir.
    """
    from PIL import Image

    boundary = data_folder(data_dir).resolve()
    root = tiny_imagenet_folder(data_dir)

    def inside(path: Path, entry: str | Path | None = None) -> Path:
        try:
            real = path.resolve()
        except (OSError, RuntimeError) as e:  # a symlink loop
            raise InputError(f"{entry or path}: cannot be resolved ({e})") from None
        if not real.is_relative_to(boundary):
            raise InputError(f"{entry or path}: resolves to {real}, outside the data folder {boundary}")
        return real

    def needed_file(path: Path, entry: str | None = None, hint: str = "") -> Path:
        inside(path, entry)
        if not path.is_file():
            raise InputError(f"{entry or path}: file not found{hint}")
        return path

    inside(root)
    wnids_file = needed_file(root / "wnids.txt", hint=" (expected the tiny-imagenet-200 folder layout)")
    wnids = wnids_file.read_text().split()
    if not wnids:
        raise InputError(f"{wnids_file}: lists no class ids")
    if len(wnids) > CLASSES["tiny-imagenet"]:
        raise InputError(f"{wnids_file}: lists {len(wnids)} class ids; Tiny ImageNet has {CLASSES['tiny-imagenet']}")
    index: dict[str, int] = {}
    for w in wnids:
        if w in index:
            raise InputError(f"{wnids_file}: class id {w!r} listed twice")
        index[w] = len(index)

    # 1. list every file, checking the layout (cheap); 2. decode them (the long part)
    files: list[tuple[Path, int]] = []
    for w in wnids:
        folder = root / "train" / w / "images"
        inside(folder)
        if not folder.is_dir():
            raise InputError(f"{folder}: missing (every id in wnids.txt needs train/<id>/images)")
        for f in sorted(folder.iterdir()):
            files.append((needed_file(f), index[w]))
    if not files:
        raise InputError(f"{root / 'train'}: no training images under <id>/images")
    ann = needed_file(root / "val" / "val_annotations.txt")
    val_files: list[tuple[Path, int]] = []
    for line in ann.read_text().splitlines():
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2 or not parts[0] or parts[1] not in index:
            raise InputError(f"{ann}: malformed line {line!r} (expected '<file>\\t<wnid>...')")
        entry = f"{ann}: entry {parts[0]!r}"
        val_files.append((needed_file(root / "val" / "images" / parts[0], entry), index[parts[1]]))
    if not val_files:
        raise InputError(f"{ann}: lists no images")

    shape: tuple[int, ...] | None = None

    def read(path: Path) -> np.ndarray:
        nonlocal shape
        try:
            with Image.open(path) as im:
                a = np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise InputError(f"{path}: not a readable image ({e})") from None
        shape = shape or a.shape
        if a.shape != shape:
            raise InputError(f"{path}: image is {a.shape[1]}x{a.shape[2]}, expected {shape[1]}x{shape[2]} "
                             "like the rest")
        return a

    train = Split(np.stack([read(f) for f, _ in files]), np.array([c for _, c in files], dtype=np.int64))
    test = Split(np.stack([read(f) for f, _ in val_files]), np.array([c for _, c in val_files], dtype=np.int64))
    return train, test
