"""Writing results: atomic files, checkpoints, the pruning rows, and the provenance
(library versions, machine and git revision) every result records.

Every file is written to a temporary name and moved into place, so a failed run never
leaves a half-written file behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from torch import nn

from heconv.params import CKKSParams
from models.checkpoint import checkpoint_bytes
from pruning.masks import fold_masks
from pruning.summary import layer_summary


SOURCE_SUFFIXES = (".py", ".toml", ".cfg", ".sh", ".ini")


def git_revision(path: str | Path | None = None) -> str:
    """The commit of the checkout this package lives in, '+dirty' when it has changes
    (modified tracked files, or untracked source files that git does not ignore)."""
    cwd = Path(path) if path else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown"
        status = subprocess.run(["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True, timeout=10)
        dirty = any(not line.startswith("??") or line.rstrip().endswith(SOURCE_SUFFIXES) or "/.ci/" in f"/{line[3:]}"
                    for line in status.stdout.splitlines() if line.strip())
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in ("numpy", "torch", "tenseal", "pytest-benchmark", "scipy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def provenance() -> dict:
    """Everything a result file records about how it was made."""
    return {
        "git_revision": git_revision(),
        "versions": versions(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
        },
    }


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: dict) -> None:
    atomic_write(path, json.dumps(obj, indent=2).encode())


def save_checkpoint(model: nn.Module, path: str | Path, meta: dict) -> None:
    """The model with its pruning masks folded in, and its meta: loadable with weights_only=True."""
    atomic_write(path, checkpoint_bytes(fold_masks(model).state_dict(), meta))


CSV_COLUMNS = ["model", "dataset", "input_size", "method", "step", "fraction", "accuracy", "accuracy_drop",
               "rotations", "pmuls", "sparsity", "accepted", "seed", "git_revision"]


def write_summary(path: str | Path, model: nn.Module, input_shape: tuple[int, int, int], params: CKKSParams,
                  extra: dict) -> dict:
    summary = {**extra, **layer_summary(model, input_shape, params), "provenance": provenance()}
    write_json(path, summary)
    return summary


def upsert_csv(path: str | Path, rows: list[dict], key: tuple[str, ...] = ("model", "dataset", "input_size", "method")) -> None:
    """Replace the rows of the same (model, dataset, input size, method) and keep the rest."""
    path = Path(path)
    kept: list[dict] = []
    if path.is_file():
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != CSV_COLUMNS:
                raise ValueError(f"{path}: columns {reader.fieldnames}, expected {CSV_COLUMNS}")
            new_keys = {tuple(str(r[k]) for k in key) for r in rows}
            kept = [r for r in reader if tuple(r[k] for k in key) not in new_keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in kept + rows:
        writer.writerow({c: r.get(c, "") for c in CSV_COLUMNS})
    atomic_write(path, buf.getvalue().encode())
