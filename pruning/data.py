"""Data sets from their standard on-disk formats; nothing is downloaded.

- Fashion-MNIST: the four IDX .gz files (Debian's `dataset-fashion-mnist`, or a folder);
  the project's default. When it is absent, scikit-learn's bundled digits stand in.
- CIFAR-10 / CIFAR-100: the "python version" pickle batches, read by an unpickler that
  only admits the numpy types those files hold.
- Tiny ImageNet: the tiny-imagenet-200 folder layout.

Every loader returns uint8-range float arrays [N, C, H, W] and integer labels; `prepare`
resizes, normalises with the training split's statistics, and splits off a validation set.
"""

from __future__ import annotations

import gzip
import io
import logging
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

FASHION_DIRS = (Path("/usr/share/datasets/fashion-mnist"), Path("/usr/share/fashion-mnist"))
FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
DATASETS = ("fashion-mnist", "digits", "cifar10", "cifar100", "tiny-imagenet")


@dataclass
class Split:
    x: np.ndarray  # [N, C, H, W] float32
    y: np.ndarray  # [N] int64


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

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        s = getattr(self, split)
        return torch.from_numpy(s.x), torch.from_numpy(s.y)


# --- raw readers --------------------------------------------------------------
def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (optionally .gz): magic 0x0000 08 <ndim>, big-endian sizes, uint8 data."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found (expected an IDX file such as train-images-idx3-ubyte.gz)")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot be read as {'gzip' if path.suffix == '.gz' else 'IDX'} ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4].hex()}, expected 000008xx)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} ({int(np.prod(shape))} bytes), file holds {data.size}")
    return data.reshape(shape)


def find_fashion_mnist(data_dir: str | Path | None = None) -> Path | None:
    """The folder holding the four Fashion-MNIST files, or None."""
    candidates = [Path(data_dir)] if data_dir else []
    candidates += [Path(data_dir) / "fashion-mnist"] if data_dir else []
    candidates += list(FASHION_DIRS)
    for d in candidates:
        if all((d / f).is_file() for pair in FASHION_FILES.values() for f in pair):
            return d
    return None


def load_fashion_mnist(folder: str | Path) -> tuple[Split, Split]:
    folder = Path(folder)
    out = []
    for split in ("train", "test"):
        images, labels = (read_idx(folder / f) for f in FASHION_FILES[split])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match")
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


def _read_cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise ValueError(f"{path}: file not found (expected a CIFAR python batch)")
    try:
        with open(path, "rb") as f:
            d = _NumpyOnlyUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a CIFAR python batch ({e})") from None
    if not isinstance(d, dict) or b"data" not in d or label_key not in d:
        raise ValueError(f"{path}: expected a dict with b'data' and {label_key!r}")
    x = np.asarray(d[b"data"], dtype=np.uint8)
    y = np.asarray(d[label_key], dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(y):
        raise ValueError(f"{path}: data {x.shape} and labels {y.shape}; expected [N, 3072] and [N]")
    return x.reshape(-1, 3, 32, 32).astype(np.float32), y


def load_cifar(data_dir: str | Path, classes: int) -> tuple[Split, Split]:
    root = Path(data_dir)
    if classes == 10:
        folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
        train = [_read_cifar_batch(folder / f"data_batch_{i}", b"labels") for i in range(1, 6)]
        test = _read_cifar_batch(folder / "test_batch", b"labels")
    else:
        folder = root / "cifar-100-python" if (root / "cifar-100-python").is_dir() else root
        train = [_read_cifar_batch(folder / "train", b"fine_labels")]
        test = _read_cifar_batch(folder / "test", b"fine_labels")
    return Split(np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])), Split(*test)


def load_tiny_imagenet(data_dir: str | Path) -> tuple[Split, Split]:
    """tiny-imagenet-200: wnids.txt, train/<wnid>/images/*.JPEG, val/images + val_annotations.txt.

    Its test labels are not public, so its labelled val split serves as the test split.
    """
    from PIL import Image

    root = Path(data_dir)
    root = root / "tiny-imagenet-200" if (root / "tiny-imagenet-200").is_dir() else root
    wnids_file = root / "wnids.txt"
    if not wnids_file.is_file():
        raise ValueError(f"{wnids_file}: file not found (expected the tiny-imagenet-200 folder layout)")
    wnids = [w.strip() for w in wnids_file.read_text().split() if w.strip()]
    index = {w: i for i, w in enumerate(wnids)}

    def read(path: Path) -> np.ndarray:
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1)
        except OSError as e:
            raise ValueError(f"{path}: not a readable image ({e})") from None

    xs, ys = [], []
    for w in wnids:
        folder = root / "train" / w / "images"
        if not folder.is_dir():
            raise ValueError(f"{folder}: missing (every id in wnids.txt needs train/<id>/images)")
        for f in sorted(folder.iterdir()):
            xs.append(read(f))
            ys.append(index[w])
    ann = root / "val" / "val_annotations.txt"
    if not ann.is_file():
        raise ValueError(f"{ann}: file not found")
    vx, vy = [], []
    for line in ann.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or parts[1] not in index:
            raise ValueError(f"{ann}: malformed line {line!r} (expected '<file>\\t<wnid>...')")
        vx.append(read(root / "val" / "images" / parts[0]))
        vy.append(index[parts[1]])
    return Split(np.stack(xs), np.array(ys, dtype=np.int64)), Split(np.stack(vx), np.array(vy, dtype=np.int64))


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


def load_dataset(name: str, input_size: int, data_dir: str | Path | None = None, val_fraction: float = 0.1,
                 subset: int | None = None, seed: int = 0) -> Dataset:
    """Load, resize, normalise and split a data set by name (one of DATASETS)."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    note = ""
    if name == "fashion-mnist":
        folder = find_fashion_mnist(data_dir)
        if folder is None:
            note = ("Fashion-MNIST not found (install Debian's dataset-fashion-mnist or pass --data-dir); "
                    "using scikit-learn's digits instead")
            log.warning(note)
            name, (train, test) = "digits", load_digits()
        else:
            train, test = load_fashion_mnist(folder)
    elif name == "digits":
        train, test = load_digits()
    elif data_dir is None:
        raise ValueError(f"data set {name} is read from --data-dir; none given")
    elif name in ("cifar10", "cifar100"):
        train, test = load_cifar(data_dir, 10 if name == "cifar10" else 100)
    else:
        train, test = load_tiny_imagenet(data_dir)

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train.y))
    if subset is not None:
        if subset < 10:
            raise ValueError(f"subset must be at least 10 images, got {subset}")
        order = order[:subset]
    n_val = max(1, int(round(val_fraction * len(order))))
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_train = resize(train.x[train_idx], input_size)
    mean = x_train.mean(axis=(0, 2, 3))
    std = x_train.std(axis=(0, 2, 3)) + 1e-6

    def norm(x: np.ndarray) -> np.ndarray:
        return ((resize(x, input_size) - mean[None, :, None, None]) / std[None, :, None, None]).astype(np.float32)

    num_classes = int(max(train.y.max(), test.y.max())) + 1
    test_x, test_y = test.x, test.y
    if subset is not None:
        keep = rng.permutation(len(test_y))[: max(10, subset // 5)]
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
    )
