"""`artemis results`: the experiments database exported as CSV, its runs' status, their encrypted
measurement, and their chosen pruned models as checkpoints for the benchmarks."""

from __future__ import annotations

import argparse
import logging
from contextlib import nullcontext
from pathlib import Path

from heconv.errors import InputError

from ..experiments.pause import idle_record, idle_words, paused
from ..experiments.readings import FIXED, OPTIONAL, READINGS, by_name
from .common import DEFAULT_DB, MAX_IMAGES, RESULTS, RUNS, add_publish_options, at_most, output_folder, seed

log = logging.getLogger("artemis")

PUBLISHED_DB = RESULTS / "experiments.sqlite"


def add_parser(sub) -> None:
    p = sub.add_parser("results", help="the experiments database: its runs' status, CSV export, encrypted "
                                       "measurement and chosen checkpoints")
    actions = p.add_subparsers(dest="action", required=True)
    e = actions.add_parser("export", help="write experiments.csv (one row per run and step), pruning_summary.csv "
                                          "(the old summary's columns, a view of the same rows) and, for a --db "
                                          "elsewhere, a consistent copy of the database into --out")
    e.add_argument("--db", default=str(DEFAULT_DB))
    add_publish_options(e, RUNS / "results", RESULTS, "experiments.csv, pruning_summary.csv and the database's copy")
    e.set_defaults(func=export, render=lambda r: f"{r['rows']} rows from {r['runs']} runs -> {r['csv']}")
    c = actions.add_parser("encrypt", help="run the chosen model of finished pruning runs encrypted on test images "
                                           "and record the measurement in the database (the latency beside the "
                                           "rotation ratio); a run measured again keeps only the readings asked "
                                           "for now, so that its readings share one period's timings")
    c.add_argument("--db", default=str(DEFAULT_DB))
    c.add_argument("--model", help="only runs of this model")
    c.add_argument("--seed", type=seed, default=0, help="only runs of this seed (default 0)")
    c.add_argument("--images", type=at_most(MAX_IMAGES), default=1)
    c.add_argument("--data-dir", help="the data set's folder, as the sweep was given")
    c.add_argument("--mode", choices=("encrypted", "plain"), default="encrypted")
    c.add_argument("--redo", action="store_true", help="measure runs already measured again")
    c.add_argument("--all-runs", action="store_true",
                   help="every finished pruning run of the seed (default: the runs the verdicts choose: per method "
                        "and family its lambdas and variant chosen on validation)")
    for reading in OPTIONAL:  # one flag per reading beside the fixed schedule the model was pruned for
        c.add_argument(f"--{reading.name}", dest=reading.dest, action="store_true", help=reading.help)
    c.add_argument("--no-pause", dest="pause", action="store_false",
                   help="leave this host's sweeps running while timing (by default they wait, as for artemis bench)")
    c.set_defaults(func=encrypt, render=_render_encrypt)
    k = actions.add_parser("checkpoints", help="write each method's chosen pruned model of one seed as "
                                               "OUT/pruned-<method>.pt with its meta, for the benchmarks' --pruned OUT "
                                               "(lambdas chosen on validation, as the report chooses them)")
    k.add_argument("--db", default=str(DEFAULT_DB))
    k.add_argument("--model", required=True)
    k.add_argument("--seed", type=seed, default=0)
    k.add_argument("--methods", help="comma-separated methods (default: every method of the model)")
    k.add_argument("--data-dir", help="the data set's folder, as the sweep was given")
    k.add_argument("--out", required=True, help="folder the checkpoints go into")
    k.set_defaults(func=checkpoints, render=lambda r: "\n".join(f"{m}: {p}" for m, p in r["written"].items()))
    v = actions.add_parser("verdicts", help="write the report's pruning verdicts (per model: the methods chosen on "
                                            "validation, ratios with t-intervals, the claims) for one database "
                                            "alone, as OUT/verdicts.md with its plot, no benchmark run needed")
    v.add_argument("--db", default=str(DEFAULT_DB))
    v.add_argument("--out", required=True, help="folder for verdicts.md and experiments_pareto.png")
    v.set_defaults(func=verdicts, render=lambda r: f"verdicts of {r['runs']} runs -> {r['md']}")
    s = actions.add_parser("status", help="how many runs are done, running, killed (recorded running, held by no "
                                          "live sweep) and failed")
    s.add_argument("--db", default=str(DEFAULT_DB))
    s.set_defaults(func=status, render=_render_status)


