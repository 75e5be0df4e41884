"""`artemis sweep`: train -> prune -> count over a grid, on Ray, resumable, into the experiments database."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import DEFAULT_DB, RUNS, positive
from .options import add_cell_options, cell_kwargs, comma_list

# The working database and weights (git-ignored); `artemis results export --publish` copies a
# database into the committed results/.
DEFAULT_CHECKPOINTS = RUNS / "checkpoints"  # the database records path and sha256


def add_parser(sub) -> None:
    from pruning.data import DATASETS
    from pruning.iterative import MODES
    from pruning.methods import METHODS

    p = sub.add_parser("sweep", help="train, prune and count a grid of models x methods x lambdas x seeds on Ray "
                                     "(resumable: cells done in the database are skipped)")
    p.add_argument("--models", type=comma_list(str, "model names"), default=("resnet20",))
    p.add_argument("--methods", type=comma_list(str, "methods"), default=METHODS,
                   help=f"comma-separated, from: {', '.join(METHODS)} (default: all)")
    p.add_argument("--seeds", type=comma_list(int, "seeds", lambda v: v >= 0, ">= 0"), default=(0, 1, 2))
    lambdas = comma_list(float, "lambdas", lambda v: 0 <= v < float("inf"), "finite and >= 0")
    p.add_argument("--lambdas-d", type=lambdas, default=(0.3, 0.5, 0.7, 1.0, 1.5, 2.0),
                   help="diagonal group-Lasso weights (chosen per model on validation)")
    p.add_argument("--lambdas-p", type=lambdas, default=(0.3, 1.0), help="positional group-Lasso weights")
    p.add_argument("--input-sizes", type=comma_list(int, "sizes", lambda v: v >= 1, ">= 1"), default=(16,))
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--data-dir")
    add_cell_options(p, "train", ("subset", "test_images", "epochs", "converge", "lr", "batch_size", "warm_start",
                                  "lasso_epochs", "lasso_lr", "poly_modulus_degree"))
    p.add_argument("--schedule", default="output-rotation", metavar="{output-rotation,input-rotation,bsgs:B}",
                   help="fixed rotation schedule whose groups are pruned")
    p.add_argument("--mode", choices=MODES, default="threshold",
                   help="threshold: one global threshold on the units' scores; fraction: per conv")
    add_cell_options(p, "prune", ("max_drop", "recovery_epochs", "finetune_epochs", "finetune_lr", "patience"))
    p.add_argument("--db", default=str(DEFAULT_DB), help="experiments database (SQLite)")
    p.add_argument("--checkpoints", default=str(DEFAULT_CHECKPOINTS), help="folder for the trained/pruned weights")
    p.add_argument("--address", help="a running Ray cluster (default: a local Ray on this machine)")
    p.add_argument("--cpus-per-task", type=positive, default=1)
    p.add_argument("--num-cpus", type=positive, help="CPUs of the local Ray (default: all)")
    p.add_argument("--retrain-lost", action="store_true",
                   help="retrain a model recorded done whose checkpoint is lost (by default the sweep refuses: a "
                        "retraining is not the same model bit for bit on another machine); its row keeps the "
                        "earlier record under config.replaced")
    p.add_argument("--dry-run", action="store_true", help="list the cells and whether each is done; run nothing")
    p.set_defaults(func=run, render=render)


def grid_from_args(args: argparse.Namespace):
    from bench.experiments.cells import PruneCell, TrainCell
    from bench.experiments.grid import checked_grid
    from bench.experiments.sweep import SweepGrid

    base = TrainCell(args.models[0], dataset=args.dataset, schedule=args.schedule, data_dir=args.data_dir,
                     **cell_kwargs(args, "train"))
    prune = PruneCell(base, base, "dense", mode=args.mode, **cell_kwargs(args, "prune"))
    return checked_grid(SweepGrid(models=args.models, methods=args.methods, seeds=args.seeds,
                                  lambdas_d=args.lambdas_d, lambdas_p=args.lambdas_p, input_sizes=args.input_sizes,
                                  base=base, prune=prune))


def run(args: argparse.Namespace) -> dict:
    from bench.experiments.cluster import check_address
    from bench.experiments.db import remove_database
    from bench.experiments.store import ExperimentStore

    grid = grid_from_args(args)
    cells = grid.prune_cells()
    if args.dry_run:  # reads the database (if there is one), writes nothing
        store = ExperimentStore(args.db, readonly=True) if Path(args.db).exists() else None
        return {"db": args.db, "cells": [{"cell": c.run_id, "status": (store and store.status(c.run_id)) or "todo"}
                                         for c in cells]}
    check_address(args.address)  # a dead cluster fails here, before the database is made
    made = not Path(args.db).exists()
    store = ExperimentStore(args.db)
    try:
        return _sweep(args, grid, store)
    except BaseException:
        if made and not _has_runs(store):  # a database this command made and never used is not left behind
            remove_database(Path(args.db))
        raise


def _has_runs(store) -> bool:
    try:
        return bool(store.runs())
    except ValueError:  # it failed (e.g. a full disk) before holding anything
        return False


def _sweep(args: argparse.Namespace, grid, store) -> dict:
    from bench.experiments.sweep import run_sweep

    from ..provenance import provenance
    from .progress import SweepView

    with SweepView("sweep", verbose=args.verbose) as view:
        summary = run_sweep(grid, store, Path(args.checkpoints), args.address, args.cpus_per_task, args.num_cpus,
                            provenance(), view.progress, retrain_lost=args.retrain_lost)
    result = {"db": args.db, **summary}
    if summary["failed"]:  # the command fails (exit 1) and names the cells; `artemis results status` has their errors
        failed = summary["failed_cells"]
        result["_error"] = (f"{len(failed)} of {summary['cells']} cells failed ({', '.join(failed[:3])}"
                            f"{' ...' if len(failed) > 3 else ''}); see 'artemis results status --db {args.db}'")
    return result


def render(result: dict) -> str:
    if "cells" in result and isinstance(result["cells"], list):
        return "\n".join(f"{c['status']:8s} {c['cell']}" for c in result["cells"])
    elsewhere = result.get("elsewhere") or []
    return (f"sweep: {result['done']} cells done, {result['failed']} failed, {result['skipped']} already done "
            f"(of {result['cells']}); {result['trained']} models trained; database {result['db']}"
            + (f"\n{len(elsewhere)} cells left to the sweep that holds them (pid {elsewhere[0]['pid']} on "
               f"{elsewhere[0]['host']}); run again once it ends for any it did not finish" if elsewhere else ""))
