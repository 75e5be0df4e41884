"""`artemis demo`: the whole pipeline with small settings (see bench.demo).

Writes into runs/demo/ (git-ignored) by default; `--publish` writes the committed results/demo/.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .common import RESULTS, RUNS, add_publish_options, output_folder, positive

log = logging.getLogger("artemis")


def add_parser(sub) -> None:
    from pruning.data import DATASETS

    p = sub.add_parser("demo", help="the whole pipeline with small settings: train, prune, encrypted inference "
                                    "(runs/demo/, or results/demo/ with --publish)")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--data-dir")
    p.add_argument("--input-size", type=positive, default=16)
    p.add_argument("--subset", type=positive, default=6000,
                   help="images drawn for training (default 6000); 10%% of them validate, a fifth as many test")
    p.add_argument("--epochs", type=positive, default=6)
    p.add_argument("--images", type=positive, default=2, help="test images run encrypted (default 2)")
    p.add_argument("--mode", choices=("encrypted", "plain"), default="encrypted")
    p.add_argument("--seeds", type=_seeds, default=(0,),
                   help="comma-separated training seeds (default 0); the first seed's models run encrypted")
    add_publish_options(p, RUNS / "demo", RESULTS / "demo",
                        "demo.md, report.md, the figures, the database and the checkpoints")
    p.set_defaults(func=run, render=lambda result: result["_text"])


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds repeat: {text!r}")
    return seeds


def run(args: argparse.Namespace) -> dict:
    from ..demo import DemoConfig, run_demo
    from ..demo_report import render_demo
    from ..results import outputs_together
    from .progress import SweepView

    cfg = DemoConfig(model=args.model, dataset=args.dataset, data_dir=args.data_dir, input_size=args.input_size,
                     subset=args.subset, epochs=args.epochs, images=args.images, mode=args.mode, seeds=args.seeds)
    out = output_folder(args, RUNS / "demo", RESULTS / "demo")
    with SweepView("demo", verbose=args.verbose) as view:
        view.say(f"demo: writing into {out}")
        with outputs_together():  # demo.md, report.md and the figures appear together
            result = run_demo(cfg, out, view.say, view.progress)
    text = render_demo(result) + f"\nwritten: {out / 'demo.md'}, {out / 'report.md'}"
    return {"demo": str(out / "demo.md"), "report": str(out / "report.md"), "rows": result["rows"], "_text": text}
