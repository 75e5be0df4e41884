"""`artemis train` and `artemis prune` (registered by heconv.cli)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

RESULTS_CSV = Path(__file__).resolve().parent.parent / "results" / "pruning_summary.csv"


def _fractions(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions, got {text!r}") from None
    if not vals or any(not 0 < v <= 1 for v in vals) or list(vals) != sorted(vals):
        raise argparse.ArgumentTypeError(f"fractions must increase within (0, 1], got {text!r}")
    return vals


def add_parsers(sub, positive, fraction) -> None:
    from .data import DATASETS
    from .prune import METHODS

    p = sub.add_parser("train", help="train a model with the HE-aware group-Lasso penalties")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--data-dir", help="folder with the data set's standard files")
    p.add_argument("--input-size", type=positive, default=16)
    p.add_argument("--epochs", type=positive, default=5)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch-size", type=positive, default=128)
    p.add_argument("--lambda-p", type=float, default=0.0, help="positional group-Lasso weight")
    p.add_argument("--lambda-d", type=float, default=0.0, help="diagonal group-Lasso weight")
    p.add_argument("--subset", type=positive, help="use only K training images (and K/5 test images)")
    p.add_argument("--poly-modulus-degree", type=int, default=None, help="N whose packing defines the groups")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder (model.pt, train.json)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("prune", help="iteratively prune a trained checkpoint, fine-tuning with masks held")
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--checkpoint", required=True, help="model.pt written by 'artemis train'")
    p.add_argument("--max-drop", type=float, default=1.0, help="allowed validation accuracy drop, in points")
    p.add_argument("--fractions", type=_fractions, default=None, help="pruning schedule, e.g. 0.3,0.5,0.7,0.9")
    p.add_argument("--reference", help="the dense model's checkpoint: the drop is measured from its validation "
                                       "accuracy (default: from this checkpoint's own)")
    p.add_argument("--finetune-epochs", type=positive, default=1)
    p.add_argument("--finetune-lr", type=float, default=0.01)
    p.add_argument("--data-dir")
    p.add_argument("--results", default=str(RESULTS_CSV), help="CSV the steps are written into")
    p.add_argument("--seed", type=int, default=None, help="default: the training seed")
    p.add_argument("--out", required=True, help="output folder (pruned-<method>.pt, summary-<method>.json)")
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("demo", help="the whole pipeline with small settings: train, prune, encrypted inference")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--data-dir")
    p.add_argument("--input-size", type=positive, default=16)
    p.add_argument("--subset", type=positive, default=6000)
    p.add_argument("--epochs", type=positive, default=6)
    p.add_argument("--images", type=positive, default=2)
    p.add_argument("--mode", choices=("encrypted", "plain"), default="encrypted")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS_CSV.parent / "demo"))
    p.add_argument("--bench-json", action="append", metavar="JSON",
                   help="benchmark JSON the demo's report fits the cost model to (repeatable; default: the newest "
                        "full run in results/benchmarks)")
    p.add_argument("--no-report", action="store_true", help="skip the report (demo.md is still written)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> dict:
    from .demo import DemoConfig, render, run_demo

    cfg = DemoConfig(model=args.model, dataset=args.dataset, data_dir=args.data_dir, input_size=args.input_size,
                     subset=args.subset, epochs=args.epochs, images=args.images, mode=args.mode, seed=args.seed)
    out = Path(args.out)
    with _bar(8, "demo") as bar:
        def stage(name):
            bar.set_postfix_str(name)
            bar.update()

        result = run_demo(cfg, out, stage)
        report = None
        if not args.no_report:
            stage("report")
            report = _demo_report(args.bench_json, out)
    print(render(result))
    if report:
        print(f"report: {report}")
    return {"demo": str(out / "demo.md"), "report": report, "rows": result["rows"]}


def _demo_report(bench_json: list[str] | None, out: Path) -> str | None:
    """The cost-model report beside the demo: benchmark fits and the demo's own Pareto points."""
    import logging

    from heconv.report import default_benchmark_files, write_report

    files = bench_json or default_benchmark_files(RESULTS_CSV.parent / "benchmarks")
    if not files:
        logging.getLogger(__name__).warning(
            "no benchmark JSON in results/benchmarks: the report needs one ('pytest bench --benchmark-only')")
        return None
    write_report(files, out, [out / "pruning_summary.csv"])
    return str(out / "report.md")


def _bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=None, dynamic_ncols=True)


