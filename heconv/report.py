"""Cost-model validation: read benchmark JSON, fit latency against counts, write the report.

Two models are fitted per ring dimension N on the layer and model cases:

    rotation-only:  latency = a * key_switches + b
    full:           latency = sum_op u_op * count_op   (no intercept)

both by least squares on relative error, since cases span three orders of magnitude,

and the full model is also evaluated with the unit costs the primitives suite measured
(no fitting). Outputs: results/report.md, results/report.csv (one tidy row a case),
results/cost_model.json and PNG plots.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import atomic_write
from .provenance import provenance

OPS = ("key_switches", "pmuls", "adds", "plain_adds", "rescales")
PRIMITIVE_OF = {"key_switches": "rotation", "pmuls": "pmul", "adds": "add", "plain_adds": "plain_add",
                "rescales": "rescale"}


@dataclass
class Case:
    name: str
    suite: str  # layer | model
    n: int
    latency: float
    counts: dict[str, int]
    info: dict


@dataclass
class Fit:
    coef: dict[str, float]
    r2: float
    max_rel_err: float


def load_benchmarks(paths: list[str | Path]) -> tuple[list[Case], dict[tuple[int, int, str], float], list[dict]]:
    """Cases with counts, primitive unit costs {(N, level, primitive): seconds}, and each file's provenance."""
    if not paths:
        raise ValueError("no benchmark JSON given (run: pytest bench --benchmark-only)")
    cases, units, origins = [], {}, []
    for path in paths:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"{path}: file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
            raise ValueError(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
        origins.append({"file": path.name, **data.get("artemis", {})})
        for b in data["benchmarks"]:
            try:
                e, stats = b["extra_info"], b["stats"]
            except (KeyError, TypeError):
                raise ValueError(f"{path}: benchmark entry without extra_info/stats: {str(b)[:80]}") from None
            if "primitive" in e:
                units[(int(e["poly_modulus_degree"]), int(e["level"]), e["primitive"])] = float(stats["median"])
            elif "counts" in e:
                suite = "model" if "model" in e else "layer"
                latency = float(e["server_s"]) if suite == "model" else float(stats["mean"])
                cases.append(Case(b.get("name", "?"), suite, int(e["poly_modulus_degree"]), latency,
                                  {k: int(e["counts"].get(k, 0)) for k in OPS}, e))
    if not cases and not units:
        raise ValueError(f"no benchmark with counts or primitives in {[str(p) for p in paths]}")
    return cases, units, origins


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss_res = float(((y - pred) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def _fit_summary(coef: dict[str, float], y: np.ndarray, pred: np.ndarray) -> Fit:
    return Fit(coef, _r2(y, pred), float(np.max(np.abs(pred - y) / y)))


def fit_rotation_only(cases: list[Case]) -> Fit:
    """latency = a * key_switches + b, least squares.

    >>> cs = [Case("c", "layer", 8192, 2e-3 * r + 0.1, {"key_switches": r}, {}) for r in (10, 50, 90)]
    >>> f = fit_rotation_only(cs)
    >>> round(f.coef["a"], 6), round(f.coef["b"], 6), round(f.r2, 6)
    (0.002, 0.1, 1.0)
    """
    x = np.array([[c.counts["key_switches"], 1.0] for c in cases], dtype=float)
    y = np.array([c.latency for c in cases])
    sol = _relative_lstsq(x, y)
    return _fit_summary({"a": float(sol[0]), "b": float(sol[1])}, y, x @ sol)


def _relative_lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares on relative errors (rows divided by y): cases span 0.05 s to 30 s."""
    sol, *_ = np.linalg.lstsq(x / y[:, None], np.ones_like(y), rcond=None)
    return sol


def fit_full(cases: list[Case]) -> Fit:
    """latency = sum_op u_op * count_op with u_op >= 0 (non-negative least squares on relative error).

    In the OR schedule additions track multiplications and plain additions track
    rescales, so their costs are not separately identifiable from real runs: NNLS keeps
    the fit physical (no negative cost) and may give one of a collinear pair all of it.
    """
    from scipy.optimize import nnls

    used = [op for op in OPS if any(c.counts[op] for c in cases)]
    x = np.array([[c.counts[op] for op in used] for c in cases], dtype=float)
    y = np.array([c.latency for c in cases])
    sol, _ = nnls(x / y[:, None], np.ones_like(y))
    return _fit_summary({op: float(s) for op, s in zip(used, sol)}, y, x @ sol)


def case_units(c: Case, primitives: dict[str, float]) -> dict[str, float]:
    """Unit costs for a case: the primitives suite's, else the ones measured in the case's own process."""
    if {"rotation", "pmul", "add"} <= set(primitives):
        return primitives
    u = c.info.get("unit_costs_s") or {}
    return u.get("0", u) if isinstance(u.get("0"), dict) else u


def predict_with_units(cases: list[Case], primitives: dict[str, float]) -> tuple[Fit, Fit]:
    """The full model with measured unit costs: as is, and scaled by one fitted overhead factor."""
    y = np.array([c.latency for c in cases])
    pred = np.array([sum(c.counts[op] * case_units(c, primitives).get(PRIMITIVE_OF[op], 0.0) for op in OPS)
                     for c in cases])
    factor = float(_relative_lstsq(pred[:, None], y)[0])
    return _fit_summary({}, y, pred), _fit_summary({"overhead_factor": factor}, y, factor * pred)


def _pareto(csv_path: Path) -> tuple[list[dict], dict]:
    """Rows of pruning_summary.csv and the chosen step of each method with rotation ratios."""
    if not csv_path.is_file():
        return [], {}
    rows = list(csv.DictReader(open(csv_path)))
    chosen = {}
    for r in rows:
        if r["accepted"] == "True":
            key = (r["model"], r["dataset"], r["input_size"], r["method"])
            if key not in chosen or float(r["fraction"]) > float(chosen[key]["fraction"]):
                chosen[key] = r
    ratios = {}
    for (model, dataset, size, method), r in chosen.items():
        if method != "artemis-diagonal":
            continue
        for other in ("hunter", "dense"):
            o = chosen.get((model, dataset, size, other))
            if o:
                ratios[f"{model}/{dataset}/{size}: {other} / artemis-diagonal rotations"] = (
                    int(o["rotations"]) / int(r["rotations"]))
    return rows, ratios


def write_report(paths: list[str | Path], out_dir: str | Path, pruning_csv: str | Path | None = None) -> dict:
    """Fit, plot and write results/report.md, report.csv, cost_model.json. Returns cost_model.json's content."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases, prim, origins = load_benchmarks(paths)
    if not cases:
        raise ValueError("the benchmark JSON holds primitives only: the fits need layer or model cases")
    out = Path(out_dir)
    by_n: dict[int, list[Case]] = {}
    for c in cases:
        by_n.setdefault(c.n, []).append(c)

    model: dict = {"per_n": {}, "rotation_share": {}, "provenance": provenance(), "sources": origins}
    md = ["# Cost-model validation", ""]
    for n, cs in sorted(by_n.items()):
        units = {p: s for (nn, lv, p), s in prim.items() if nn == n and lv == 0}
        rot, full = fit_rotation_only(cs), fit_full(cs)
        measured, scaled = predict_with_units(cs, units)
        source = "primitives suite" if {"rotation", "pmul", "add"} <= set(units) else "each case's own process"
        model["per_n"][str(n)] = {
            "cases": len(cs), "r2_rotation_only": rot.r2, "max_rel_err_rotation_only": rot.max_rel_err,
            "r2_full": full.r2, "max_rel_err_full": full.max_rel_err, "fitted_unit_costs_s": full.coef,
            "rotation_only_fit": rot.coef, "primitive_unit_costs_s": units, "measured_units_from": source,
            "r2_full_measured_units": measured.r2, "max_rel_err_full_measured_units": measured.max_rel_err,
            "overhead_factor": scaled.coef["overhead_factor"], "r2_full_measured_scaled": scaled.r2,
            "max_rel_err_full_measured_scaled": scaled.max_rel_err,
        }
        md += [f"## N = {n} ({len(cs)} cases)", "",
               "| model | R^2 | worst relative error |", "|---|---|---|",
               f"| rotation only: latency = {rot.coef['a'] * 1e3:.3f} ms x rotations {rot.coef['b']:+.3f} s "
               f"| {rot.r2:.4f} | {rot.max_rel_err:.1%} |",
               f"| full, fitted unit costs (NNLS) | {full.r2:.4f} | {full.max_rel_err:.1%} |",
               f"| full, measured unit costs ({source}) | {measured.r2:.4f} | {measured.max_rel_err:.1%} |",
               f"| full, measured unit costs x {scaled.coef['overhead_factor']:.3f} (fitted overhead) "
               f"| {scaled.r2:.4f} | {scaled.max_rel_err:.1%} |",
               "", "Fitted unit costs (NNLS; additions track multiplications and plain additions track "
               "rescales, so those pairs are not separately identifiable): "
               + ", ".join(f"{k} {v * 1e3:.4f} ms" for k, v in full.coef.items()), ""]
        md += ["| case | rotations | pmuls | latency s | rotation share | rotations dominate |", "|---|---|---|---|---|---|"]
        for c in sorted(cs, key=lambda c: c.name):
            cu = case_units(c, units)
            t = {op: c.counts[op] * cu.get(PRIMITIVE_OF[op], 0.0) for op in OPS}
            share = t["key_switches"] / sum(t.values()) if sum(t.values()) > 0 else 0.0
            model["rotation_share"][c.name] = share
            md.append(f"| {c.name} | {c.counts['key_switches']} | {c.counts['pmuls']} | {c.latency:.4f} | "
                      f"{share:.2f} | {'yes' if share > 0.5 else 'no'} |")
        md.append("")
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        ks = np.array([c.counts["key_switches"] for c in cs])
        y = np.array([c.latency for c in cs])
        axes[0].scatter(ks, y, s=14)
        xs = np.linspace(0, ks.max() * 1.05, 50)
        axes[0].plot(xs, rot.coef["a"] * xs + rot.coef["b"], "r-", label=f"rotation-only fit, R^2={rot.r2:.3f}")
        axes[0].set(xlabel="rotations (key switches)", ylabel="latency (s)", title=f"N={n}: latency vs rotations")
        axes[0].legend()
        pred = np.array([sum(c.counts[op] * full.coef.get(op, 0.0) for op in OPS) for c in cs])
        axes[1].scatter(pred, y, s=14)
        lim = max(pred.max(), y.max()) * 1.05
        axes[1].plot([0, lim], [0, lim], "r-", label=f"full model, R^2={full.r2:.3f}")
        axes[1].set(xlabel="full count model (s)", ylabel="latency (s)", title=f"N={n}: latency vs full model")
        axes[1].legend()
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        atomic_write(out / f"latency_fits_N{n}.png", buf.getvalue())
        md += [f"![fits](latency_fits_N{n}.png)", ""]

    rows, ratios = _pareto(Path(pruning_csv)) if pruning_csv else ([], {})
    model["pruning_ratios"] = ratios
    if rows:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for method in sorted({r["method"] for r in rows}):
            pts = sorted((int(r["rotations"]), float(r["accuracy"])) for r in rows if r["method"] == method)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=method)
        ax.set(xlabel="rotations (engine plan)", ylabel="validation accuracy (%)", title="accuracy vs rotations")
        ax.legend()
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        atomic_write(out / "pareto.png", buf.getvalue())
        md += ["## Pruning", "", "![pareto](pareto.png)", ""]
        md += [f"- {k}: {v:.2f}x" for k, v in sorted(ratios.items())] + [""]
    prov = model["provenance"]
    md += ["## Provenance", "", f"- report made at git revision {prov['git_revision']}",
           f"- machine: {prov['machine']}", f"- versions: {prov['versions']}",
           "- benchmark files: " + ", ".join(f"{o['file']} (revision {o.get('git_revision', '?')})" for o in origins), ""]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["name", "suite", "poly_modulus_degree", "latency_s", *OPS])
    for c in cases:
        writer.writerow([c.name, c.suite, c.n, c.latency, *[c.counts[op] for op in OPS]])
    atomic_write(out / "report.csv", buf.getvalue().encode())
    atomic_write(out / "cost_model.json", json.dumps(model, indent=2).encode())
    atomic_write(out / "report.md", "\n".join(md).encode())
    first = model["per_n"][str(min(by_n))]
    model.update({k: first[k] for k in ("r2_full", "max_rel_err_full", "r2_rotation_only", "max_rel_err_rotation_only")})
    atomic_write(out / "cost_model.json", json.dumps(model, indent=2).encode())
    return model
