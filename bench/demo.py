"""The whole pipeline with small settings: sweep (train, prune), lower, run encrypted, compare.

The demo is a small sweep on the same machinery as `artemis sweep` (Ray tasks, the
experiments database in out_dir): plain and HE-aware (proximal diagonal group-Lasso)
training, then dense, hunter (of the plain model) and artemis-diagonal (of the Lasso model),
each pruned to within `max_drop` points of the dense model's validation accuracy, for every
seed. The first seed's three chosen models are then lowered onto the engine, run encrypted on
a few test images, and the measurements recorded in the demo's database. Everything the
demo's folder says (demo.md, report.md, the figures) is read from that database and that run
(bench.demo_report), nothing else.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bench.experiments.cells import PruneCell, TrainCell, _default_fractions
from bench.experiments.pause import idle_record, paused
from bench.experiments.store import ExperimentStore, checkpoint_on_disk
from bench.experiments.sweep import SweepGrid, run_sweep
from heconv.errors import InputError
from heconv.params import params_for_input
from models import build_model
from models.checkpoint import checkpoint_from_bytes
from pruning.data import load_dataset

from .demo_report import render_demo, write_demo_report
from .harness.model import measure_checkpoint
from .provenance import in_repository, provenance
from .results import atomic_write, csv_bytes, export_pruned, pruned_meta

METHODS = ("dense", "hunter", "artemis-diagonal")
WORKERS = 1  # the encrypted runs are in-process: every rotation counted is the plan's own


# The demo is the sweep at small settings: every setting is the sweep's default
# (bench.experiments.cells.TrainCell / PruneCell) except these, each for the reason given.
DEMO_OVERRIDES = {
    "subset": (6000, "5,400 training and 600 validation images, so that the demo runs in minutes"),
    "test_images": (2000, "the test reading on 2,000 images (the sweep reads all 10,000)"),
    "epochs": (6, "a short plain training, 6 epochs"),
    "converge": (None, "a cosine schedule over those 6 epochs (a plateau schedule anneals only after plateaus "
                       "that 6 epochs do not reach)"),
}
_TRAIN, _PRUNE = TrainCell("_"), PruneCell(TrainCell("_"), TrainCell("_"), "dense")


@dataclass(frozen=True)
class DemoConfig:
    """The demo's settings: the sweep's defaults, DEMO_OVERRIDES, and what only the demo has."""

    model: str = "resnet20"
    dataset: str = _TRAIN.dataset
    data_dir: str | None = None
    input_size: int = _TRAIN.input_size
    subset: int = DEMO_OVERRIDES["subset"][0]
    test_images: int | None = DEMO_OVERRIDES["test_images"][0]
    epochs: int = DEMO_OVERRIDES["epochs"][0]
    converge: float | None = DEMO_OVERRIDES["converge"][0]
    lasso_epochs: float = _TRAIN.lasso_epochs
    lasso_lr: float = _TRAIN.lasso_lr
    # 0.3: the smallest of the sweep's lambda_d grid; the demo trains one Lasso model
    lambda_d: float = 0.3
    max_drop: float = _PRUNE.max_drop
    fractions: tuple[float, ...] = ()  # (): the sweep's schedule (pruning.iterative.DEFAULT_FRACTIONS)
    recovery_epochs: float = _PRUNE.recovery_epochs
    finetune_epochs: float = _PRUNE.finetune_epochs
    finetune_lr: float = _PRUNE.finetune_lr
    patience: int = _PRUNE.patience
    images: int = 2
    mode: str = "encrypted"
    seeds: tuple[int, ...] = (0,)
    schedule: str = "output-rotation"  # the rotation schedule trained, pruned and run encrypted


Stage = Callable[[str], None]
Progress = Callable[[int, int, dict], None]


def demo_grid(cfg: DemoConfig) -> SweepGrid:
    base = TrainCell(cfg.model, cfg.dataset, cfg.input_size, cfg.subset, schedule=cfg.schedule, epochs=cfg.epochs,
                     converge=cfg.converge, lasso_epochs=cfg.lasso_epochs, lasso_lr=cfg.lasso_lr,
                     test_images=cfg.test_images, data_dir=cfg.data_dir)
    return SweepGrid(models=(cfg.model,), methods=METHODS, seeds=cfg.seeds, lambdas_d=(cfg.lambda_d,),
                     input_sizes=(cfg.input_size,), base=base,
                     prune=PruneCell(base, base, "dense", cfg.max_drop, "threshold", cfg.fractions,
                                     cfg.finetune_epochs, cfg.finetune_lr, cfg.patience, cfg.recovery_epochs))


def run_demo(cfg: DemoConfig, out_dir: str | Path, stage: Stage | None = None,
             progress: Progress | None = None, pause: bool = True) -> dict:
    """Run the pipeline; write experiments.sqlite, demo.json, demo.md, report.md and the figures
    into out_dir; return the comparison. `pause`: this host's sweeps wait while the encrypted
    runs are timed (bench.experiments.pause), as for `artemis bench`."""
    say = stage or (lambda s: None)
    out = Path(out_dir)
    grid = demo_grid(cfg)
    store = ExperimentStore(out / "experiments.sqlite")
    # the encrypted runs read the chosen checkpoints: a finished cell whose checkpoint is gone (a
    # committed results/demo/ holds its database, not its checkpoints) cannot be reused
    gone = [c.run_id for c in grid.prune_cells()
            if store.status(c.run_id) == "done" and checkpoint_on_disk(store.run(c.run_id)) is None]
    if gone:
        raise InputError(f"demo: {out / 'experiments.sqlite'} records {len(gone)} finished pruning run(s) whose "
                         f"checkpoints are not on this machine ({gone[0]}); remove that database to run the "
                         f"demo afresh there")
    prov = provenance()
    sweep = run_sweep(grid, store, out / "checkpoints" / "sweep", provenance=prov, progress=progress)
    failed = [c.run_id for c in grid.prune_cells() if store.status(c.run_id) != "done"]
    if failed:
        raise ValueError(f"demo: sweep cells failed: {failed}; see 'artemis results status --db "
                         f"{out / 'experiments.sqlite'}'")
    seed = cfg.seeds[0]
    data = load_dataset(cfg.dataset, cfg.input_size, cfg.data_dir, subset=cfg.subset, seed=seed,
                        test_images=cfg.test_images)
    shape = (data.in_channels, cfg.input_size, cfg.input_size)
    params = params_for_input(cfg.input_size, cfg.input_size)
    images = data.test.x[: cfg.images].astype(np.float64)
    cells = [c for c in grid.prune_cells() if c.train.seed == seed]
    rows = []
    # only encrypted server times are worth a pause; the demo's own sweep has finished by now
    with paused() if pause and cfg.mode == "encrypted" else nullcontext(None) as idle:
        for i, c in enumerate(cells, start=1):
            run = store.run(c.run_id)
            say(f"encrypted inference {i}/{len(cells)}: {c.method}, {cfg.images} image(s)")
            rows.append(_measure(cfg, run, data, shape, params, images, seed))
            store.set_fields(c.run_id, {"encrypted": {**rows[-1], "images": cfg.images, "mode": cfg.mode,
                                                      "workers": WORKERS, **idle_record(idle)}})
            # the benchmarks pick these up (their --pruned default: runs/demo/checkpoints, else results/demo/...)
            meta = pruned_meta(run, store.steps(c.run_id), store.run(run["parent"]), data)
            export_pruned(run, {**meta, "database": in_repository(out / "experiments.sqlite")}, out / "checkpoints")
    say("report")
    summary = store.export_rows("pruning_summary")
    atomic_write(out / "pruning_summary.csv", csv_bytes(summary, list(summary[0])))
    first = store.run(cells[0].run_id)
    result = {"config": dict(cfg.__dict__), "dataset": data.name, "data_note": data.note,
              "data_source": data.source, "seeds": list(cfg.seeds), "workers": WORKERS,
              "sizes": {"train": first["n_train"], "val": first["n_val"], "test": first["n_test"]},
              "database": "experiments.sqlite", "sweep": {k: v for k, v in sweep.items() if k != "finished"},
              "dense_val_accuracy": store.run(next(c for c in cells if c.method == "dense").run_id)["val_accuracy"],
              "rows": rows, **idle_record(idle), "provenance": prov}
    needed = {t.run_id for c in grid.prune_cells() for t in (c.train, c.reference, c.train.parent) if t}
    result["trained"] = [{"run_id": r["run_id"], "lambda_d": r["lambda_d"], "seed": r["seed"],
                          "epochs_run": len(r["history"] or []), "val_accuracy": r["val_accuracy"]}
                         for r in store.runs(kind="train", status="done") if r["run_id"] in needed]
    template = grid.prune or cells[0]
    result["pruning"] = {"recovery_epochs": template.recovery_epochs, "finetune_epochs": template.finetune_epochs,
                         "steps": len(template.fractions or _default_fractions())}
    experiments = store.export_rows()
    result["chosen"] = chosen_steps(experiments)
    atomic_write(out / "demo.json", json.dumps(result, indent=2).encode())
    atomic_write(out / "demo.md", render_demo(result).encode())
    write_demo_report(result, experiments, out)
    return result


def _measure(cfg: DemoConfig, run: dict, data, shape, params, images, seed: int) -> dict:
    """One chosen model, lowered and run on `images` under the schedules it was pruned for."""
    m = build_model(cfg.model, data.in_channels, data.num_classes)
    m.load_state_dict(checkpoint_from_bytes(Path(run["checkpoint"]).read_bytes(), run["checkpoint"])[0])
    m.eval()
    schedules = (run["config"] or {}).get("schedules") or run["schedule"]
    r = measure_checkpoint(m, shape, params, images, data.test.y[: cfg.images], mode=cfg.mode, seed=seed,
                           schedule=schedules, workers=WORKERS)
    return {"method": run["method"], "seed": run["seed"], "val_accuracy": run["val_accuracy"],
            "test_accuracy": run["test_accuracy"], "predicted_rotations": r["predicted_rotations"],
            "rotations": r["rotations"], "recomputed_rotations": 0, "pmuls": r["pmuls"], "server_s": r["server_s"],
            "floor_s": r["floor_s"], "bytes_client_to_server": r["bytes_client_to_server"],
            "bytes_server_to_client": r["bytes_server_to_client"], "galois_keys": r["galois_keys"],
            "galois_key_bytes": r["galois_key_bytes"], "top1_agreement": r["top1_agreement"],
            "max_abs_error": r["max_abs_error"], "images": r["images"]}


def chosen_steps(experiments: list[dict]) -> dict[str, dict[str, dict]]:
    """Per method and seed, the chosen pruning step's figures (from the demo's database).

    >>> chosen_steps([{"method": "dense", "seed": 0, "step": 0, "chosen": 1, "rotations": 826,
    ...                "val_accuracy": 87.5, "test_accuracy": 88.0, "fraction": 0.0}])
    {'dense': {'0': {'step': 0, 'fraction': 0.0, 'rotations': 826, 'val_accuracy': 87.5, 'test_accuracy': 88.0}}}
    """
    out: dict[str, dict[str, dict]] = {}  # seeds as strings: the same after a round trip through demo.json
    for r in experiments:
        if int(r["chosen"] or 0):
            out.setdefault(r["method"], {})[str(r["seed"])] = {
                "step": int(r["step"]), "fraction": r["fraction"], "rotations": int(r["rotations"]),
                "val_accuracy": float(r["val_accuracy"]),
                "test_accuracy": None if r["test_accuracy"] is None else float(r["test_accuracy"])}
    return out