def cmd_train(args: argparse.Namespace) -> dict:
    import torch

    from heconv.files import atomic_write
    from heconv.infer import network_params
    from heconv.provenance import provenance
    from models import build_model

    from .data import load_dataset
    from .export import save_checkpoint
    from .groups import model_groups
    from .train import TrainConfig, evaluate, train

    torch.manual_seed(args.seed)
    data = load_dataset(args.dataset, args.input_size, args.data_dir, subset=args.subset, seed=args.seed)
    model = build_model(args.model, data.in_channels, data.num_classes)
    shape = (data.in_channels, args.input_size, args.input_size)
    params = network_params(shape, args.poly_modulus_degree)
    groups = model_groups(model, shape, params)
    cfg = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, lambda_p=args.lambda_p,
                      lambda_d=args.lambda_d, seed=args.seed)
    with _bar(0, f"train {args.model}") as bar:
        def progress(done, total, info):
            bar.total = total
            bar.n = done
            bar.set_postfix(epoch=info["epoch"], loss=f"{info['loss']:.3f}", lasso=f"{info['penalty']:.3f}")
            bar.refresh()

        history = train(model, data, cfg, groups, progress)
    tx, ty = data.tensors("test")
    meta = {"model": args.model, "dataset": data.name, "input_size": args.input_size, "in_channels": data.in_channels,
            "num_classes": data.num_classes, "subset": args.subset or 0, "seed": args.seed,
            "lambda_p": args.lambda_p, "lambda_d": args.lambda_d, "epochs": args.epochs,
            "poly_modulus_degree": params.poly_modulus_degree, "data_note": data.note,
            "val_accuracy": history[-1]["val_accuracy"], "test_accuracy": evaluate(model, tx, ty)}
    out = Path(args.out)
    save_checkpoint(model, out / "model.pt", meta)
    result = {**meta, "history": history, "checkpoint": str(out / "model.pt"), "provenance": provenance()}
    import json

    atomic_write(out / "train.json", json.dumps(result, indent=2).encode())
    return result


def cmd_prune(args: argparse.Namespace) -> dict:
    import torch

    from heconv.infer import network_params
    from heconv.provenance import git_revision

    from .data import load_dataset
    from .export import (
        load_checkpoint_model,
        save_checkpoint,
        upsert_csv,
        write_summary,
    )
    from .groups import model_groups
    from .train import DEFAULT_FRACTIONS, TrainConfig, evaluate, iterative_prune

    model, meta = load_checkpoint_model(args.checkpoint)
    seed = meta["seed"] if args.seed is None else args.seed
    torch.manual_seed(seed)
    data = load_dataset(meta["dataset"], meta["input_size"], args.data_dir, subset=meta["subset"] or None,
                        seed=meta["seed"])
    shape = (meta["in_channels"], meta["input_size"], meta["input_size"])
    params = network_params(shape, meta["poly_modulus_degree"])
    groups = model_groups(model, shape, params)
    fractions = args.fractions or DEFAULT_FRACTIONS
    reference = None
    if args.reference:
        ref_model, ref_meta = load_checkpoint_model(args.reference)
        keys = ("model", "dataset", "input_size", "subset", "seed")
        if any(ref_meta[k] != meta[k] for k in keys):
            raise ValueError(f"reference {args.reference} was trained on {[ref_meta[k] for k in keys]}, "
                             f"the checkpoint on {[meta[k] for k in keys]}: their validation sets differ")
        reference = evaluate(ref_model, *data.tensors("val"))
    with _bar(len(fractions), f"prune {args.method}") as bar:
        def progress(done, total, info):
            bar.total = total
            bar.n = done
            bar.set_postfix(fraction=info["fraction"], acc=f"{info['accuracy']:.2f}", rot=info["rotations"])
            bar.refresh()

        result = iterative_prune(model, data, groups, args.method, params, args.max_drop, fractions,
                                 TrainConfig(epochs=args.finetune_epochs, lr=args.finetune_lr, seed=seed), progress,
                                 reference)
    tx, ty = data.tensors("test")
    chosen = result.chosen
    out = Path(args.out)
    pmeta = {**meta, "method": args.method, "max_drop": args.max_drop, "fraction": chosen.fraction,
             "val_accuracy": chosen.accuracy, "test_accuracy": evaluate(model, tx, ty), "prune_seed": seed,
             "reference_val_accuracy": result.dense_accuracy}
    save_checkpoint(model, out / f"pruned-{args.method}.pt", pmeta)
    summary = write_summary(out / f"summary-{args.method}.json", model, shape, params,
                            {**pmeta, "steps": [s.to_dict() for s in result.steps],
                             "dense_val_accuracy": result.dense_accuracy})
    rev = git_revision()
    rows = [{"model": meta["model"], "dataset": meta["dataset"], "input_size": meta["input_size"], "method": args.method,
             **s.to_dict(), "seed": seed, "git_revision": rev} for s in result.steps]
    upsert_csv(args.results, rows)
    return {k: v for k, v in summary.items() if k != "layers"} | {"layers": len(summary["layers"])}
