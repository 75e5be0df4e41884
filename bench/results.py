"""Writing results so that nothing half-written or lost is ever left behind.

- `atomic_write`, `outputs_together`, `clean_stale`: the one atomic-write helper (bench.atomic).
- `upsert_csv`: the pruning rows, read-modify-written under an exclusive lock, so
  concurrent writers lose nothing.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from pathlib import Path

from torch import nn

from heconv.errors import InputError
from heconv.params import CKKSParams
from models.checkpoint import checkpoint_bytes
from pruning.masks import fold_masks
from pruning.summary import layer_summary

from .atomic import atomic_write, clean_stale, defer, outputs_together, temporary, write_error
from .provenance import provenance

__all__ = ["atomic_write", "clean_stale", "outputs_together", "upsert_csv", "csv_bytes", "write_json",
           "save_checkpoint", "write_summary", "export_pruned", "pruned_meta"]


def pruned_meta(run: dict, steps: list[dict], train_run: dict | None, data) -> dict:
    """The meta of a pruning run's checkpoint as the benchmarks read it (model, method, data, accuracies).

    `run` and `steps` come from bench.experiments.store (one prune run and its steps), `train_run` is the
    run it pruned (for the epochs), `data` the loaded data set (for channels, classes, note).
    """
    chosen = next((s for s in steps if s["chosen"]), steps[0] if steps else {})
    config = run["config"] or {}
    return {"model": run["model"], "dataset": data.name, "input_size": run["input_size"],
            "in_channels": data.in_channels, "num_classes": data.num_classes, "subset": run["subset"],
            "seed": run["seed"], "lambda_p": run["lambda_p"], "lambda_d": run["lambda_d"],
            "epochs": ((train_run or {}).get("config") or {}).get("epochs"),
            "poly_modulus_degree": run["poly_modulus_degree"], "data_note": data.note,
            "data_source": run["data_source"], "max_drop": config.get("max_drop"),
            "git_revision": (run["provenance"] or {}).get("git_revision"), "method": run["method"],
            "fraction": chosen.get("fraction"), "threshold": chosen.get("threshold"),
            "val_accuracy": run["val_accuracy"], "test_accuracy": run["test_accuracy"], "run_id": run["run_id"],
            "schedules": config.get("schedules")}


def export_pruned(run: dict, meta: dict, out_dir: str | Path) -> Path:
    """The run's pruned weights as out_dir/pruned-<method>.pt with `meta` (what `--pruned DIR` finds); the
    method is meta's (a family's name, for its member chosen on validation)."""
    from models.checkpoint import checkpoint_from_bytes

    src = Path(run["checkpoint"] or "")
    if not src.is_file():
        raise InputError(f"run {run['run_id']}: its checkpoint {src} is not on this machine")
    state, _ = checkpoint_from_bytes(src.read_bytes(), str(src))
    path = Path(out_dir) / f"pruned-{meta.get('method', run['method'])}.pt"
    atomic_write(path, checkpoint_bytes(state, meta))
    return path


def write_json(path: str | Path, obj: dict) -> None:
    atomic_write(path, json.dumps(obj, indent=2).encode())


def save_checkpoint(model: nn.Module, path: str | Path, meta: dict) -> None:
    """The model with its pruning masks folded in, and its meta: loadable with weights_only=True."""
    atomic_write(path, checkpoint_bytes(fold_masks(model).state_dict(), meta))


def write_summary(path: str | Path, model: nn.Module, input_shape: tuple[int, int, int], params: CKKSParams,
                  schedule: str | dict[str, str], extra: dict) -> dict:
    summary = {**extra, **layer_summary(model, input_shape, params, schedule), "provenance": provenance()}
    write_json(path, summary)
    return summary


def csv_bytes(rows: list[dict], columns: tuple[str, ...] | list[str]) -> bytes:
    """Rows as CSV text (header first), ready for atomic_write."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode()


CSV_COLUMNS = ["model", "dataset", "input_size", "method", "step", "fraction", "accuracy", "accuracy_drop",
               "rotations", "pmuls", "sparsity", "accepted", "seed", "git_revision"]


def upsert_csv(path: str | Path, rows: list[dict],
               key: tuple[str, ...] = ("model", "dataset", "input_size", "method")) -> None:
    """Replace the rows of the same (model, dataset, input size, method) and keep the rest.

    The read-modify-write runs under an exclusive lock on `<path>.lock` (inside
    outputs_together(): when the outputs are put in place).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise InputError(f"{path} is a folder; expected a CSV file")

    def upsert() -> None:
        with open(path.parent / f".{path.name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            kept: list[dict] = []
            if path.is_file():
                with open(path, newline="") as f:
                    reader = csv.DictReader(f)
                    if reader.fieldnames != CSV_COLUMNS:
                        raise InputError(f"{path}: columns {reader.fieldnames}, expected {CSV_COLUMNS}")
                    new_keys = {tuple(str(r[k]) for k in key) for r in rows}
                    kept = [r for r in reader if tuple(r[k] for k in key) not in new_keys]
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for r in kept + rows:
                writer.writerow({c: r.get(c, "") for c in CSV_COLUMNS})
            tmp = temporary(path)
            try:
                tmp.write_bytes(buf.getvalue().encode())
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            except OSError as e:
                tmp.unlink(missing_ok=True)
                raise write_error(path, e) from None

    defer(upsert)
