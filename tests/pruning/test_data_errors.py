"""Issue 10: bad data files and options give a one-line ValueError naming the file or option,
before any resizing or training (the command line prints it as `artemis <cmd>: error: ...`)."""

import gzip
import os
import pickle
import re
import struct

import numpy as np
import pytest

import pruning.data as data
import pruning.readers as readers
from pruning.data import load_cifar, load_dataset, load_fashion_mnist, load_tiny_imagenet, read_idx


def _idx(path, array, extra=b"", shape=None):
    shape = array.shape if shape is None else shape
    header = bytes([0, 0, 0x08, len(shape)]) + struct.pack(">" + "I" * len(shape), *shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes() + extra)


def _fashion(folder, train_labels=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        _idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        labels = train_labels if prefix == "train" and train_labels is not None else np.arange(n) % 10
        _idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def _one_line(excinfo):
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


# --- CIFAR --------------------------------------------------------------------
def _batch(path, data_array=None, labels=None, key=b"labels", n=4):
    rng = np.random.default_rng(1)
    d = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8) if data_array is None else data_array,
         key: list(rng.integers(0, 10, n)) if labels is None else labels}
    path.write_bytes(pickle.dumps(d))


def _cifar10(folder, **first):
    folder.mkdir(parents=True, exist_ok=True)
    _batch(folder / "data_batch_1", **first)
    for i in range(2, 6):
        _batch(folder / f"data_batch_{i}")
    _batch(folder / "test_batch", n=3)
    return folder


@pytest.mark.parametrize("label", [-1, 10, 10**9])
def test_cifar10_labels_out_of_range(tmp_path, label):
    _cifar10(tmp_path, labels=[0, 1, label, 2])
    with pytest.raises(ValueError) as e:
        load_dataset("cifar10", 8, tmp_path)
    assert re.fullmatch(rf".*data_batch_1: label {label} at position 2 is outside 0\.\.9 \(CIFAR-10 has 10 classes; "
                        r"1 of 4 labels out of range\)", _one_line(e))


def test_cifar100_labels_out_of_range(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _batch(folder / "train", labels=[0, 99, 5, 7], key=b"fine_labels")
    _batch(folder / "test", labels=[100, 1, 2, 3], key=b"fine_labels")
    with pytest.raises(ValueError, match=r"cifar-100-python/test: label 100 at position 0 is outside 0\.\.99 "
                                         r"\(CIFAR-100 has 100 classes"):
        load_cifar(tmp_path, 100)


def test_cifar_float_labels_refused(tmp_path):
    _cifar10(tmp_path, labels=[0.0, 1.0, 1e9, 2.0])
    with pytest.raises(ValueError,
                       match=r"data_batch_1: b'labels' has dtype float64; expected whole-number class labels"):
        load_cifar(tmp_path, 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint16])
def test_cifar_refuses_non_uint8_data(tmp_path, dtype):
    pixels = np.full((4, 3072), 300 if np.dtype(dtype).kind in "iu" else 0.5, dtype=dtype)
    _cifar10(tmp_path, data_array=pixels)
    with pytest.raises(ValueError) as e:
        load_dataset("cifar10", 8, tmp_path)
    assert _one_line(e).endswith(f"data_batch_1: b'data' has dtype {np.dtype(dtype)}; expected uint8 pixels (0..255)")


@pytest.mark.parametrize("pixels, labels", [
    (np.zeros((4, 3072), np.uint8), [0, 1, 2]),           # fewer labels than images
    (np.zeros((4, 3, 32, 32), np.uint8), [0, 1, 2, 3]),   # not the [N, 3072] rows of the format
    (np.zeros((4, 3 * 28 * 28), np.uint8), [0, 1, 2, 3]),  # not 3x32x32
    (np.zeros((4, 3072), np.uint8), [[0, 1], [2, 3]]),    # labels not a list
])
def test_cifar_shape_mismatch(tmp_path, pixels, labels):
    _cifar10(tmp_path, data_array=pixels, labels=labels)
    with pytest.raises(ValueError, match=r"data_batch_1: data \(.*\) and labels \(.*\); expected \[N, 3072\] "
                                         r"\(3x32x32 images\) and \[N\]$"):
        load_cifar(tmp_path, 10)


