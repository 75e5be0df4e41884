"""report.md's sections and `write_report`, which writes report.md, report.csv, cost_model.json
and the figures into one folder.

report.md opens with the run(s) read and their suite label, then the verdicts (verdict.py),
then one section per N with the fits and the cases, the pruned checkpoints, the schedules,
ours beside Orion (peers.py, when the runs hold peer cases), the sparsity sweeps, the
pruning summaries and the provenance.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..provenance import provenance
from ..results import atomic_write
from .cases import Case, load_benchmarks, require_fit_inputs, tidy_table
from .compare import (
    REFERENCE_METHOD,
    accuracy,
    as_paths,
    checkpoint_source,
    last_by,
    method_ratios,
    ratio_name,
    read_pruning,
    schedule_gains,
    sweep_fraction,
    sweep_series,
)
from .crossval import NOISE_TARGET, cross_validate, mask_cost_text
from .engines import engines_section, slot_cases
from .experiments import experiments_section, experiments_summary
from .fits import DOMINANT_SHARE, NFit, fit_n
from .paper_claims import claims_lines
from .peers import peer_rows, peer_runs, peers_section
from .plots import experiments_figure, fits_figure, pareto_figure, sweeps_figure
from .text import accuracy_text, finite, fmt
from .verdict import canary_summary, verdict_section, wall_cpu_summary

log = logging.getLogger(__name__)

HEADLINE_N = 8192  # the top-level r2_* keys of cost_model.json are this N's when it was measured
HEADLINE_KEYS = ("r2_full", "max_rel_err_full", "r2_rotation_only", "max_rel_err_rotation_only", "cv_r2",
                 "cv_worst_rel_err", "noise_floor", "models_worst_rel_err")


def _shown(path: str | Path) -> str:
    """A run's path as the report shows it: as given when relative, else its folder and name."""
    p = Path(path)
    return str(p) if not p.is_absolute() else str(Path(p.parent.name) / p.name)


def runs_section(paths: list[str | Path], origins: list[dict]) -> list[str]:
    """Which run(s) the report read, with their suite label and selection."""
    md = ["Run read:" if len(paths) == 1 else "Runs read:", ""]
    for path, o in zip(paths, origins):
        sel = o.get("selection") or {}
        bits = [f"suite **{o.get('suite') or 'not recorded'}**"]
        if sel.get("selected") is not None:
            bits.append(f"{sel['selected']} selected" + (f", {sel['deselected']} deselected"
                                                         if sel.get("deselected") is not None else ""))
        bits += [f"{flag} '{sel[key]}'" for flag, key in (("-m", "markexpr"), ("-k", "keyword")) if sel.get(key)]
        if o.get("datetime"):
            bits.append(f"made {o['datetime']}")
        bits.append(f"revision {str(o.get('git_revision', '?'))[:12]}")
        bits.append(f"{o['layer_cases']} layer, {o['model_cases']} model and {o['primitive_cases']} primitive cases")
        md.append(f"- `{_shown(path)}`: " + ", ".join(bits))
        if o.get("suite") in ("quick", "filtered"):
            md.append(f"  (a {o['suite']} run: only the cases its selection kept, so the fits cover those alone)")
    return md + [""]


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e3:.4f} ms"


