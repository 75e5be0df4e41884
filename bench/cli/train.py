"""`artemis train`: train a model with the HE-aware group-Lasso penalties."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import MAX_INPUT_SIZE, add_group_schedule_option, at_most, seed, bar, fixed_schedules, non_negative, positive, positive_float


def add_parser(sub) -> None:
    from pruning.data import DATASETS

    p = sub.add_parser("train", help="train a model with the HE-aware group-Lasso penalties")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--data-dir", help="folder with the data set's standard files")
    p.add_argument("--input-size", type=at_most(MAX_INPUT_SIZE), default=16)
    p.add_argument("--epochs", type=positive, default=5)
    p.add_argument("--lr", type=positive_float, default=0.05)
    p.add_argument("--batch-size", type=positive, default=128)
    p.add_argument("--lambda-p", type=non_negative, default=0.0, help="positional group-Lasso weight")
    p.add_argument("--lambda-d", type=non_negative, default=0.0, help="diagonal group-Lasso weight")
    p.add_argument("--lasso", choices=("proximal", "subgradient"), default="proximal",
                   help="proximal: group soft-thresholding after each step, groups reach exact zero (default); "
                        "subgradient: the penalty added to the loss")
    p.add_argument("--subset", type=positive, help="use only K training images (and K/5 test images)")
    p.add_argument("--poly-modulus-degree", type=int, default=None, help="N whose packing defines the groups")
    p.add_argument("--seed", type=seed, default=0)
    add_group_schedule_option(p, "output-rotation")
    p.add_argument("--out", required=True, help="output folder (model.pt, train.json)")
    p.set_defaults(func=run, render=None)


def run(args: argparse.Namespace) -> dict:
    import torch

    from heconv.params import params_for_input
    from models import build_model
    from pruning.data import load_dataset
    from pruning.groups import model_groups
    from pruning.train import TrainConfig, evaluate, train

    from bench.experiments.diverged import check_converged
    from heconv.errors import InputError

    from ..provenance import provenance
    from ..results import save_checkpoint, write_json

    torch.manual_seed(args.seed)
    data = load_dataset(args.dataset, args.input_size, args.data_dir, subset=args.subset, seed=args.seed)
    available = len(data.train.y) + len(data.val.y)
    if args.subset and args.subset > available:  # the meta would record images never used
        raise InputError(f"--subset {args.subset}: the {data.name} training split holds {available} images")
    model = build_model(args.model, data.in_channels, data.num_classes)
    shape = (data.in_channels, args.input_size, args.input_size)
    params = params_for_input(args.input_size, args.input_size, args.poly_modulus_degree)
    schedules = fixed_schedules(model, shape, params, args.schedule)  # the groups the Lasso acts on follow it
    groups = model_groups(model, shape, params, schedules)
    cfg = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, lambda_p=args.lambda_p,
                      lambda_d=args.lambda_d, seed=args.seed, lasso=args.lasso)
    with bar(0, f"train {args.model}") as b:
        def progress(done, total, info):
            b.total = total
            b.n = done
            b.set_postfix(epoch=info["epoch"], loss=f"{info['loss']:.3f}")
            b.refresh()

        history = train(model, data, cfg, groups, progress)
    check_converged(model, history, f"train {args.model} (--lr {args.lr:g}, --lambda-d {args.lambda_d:g}, "
                                    f"--lambda-p {args.lambda_p:g})")
    tx, ty = data.tensors("test")
    meta = {"model": args.model, "dataset": data.name, "input_size": args.input_size, "in_channels": data.in_channels,
            "num_classes": data.num_classes, "subset": args.subset or 0, "seed": args.seed,
            "lambda_p": args.lambda_p, "lambda_d": args.lambda_d, "epochs": args.epochs, "lasso": args.lasso,
            "poly_modulus_degree": params.poly_modulus_degree,
            "data_note": data.note, "data_source": data.source,
            "val_accuracy": history[-1]["val_accuracy"], "test_accuracy": evaluate(model, tx, ty),
            "schedule": args.schedule, "schedules": schedules}
    out = Path(args.out)
    save_checkpoint(model, out / "model.pt", meta)
    result = {**meta, "history": history, "checkpoint": str(out / "model.pt"), "provenance": provenance()}
    write_json(out / "train.json", result)
    return result
