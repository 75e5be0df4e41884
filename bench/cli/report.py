"""`artemis report`: fit the cost model to a benchmark run and write the report.

By default into runs/report/ (git-ignored); `--publish` writes the committed results/ and the
README's results block together, so the test that compares the two keeps passing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from heconv.errors import InputError

from ..provenance import in_repository
from .common import RESULTS, ROOT, RUNS, add_publish_options, output_folder


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="fit the cost model to benchmark JSON and write report.md (runs/report/, "
                                      "or results/ with --publish)")
    p.add_argument("files", nargs="*", help="pytest-benchmark JSON (default: the newest full run under "
                                            "results/benchmarks)")
    add_publish_options(p, RUNS / "report", RESULTS, "report.md, report.csv, cost_model.json and the plots")
    p.add_argument("--pruning-csv", action="append", metavar="CSV",
                   help="pruning summary for the Pareto plot; repeat for several "
                        "(default: results/pruning_summary.csv)")
    dbs = p.add_mutually_exclusive_group()
    dbs.add_argument("--db", action="append", metavar="SQLITE",
                     help="experiments database whose verdicts (with intervals) the report states (one that is not "
                          "there is an error); "
                          "repeat for several, e.g. a replicate whose models ran encrypted: each database's verdicts "
                          "stand apart, under its path (default: results/experiments.sqlite, then each side "
                          "experiment's: a folder of results/ with experiments.sqlite and the verdicts.md that "
                          "'artemis results verdicts' wrote)")
    dbs.add_argument("--no-db", action="store_true",
                     help="state no pruning verdicts (no experiments database read; with --publish the README's "
                          "block then states none)")
    p.add_argument("--readme", metavar="PATH",
                   help="also rewrite this README's block between <!-- results:begin --> and <!-- results:end --> "
                        "(--publish: README.md)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run, render=render)


def run(args: argparse.Namespace) -> dict:
    from ..report import default_benchmark_files, read_readme_block, render_readme_block, update_readme, write_report

    missing = [d for d in args.db or [] if not Path(d).is_file()]
    if missing:
        raise InputError(f"--db {missing[0]}: no such database file; nothing was written")
    out = output_folder(args, RUNS / "report", RESULTS)
    readme = Path(args.readme) if args.readme else (ROOT / "README.md" if args.publish else None)
    if readme is not None:
        read_readme_block(readme)  # a README without the markers fails before any result file is rewritten
        if not (os.access(readme, os.W_OK) and os.access(readme.parent, os.W_OK)):  # e.g. a read-only mount
            raise InputError(f"--readme {readme}: cannot be written (read-only file or folder); nothing was written")
    for f in args.files:
        if Path(f).is_dir():
            raise InputError(f"{f}: a folder; expected pytest-benchmark JSON files (or none: the newest full run "
                             "under runs/benchmarks and results/benchmarks)")
    # Published reports read published runs only; a working report also this machine's runs/benchmarks.
    files = args.files or default_benchmark_files(*([] if args.publish else [RUNS / "benchmarks"]),
                                                  RESULTS / "benchmarks")
    dbs = [] if args.no_db else [Path(d) for d in args.db] if args.db else default_databases()
    experiments = {in_repository(d): _experiment_rows(d) for d in dbs if d.is_file()} or None
    model = write_report(files, out, args.pruning_csv or [RESULTS / "pruning_summary.csv"], experiments)
    if readme is not None:
        update_readme(readme, render_readme_block(model))
    return {k: model[k] for k in ("r2_rotation_only", "r2_full", "max_rel_err_rotation_only", "max_rel_err_full",
                                  "pruning_ratios", "method_ratios")} | {
        "per_n": {n: {k: p.get(k) for k in ("cases", "r2_rotation_only", "max_rel_err_rotation_only", "r2_full",
                                            "max_rel_err_full")} for n, p in model["per_n"].items()},
        "benchmark_files": [str(f) for f in files], "published": bool(args.publish),
        "report": str(out / "report.md"), "readme": str(readme) if readme is not None else None}


def _experiment_rows(db: Path) -> list[dict]:
    """The database's rows, opened read-only (bench.experiments.db): a database written by an older
    version is read through temporary views, so a report never changes the committed
    results/experiments.sqlite, and a damaged one is one line naming it."""
    from bench.experiments.store import ExperimentStore

    return ExperimentStore(db, readonly=True).export_rows()


def default_databases(results: Path = RESULTS) -> list[Path]:
    """The main experiments database, then each side experiment's: a folder of results/ holding its database
    and the verdicts.md `artemis results verdicts` wrote (the demo's folder, a smoke run, holds none)."""
    return [results / "experiments.sqlite",
            *sorted(d for d in results.glob("*/experiments.sqlite") if (d.parent / "verdicts.md").is_file())]


def render(result: dict) -> str:
    """A few lines: where the report went, what it read, the fits per N."""
    lines = [f"report: {result['report']} (with report.csv, cost_model.json and the plots beside it)",
             "read: " + ", ".join(Path(f).name for f in result["benchmark_files"])]
    for n, p in sorted(result["per_n"].items(), key=lambda kv: int(kv[0])):
        lines.append(f"N = {n}: {p['cases']} cases; R^2 rotations only {_f(p['r2_rotation_only'])} (worst "
                     f"{_pct(p['max_rel_err_rotation_only'])}), full count model {_f(p['r2_full'])} (worst "
                     f"{_pct(p['max_rel_err_full'])})")
    if result["readme"]:
        lines.append(f"README block rewritten: {result['readme']}")
    if not result["published"]:
        lines.append("committed results/ left as they are (--publish writes them and the README's block)")
    return "\n".join(lines)


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:.1%}"
