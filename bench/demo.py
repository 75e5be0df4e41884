"""The whole pipeline with small settings: train, prune, lower, run encrypted, compare.

dense training and HE-aware (diagonal group-Lasso) training on the default data, then
artemis-diagonal pruning of the Lasso model and hunter pruning of the dense one, both
to within `max_drop` points of the dense model; then each of the three models is
lowered onto the engine and run encrypted on a few test images.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from heconv.params import params_for_input
from models import build_model
from pruning.data import load_dataset
from pruning.groups import model_groups
from pruning.iterative import iterative_prune
from pruning.masks import fold_masks
from pruning.summary import he_cost
from pruning.train import TrainConfig, evaluate, train

from .harness.model import measure_model, prepare_model
from .provenance import provenance
from .results import atomic_write, save_checkpoint, upsert_csv


@dataclass
class DemoConfig:
    model: str = "resnet20"
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    input_size: int = 16
    subset: int = 6000
    epochs: int = 6
    lambda_d: float = 5e-4
    max_drop: float = 1.0
    fractions: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7)
    finetune_epochs: int = 2
    images: int = 2
    mode: str = "encrypted"
    seed: int = 0


Stage = Callable[[str], None]


def run_demo(cfg: DemoConfig, out_dir: str | Path, stage: Stage | None = None) -> dict:
    """Run the pipeline; write demo.json and demo.md into out_dir; return the comparison rows."""
    say = stage or (lambda s: None)
    torch.manual_seed(cfg.seed)
    data = load_dataset(cfg.dataset, cfg.input_size, cfg.data_dir, subset=cfg.subset, seed=cfg.seed)
    shape = (data.in_channels, cfg.input_size, cfg.input_size)
    params = params_for_input(cfg.input_size, cfg.input_size)
    vx, vy = data.tensors("val")
    tx, ty = data.tensors("test")
    models = {}
    for name, lam in (("dense", 0.0), ("artemis", cfg.lambda_d)):
        say(f"train {name}")
        torch.manual_seed(cfg.seed)
        m = build_model(cfg.model, data.in_channels, data.num_classes)
        groups = model_groups(m, shape, params)
        train(m, data, TrainConfig(epochs=cfg.epochs, lambda_d=lam, seed=cfg.seed), groups)
        models[name] = (m, groups)
    dense_acc = evaluate(models["dense"][0], vx, vy)
    pruned = {"dense": models["dense"][0]}
    steps: dict[str, list[dict]] = {"dense": [{"step": 0, "fraction": 0.0, "accuracy": dense_acc, "accuracy_drop": 0.0,
                                              **he_cost(pruned["dense"], shape, params), "sparsity": 0.0,
                                              "accepted": True}]}
    chosen = {"dense": 0.0}
    for method, source in (("artemis-diagonal", "artemis"), ("hunter", "dense")):
        say(f"prune {method}")
        m = build_model(cfg.model, data.in_channels, data.num_classes)
        m.load_state_dict(fold_masks(models[source][0]).state_dict())
        result = iterative_prune(m, data, models[source][1], method, params, cfg.max_drop, cfg.fractions,
                                 TrainConfig(epochs=cfg.finetune_epochs, lr=0.01, seed=cfg.seed), reference=dense_acc)
        pruned[method] = fold_masks(m)
        steps[method] = [s.to_dict() for s in result.steps]
        chosen[method] = result.chosen.fraction
    rows = []
    images = data.test.x[: cfg.images].astype(np.float64)
    for method, m in pruned.items():
        say(f"encrypted inference: {method}")
        m = m.eval()
        prep = prepare_model(m, shape, params, mode=cfg.mode, seed=cfg.seed)
        r = measure_model(prep, m, images, labels=data.test.y[: cfg.images]).to_dict()
        rows.append({
            "method": method, "val_accuracy": evaluate(m, vx, vy), "test_accuracy": evaluate(m, tx, ty),
            "predicted_rotations": r["predicted_rotations"], "rotations": r["rotations"], "pmuls": r["pmuls"],
            "server_s": r["server_s"], "floor_s": r["floor_s"], "bytes_client_to_server": r["bytes_client_to_server"],
            "bytes_server_to_client": r["bytes_server_to_client"], "galois_key_bytes": r["galois_key_bytes"],
            "top1_agreement": r["top1_agreement"], "max_abs_error": r["max_abs_error"],
        })
    result = {"config": {k: v for k, v in cfg.__dict__.items()}, "dataset": data.name,
              "data_note": data.note, "data_source": data.source,
              "dense_val_accuracy": dense_acc, "rows": rows, "pruning_steps": steps, "provenance": provenance()}
    out = Path(out_dir)
    rev = result["provenance"]["git_revision"]
    meta = {"model": cfg.model, "dataset": data.name, "input_size": cfg.input_size, "in_channels": data.in_channels,
            "num_classes": data.num_classes, "subset": cfg.subset, "seed": cfg.seed, "lambda_d": cfg.lambda_d,
            "epochs": cfg.epochs, "poly_modulus_degree": params.poly_modulus_degree,
            "data_note": data.note, "data_source": data.source,
            "max_drop": cfg.max_drop, "git_revision": rev}
    for r in rows:  # the benchmarks pick these up (bench --pruned, default results/demo/checkpoints)
        save_checkpoint(pruned[r["method"]], out / "checkpoints" / f"pruned-{r['method']}.pt",
                        {**meta, "method": r["method"], "fraction": chosen[r["method"]],
                         "val_accuracy": r["val_accuracy"], "test_accuracy": r["test_accuracy"]})
    upsert_csv(out / "pruning_summary.csv",
               [{"model": cfg.model, "dataset": data.name, "input_size": cfg.input_size, "method": method, **s,
                 "seed": cfg.seed, "git_revision": rev} for method, ss in steps.items() for s in ss])
    atomic_write(out / "demo.json", json.dumps(result, indent=2).encode())
    atomic_write(out / "demo.md", render(result).encode())
    return result


def render(result: dict) -> str:
    """The comparison table as Markdown."""
    c = result["config"]
    lines = [f"# Demo: {c['model']} on {result['dataset']} {c['input_size']}x{c['input_size']} "
             f"({c['subset']} images, {c['epochs']} epochs, {c['mode']}, N = 8192)", ""]
    if result.get("data_source"):
        lines += [f"Data: {result['data_source']}", ""]
    if result["data_note"]:
        lines += [f"Note: {result['data_note']}", ""]
    lines += ["| method | val acc | test acc | rotations (predicted / counted) | pmuls | server s / image | floor s | "
              "MB up / down | top-1 agreement |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        floor = "-" if r["floor_s"] is None else f"{r['floor_s']:.2f}"
        agree = "-" if r["top1_agreement"] is None else f"{r['top1_agreement']:.2f}"
        lines.append(f"| {r['method']} | {r['val_accuracy']:.2f} | {r['test_accuracy']:.2f} | "
                     f"{r['predicted_rotations']} / {r['rotations']} | {r['pmuls']} | {r['server_s']:.2f} | {floor} | "
                     f"{r['bytes_client_to_server'] / 1e6:.1f} / {r['bytes_server_to_client'] / 1e6:.1f} | {agree} |")
    lines += ["", f"Made at git revision {result['provenance']['git_revision']}.", ""]
    return "\n".join(lines)
