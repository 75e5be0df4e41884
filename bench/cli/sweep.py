"""`artemis sweep`: train -> prune -> count over a grid, on Ray, resumable, into the experiments database."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import RESULTS, bar, non_negative, positive, positive_float

DEFAULT_DB = RESULTS / "experiments.sqlite"
DEFAULT_CHECKPOINTS = RESULTS / "checkpoints"  # git-ignored: the database records path and sha256


def _list(cast, what: str):
    def parse(text: str):
        try:
            vals = tuple(cast(t) for t in text.split(",") if t.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") from None
        if not vals:
            raise argparse.ArgumentTypeError(f"expected at least one of {what}, got {text!r}")
        return vals
    return parse


def _non_negative_list(text: str) -> tuple[float, ...]:
    vals = _list(float, "numbers")(text)
    if any(not v >= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"lambdas must be >= 0, got {text!r}")
    return vals


def add_parser(sub) -> None:
    from pruning.data import DATASETS
    from pruning.iterative import MODES
    from pruning.methods import METHODS

    p = sub.add_parser("sweep", help="train, prune and count a grid of models x methods x lambdas x seeds on Ray "
                                     "(resumable: cells done in the database are skipped)")
    p.add_argument("--models", type=_list(str, "model names"), default=("resnet20",))
    p.add_argument("--methods", type=_list(str, "methods"), default=METHODS,
                   help=f"comma-separated, from: {', '.join(METHODS)} (default: all)")
    p.add_argument("--seeds", type=_list(int, "integers"), default=(0, 1, 2))
    p.add_argument("--lambdas-d", type=_non_negative_list, default=(0.05,), help="diagonal group-Lasso weights")
    p.add_argument("--lambdas-p", type=_non_negative_list, default=(0.05,), help="positional group-Lasso weights")
    p.add_argument("--input-sizes", type=_list(int, "sizes"), default=(16,))
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--data-dir")
    p.add_argument("--subset", type=positive, default=20000, help="training images (before the validation split)")
    p.add_argument("--full", action="store_true", help="every training image (overrides --subset)")
    p.add_argument("--epochs", type=positive, default=12)
    p.add_argument("--lr", type=positive_float, default=0.05)
    p.add_argument("--batch-size", type=positive, default=128)
    p.add_argument("--poly-modulus-degree", type=int, default=8192)
    p.add_argument("--schedule", default="output-rotation", help="fixed rotation schedule whose groups are pruned")
    p.add_argument("--max-drop", type=non_negative, default=1.0, help="allowed validation accuracy drop, in points")
    p.add_argument("--mode", choices=MODES, default="threshold",
                   help="threshold: one global threshold on the units' scores (default); fraction: per conv")
    p.add_argument("--patience", type=positive, default=2, help="rejected pruning steps in a row that stop a cell")
    p.add_argument("--finetune-epochs", type=positive, default=1)
    p.add_argument("--finetune-lr", type=positive_float, default=0.01)
    p.add_argument("--db", default=str(DEFAULT_DB), help="experiments database (SQLite)")
    p.add_argument("--checkpoints", default=str(DEFAULT_CHECKPOINTS), help="folder for the trained/pruned weights")
    p.add_argument("--address", help="a running Ray cluster (default: a local Ray on this machine)")
    p.add_argument("--cpus-per-task", type=positive, default=1)
    p.add_argument("--num-cpus", type=positive, help="CPUs of the local Ray (default: all)")
    p.add_argument("--dry-run", action="store_true", help="list the cells and whether each is done; run nothing")
    p.set_defaults(func=run, render=render)


def grid_from_args(args: argparse.Namespace):
    from bench.experiments.cells import PruneCell, TrainCell
    from bench.experiments.grid import checked_grid
    from bench.experiments.sweep import SweepGrid

    base = TrainCell(args.models[0], dataset=args.dataset, subset=None if args.full else args.subset,
                     poly_modulus_degree=args.poly_modulus_degree, schedule=args.schedule, epochs=args.epochs,
                     lr=args.lr, batch_size=args.batch_size, data_dir=args.data_dir)
    prune = PruneCell(base, base, "dense", max_drop=args.max_drop, mode=args.mode,
                      finetune_epochs=args.finetune_epochs, finetune_lr=args.finetune_lr, patience=args.patience)
    return checked_grid(SweepGrid(models=args.models, methods=args.methods, seeds=args.seeds,
                                  lambdas_d=args.lambdas_d, lambdas_p=args.lambdas_p, input_sizes=args.input_sizes,
                                  base=base, prune=prune))


def run(args: argparse.Namespace) -> dict:
    from bench.experiments.cluster import check_address
    from bench.experiments.db import remove_database
    from bench.experiments.store import ExperimentStore
    from bench.experiments.sweep import run_sweep

    from ..provenance import provenance

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
        return _sweep(args, grid, store, cells)
    except BaseException:
        if made and not _has_runs(store):  # a database this command made and never used is not left behind
            remove_database(Path(args.db))
        raise


def _has_runs(store) -> bool:
    try:
        return bool(store.runs())
    except ValueError:  # it failed (e.g. a full disk) before holding anything
        return False


def _sweep(args: argparse.Namespace, grid, store, cells) -> dict:
    from bench.experiments.sweep import run_sweep

    from ..provenance import provenance

    with bar(len(cells), "sweep") as b:
        def progress(done, total, info):
            b.n = done
            b.set_postfix_str(f"{info['status']}: {info['cell'].split('/')[1]}")
            b.refresh()

        summary = run_sweep(grid, store, Path(args.checkpoints), args.address, args.cpus_per_task, args.num_cpus,
                            provenance(), progress)
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
