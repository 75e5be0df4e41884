"""`artemis prune`: iteratively prune a trained checkpoint, fine-tuning with masks held."""

from __future__ import annotations

import argparse
from pathlib import Path

from heconv.errors import InputError

from .common import RUNS, add_group_schedule_option, bar, fixed_schedules, seed
from .options import add_cell_options, cell_kwargs


def fractions(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions, got {text!r}") from None
    if not vals or any(not 0 < v <= 1 for v in vals) or list(vals) != sorted(vals):
        raise argparse.ArgumentTypeError(f"fractions must increase within (0, 1], got {text!r}")
    return vals


def add_parser(sub) -> None:
    from pruning.iterative import MODES
    from pruning.methods import METHODS

    p = sub.add_parser("prune", help="iteratively prune a trained checkpoint, fine-tuning with masks held")
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--checkpoint", required=True, help="model.pt written by 'artemis train'")
    p.add_argument("--fractions", type=fractions, default=(),
                   help="pruning schedule, e.g. 0.3,0.5,0.7,0.9: per conv (--mode fraction), or the fractions of all "
                        "units below each threshold (--mode threshold)")
    p.add_argument("--reference", help="the dense model's checkpoint: the drop is measured from its validation "
                                       "accuracy (default: from this checkpoint's own)")
    add_cell_options(p, "prune", ("max_drop", "recovery_epochs", "finetune_epochs", "finetune_lr", "patience"))
    p.add_argument("--data-dir")
    p.add_argument("--mode", choices=MODES, default="threshold",
                   help="threshold: raise one global threshold on the units' scores (default); fraction: prune "
                        "--fractions of every conv's units")
    p.add_argument("--db", help="experiments database the run is recorded in (default: experiments.sqlite "
                                "beside --results)")
    p.add_argument("--results", default=str(RUNS / "pruning_summary.csv"),
                   help="CSV rewritten as the database's pruning_summary view")
    p.add_argument("--seed", type=seed, default=None, help="default: the training seed")
    add_group_schedule_option(p, None)
    p.add_argument("--out", required=True, help="output folder (pruned-<method>.pt, summary-<method>.json)")
    p.set_defaults(func=run, render=None)


def run(args: argparse.Namespace) -> dict:
    import torch

    from bench.experiments.cells import PruneCell, TrainCell
    from bench.experiments.store import ExperimentStore
    from heconv.params import params_for_input
    from models.checkpoint import load_checkpoint_model
    from pruning.data import load_dataset
    from pruning.groups import model_groups
    from pruning.iterative import DEFAULT_FRACTIONS, iterative_prune
    from pruning.train import TrainConfig, evaluate

    from ..provenance import provenance
    from ..results import atomic_write, csv_bytes, save_checkpoint, write_summary

    db = Path(args.db or Path(args.results).with_name("experiments.sqlite"))
    ExperimentStore.check(db)  # before the work; made (when missing) once there is a run to record
    model, meta = load_checkpoint_model(args.checkpoint)
    absent = [k for k in ("dataset", "input_size", "subset", "seed", "poly_modulus_degree") if k not in meta]
    if absent or not meta.get("input_size"):
        raise InputError(f"checkpoint {args.checkpoint}: meta lacks {absent or ['input_size > 0']} "
                         "(prune a model.pt written by 'artemis train')")
    from pruning.methods import get_method

    wants, trained_with = get_method(args.method).training, meta.get("lasso", "proximal")
    if wants and (meta.get("lambda_p") or meta.get("lambda_d")) and trained_with != wants:
        raise InputError(f"checkpoint {args.checkpoint}: trained with --lasso {trained_with}; {args.method} prunes a "
                         f"model trained with --lasso {wants}")
    seed = meta["seed"] if args.seed is None else args.seed
    torch.manual_seed(seed)
    data = load_dataset(meta["dataset"], meta["input_size"], args.data_dir, subset=meta["subset"] or None,
                        seed=meta["seed"])
    shape = (meta["in_channels"], meta["input_size"], meta["input_size"])
    params = params_for_input(meta["input_size"], meta["input_size"], meta["poly_modulus_degree"])
    # The checkpoint's own schedules (fixed at training) unless --schedule asks for others.
    schedules = (meta["schedules"] if args.schedule is None and meta.get("schedules")
                 else fixed_schedules(model, shape, params, args.schedule or "output-rotation"))
    groups = model_groups(model, shape, params, schedules, get_method(args.method).algorithm)
    schedule = args.fractions or DEFAULT_FRACTIONS
    reference = None
    if args.reference:
        ref_model, ref_meta = load_checkpoint_model(args.reference)
        keys = ("model", "dataset", "input_size", "subset", "seed")
        if any(ref_meta.get(k) != meta[k] for k in keys):
            raise InputError(f"reference {args.reference} was trained on {[ref_meta.get(k) for k in keys]}, "
                             f"the checkpoint on {[meta[k] for k in keys]}: their validation sets differ")
        reference = evaluate(ref_model, *data.tensors("val"))
    with bar(len(schedule), f"prune {args.method}") as b:
        def progress(done, total, info):
            b.total = total
            b.n = done
            if "accuracy" in info:  # a finished step (within a step: its fine-tune's batches)
                b.set_postfix(fraction=info["fraction"], acc=f"{info['accuracy']:.2f}", rot=info["rotations"])
            b.refresh()

        result = iterative_prune(model, data, groups, args.method, params, args.max_drop, schedule,
                                 TrainConfig(epochs=args.finetune_epochs, lr=args.finetune_lr, seed=seed), progress,
                                 reference, schedules, args.mode, args.patience,
                                 TrainConfig(epochs=args.recovery_epochs, lr=args.finetune_lr, seed=seed))
    tx, ty = data.tensors("test")
    chosen = result.chosen
    out = Path(args.out)
    pmeta = {**meta, "method": args.method, "max_drop": args.max_drop, "fraction": chosen.fraction,
             "val_accuracy": chosen.accuracy, "test_accuracy": chosen.test_accuracy, "prune_seed": seed,
             "reference_val_accuracy": result.dense_accuracy, "schedules": schedules, "cut_off": result.cut_off}
    save_checkpoint(model, out / f"pruned-{args.method}.pt", pmeta)
    summary = write_summary(out / f"summary-{args.method}.json", model, shape, params, schedules,
                            {**pmeta, "steps": [s.to_dict() for s in result.steps],
                             "dense_val_accuracy": result.dense_accuracy})
    trained = TrainCell(meta["model"], meta["dataset"], meta["input_size"], meta["subset"] or None,
                        meta["poly_modulus_degree"], str(meta.get("schedule") or "output-rotation"),
                        meta.get("lasso", "proximal"), meta.get("lambda_p", 0.0), meta.get("lambda_d", 0.0),
                        meta["seed"], meta.get("epochs", 0))
    cell = PruneCell(trained, trained, args.method, mode=args.mode, fractions=tuple(schedule),
                     **cell_kwargs(args, "prune"))
    store = ExperimentStore(db)
    store.start_run(cell.run_id, "prune", {**cell.fields(), "provenance": provenance()}, parent=trained.run_id)
    steps = [{**s.to_dict(), "val_accuracy": s.accuracy, "chosen": s.step == chosen.step} for s in result.steps]
    # the config records the cut-off as a sweep's cell does, so the report flags it (docs/pruning.md)
    config = {**cell.fields()["config"], "schedules": schedules, "cut_off": result.cut_off,
              "within_budget": result.within_budget}
    store.finish_run(cell.run_id, {"config": config, "val_accuracy": chosen.accuracy,
                                   "test_accuracy": pmeta["test_accuracy"],
                                   "reference_val_accuracy": result.dense_accuracy, "data_source": data.source,
                                   "n_train": len(data.train.y), "n_val": len(data.val.y), "n_test": len(ty),
                                   "checkpoint": str(out / f"pruned-{args.method}.pt")}, steps)
    rows = store.export_rows("pruning_summary")
    atomic_write(Path(args.results), csv_bytes(rows, list(rows[0])))
    return {k: v for k, v in summary.items() if k != "layers"} | {"layers": len(summary["layers"])}