def test_cifar_garbage_batch(tmp_path):
    _cifar10(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(b"\x80\x04garbage that is no pickle")
    with pytest.raises(ValueError, match="data_batch_3: not a CIFAR python batch"):
        load_cifar(tmp_path, 10)


def test_cifar_missing_files_named_before_reading(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    _batch(folder / "data_batch_1")
    _batch(folder / "data_batch_4")

    def no_reading(*a, **k):
        raise AssertionError("read a batch before checking that all are there")

    monkeypatch.setattr(readers, "_read_cifar_batch", no_reading)
    with pytest.raises(ValueError) as e:
        load_dataset("cifar10", 8, tmp_path)
    assert _one_line(e) == (f"{folder}: CIFAR-10 file(s) missing: data_batch_2, data_batch_3, data_batch_5, test_batch "
                            "(expected the python version's batches in --data-dir or its cifar-10-batches-py/ folder)")


# --- Fashion-MNIST and IDX ----------------------------------------------------
def test_fashion_labels_all_255(tmp_path):
    folder = _fashion(tmp_path / "f", train_labels=np.full(30, 255))
    with pytest.raises(ValueError) as e:
        load_dataset("fashion-mnist", 8, folder)
    assert _one_line(e) == (f"{folder / 'train-labels-idx1-ubyte.gz'}: label 255 at position 0 is outside 0..9 "
                            "(Fashion-MNIST has 10 classes; 30 of 30 labels out of range)")
    _fashion(folder, train_labels=np.arange(30) % 11)  # one label past the classes
    with pytest.raises(ValueError, match=r"label 10 at position 10 is outside 0\.\.9"):
        load_fashion_mnist(folder)


def _gzip_bytes(payload):
    import io

    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
        f.write(payload)
    return buf.getvalue()


@pytest.mark.parametrize("how", ["bad-deflate-block", "truncated", "crc", "not-gzip"])
def test_corrupted_gzip_named(tmp_path, how):
    payload = bytes([0, 0, 8, 1]) + struct.pack(">I", 2000) + bytes(range(250)) * 8
    good = _gzip_bytes(payload)
    bad = {
        "bad-deflate-block": good[:10] + b"\x07" + good[11:],  # BTYPE 11 is reserved: zlib.error
        "truncated": good[: len(good) // 2],                    # EOFError
        "crc": good[:-8] + b"\x00\x00\x00\x00" + good[-4:],     # BadGzipFile
        "not-gzip": payload,
    }[how]
    folder = _fashion(tmp_path / "f")
    path = folder / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(bad)
    with pytest.raises(ValueError) as e:
        load_dataset("fashion-mnist", 8, folder)
    assert _one_line(e).startswith(f"{path}: cannot be read as gzip (corrupted or truncated: ")


def test_idx_header_does_not_match_size(tmp_path):
    extra = tmp_path / "extra.gz"
    _idx(extra, np.arange(10), extra=b"\x00\x00")
    with pytest.raises(ValueError, match=r"extra.gz: header says \(10,\) \(10 bytes\), file holds 12$"):
        read_idx(extra)
    huge = tmp_path / "huge.gz"  # sizes whose product overflows 64 bits
    _idx(huge, np.zeros(6), shape=(2**32 - 1, 2**32 - 1, 2**32 - 1))
    with pytest.raises(ValueError, match=r"huge.gz: header says \(4294967295, 4294967295, 4294967295\) "
                                         r"\(79228162458924105385300197375 bytes\), file holds 6"):
        read_idx(huge)
    cut = tmp_path / "cut.gz"
    with gzip.open(cut, "wb") as f:
        f.write(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match=r"cut.gz: truncated IDX header \(3 sizes announced, file holds 6 bytes\)"):
        read_idx(cut)
    folder = _fashion(tmp_path / "f")
    _idx(folder / "train-images-idx3-ubyte.gz", np.zeros((30, 28, 28)), extra=b"\x01")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: header says \(30, 28, 28\)"):
        load_dataset("fashion-mnist", 8, folder)


def test_idx_images_and_labels_disagree(tmp_path):
    folder = _fashion(tmp_path / "f")
    _idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(9) % 10)
    with pytest.raises(ValueError, match=r"f: test images \(10, 28, 28\) and labels \(9,\) do not match"):
        load_dataset("fashion-mnist", 8, folder)


# --- --data-dir: used, or refused; never a silent fall-back ----------------------
def test_missing_data_dir_refused_not_replaced(tmp_path, monkeypatch):
    # a system copy that must not be used
    monkeypatch.setattr(readers, "FASHION_DIRS", (_fashion(tmp_path / "system"),))
    missing = tmp_path / "nope"
    for name in ("fashion-mnist", "cifar10", "cifar100", "tiny-imagenet"):
        with pytest.raises(ValueError) as e:
            load_dataset(name, 8, missing)
        assert _one_line(e) == f"--data-dir {missing}: no such folder"
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ValueError, match=r"--data-dir .*a-file: not a folder$"):
        load_dataset("fashion-mnist", 8, tmp_path / "a-file")
    with pytest.raises(ValueError, match="--data-dir is empty"):
        load_dataset("fashion-mnist", 8, "")


def test_data_dir_lacking_a_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "FASHION_DIRS", (_fashion(tmp_path / "system"),))
    mine = _fashion(tmp_path / "mine")
    (mine / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ValueError) as e:
        load_dataset("fashion-mnist", 8, mine)
    assert _one_line(e) == (f"{mine}: Fashion-MNIST file(s) missing: t10k-labels-idx1-ubyte.gz (--data-dir must hold "
                            "the four IDX .gz files, or a fashion-mnist/ folder with them)")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"empty: Fashion-MNIST file\(s\) missing: train-images-idx3-ubyte.gz, "
                                         r"train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz"):
        load_dataset("fashion-mnist", 8, empty)


