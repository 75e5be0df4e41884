"""`artemis demo`: the whole pipeline with small settings (see bench.demo)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .common import RESULTS, bar, positive

log = logging.getLogger("artemis")


def add_parser(sub) -> None:
    from pruning.data import DATASETS

    p = sub.add_parser("demo", help="the whole pipeline with small settings: train, prune, encrypted inference")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--data-dir")
    p.add_argument("--input-size", type=positive, default=16)
    p.add_argument("--subset", type=positive, default=6000)
    p.add_argument("--epochs", type=positive, default=6)
    p.add_argument("--images", type=positive, default=2)
    p.add_argument("--mode", choices=("encrypted", "plain"), default="encrypted")
    p.add_argument("--seeds", type=_seeds, default=(0,),
                   help="comma-separated training seeds (default 0); the first seed's models run encrypted")
    p.add_argument("--out", default=str(RESULTS / "demo"))
    p.add_argument("--bench-json", action="append", metavar="JSON",
                   help="benchmark JSON the demo's report fits the cost model to (repeatable; default: the newest "
                        "full run in results/benchmarks)")
    p.add_argument("--no-report", action="store_true", help="skip the report (demo.md is still written)")
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
    from ..demo import DemoConfig, render, run_demo
    from ..results import outputs_together

    cfg = DemoConfig(model=args.model, dataset=args.dataset, data_dir=args.data_dir, input_size=args.input_size,
                     subset=args.subset, epochs=args.epochs, images=args.images, mode=args.mode, seeds=args.seeds)
    out = Path(args.out)
    with bar(8, "demo") as b:
        def stage(name):
            b.set_postfix_str(name)
            b.update()

        with outputs_together():  # in place before the report reads them
            result = run_demo(cfg, out, stage)
        report = None
        if not args.no_report:
            stage("report")
            report = _demo_report(args.bench_json, out)
    text = render(result) + (f"\nreport: {report}" if report else "")
    return {"demo": str(out / "demo.md"), "report": report, "rows": result["rows"], "_text": text}


def _demo_report(bench_json: list[str] | None, out: Path) -> str | None:
    """The cost-model report beside the demo: benchmark fits and the demo's own Pareto points."""
    from ..report import default_benchmark_files, write_report

    try:
        files = bench_json or default_benchmark_files(RESULTS / "benchmarks")
    except ValueError as e:
        log.warning("no report beside the demo: %s", e)
        return None
    from bench.experiments.store import ExperimentStore

    write_report(files, out, [out / "pruning_summary.csv"], ExperimentStore(out / "experiments.sqlite").export_rows())
    return str(out / "report.md")