def _open(db: str, write: bool = False):
    """The database, checked (bench.experiments.db); opened read-only unless the command writes to it."""
    from bench.experiments.store import ExperimentStore

    return ExperimentStore(db, readonly=not write)


def export(args: argparse.Namespace) -> dict:
    from bench.experiments.store import EXPORT_COLUMNS

    from ..results import atomic_write, csv_bytes

    store = _open(args.db)
    rows = store.export_rows()
    summary = store.export_rows("pruning_summary")
    out = output_folder(args, RUNS / "results", RESULTS)
    if Path(args.db).resolve() != (out / "experiments.sqlite").resolve():
        store.snapshot(out / "experiments.sqlite")  # a consistent copy beside the CSV, even while a sweep writes
    atomic_write(out / "experiments.csv", csv_bytes(rows, EXPORT_COLUMNS))
    atomic_write(out / "pruning_summary.csv", csv_bytes(summary, list(summary[0]) if summary else
                                                         ["model", "dataset", "input_size", "method", "step"]))
    return {"csv": str(out / "experiments.csv"), "summary_csv": str(out / "pruning_summary.csv"), "rows": len(rows),
            "runs": len({r["run_id"] for r in rows})}


def verdicts(args: argparse.Namespace) -> dict:
    """The report's verdicts section for one database (e.g. a side experiment kept out of results/)."""
    import matplotlib

    from ..report.experiments import experiments_section
    from ..report.plots import experiments_figure
    from ..results import atomic_write

    matplotlib.use("Agg")
    rows = _open(args.db).export_rows()
    if not rows:
        raise InputError(f"results verdicts: {args.db} holds no finished pruning run")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = "\n".join([f"# Pruning verdicts of {Path(args.db).name}", "",
                     *experiments_section(rows)[1:]])
    experiments_figure(rows, out / "experiments_pareto.png")
    atomic_write(out / "verdicts.md", md.encode())
    return {"md": str(out / "verdicts.md"), "runs": len({r["run_id"] for r in rows})}


def checkpoints(args: argparse.Namespace) -> dict:
    """The chosen run of each method (lambdas chosen on validation) for one model and seed, exported."""
    from pruning.data import load_dataset

    from ..provenance import in_repository
    from ..report.experiments import COMPARED, groups_by_model, model_results
    from ..results import export_pruned, outputs_together, pruned_meta

    store = _open(args.db)
    groups = {k: v for k, v in groups_by_model(store.export_rows()).items() if k[0] == args.model}
    if len(groups) != 1:
        raise InputError(f"--model {args.model}: expected the runs of one data set and size in {args.db}, found "
                         f"{sorted(groups) or 'none'}")
    results = model_results(next(iter(groups.values())))
    # By default the methods the verdicts compare (a family such as hunter as its member chosen on validation).
    wanted = args.methods.split(",") if args.methods else sorted(m for m in results if m in COMPARED)
    unknown = [m for m in wanted if m not in results]
    if unknown:
        raise InputError(f"--methods: no finished {args.model} runs of {unknown}; there are {sorted(results)}")
    written, data = {}, None
    with outputs_together():
        for method in wanted:
            lp, ld = results[method].lambdas
            variant = results[method].method
            runs = [r for r in store.runs(kind="prune", status="done", model=args.model, method=variant, seed=args.seed)
                    if (float(r["lambda_p"]), float(r["lambda_d"])) == (lp, ld)]
            if not runs:
                raise InputError(f"{args.model} {method}: no finished run of seed {args.seed} at the chosen lambdas "
                                 f"lambda_p = {lp:g}, lambda_d = {ld:g}")
            run = runs[0]
            data = data or load_dataset(run["dataset"], run["input_size"], args.data_dir, subset=run["subset"],
                                        seed=run["seed"])
            meta = {**pruned_meta(run, store.steps(run["run_id"]), store.run(run["parent"]), data), "method": method,
                    "variant": variant, "database": in_repository(args.db)}
            written[method] = str(export_pruned(run, meta, args.out))
    return {"db": args.db, "written": written}


