"""`artemis demo`: the whole pipeline with small settings (see bench.demo).

Writes into runs/demo/ (git-ignored) by default; `--publish` writes the committed results/demo/.
"""

from __future__ import annotations

import argparse
import logging

from .common import RESULTS, RUNS, add_publish_options, non_negative, output_folder, positive
from .options import DEFAULT_MODEL, add_cell_options

log = logging.getLogger("artemis")


def add_parser(sub) -> None:
    from pruning.data import DATASETS

    from ..demo import DEMO_OVERRIDES, DemoConfig

    p = sub.add_parser("demo", help="the whole pipeline with small settings: train, prune, encrypted inference "
                                    "(runs/demo/, or results/demo/ with --publish)")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--dataset", choices=DATASETS, default=DemoConfig.dataset)
    p.add_argument("--data-dir")
    p.add_argument("--input-size", type=positive, default=DemoConfig.input_size)
    # The sweep's defaults, but for the demo's overrides (bench.demo.DEMO_OVERRIDES, each with its reason).
    add_cell_options(p, "train", tuple(DEMO_OVERRIDES), DEMO_OVERRIDES)
    p.add_argument("--lambda-d", type=non_negative, default=DemoConfig.lambda_d,
                   help="the one diagonal group-Lasso weight the demo trains")
    p.add_argument("--images", type=positive, default=2, help="test images run encrypted (default 2)")
    p.add_argument("--mode", choices=("encrypted", "plain"), default="encrypted")
    p.add_argument("--seeds", type=_seeds, default=(0,),
                   help="comma-separated training seeds (default 0); the first seed's models run encrypted")
    p.add_argument("--no-pause", dest="pause", action="store_false",
                   help="leave this host's sweeps running while the encrypted runs are timed (by default they "
                        "wait, as for artemis bench)")
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
    from ..demo import DEMO_OVERRIDES, DemoConfig, run_demo
    from ..demo_report import render_demo
    from ..results import outputs_together
    from .progress import SweepView

    cfg = DemoConfig(model=args.model, dataset=args.dataset, data_dir=args.data_dir, input_size=args.input_size,
                     lambda_d=args.lambda_d, images=args.images, mode=args.mode, seeds=args.seeds,
                     **{k: getattr(args, k) for k in DEMO_OVERRIDES})
    out = output_folder(args, RUNS / "demo", RESULTS / "demo")
    with SweepView("demo", verbose=args.verbose) as view:
        view.say(f"demo: writing into {out}")
        with outputs_together():  # demo.md, report.md and the figures appear together
            result = run_demo(cfg, out, view.say, view.progress, pause=args.pause)
    text = render_demo(result) + f"\nwritten: {out / 'demo.md'}, {out / 'report.md'}"
    return {"demo": str(out / "demo.md"), "report": str(out / "report.md"), "rows": result["rows"], "_text": text}
