"""Export a pruned model: a weights-only checkpoint, a per-layer JSON summary, the results CSV.

Every file is written to a temporary name and moved into place, so a failed run never
leaves a half-written file behind.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import torch
from torch import nn

from heconv.files import atomic_write
from heconv.infer import safe_torch_load
from heconv.lower import lower_model
from heconv.network import ServerConv, plan_network
from heconv.params import CKKSParams
from heconv.provenance import provenance

from .prune import fold_masks

CSV_COLUMNS = ["model", "dataset", "input_size", "method", "step", "fraction", "accuracy", "accuracy_drop",
               "rotations", "pmuls", "sparsity", "accepted", "seed", "git_revision"]


def save_checkpoint(model: nn.Module, path: str | Path, meta: dict) -> None:
    """{'state_dict': folded weights, 'meta': plain values}: loadable with weights_only=True."""
    buf = io.BytesIO()
    torch.save({"state_dict": fold_masks(model).state_dict(), "meta": meta}, buf)
    atomic_write(path, buf.getvalue())


def load_training_checkpoint(path: str | Path) -> tuple[dict, dict]:
    """(state_dict, meta) of a checkpoint written by `save_checkpoint`."""
    obj = safe_torch_load(path)
    if not isinstance(obj, dict) or "state_dict" not in obj or "meta" not in obj:
        raise ValueError(f"checkpoint {path}: expected {{'state_dict', 'meta'}} as written by 'artemis train'")
    return obj["state_dict"], obj["meta"]


def layer_summary(model: nn.Module, input_shape: tuple[int, int, int], params: CKKSParams) -> dict:
    """Per conv: kept positions and diagonals, predicted rotations and multiplications, sparsity."""
    folded = fold_masks(model).eval()
    plan = plan_network(lower_model(folded, input_shape), params)
    modules = dict(folded.named_modules())
    layers = []
    for a in plan.actions:
        if not isinstance(a, ServerConv):
            continue
        p = a.plan
        w = modules[a.name].weight
        layers.append({
            "layer": a.name, "c_in": p.spec.c_in, "c_out": p.spec.c_out, "kernel": p.spec.kernel,
            "hw": p.spec.height, "c_n": p.packing.c_n,
            "kept_positions": p.positions, "kept_diagonals": p.diagonals,
            "kept_diagonal_count": sum(len(d) for d in p.diagonals), "diagonal_count": p.packing.n_out * p.packing.c_n,
            "predicted_rotations": p.predicted.rotations, "predicted_pmuls": p.predicted.pmuls,
            "sparsity": float((w == 0).float().mean()),
        })
    return {"layers": layers, "rotations": plan.predicted.rotations, "pmuls": plan.predicted.pmuls,
            "params": params.to_dict()}


def write_summary(path: str | Path, model: nn.Module, input_shape: tuple[int, int, int], params: CKKSParams,
                  extra: dict) -> dict:
    summary = {**extra, **layer_summary(model, input_shape, params), "provenance": provenance()}
    atomic_write(path, json.dumps(summary, indent=2).encode())
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
            _, meta = load_training_checkpoint(path)
            if "method" not in meta or "model" not in meta:
                raise ValueError(f"checkpoint {path}: meta has no 'model'/'method' (written by 'artemis prune'?)")
            found[(meta["model"], meta["method"])] = path
    return found


def load_checkpoint_model(path: str | Path) -> tuple[nn.Module, dict]:
    """The model of a checkpoint written by `save_checkpoint` (trained or pruned), in eval mode, with its meta."""
    from models import build_model

    state, meta = load_training_checkpoint(path)
    model = build_model(meta["model"], meta["in_channels"], meta["num_classes"])
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"checkpoint {path} does not fit {meta['model']}: {str(e).splitlines()[0]}") from None
    return model.eval(), meta
