"""The one reader and writer of checkpoints: {'state_dict': ..., 'meta': {...}}.

Every read goes through `torch.load(..., weights_only=True)`; `checkpoint_bytes` gives
the bytes a writer puts on disk (atomically, see bench.results). `meta` holds plain
values only: model, in_channels, num_classes, dataset, input_size, seed, ...

>>> import models, io
>>> blob = checkpoint_bytes(models.build_model("small-cnn", 1, 10).state_dict(), {"model": "small-cnn"})
>>> isinstance(blob, bytes) and len(blob) > 1000
True
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from heconv.errors import InputError

from . import MODELS, build_model

REQUIRED_META = ("model", "in_channels", "num_classes")


def _whole(lo: int, hi: int):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


# meta key -> (test of a value, what is expected); absent keys and None are not checked here
META_CHECKS = {
    "model": (lambda v: v in MODELS, "one of " + ", ".join(MODELS)),
    "in_channels": (lambda v: v in (1, 3) and not isinstance(v, bool), "1 or 3"),
    "num_classes": (_whole(1, 1000), "a whole number in [1, 1000]"),
    "input_size": (_whole(1, 512), "a whole number of pixels in [1, 512]"),
    "seed": (_whole(0, 2**32 - 1), "a seed in [0, 2^32 - 1]"),
    "subset": (_whole(0, 10**8), "a whole number of images >= 0"),
    "epochs": (_whole(0, 10**6), "a whole number of epochs >= 0"),
    "poly_modulus_degree": (lambda v: _whole(1024, 65536)(v) and v & (v - 1) == 0, "a power of two in [1024, 65536]"),
    "dataset": (lambda v: isinstance(v, str), "a data set's name"),
    "schedules": (lambda v: isinstance(v, dict), "a mapping of conv paths to schedules"),
}


def check_meta(meta: object, path: str | Path) -> dict:
    """`meta` if each value it holds has the type and range its key needs (InputError naming the key).

    >>> check_meta({"model": "small-cnn", "num_classes": 10}, "m.pt")["num_classes"]
    10
    >>> check_meta({"num_classes": "10"}, "m.pt")
    Traceback (most recent call last):
    ...
    heconv.errors.InputError: checkpoint m.pt: meta num_classes = '10'; expected a whole number in [1, 1000]
    """
    if not isinstance(meta, dict):
        raise InputError(f"checkpoint {path}: meta is a {type(meta).__name__}; expected a mapping")
    for key, (ok, expected) in META_CHECKS.items():
        value = meta.get(key)
        if value is not None and not ok(value):
            raise InputError(f"checkpoint {path}: meta {key} = {value!r}; expected {expected}")
    return meta


def safe_torch_load(path: str | Path, what: str = "checkpoint"):
    """torch.load(path, weights_only=True), with a ValueError that names the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a bad file
        raise InputError(f"{what} {path}: cannot be read with weights_only=True ({e})") from None


def checkpoint_bytes(state_dict: dict, meta: dict) -> bytes:
    """The serialized checkpoint: loadable with weights_only=True."""
    buf = io.BytesIO()
    torch.save({"state_dict": state_dict, "meta": meta}, buf)
    return buf.getvalue()


def checkpoint_from_bytes(blob: bytes, what: str = "checkpoint") -> tuple[dict, dict]:
    """(state_dict, meta) of checkpoint bytes, read with weights_only=True; a plain state dict
    (what sweeps before 2026-12-02 wrote) gives empty meta.

    >>> checkpoint_from_bytes(checkpoint_bytes({"w": torch.zeros(1)}, {"model": "m"}))[1]
    {'model': 'm'}
    """
    try:
        obj = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for bad bytes
        raise InputError(f"{what}: cannot be read with weights_only=True ({e})") from None
    if isinstance(obj, dict) and "state_dict" in obj and "meta" in obj:
        return obj["state_dict"], obj["meta"]
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, {}
    raise InputError(f"{what}: expected a checkpoint or a state dict, got {type(obj).__name__}")


def load_state(model: nn.Module, state: dict, path: str | Path, name: str | None = None) -> None:
    """model.load_state_dict(state), with a ValueError naming the file, the model (`name`,
    as built from the checkpoint's meta) and the mismatched keys."""
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        missing = sorted(set(model.state_dict()) - set(state))
        unexpected = sorted(set(state) - set(model.state_dict()))
        detail = "; ".join(part for part in (
            f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}" if missing else "",
            f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}" if unexpected else "",
        ) if part) or first
        what = name or f"the model ({type(model).__name__})"
        raise InputError(f"checkpoint {path} does not fit {what}: {detail}") from None


def load_weights_into(model: nn.Module, path: str | Path) -> None:
    """Load a plain state dict (or {'state_dict': ...}) into `model`."""
    obj = safe_torch_load(path)
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise InputError(f"checkpoint {path}: expected a state dict, got {type(obj).__name__}")
    load_state(model, obj, path)


def read_checkpoint(path: str | Path) -> tuple[dict, dict]:
    """(state_dict, meta) of a checkpoint written with `checkpoint_bytes`."""
    obj = safe_torch_load(path)
    if not isinstance(obj, dict) or "state_dict" not in obj or "meta" not in obj:
        raise InputError(f"checkpoint {path}: expected {{'state_dict', 'meta'}} as written by 'artemis train'")
    return obj["state_dict"], check_meta(obj["meta"], path)


def load_checkpoint_model(path: str | Path) -> tuple[nn.Module, dict]:
    """The model of a checkpoint (trained or pruned), in eval mode, with its meta."""
    state, meta = read_checkpoint(path)
    absent = [k for k in REQUIRED_META if k not in meta]
    if absent:
        raise InputError(f"checkpoint {path}: meta lacks {absent} (written by 'artemis train' or 'artemis prune'?)")
    model = build_model(meta["model"], meta["in_channels"], meta["num_classes"])
    load_state(model, state, path, meta["model"])
    return model.eval(), meta


def find_checkpoints(dirs: list[str | Path]) -> dict[tuple[str, str], Path]:
    """{(model, method): path} of the pruned checkpoints (`pruned-<method>.pt`) under `dirs`.

    The model and method come from each checkpoint's own meta, not from its file name;
    a later directory wins over an earlier one for the same (model, method). Missing
    directories are skipped (the benchmarks then skip their checkpoint cases).
    """
    found: dict[tuple[str, str], Path] = {}
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            continue
        for path in sorted(d.rglob("pruned-*.pt")):
            _, meta = read_checkpoint(path)
            if "method" not in meta or "model" not in meta:
                raise InputError(f"checkpoint {path}: meta has no 'model'/'method' (written by 'artemis prune'?)")
            found[(meta["model"], meta["method"])] = path
    return found
