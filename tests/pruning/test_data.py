"""The loaders read tiny files in each standard format; malformed files give clear errors."""

import gzip
import pickle
import struct

import numpy as np
import pytest

from pruning.data import load_cifar, load_dataset, load_fashion_mnist, load_tiny_imagenet, read_idx


def _idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fashion_dir(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60), ("t10k", 20)):
        _idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return tmp_path


def test_fashion_mnist_fixture(fashion_dir):
    train, test = load_fashion_mnist(fashion_dir)
    assert train.x.shape == (60, 1, 28, 28) and test.y.tolist()[:3] == [0, 1, 2]
    d = load_dataset("fashion-mnist", 16, fashion_dir, val_fraction=0.25, seed=3)
    assert d.name == "fashion-mnist" and d.note == ""
    assert d.source == str(fashion_dir.resolve())  # where the files came from is recorded
    assert d.train.x.shape == (45, 1, 16, 16) and d.val.x.shape == (15, 1, 16, 16) and d.test.x.shape == (20, 1, 16, 16)
    assert abs(float(d.train.x.mean())) < 1e-4 and abs(float(d.train.x.std()) - 1) < 1e-3  # normalised on train
    again = load_dataset("fashion-mnist", 16, fashion_dir, val_fraction=0.25, seed=3)
    assert np.array_equal(again.val.y, d.val.y)  # the split is fixed by the seed


def test_fallback_to_digits(tmp_path, monkeypatch):
    import pruning.readers as data

    monkeypatch.setattr(data, "FASHION_DIRS", ())
    # only without --data-dir: an explicit folder is used or refused (tests/pruning/test_data_errors.py)
    d = load_dataset("fashion-mnist", 8)
    assert d.name == "digits" and "using scikit-learn's digits" in d.note
    assert d.num_classes == 10 and d.in_channels == 1
    assert d.source == "scikit-learn digits (bundled)"


def test_idx_errors(tmp_path):
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x00\x00\x0d\x03" + b"\x00" * 12)
    with pytest.raises(ValueError, match="bad.gz: not an IDX file of unsigned bytes"):
        read_idx(bad)
    short = tmp_path / "short.gz"
    with gzip.open(short, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 100) + b"\x01" * 10)
    with pytest.raises(ValueError, match=r"short.gz: header says \(100,\) \(100 bytes\), file holds 10"):
        read_idx(short)
    with pytest.raises(ValueError, match="missing.gz: file not found"):
        read_idx(tmp_path / "missing.gz")
    (tmp_path / "notgz.gz").write_bytes(b"plain text")
    with pytest.raises(ValueError, match="cannot be read as gzip"):
        read_idx(tmp_path / "notgz.gz")


def _cifar_batch(path, n, label_key, classes):
    rng = np.random.default_rng(1)
    d = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), label_key: list(rng.integers(0, classes, n))}
    with open(path, "wb") as f:
        pickle.dump(d, f)


def test_cifar10_and_100_fixtures(tmp_path):
    c10 = tmp_path / "cifar-10-batches-py"
    c10.mkdir()
    for i in range(1, 6):
        _cifar_batch(c10 / f"data_batch_{i}", 4, b"labels", 10)
    _cifar_batch(c10 / "test_batch", 3, b"labels", 10)
    train, test = load_cifar(tmp_path, 10)
    assert train.x.shape == (20, 3, 32, 32) and test.x.shape == (3, 3, 32, 32)
    d = load_dataset("cifar10", 16, tmp_path, val_fraction=0.2)
    assert d.in_channels == 3 and d.train.x.shape[1:] == (3, 16, 16)
    assert d.source == str(c10.resolve())
    c100 = tmp_path / "cifar-100-python"
    c100.mkdir()
    _cifar_batch(c100 / "train", 6, b"fine_labels", 100)
    _cifar_batch(c100 / "test", 2, b"fine_labels", 100)
    train, test = load_cifar(tmp_path, 100)
    assert train.x.shape == (6, 3, 32, 32)


def test_cifar_refuses_foreign_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}))
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        load_cifar(tmp_path, 10)
    for i in range(1, 6):
        batch = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
        (tmp_path / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    with pytest.raises(ValueError, match=r"data_batch_1: data \(2, 100\)"):
        load_cifar(tmp_path, 10)


def test_tiny_imagenet_fixture(tmp_path):
    from PIL import Image

    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n01", "n02"]
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids))
    rng = np.random.default_rng(2)
    for w in wnids:
        d = root / "train" / w / "images"
        d.mkdir(parents=True)
        for j in range(3):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)).save(d / f"{w}_{j}.JPEG")
    lines = []
    for j in range(2):
        image = Image.fromarray(rng.integers(0, 256, (64, 64, 3)).astype(np.uint8))
        image.save(root / "val" / "images" / f"val_{j}.JPEG")
        lines.append(f"val_{j}.JPEG\t{wnids[j]}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines))
    train, test = load_tiny_imagenet(tmp_path)
    assert train.x.shape == (6, 3, 64, 64) and train.y.tolist() == [0, 0, 0, 1, 1, 1] and test.y.tolist() == [0, 1]
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99\n")
    with pytest.raises(ValueError, match="val_annotations.txt: malformed line"):
        load_tiny_imagenet(tmp_path)


def test_unknown_and_missing():
    with pytest.raises(ValueError, match="unknown data set 'mnist3'"):
        load_dataset("mnist3", 16)
    with pytest.raises(ValueError, match="cifar10 is read from --data-dir"):
        load_dataset("cifar10", 16)