def test_sources_recorded(tmp_path, monkeypatch):
    system = _fashion(tmp_path / "system")
    monkeypatch.setattr(readers, "FASHION_DIRS", (system,))
    assert load_dataset("fashion-mnist", 8).source == str(system.resolve())
    nested = _fashion(tmp_path / "mine" / "fashion-mnist")
    d = load_dataset("fashion-mnist", 8, tmp_path / "mine")
    assert d.source == str(nested.resolve()) and d.note == "" and d.name == "fashion-mnist"
    digits = load_dataset("digits", 8, tmp_path / "mine", subset=20)
    assert digits.source == "scikit-learn digits (bundled)"
    assert "--data-dir" in digits.note and "not used" in digits.note


# --- Tiny ImageNet ------------------------------------------------------------
def _tiny(tmp_path, wnids=("n01", "n02"), annotations=None, size=8):
    from PIL import Image

    root = tmp_path / "data" / "tiny-imagenet-200"
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    rng = np.random.default_rng(2)

    def image():
        return Image.fromarray(rng.integers(0, 256, (size, size, 3)).astype(np.uint8))

    for w in wnids:
        d = root / "train" / w / "images"
        d.mkdir(parents=True)
        for j in range(2):
            image().save(d / f"{w}_{j}.JPEG")
    for j in range(2):
        image().save(root / "val" / "images" / f"val_{j}.JPEG")
    lines = annotations if annotations is not None else [f"val_{j}.JPEG\t{wnids[j % len(wnids)]}" for j in range(2)]
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    image().save(outside / "secret.JPEG")
    return tmp_path / "data", root, outside


@pytest.fixture
def no_decoding(monkeypatch):
    """Layout errors must come before any image is decoded."""
    from PIL import Image

    def refuse(*a, **k):
        raise AssertionError("decoded an image before checking the layout")

    monkeypatch.setattr(Image, "open", refuse)


def test_tiny_imagenet_symlinked_image_outside(tmp_path, no_decoding):
    data_dir, root, outside = _tiny(tmp_path)
    link = root / "train" / "n02" / "images" / "n02_9.JPEG"
    os.symlink(outside / "secret.JPEG", link)
    with pytest.raises(ValueError) as e:
        load_tiny_imagenet(data_dir)
    assert _one_line(e) == (f"{link}: resolves to {(outside / 'secret.JPEG').resolve()}, outside the data folder "
                            f"{data_dir.resolve()}")


def test_tiny_imagenet_symlinked_folder_outside(tmp_path, no_decoding):
    data_dir, root, outside = _tiny(tmp_path)
    images = root / "train" / "n01" / "images"
    for f in images.iterdir():
        f.unlink()
    images.rmdir()
    os.symlink(outside, images)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(images))}: resolves to .*outside, outside the data folder"):
        load_dataset("tiny-imagenet", 8, data_dir)