def status(args: argparse.Namespace) -> dict:
    store = _open(args.db)
    runs, live = store.runs(), store.live_claims()
    counts: dict[str, dict[str, int]] = {}
    for r in runs:  # a run recorded running that no live sweep holds was killed (it resumes on the next sweep)
        state = "killed" if r["status"] == "running" and r["run_id"] not in live else r["status"]
        counts.setdefault(r["kind"], {}).setdefault(state, 0)
        counts[r["kind"]][state] += 1
    failed = [{"run": r["run_id"], "error": (r["error"] or "").splitlines()[-1:]} for r in runs
              if r["status"] == "failed"]
    return {"db": args.db, "counts": counts, "failed": failed, "compute": compute_spent(runs)}


def compute_spent(runs: list[dict]) -> dict[str, dict]:
    """Per model, what its finished runs cost: their wall times summed (run-hours; a sweep runs one per
    core by default), the hours from the first start to the last finish, and the pruning budgets
    (recovery epochs, epochs per step) its pruning runs were given. Runs with no model are left out.

    >>> compute_spent([{"model": "m", "status": "done", "kind": "prune", "wall_s": 3600.0, "started": 0.0,
    ...                 "finished": 3600.0, "config": {"recovery_epochs": 1.0, "finetune_epochs": 0.5}},
    ...                {"model": "m", "status": "done", "kind": "train", "wall_s": 1800.0, "started": 3600.0,
    ...                 "finished": 7200.0, "config": {}}])
    {'m': {'runs': 2, 'run_hours': 1.5, 'span_hours': 2.0, 'budgets': [[1.0, 0.5]]}}
    """
    out: dict[str, dict] = {}
    for model in sorted({r["model"] for r in runs if r["model"]}):
        done = [r for r in runs if r["model"] == model and r["status"] == "done" and r.get("wall_s") is not None]
        if not done:
            continue
        starts = [r["started"] for r in done if r.get("started") is not None]
        ends = [r["finished"] for r in done if r.get("finished") is not None]
        budgets = sorted({(float(c["recovery_epochs"]), float(c["finetune_epochs"])) for r in done
                          if r["kind"] == "prune" and "recovery_epochs" in (c := r.get("config") or {})})
        out[model] = {"runs": len(done), "run_hours": round(sum(r["wall_s"] for r in done) / 3600, 2),
                      "span_hours": round((max(ends) - min(starts)) / 3600, 2) if starts and ends else None,
                      "budgets": [list(b) for b in budgets]}
    return out


def _render_status(r: dict) -> str:
    lines = [f"{kind}: " + ", ".join(f"{n} {s}" for s, n in sorted(c.items())) for kind, c in r["counts"].items()]
    for model, c in (r.get("compute") or {}).items():
        span = "" if c["span_hours"] is None else f", {c['span_hours']:.1f} h from the first start to the last finish"
        budgets = "; ".join(f"recovery {a:g} epoch(s), {b:g} per step" for a, b in c["budgets"])
        lines.append(f"{model}: {c['runs']} finished runs, {c['run_hours']:.1f} run-hours{span}"
                     + (f"; pruning budget: {budgets}" if budgets else ""))
    lines += [f"failed: {f['run']}: {' '.join(f['error'])}" for f in r["failed"]]
    return "\n".join([f"database: {r['db']}", *lines] if lines else [f"database: {r['db']}: no runs"])