def crossval_section(cv: dict | None, n: int | str = "this N") -> list[str]:
    """The cost model as a predictor at one N: leave-one-out on the layer cases, the noise floor,
    whole models predicted from the layer fit, and the fitted unit costs beside the primitives suite's."""
    if not cv:
        return ["No layer case at this N: the cost model is not cross-validated here.", ""]
    md = [f"Cost model fitted on the {cv['n_cases']} layer cases (slot and coefficient; terms "
          f"{', '.join(cv['terms'])}; each case's least time), scored by leave-one-out cross-validation:", "",
          "| model | cases | cross-validated R^2 | cross-validated worst relative error |", "|---|---|---|---|",
          f"| rotation only (slot layers): latency = a x rotations + b | {cv['rotation_only_cases']} "
          f"| {fmt(cv['cv_r2_rotation_only'], '.4f')} | {fmt(cv['cv_worst_rel_err_rotation_only'], '.1%')} |",
          f"| cost model, all layer cases | {cv['n_cases']} | {fmt(cv['cv_r2'], '.4f')} "
          f"| {fmt(cv['cv_worst_rel_err'], '.1%')} |"]
    md += [f"| cost model, {algo} layers | {a['n_cases']} | {fmt(a['cv_r2'], '.4f')} "
           f"| {fmt(a['cv_worst_rel_err'], '.1%')} |" for algo, a in cv["cv_by_algorithm"].items()]
    models = cv.get("models") or {}
    if models:
        md.append(f"| whole models predicted from the layer fit (not fitted) | {len(models)} | - "
                  f"| {fmt(cv['models_worst_rel_err'], '.1%')} |")
    floor = cv["noise_floor"]
    md += ["", ("Noise floor (the worst (max - min) / (max + min) of the times of cases with identical plans): "
                + (f"{floor:.1%} ({', '.join(cv['noise_floor_cases'])})" if floor is not None
                   else "not measurable (no two cases share a plan)")
                + f"; cross-validated worst error {fmt(cv['cv_worst_rel_err'], '.1%')} beside it.")]
    if cv.get("agreeing_cases") is not None:
        md.append(f"{cv['agreeing_cases']} of {cv['n_cases']} cases agree across passes within "
                  f"{NOISE_TARGET:.0%}; their cross-validated worst error: "
                  f"{fmt(cv['cv_worst_rel_err_agreeing'], '.1%')}.")
    md += ["", "| term | fitted unit cost | primitives suite (streamed) | fitted / primitives |", "|---|---|---|---|"]
    md += [f"| {t} | {_ms(u)} | {_ms(cv['unit_costs_primitives'].get(t))} "
           f"| {fmt(cv['unit_costs_over_primitives'].get(t), '.2f')} |" for t, u in cv["unit_costs"].items()]
    masks = mask_cost_text(n, cv["unit_costs"], cv.get("mask_kinds"))
    md += ["", masks] if masks else []
    md += ["", "Worst cross-validated cases: " + "; ".join(
        f"{w['case']} {w['rel_err']:+.1%}" for w in cv["cv_worst_cases"]), ""]
    if models:
        md += ["| whole model | server s (least per image) | predicted s | error |", "|---|---|---|---|"]
        md += [f"| {name} | {m['latency_s']:.4f} | {m['predicted_s']:.4f} "
               f"| {m['predicted_s'] / m['latency_s'] - 1:+.1%} |" for name, m in sorted(models.items())]
        md.append("")
    return md


def fits_section(f: NFit) -> list[str]:
    """One N's cross-validated cost model, then its in-sample fits table, fitted unit costs and cases."""
    rot, full, measured, scaled = f.rot, f.full, f.measured, f.scaled
    md = [f"## N = {f.n} ({len(f.cases)} cases)", "", *crossval_section(f.cv, f.n),
          "In-sample fits on the slot engine's layer and model cases (descriptive):", ""]
    if f.empty:
        md += [f"{len(f.empty)} case(s) with every weight group pruned do no counted HE operation (the server "
               "encrypts the bias alone) and are left out of the fits: " + ", ".join(c.name for c in f.empty), ""]
    md += ["| model | R^2 | worst relative error |", "|---|---|---|",
           (f"| rotation only: latency = {rot.coef['a'] * 1e3:.3f} ms x rotations {rot.coef['b']:+.3f} s "
            f"| {fmt(rot.r2, '.4f')} | {rot.max_rel_err:.1%} |"),
           f"| full, fitted unit costs (NNLS) | {fmt(full.r2, '.4f')} | {full.max_rel_err:.1%} |",
           f"| full, measured unit costs ({f.source}) | {fmt(measured.r2, '.4f')} | {measured.max_rel_err:.1%} |",
           (f"| full, measured unit costs x {scaled.coef['overhead_factor']:.3f} (fitted overhead) "
            f"| {fmt(scaled.r2, '.4f')} | {scaled.max_rel_err:.1%} |"),
           "", "Fitted unit costs in-sample (NNLS on the terms; additions track multiplications and plain "
           "additions equal rescales, so they are not separate terms): "
           + ", ".join(f"{k} {v * 1e3:.4f} ms" for k, v in full.coef.items()), ""]
    cpu = any(c.cpu is not None for c in f.cases)
    md += ["| case | kind | rotations | pmuls | latency s | " + ("CPU s | wall/CPU | " if cpu else "")
           + "rotation share | rotations dominate |",
           "|---|---|---|---|---|" + ("---|---|" if cpu else "") + "---|---|"]
    for c in sorted(f.cases, key=lambda c: c.name):
        cpu_cells = f"{fmt(c.cpu, '.4f')} | {fmt(c.wall_over_cpu, '.2f')} | " if cpu else ""
        md.append(f"| {c.name} | {c.kind} | {c.counts['key_switches']} | {c.counts['pmuls']} | {c.latency:.4f} | "
                  f"{cpu_cells}{c.rotation_share:.2f} | {'yes' if c.rotation_share > DOMINANT_SHARE else 'no'} |")
    return md + ["", f"![fits](latency_fits_N{f.n}.png)", ""]


