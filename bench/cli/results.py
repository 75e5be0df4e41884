"""`artemis results export`: the experiments database as CSV (one row per run and step)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import RESULTS

DEFAULT_DB = RESULTS / "experiments.sqlite"


def add_parser(sub) -> None:
    p = sub.add_parser("results", help="the experiments database: export it as CSV, list its runs")
    actions = p.add_subparsers(dest="action", required=True)
    e = actions.add_parser("export", help="write experiments.csv (one row per run and step), pruning_summary.csv "
                                          "(the old summary's columns, a view of the same rows) and, for a --db "
                                          "elsewhere, a consistent copy of the database into --out")
    e.add_argument("--db", default=str(DEFAULT_DB))
    e.add_argument("--out", default=str(RESULTS), help="folder the CSV files go into")
    e.set_defaults(func=export, render=lambda r: f"{r['rows']} rows from {r['runs']} runs -> {r['csv']}")
    s = actions.add_parser("status", help="how many runs are done, running (or killed) and failed")
    s.add_argument("--db", default=str(DEFAULT_DB))
    s.set_defaults(func=status, render=_render_status)


def _open(db: str):
    from pruning.store import ExperimentStore

    if not Path(db).is_file():
        raise ValueError(f"--db {db}: no experiments database there (run 'artemis sweep' first)")
    return ExperimentStore(db)


def export(args: argparse.Namespace) -> dict:
    from pruning.store import EXPORT_COLUMNS

    from ..results import atomic_write, csv_bytes

    store = _open(args.db)
    rows = store.export_rows()
    summary = store.export_rows("pruning_summary")
    out = Path(args.out)
    if Path(args.db).resolve() != (out / "experiments.sqlite").resolve():
        store.snapshot(out / "experiments.sqlite")  # a consistent copy beside the CSV, even while a sweep writes
    atomic_write(out / "experiments.csv", csv_bytes(rows, EXPORT_COLUMNS))
    atomic_write(out / "pruning_summary.csv", csv_bytes(summary, list(summary[0]) if summary else
                                                         ["model", "dataset", "input_size", "method", "step"]))
    return {"csv": str(out / "experiments.csv"), "summary_csv": str(out / "pruning_summary.csv"), "rows": len(rows),
            "runs": len({r["run_id"] for r in rows})}


def status(args: argparse.Namespace) -> dict:
    runs = _open(args.db).runs()
    counts: dict[str, dict[str, int]] = {}
    for r in runs:
        counts.setdefault(r["kind"], {}).setdefault(r["status"], 0)
        counts[r["kind"]][r["status"]] += 1
    failed = [{"run": r["run_id"], "error": (r["error"] or "").splitlines()[-1:]} for r in runs
              if r["status"] == "failed"]
    return {"db": args.db, "counts": counts, "failed": failed}


def _render_status(r: dict) -> str:
    lines = [f"{kind}: " + ", ".join(f"{n} {s}" for s, n in sorted(c.items())) for kind, c in r["counts"].items()]
    lines += [f"failed: {f['run']}: {' '.join(f['error'])}" for f in r["failed"]]
    return "\n".join(lines) or f"{r['db']}: no runs"