def encrypt(args: argparse.Namespace) -> dict:
    """Each selected run's pruned checkpoint, lowered and run on the engine; recorded in runs.encrypted."""
    import numpy as np

    from heconv.params import params_for_input
    from models import build_model
    from models.checkpoint import checkpoint_from_bytes
    from pruning.data import load_dataset

    from ..harness.model import measure_checkpoint
    from .common import bar

    if args.images < 1:
        raise InputError(f"--images must be at least 1, got {args.images}")
    store = _open(args.db, write=True)
    where = {"kind": "prune", "status": "done", "seed": args.seed} | ({"model": args.model} if args.model else {})
    runs = store.runs(**where)
    if not args.all_runs:
        runs = _chosen_runs(store, runs)
    wanted = [g.name for g in OPTIONAL if getattr(args, g.dest, False)]
    runs = [r for r in runs if args.redo or not r["encrypted"] or any(w not in r["encrypted"] for w in wanted)]
    for r in runs:  # one period's timings: a run measured again keeps only the readings asked for now
        dropped = sorted(set(r["encrypted"] or {}) & {g.name for g in READINGS} - set(wanted))
        if dropped:
            log.warning("run %s: its readings %s are dropped (not asked for now)", r["run_id"], dropped)
    measured = []
    with paused() if getattr(args, "pause", True) and runs else nullcontext(None) as idle, \
            bar(len(runs), "encrypted runs") as b:
        for run in runs:
            path = Path(run["checkpoint"] or "")
            if not path.is_file():
                raise InputError(f"run {run['run_id']}: checkpoint {path} is not on this machine")
            data = load_dataset(run["dataset"], run["input_size"], args.data_dir,
                                subset=run["subset"], seed=run["seed"])
            shape = (data.in_channels, run["input_size"], run["input_size"])
            model = build_model(run["model"], data.in_channels, data.num_classes)
            model.load_state_dict(checkpoint_from_bytes(path.read_bytes(), str(path))[0])
            model.eval()
            params = params_for_input(run["input_size"], run["input_size"], run["poly_modulus_degree"])
            schedules = (run["config"] or {}).get("schedules") or run["schedule"]
            images, labels = data.test.x[: args.images].astype(np.float64), data.test.y[: args.images]
            found = {}
            for name in [FIXED.name, *wanted]:
                # one prepared plan at a time: a dense ResNet18's takes about 8 GiB
                rec = measure_checkpoint(model, shape, params, images, labels, mode=args.mode, seed=run["seed"],
                                         **{"schedule": schedules, **dict(by_name(name).prepare)})
                found[name] = {k: rec[k] for k in ("predicted_rotations", "rotations", "pmuls", "server_s", "floor_s",
                                                   "bytes_client_to_server", "bytes_server_to_client",
                                                   "top1_agreement", "max_abs_error") if k in rec}
            keep = found[FIXED.name]
            store.set_fields(run["run_id"], {"encrypted": {**keep, "images": args.images, "mode": args.mode,
                                                           **idle_record(idle), **{w: found[w] for w in wanted}}})
            measured.append({"run": run["run_id"], **keep, "readings": {w: found[w]["server_s"] for w in wanted}})
            b.update()
    return {"db": args.db, "measured": measured, **idle_record(idle)}


def _chosen_runs(store, runs: list[dict]) -> list[dict]:
    """The runs behind the verdicts: per model, method and family, the lambdas and variant chosen on validation."""
    from ..report.experiments import groups_by_model, model_results

    keep: set[tuple] = set()
    for (model, *_), rows in groups_by_model(store.export_rows()).items():
        for res in model_results(rows).values():
            keep |= {(model, res.method, res.lambdas[0], res.lambdas[1])}
    return [r for r in runs if (r["model"], r["method"], float(r["lambda_p"]), float(r["lambda_d"])) in keep]


def _render_encrypt(r: dict) -> str:
    if not r["measured"]:
        return "nothing to measure"
    idle = idle_words(r["idle_share_at_start"], r.get("idle_target"), r.get("idle_wait_s"))
    return "\n".join([f"{m['run']}: {m['rotations']} rotations, server {m['server_s']:.2f} s/image"
                      + "".join(f", {by_name(w).label} {t:.2f} s" for w, t in m.get("readings", {}).items())
                      + f", top-1 agreement {m['top1_agreement']}" for m in r["measured"]]
                     + [f"timed with {idle}"])
