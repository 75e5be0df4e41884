"""`artemis train`: train a model with the HE-aware group-Lasso penalties."""

from __future__ import annotations

import argparse
from pathlib import Path

from heconv.errors import InputError

from .common import MAX_INPUT_SIZE, add_group_schedule_option, at_most, bar, fixed_schedules, non_negative, seed
from .options import DEFAULT_MODEL, TRAIN_DEFAULTS, add_cell_options, cell_kwargs


def add_parser(sub) -> None:
    from pruning.data import DATASETS
    from pruning.train import LASSO_MODES

    p = sub.add_parser("train", help="train a model (to convergence), or from --init with the HE-aware group Lasso")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--data-dir", help="folder with the data set's standard files")
    p.add_argument("--input-size", type=at_most(MAX_INPUT_SIZE), default=TRAIN_DEFAULTS["input_size"])
    add_cell_options(p, "train", ("subset", "test_images", "epochs", "converge", "lr", "batch_size", "lasso_epochs",
                                  "lasso_lr", "poly_modulus_degree"))
    p.add_argument("--lambda-p", type=non_negative, default=0.0, help="positional group-Lasso weight")
    p.add_argument("--lambda-d", type=non_negative, default=0.0, help="diagonal group-Lasso weight")
    p.add_argument("--lasso", choices=LASSO_MODES, default="proximal",
                   help="proximal: group soft-thresholding after each step, groups reach exact zero; "
                        "proximal-held: the same, each conv's RMS weight held at its start; "
                        "subgradient: the penalty added to the loss")
    p.add_argument("--init", metavar="CHECKPOINT",
                   help="warm start: the plain model.pt to start the group-Lasso training from (--lasso-epochs at "
                        "--lasso-lr); without it a Lasso model trains from scratch on the plain schedule")
    p.add_argument("--seed", type=seed, default=0)
    add_group_schedule_option(p, "output-rotation")
    p.add_argument("--out", required=True, help="output folder (model.pt, train.json)")
    p.set_defaults(func=run, render=None)


def train_cell(args: argparse.Namespace):
    """The sweep's training cell these options describe (the one set of training defaults)."""
    from bench.experiments.cells import TrainCell

    cell = TrainCell(args.model, args.dataset, args.input_size, schedule=args.schedule, lasso=args.lasso,
                     lambda_p=args.lambda_p, lambda_d=args.lambda_d, seed=args.seed, warm_start=bool(args.init),
                     data_dir=args.data_dir, **cell_kwargs(args, "train"))
    if args.init and cell.parent is None:
        raise InputError("artemis train: --init is the warm start of a group-Lasso training; give --lambda-d or "
                         "--lambda-p too")
    return cell


def run(args: argparse.Namespace) -> dict:
    import torch

    from heconv.params import params_for_input
    from models import build_model
    from models.checkpoint import load_weights_into
    from pruning.data import load_dataset
    from pruning.groups import model_groups
    from pruning.train import evaluate, train

    from ..provenance import provenance
    from ..results import save_checkpoint, write_json

    cell = train_cell(args)
    torch.manual_seed(args.seed)
    data = load_dataset(args.dataset, args.input_size, args.data_dir, subset=cell.subset, seed=args.seed,
                        test_images=cell.test_images)
    model = build_model(args.model, data.in_channels, data.num_classes)
    if args.init:
        load_weights_into(model, args.init)
    shape = (data.in_channels, args.input_size, args.input_size)
    params = params_for_input(args.input_size, args.input_size, cell.poly_modulus_degree)
    schedules = fixed_schedules(model, shape, params, args.schedule)  # the groups the Lasso acts on follow it
    groups = model_groups(model, shape, params, schedules)
    cfg = cell.config()
    with bar(0, f"train {args.model}") as b:
        def progress(done, total, info):
            b.total = total
            b.n = done
            b.set_postfix(epoch=info["epoch"], loss=f"{info['loss']:.3f}")
            b.refresh()

        history = train(model, data, cfg, groups, progress)
    tx, ty = data.tensors("test")
    meta = {"model": args.model, "dataset": data.name, "input_size": args.input_size, "in_channels": data.in_channels,
            "num_classes": data.num_classes, "subset": len(data.train.y) + len(data.val.y), "seed": args.seed,
            "lambda_p": args.lambda_p, "lambda_d": args.lambda_d, "epochs": len(history), "lasso": args.lasso,
            "run_id": cell.run_id, "init": args.init,
            "poly_modulus_degree": params.poly_modulus_degree,
            "data_note": data.note, "data_source": data.source,
            "val_accuracy": evaluate(model, *data.tensors("val")), "test_accuracy": evaluate(model, tx, ty),
            "schedule": args.schedule, "schedules": schedules}
    out = Path(args.out)
    save_checkpoint(model, out / "model.pt", meta)
    result = {**meta, "history": history, "checkpoint": str(out / "model.pt"), "provenance": provenance()}
    write_json(out / "train.json", result)
    return result
