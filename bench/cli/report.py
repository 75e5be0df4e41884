"""`artemis report`: fit the cost model to a benchmark run and write results/report.md."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from heconv.errors import InputError

from .common import RESULTS


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="fit the cost model to benchmark JSON and write results/report.md")
    p.add_argument("files", nargs="*", help="pytest-benchmark JSON (default: the newest full run under "
                                            "results/benchmarks)")
    p.add_argument("--out", default=str(RESULTS), help="folder for report.md, report.csv, cost_model.json, plots")
    p.add_argument("--pruning-csv", action="append", metavar="CSV",
                   help="pruning summary for the Pareto plot; repeat for several "
                        "(default: results/pruning_summary.csv)")
    p.add_argument("--db", default=str(RESULTS / "experiments.sqlite"),
                   help="experiments database whose verdicts (with intervals) the report states, when it exists")
    p.add_argument("--readme", metavar="PATH",
                   help="also rewrite this README's block between <!-- results:begin --> and <!-- results:end -->")
    p.set_defaults(func=run, render=None)


def run(args: argparse.Namespace) -> dict:
    from ..report import default_benchmark_files, read_readme_block, render_readme_block, update_readme, write_report

    readme = Path(args.readme) if args.readme else None
    if readme is not None:
        read_readme_block(readme)  # a README without the markers fails before any result file is rewritten
        if not (os.access(readme, os.W_OK) and os.access(readme.parent, os.W_OK)):  # e.g. a read-only mount
            raise InputError(f"--readme {readme}: cannot be written (read-only file or folder); nothing was written")
    for f in args.files:
        if Path(f).is_dir():
            raise InputError(f"{f}: a folder; expected pytest-benchmark JSON files (or none: the newest full run "
                             "under results/benchmarks)")
    files = args.files or default_benchmark_files(RESULTS / "benchmarks")
    experiments = None
    if args.db and Path(args.db).is_file():
        from bench.experiments.store import ExperimentStore

        experiments = ExperimentStore(args.db, readonly=True).export_rows()
    model = write_report(files, args.out, args.pruning_csv or [RESULTS / "pruning_summary.csv"], experiments)
    if readme is not None:
        update_readme(readme, render_readme_block(model))
    return {k: model[k] for k in ("r2_rotation_only", "r2_full", "max_rel_err_rotation_only", "max_rel_err_full",
                                  "pruning_ratios", "method_ratios")} | {
        "benchmark_files": [str(f) for f in files],
        "report": str(Path(args.out) / "report.md"), "readme": str(readme) if readme is not None else None}