def test_tiny_imagenet_symlinked_dataset_folder_outside(tmp_path, no_decoding):
    data_dir, root, _ = _tiny(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    os.symlink(root, other / "tiny-imagenet-200")
    with pytest.raises(ValueError, match=r"other/tiny-imagenet-200: resolves to .*, outside the data folder"):
        load_tiny_imagenet(other)


@pytest.mark.parametrize("entry", ["../../../../outside/secret.JPEG", "ABSOLUTE"])
def test_tiny_imagenet_annotation_outside(tmp_path, entry, no_decoding):
    data_dir, root, outside = _tiny(tmp_path, annotations=[])
    entry = str(outside / "secret.JPEG") if entry == "ABSOLUTE" else entry
    ann = root / "val" / "val_annotations.txt"
    ann.write_text(f"val_0.JPEG\tn01\n{entry}\tn02\t0\t0\t7\t7\n")
    with pytest.raises(ValueError) as e:
        load_dataset("tiny-imagenet", 8, data_dir)
    assert _one_line(e) == (f"{ann}: entry {entry!r}: resolves to {(outside / 'secret.JPEG').resolve()}, outside the "
                            f"data folder {data_dir.resolve()}")


def test_tiny_imagenet_symlinks_inside_are_fine(tmp_path):
    data_dir, root, _ = _tiny(tmp_path)
    os.symlink(root / "train" / "n01" / "images" / "n01_0.JPEG", root / "train" / "n02" / "images" / "n02_9.JPEG")
    train, test = load_tiny_imagenet(data_dir)
    assert train.y.tolist() == [0, 0, 1, 1, 1] and np.array_equal(train.x[0], train.x[4])


def test_tiny_imagenet_layout_errors(tmp_path, no_decoding):
    data_dir, root, _ = _tiny(tmp_path)
    (root / "wnids.txt").write_text("n01\nn02\nn01\n")
    with pytest.raises(ValueError, match=r"wnids.txt: class id 'n01' listed twice"):
        load_tiny_imagenet(data_dir)
    (root / "wnids.txt").write_text("\n".join(f"n{i:03d}" for i in range(201)))
    with pytest.raises(ValueError, match=r"wnids.txt: lists 201 class ids; Tiny ImageNet has 200"):
        load_tiny_imagenet(data_dir)
    (root / "wnids.txt").write_text("n01 n02")
    (root / "val" / "val_annotations.txt").write_text("val_7.JPEG\tn01\n")
    with pytest.raises(ValueError, match=r"val_annotations.txt: entry 'val_7.JPEG': file not found"):
        load_tiny_imagenet(data_dir)


def test_tiny_imagenet_mixed_image_sizes(tmp_path):
    from PIL import Image

    data_dir, root, _ = _tiny(tmp_path)
    odd = root / "train" / "n02" / "images" / "n02_1.JPEG"
    Image.new("RGB", (5, 6)).save(odd)
    with pytest.raises(ValueError, match=rf"{re.escape(str(odd))}: image is 6x5, expected 8x8 like the rest"):
        load_tiny_imagenet(data_dir)


# --- options --------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, -3, 2.5, True, "16"])
def test_input_size_refused(size):
    with pytest.raises(ValueError, match=re.escape(f"input_size must be a whole number of pixels >= 1, got {size!r}")):
        load_dataset("digits", size)


def test_options_checked_before_reading(tmp_path, monkeypatch):
    def no_loading():
        raise AssertionError("loaded data before checking the options")

    monkeypatch.setattr(data, "load_digits", no_loading)
    with pytest.raises(ValueError, match="subset must be at least 10 images, got 5"):
        load_dataset("digits", 8, subset=5)
    with pytest.raises(ValueError, match="subset must be a whole number of images, got 12.5"):
        load_dataset("digits", 8, subset=12.5)
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\), got nan"):
        load_dataset("digits", 8, val_fraction=float("nan"))
    with pytest.raises(ValueError, match="input_size must be"):
        load_dataset("cifar10", 0, tmp_path / "nope")


def test_too_few_images_for_the_split():
    with pytest.raises(ValueError, match=r"scikit-learn digits \(bundled\): 10 training images are too few to "
                                         r"split off val_fraction 0\.97"):
        load_dataset("digits", 8, subset=10, val_fraction=0.97)


def test_command_line_prints_the_message(tmp_path, capsys):
    from bench.cli import main

    missing = tmp_path / "nope"
    assert main(["train", "--dataset", "fashion-mnist", "--data-dir", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == f"artemis train: error: --data-dir {missing}: no such folder"