def methods_section(cases: list[Case], ratios: dict) -> list[str]:
    """The checkpoint model and layer cases, and the model ratios to artemis-diagonal."""
    ckpt_models = sorted(last_by([c for c in cases if c.suite == "model" and c.weights == "checkpoint"],
                                 lambda c: (c.network, c.method, c.schedule)).items(),
                         key=lambda kv: tuple(map(str, kv[0])))
    ckpt_layers = sorted(last_by([c for c in cases if c.suite == "layer" and c.weights == "checkpoint"],
                                 lambda c: (c.network, c.layer, c.method, c.n)).items(),
                         key=lambda kv: tuple(map(str, kv[0])))
    md = []
    if ckpt_models:
        md += ["## Pruned checkpoints, whole models", "",
               "| model | method | schedule | N | rotations | server latency s | accuracy | checkpoint |",
               "|---|---|---|---|---|---|---|---|"]
        md += [f"| {m} | {meth} | {sched} | {c.n} | {c.rotations} | {c.latency:.4f} | {accuracy_text(accuracy(c))} "
               f"| {checkpoint_source(c)} |" for (m, meth, sched), c in ckpt_models]
        md.append("")
        if ratios:
            md += [f"Ratios to {REFERENCE_METHOD} (higher: {REFERENCE_METHOD} saves more):", "",
                   "| model | methods | rotations | server latency |", "|---|---|---|---|"]
            md += [f"| {m} | {ratio_name(k, v)} | {fmt(v['rotations'], '.2f')}x | {fmt(v['latency'], '.2f')}x |"
                   for m, d in ratios.items() for k, v in d.items()]
            md.append("")
    if ckpt_layers:
        md += ["## Pruned checkpoints, single layers", "",
               "| network | layer | method | N | rotations | latency s | checkpoint |", "|---|---|---|---|---|---|---|"]
        md += [f"| {net} | {layer} | {meth} | {n} | {c.rotations} | {c.latency:.4f} | {checkpoint_source(c)} |"
               for (net, layer, meth, n), c in ckpt_layers]
        md.append("")
    return md


def schedules_section(gains: list[dict]) -> list[str]:
    """Output-rotation against auto (a baby step per layer) on the same cases."""
    md = ["## Rotation schedules: output-rotation vs auto", "",
          "Each row is one case run under both schedules; the ratios are output-rotation's over auto's.", "",
          "| suite | network | layer | method | diagonals pruned | B (auto) | rotations OR / auto | ratio "
          "| latency s OR / auto | ratio |", "|---|---|---|---|---|---|---|---|---|---|"]
    md += [f"| {g['suite']} | {g['network']} | {g['layer'] or '-'} | {g['method']} "
           f"| {fmt(g['prune_diagonals'], '.2f')} "
           f"| {g['baby_step'] if g['baby_step'] is not None else 'per layer'} | {g['rotations_or']} / "
           f"{g['rotations_auto']} | {fmt(g['rotation_ratio'], '.2f')}x | {g['latency_or']:.3f} / "
           f"{g['latency_auto']:.3f} | {fmt(g['latency_ratio'], '.2f')}x |" for g in gains]
    return md + [""]


def sweeps_section(series: dict) -> list[str]:
    md = ["## Sparsity sweeps (synthetic weights)", "",
          "| network | layer | N | sweep | pruned fraction | rotations | pmuls | latency s |",
          "|---|---|---|---|---|---|---|---|"]
    for (n, net, layer, kind), cs in series.items():
        md += [f"| {net} | {layer} | {n} | {kind} | {sweep_fraction(c):.2f} | {c.rotations} | {c.counts['pmuls']} "
               f"| {c.latency:.4f} |" for c in cs]
    return md + ["", "![sweeps](sweeps.png)", ""]


def pruning_section(ratios: dict) -> list[str]:
    return (["## Pruning", "", "![pareto](pareto.png)", ""]
            + [f"- {k}: {v:.2f}x" for k, v in sorted(ratios.items())] + [""])


def provenance_section(prov: dict, origins: list[dict]) -> list[str]:
    return ["## Provenance", "", f"- report made at git revision {prov['git_revision']}",
            f"- machine: {prov['machine']}", f"- versions: {prov['versions']}",
            "- benchmark files: " + ", ".join(f"{o['file']} (suite {o.get('suite') or 'not recorded'}, revision "
                                              f"{o.get('git_revision', '?')})" for o in origins), ""]


def experiments_figure_name(source: str, index: int) -> str:
    """The Pareto plot of the index-th database (0: the main one), named after its folder so that adding a
    database renames no other's.

    >>> experiments_figure_name("results/experiments.sqlite", 0), experiments_figure_name("results/side/e.sqlite", 1)
    ('experiments_pareto.png', 'experiments_pareto-side.png')
    """
    if index == 0:
        return "experiments_pareto.png"
    path = Path(source)
    slug = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in (path.parent.name or path.stem))
    return f"experiments_pareto-{slug}.png"


def write_report(paths: list[str | Path], out_dir: str | Path,
                 pruning_csv: str | Path | list[str | Path] | None = None,
                 experiments: dict[str, list[dict]] | None = None) -> dict:
    """Fit, plot and write report.md, report.csv, cost_model.json into out_dir. Returns cost_model.json's content.

    The runs must hold layer or model cases with counts and primitive cases (ValueError
    otherwise, before anything is written). pruning_csv: one pruning_summary.csv or a list
    of them (missing ones are left out with a warning). experiments: per experiments database, by the name
    the report gives it (its path), the rows of its experiments.csv
    (`bench.experiments.store.ExperimentStore.export_rows`), for the verdicts with intervals. Each database's
    verdicts stand apart (its own models and seeds), each with its plot (experiments_figure_name).
    """
    import matplotlib

    matplotlib.use("Agg")

    cases, prim, origins = load_benchmarks(paths)
    require_fit_inputs(paths, cases, prim)
    all_cases, engines = cases, engines_section(cases)
    cases = slot_cases(cases) or cases  # the rotation cost models and method ratios: the slot engine's cases
    rows, pruning_ratios = read_pruning(as_paths(pruning_csv))
    if experiments:
        pruning_ratios = {}  # the database's verdicts (per seed, with intervals) replace the one-row ratios
    by_n: dict[int, list[Case]] = {}
    for c in cases:
        by_n.setdefault(c.n, []).append(c)
    fits = [fit_n(n, cs, prim) for n, cs in sorted(by_n.items())]
    for f in fits:  # the predictor: layer cases of every algorithm fitted, whole models validated
        cv = cross_validate(f.n, all_cases, prim)
        f.cv = cv.summary() if cv is not None else None

    model: dict = {"per_n": {str(f.n): f.summary() for f in fits},
                   "rotation_share": {c.name: c.rotation_share for f in fits for c in sorted(f.cases,
                                                                                          key=lambda c: c.name)},
                   "provenance": provenance(), "sources": origins, "method_ratios": method_ratios(cases),
                   "pruning_ratios": pruning_ratios, "wall_over_cpu": wall_cpu_summary(cases),
                   "canary": canary_summary(all_cases),
                   "schedule_gains": schedule_gains(cases), "engines": engines.summary}
    headline = model["per_n"][str(HEADLINE_N if HEADLINE_N in by_n else min(by_n))]
    model.update({k: headline.get(k) for k in HEADLINE_KEYS})

    out = Path(out_dir)
    md = ["# Cost-model validation", "", *runs_section(paths, origins)]
    claims_at = len(md)  # the claims table goes here once every database's verdicts are in
    md += [*verdict_section(fits, model["method_ratios"], pruning_ratios, model["wall_over_cpu"],
                           model["schedule_gains"], model["canary"])]
    for f in fits:
        md += fits_section(f)
        fits_figure(f, out / f"latency_fits_N{f.n}.png")
    md += methods_section(cases, model["method_ratios"])
    md += engines.md
    if model["schedule_gains"]:
        md += schedules_section(model["schedule_gains"])
    peers = peer_rows(paths)
    if peers:
        runs = peer_runs(paths)
        model["peers"], model["peer_runs"] = peers, runs
        md += peers_section(peers, runs)
    series = sweep_series(cases)
    if series:
        md += sweeps_section(series)
        sweeps_figure(series, out / "sweeps.png")
    if experiments:
        model["experiments"], used = {}, set()
        noise = {f.n: f.cv["noise_floor"] for f in fits if f.cv and f.cv.get("noise_floor")}  # the cost tables' ties
        for k, (source, rows_k) in enumerate(experiments.items()):
            figure = experiments_figure_name(source, k)
            figure = figure if figure not in used else figure.replace(".png", f"-{k}.png")  # two folders alike
            used.add(figure)
            model["experiments"][source] = experiments_summary(rows_k)
            md += experiments_section(rows_k, source=source, figure=figure, noise=noise)
            experiments_figure(rows_k, out / figure)
    if rows:
        md += pruning_section(pruning_ratios)
        pareto_figure(rows, out / "pareto.png")
    md += provenance_section(model["provenance"], origins)
    claims = claims_lines(model)
    md[claims_at:claims_at] = ["## The seed paper's claims", "", *claims] if claims else []
    model = finite(model)

    atomic_write(out / "report.csv", tidy_table(all_cases).to_csv(index=False, lineterminator="\n").encode())
    atomic_write(out / "cost_model.json", json.dumps(model, indent=2, allow_nan=False).encode())
    atomic_write(out / "report.md", "\n".join(md).encode())
    log.info("report written to %s (%d cases, N = %s)", out / "report.md", len(cases), sorted(by_n))
    return model
