"""Cost-model validation: read benchmark JSON, fit latency against counts, write the report.

Two models are fitted per ring dimension N on the layer and model cases:

    rotation-only:  latency = a * key_switches + b
    full:           latency = sum_op u_op * count_op   (no intercept)

both by least squares on relative error, since cases span three orders of magnitude,
and the full model is also evaluated with the unit costs the primitives suite measured
(no fitting). Beside the fits the report compares the pruning methods on real pruned
checkpoints (model and layer suites), plots the sparsity sweeps and the accuracy-rotation
trade-off of `pruning_summary.csv`, and renders the README's results block.

Outputs: results/report.md, results/report.csv (one tidy row a case), results/cost_model.json,
latency_fits_N<N>.png, sweeps.png and pareto.png.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .files import atomic_write
from .provenance import provenance

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

OPS = ("key_switches", "pmuls", "adds", "plain_adds", "rescales")
PRIMITIVE_OF = {"key_switches": "rotation", "pmuls": "pmul", "adds": "add", "plain_adds": "plain_add",
                "rescales": "rescale"}
CSV_COLUMNS = ("name", "suite", "network", "layer", "method", "weights", "sweep", "prune_diagonals",
               "prune_positions", "poly_modulus_degree", "latency_s", *OPS, "rotation_share",
               "predicted_rotation_only_s", "predicted_full_s")
SWEEPS = ("diagonals", "positions")
REFERENCE_METHOD = "artemis-diagonal"
BASELINE_METHODS = ("hunter", "dense")
HEADLINE_N = 8192  # the top-level r2_* keys of cost_model.json are this N's when it was measured
README_BEGIN = "<!-- results:begin -->"
README_END = "<!-- results:end -->"
PRUNING_COLUMNS = ("model", "dataset", "input_size", "method", "fraction", "accuracy", "rotations", "accepted")


@dataclass
class Case:
    """One layer or model case; the last three fields are filled in by `write_report`."""

    name: str
    suite: str  # layer | model
    n: int
    latency: float
    counts: dict[str, int]
    info: dict
    rotation_share: float = float("nan")
    predicted_rotation_only_s: float = float("nan")
    predicted_full_s: float = float("nan")

    @property
    def network(self) -> str | None:
        """The network a layer was taken from, or the model a model case ran."""
        if self.suite == "model":
            return self.info.get("model", self.info.get("network"))
        return self.info.get("network", "resnet18")

    @property
    def layer(self) -> str | None:
        return self.info.get("layer") if self.suite == "layer" else None

    @property
    def method(self) -> str:
        return self.info.get("method") or "synthetic"

    @property
    def weights(self) -> str:
        return self.info.get("weights") or "synthetic"

    @property
    def sweep(self) -> str | None:
        return self.info.get("sweep") or None

    @property
    def prune_diagonals(self) -> float:
        return float(self.info.get("prune_diagonals") or 0.0)

    @property
    def prune_positions(self) -> float:
        return float(self.info.get("prune_positions") or 0.0)

    @property
    def rotations(self) -> int:
        """Rotations counted; older files only have key switches, which equal them in this engine."""
        c = self.info.get("counts") or {}
        return int(c.get("rotations", self.counts.get("key_switches", 0)))


@dataclass
class Fit:
    coef: dict[str, float]
    r2: float
    max_rel_err: float


def _case(path: Path, b: dict, e: dict, stats: dict) -> Case:
    name = b.get("name", "?")
    suite = e.get("suite") or ("model" if "model" in e else "layer")
    if suite not in ("layer", "model"):
        raise ValueError(f"{path}: {name}: extra_info suite must be 'layer' or 'model', got {suite!r}")
    if e.get("sweep") not in (None, *SWEEPS):
        raise ValueError(f"{path}: {name}: extra_info sweep must be one of {SWEEPS} or null, got {e['sweep']!r}")
    if not isinstance(e["counts"], dict):
        raise ValueError(  # noqa: TRY004 - a malformed file is bad input like any other, reported the same way
            f"{path}: {name}: extra_info counts must be an object, got {type(e['counts']).__name__}")
    if "poly_modulus_degree" not in e:
        raise ValueError(f"{path}: {name}: extra_info has counts but no poly_modulus_degree")
    if suite == "model":
        if "server_s" not in e:
            raise ValueError(f"{path}: {name}: model case without extra_info server_s (the latency fitted)")
        latency = float(e["server_s"])  # the client's refresh is simulated, so only the server's time is fitted
    else:
        latency = float(stats["mean"])
    return Case(name, suite, int(e["poly_modulus_degree"]), latency,
                {k: int(e["counts"].get(k, 0)) for k in OPS}, e)


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
                cases.append(_case(path, b, e, stats))
    if not cases and not units:
        raise ValueError(f"no benchmark with counts or primitives in {[str(p) for p in paths]}")
    return cases, units, origins


def default_benchmark_files(folder: str | Path) -> list[Path]:
    """The run a report reads by default: the newest full run in `folder`, else the newest run.

    Names are bench-<UTC time>-<revision>-<suite>.json, so name order is time order;
    older runs stay on disk (runs never overwrite each other) but would repeat the same
    cases, so they are read only when named explicitly.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> for n in ("bench-20260101T000000Z-aa-full.json", "bench-20260102T000000Z-bb-quick.json"):
    ...     _ = (d / n).write_text("{}")
    >>> [p.name for p in default_benchmark_files(d)]
    ['bench-20260101T000000Z-aa-full.json']
    """
    files = sorted(Path(folder).glob("bench-*.json"))
    full = [f for f in files if f.name.endswith("-full.json")]
    return (full or files)[-1:]


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


def rotation_share(c: Case, primitives: dict[str, float]) -> float:
    """Share of the case's time that its rotations take, by measured unit costs (0 when none are known).

    >>> c = Case("c", "layer", 8192, 1.0, {"key_switches": 10, "pmuls": 100, "adds": 0, "plain_adds": 0,
    ...          "rescales": 0}, {})
    >>> rotation_share(c, {"rotation": 2e-3, "pmul": 2e-4, "add": 5e-5})
    0.5
    """
    cu = case_units(c, primitives)
    t = {op: c.counts.get(op, 0) * cu.get(PRIMITIVE_OF[op], 0.0) for op in OPS}
    total = sum(t.values())
    return t["key_switches"] / total if total > 0 else 0.0


def tidy_table(cases: list[Case]) -> pd.DataFrame:
    """One row a case with the columns CSV_COLUMNS, sorted so the same input gives the same file.

    `network` is the network a layer case came from, or the
    model a model case ran; `layer` and `sweep` are empty where they do not apply.
    """
    import pandas as pd

    rows = [{"name": c.name, "suite": c.suite, "network": c.network, "layer": c.layer, "method": c.method,
             "weights": c.weights, "sweep": c.sweep, "prune_diagonals": c.prune_diagonals,
             "prune_positions": c.prune_positions, "poly_modulus_degree": c.n, "latency_s": c.latency,
             **{op: c.counts[op] for op in OPS}, "rotation_share": c.rotation_share,
             "predicted_rotation_only_s": c.predicted_rotation_only_s, "predicted_full_s": c.predicted_full_s}
            for c in cases]
    df = pd.DataFrame(rows, columns=list(CSV_COLUMNS))
    key = ["suite", "poly_modulus_degree", "network", "layer", "method", "weights", "sweep", "prune_diagonals",
           "prune_positions", "name", "latency_s"]
    return df.sort_values(key, na_position="first", kind="mergesort").reset_index(drop=True)


def _last_by(cases: list[Case], key) -> dict:
    """{key(c): c}, the last case winning: files come in name (= time) order, so the newest run."""
    out = {}
    for c in cases:
        out[key(c)] = c
    return out


def _accuracy(c: Case) -> dict:
    ckpt = c.info.get("checkpoint") or {}
    return {k: ckpt[k] for k in ("dataset", "val_accuracy", "test_accuracy") if k in ckpt}


def method_ratios(cases: list[Case]) -> dict[str, dict[str, dict]]:
    """Per model, rotations and server latency of hunter and dense over artemis-diagonal (checkpoint model cases).

    Each entry also holds both methods' accuracies from extra_info["checkpoint"] when the
    benchmark recorded them. Where a (model, method) ran more than once the last case wins.

    >>> def mk(m, r, t):
    ...     return Case(m, "model", 8192, t, {"key_switches": r},
    ...                 {"model": "resnet20", "method": m, "weights": "checkpoint"})
    >>> r = method_ratios([mk("hunter", 300, 3.0), mk("artemis-diagonal", 100, 1.5), mk("dense", 400, 4.0)])
    >>> r["resnet20"]["hunter/artemis-diagonal"], list(r["resnet20"])
    ({'rotations': 3.0, 'latency': 2.0}, ['hunter/artemis-diagonal', 'dense/artemis-diagonal'])
    """
    chosen = _last_by([c for c in cases if c.suite == "model" and c.weights == "checkpoint"],
                      lambda c: (c.network, c.method))
    out: dict[str, dict[str, dict]] = {}
    for model in sorted({m for m, _ in chosen}, key=str):
        ref = chosen.get((model, REFERENCE_METHOD))
        if ref is None:
            continue
        for other in BASELINE_METHODS:
            o = chosen.get((model, other))
            if o is None:
                continue
            entry = {"rotations": o.rotations / ref.rotations if ref.rotations else None,
                     "latency": o.latency / ref.latency if ref.latency else None}
            acc = {m: _accuracy(c) for m, c in ((other, o), (REFERENCE_METHOD, ref)) if _accuracy(c)}
            if acc:
                entry["accuracy"] = acc
            out.setdefault(model, {})[f"{other}/{REFERENCE_METHOD}"] = entry
    return out


def sweep_fraction(c: Case) -> float:
    """The pruned fraction a sweep case varies: diagonals or positions.

    >>> sweep_fraction(Case("c", "layer", 8192, 1.0, {}, {"sweep": "positions", "prune_positions": 0.3}))
    0.3
    """
    return c.prune_positions if c.sweep == "positions" else c.prune_diagonals


def sweep_series(cases: list[Case]) -> dict[tuple[int, str, str, str], list[Case]]:
    """Layer sweep cases by (N, network, layer, sweep kind), each sorted by pruned fraction."""
    series: dict[tuple[int, str, str, str], list[Case]] = {}
    for c in cases:
        if c.suite == "layer" and c.sweep in SWEEPS:
            series.setdefault((c.n, str(c.network), str(c.layer), c.sweep), []).append(c)
    return {k: sorted(v, key=sweep_fraction) for k, v in sorted(series.items())}


def _as_paths(pruning_csv: str | Path | list[str | Path] | tuple | None) -> list[Path]:
    if pruning_csv is None:
        return []
    if isinstance(pruning_csv, (str, Path)):
        return [Path(pruning_csv)]
    return [Path(p) for p in pruning_csv]


def _pareto(csv_paths: list[Path]) -> tuple[list[dict], dict]:
    """Rows of the pruning_summary.csv files and the rotation ratios of the chosen step of each method."""
    rows = []
    for path in csv_paths:
        if not path.is_file():
            log.warning("%s: pruning summary not found, left out of the report", path)
            continue
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [k for k in PRUNING_COLUMNS if k not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: not a pruning summary, missing columns {missing}")
            rows += list(reader)
    chosen = {}
    for r in rows:
        if r["accepted"] == "True":
            key = (r["model"], r["dataset"], r["input_size"], r["method"])
            if key not in chosen or float(r["fraction"]) > float(chosen[key]["fraction"]):
                chosen[key] = r
    ratios = {}
    for (model, dataset, size, method), r in chosen.items():
        if method != REFERENCE_METHOD:
            continue
        for other in BASELINE_METHODS:
            o = chosen.get((model, dataset, size, other))
            if o:
                ratios[f"{model}/{dataset}/{size}: {other} / {REFERENCE_METHOD} rotations"] = (
                    int(o["rotations"]) / int(r["rotations"]))
    return rows, ratios


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _finite(obj):
    """NaN and infinities as null, so cost_model.json is strict JSON (R^2 of one case is undefined)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def _fits_section(n: int, cs: list[Case], prim: dict, model: dict, out: Path) -> list[str]:
    """Fit one N, fill in its cases' predictions, write its plot; returns its Markdown."""
    import matplotlib.pyplot as plt

    units = {p: s for (nn, lv, p), s in prim.items() if nn == n and lv == 0}
    # A layer with every group pruned does no counted HE work (the server only encrypts its
    # bias); the count model cannot predict its time, so it is listed but not fitted.
    empty = [c for c in cs if not any(c.counts[op] for op in OPS)]
    fitted = [c for c in cs if c not in empty]
    if not fitted:
        raise ValueError(f"N = {n}: no case with counted operations to fit ({len(cs)} cases all empty)")
    rot, full = fit_rotation_only(fitted), fit_full(fitted)
    measured, scaled = predict_with_units(fitted, units)
    source = "primitives suite" if {"rotation", "pmul", "add"} <= set(units) else "each case's own process"
    for c in cs:
        c.rotation_share = rotation_share(c, units)
        c.predicted_rotation_only_s = rot.coef["a"] * c.counts["key_switches"] + rot.coef["b"]
        c.predicted_full_s = sum(c.counts[op] * full.coef.get(op, 0.0) for op in OPS)
    model["per_n"][str(n)] = {
        "cases": len(cs), "fitted_cases": len(fitted), "cases_without_operations": [c.name for c in empty],
        "r2_rotation_only": rot.r2, "max_rel_err_rotation_only": rot.max_rel_err,
        "r2_full": full.r2, "max_rel_err_full": full.max_rel_err, "fitted_unit_costs_s": full.coef,
        "rotation_only_fit": rot.coef, "primitive_unit_costs_s": units, "measured_units_from": source,
        "r2_full_measured_units": measured.r2, "max_rel_err_full_measured_units": measured.max_rel_err,
        "overhead_factor": scaled.coef["overhead_factor"], "r2_full_measured_scaled": scaled.r2,
        "max_rel_err_full_measured_scaled": scaled.max_rel_err,
        "rotations_dominate": sum(c.rotation_share > 0.5 for c in cs),
    }
    md = [f"## N = {n} ({len(cs)} cases)", ""]
    if empty:
        md += [f"{len(empty)} case(s) with every weight group pruned do no counted HE operation (the server "
               "encrypts the bias alone) and are left out of the fits: " + ", ".join(c.name for c in empty), ""]
    md += ["| model | R^2 | worst relative error |", "|---|---|---|",
           (f"| rotation only: latency = {rot.coef['a'] * 1e3:.3f} ms x rotations {rot.coef['b']:+.3f} s "
           f"| {_fmt(rot.r2, '.4f')} | {rot.max_rel_err:.1%} |"),
           f"| full, fitted unit costs (NNLS) | {_fmt(full.r2, '.4f')} | {full.max_rel_err:.1%} |",
           f"| full, measured unit costs ({source}) | {_fmt(measured.r2, '.4f')} | {measured.max_rel_err:.1%} |",
           (f"| full, measured unit costs x {scaled.coef['overhead_factor']:.3f} (fitted overhead) "
            f"| {_fmt(scaled.r2, '.4f')} | {scaled.max_rel_err:.1%} |"),
           "", "Fitted unit costs (NNLS; additions track multiplications and plain additions track "
           "rescales, so those pairs are not separately identifiable): "
            + ", ".join(f"{k} {v * 1e3:.4f} ms" for k, v in full.coef.items()), ""]
    md += ["| case | rotations | pmuls | latency s | rotation share | rotations dominate |",
           "|---|---|---|---|---|---|"]
    for c in sorted(cs, key=lambda c: c.name):
        model["rotation_share"][c.name] = c.rotation_share
        md.append(f"| {c.name} | {c.counts['key_switches']} | {c.counts['pmuls']} | {c.latency:.4f} | "
                  f"{c.rotation_share:.2f} | {'yes' if c.rotation_share > 0.5 else 'no'} |")
    md.append("")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ks = np.array([c.counts["key_switches"] for c in cs])
    y = np.array([c.latency for c in cs])
    axes[0].scatter(ks, y, s=14)
    xs = np.linspace(0, ks.max() * 1.05, 50)
    axes[0].plot(xs, rot.coef["a"] * xs + rot.coef["b"], "r-", label=f"rotation-only fit, R^2={rot.r2:.3f}")
    axes[0].set(xlabel="rotations (key switches)", ylabel="latency (s)", title=f"N={n}: latency vs rotations")
    axes[0].legend()
    pred = np.array([c.predicted_full_s for c in cs])
    axes[1].scatter(pred, y, s=14)
    lim = max(pred.max(), y.max()) * 1.05
    axes[1].plot([0, lim], [0, lim], "r-", label=f"full model, R^2={full.r2:.3f}")
    axes[1].set(xlabel="full count model (s)", ylabel="latency (s)", title=f"N={n}: latency vs full model")
    axes[1].legend()
    atomic_write(out / f"latency_fits_N{n}.png", _png(fig))
    return md + [f"![fits](latency_fits_N{n}.png)", ""]


def _accuracy_text(acc: dict) -> str:
    if not acc:
        return ""
    parts = [f"{k.replace('_accuracy', '')} {float(acc[k]):.2f}%" for k in ("test_accuracy", "val_accuracy") if k in acc]
    return ", ".join(parts) + (f" ({acc['dataset']})" if "dataset" in acc else "")


def _methods_section(cases: list[Case], ratios: dict) -> list[str]:
    ckpt_models = sorted(_last_by([c for c in cases if c.suite == "model" and c.weights == "checkpoint"],
                                  lambda c: (c.network, c.method)).items(), key=lambda kv: tuple(map(str, kv[0])))
    ckpt_layers = sorted(_last_by([c for c in cases if c.suite == "layer" and c.weights == "checkpoint"],
                                  lambda c: (c.network, c.layer, c.method, c.n)).items(),
                         key=lambda kv: tuple(map(str, kv[0])))
    md = []
    if ckpt_models:
        md += ["## Pruned checkpoints, whole models", "",
               "| model | method | N | rotations | server latency s | accuracy |", "|---|---|---|---|---|---|"]
        md += [f"| {m} | {meth} | {c.n} | {c.rotations} | {c.latency:.4f} | {_accuracy_text(_accuracy(c))} |"
               for (m, meth), c in ckpt_models]
        md.append("")
        if ratios:
            md += [f"Ratios to {REFERENCE_METHOD} (higher: {REFERENCE_METHOD} saves more):", "",
                   "| model | methods | rotations | server latency |", "|---|---|---|---|"]
            md += [f"| {m} | {k} | {_fmt(v['rotations'], '.2f')}x | {_fmt(v['latency'], '.2f')}x |"
                   for m, d in ratios.items() for k, v in d.items()]
            md.append("")
    if ckpt_layers:
        md += ["## Pruned checkpoints, single layers", "",
               "| network | layer | method | N | rotations | latency s |", "|---|---|---|---|---|---|"]
        md += [f"| {net} | {layer} | {meth} | {n} | {c.rotations} | {c.latency:.4f} |"
               for (net, layer, meth, n), c in ckpt_layers]
        md.append("")
    return md


def _sweeps_section(cases: list[Case], out: Path) -> list[str]:
    import matplotlib.pyplot as plt

    series = sweep_series(cases)
    if not series:
        return []
    several_n = len({k[0] for k in series}) > 1
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    md = ["## Sparsity sweeps (synthetic weights)", "",
          "| network | layer | N | sweep | pruned fraction | rotations | pmuls | latency s |",
          "|---|---|---|---|---|---|---|---|"]
    for (n, net, layer, kind), cs in series.items():
        label = f"{net} {layer}, {kind}" + (f", N={n}" if several_n else "")
        style = "o-" if kind == "diagonals" else "s--"
        fr = [sweep_fraction(c) for c in cs]
        axes[0].plot(fr, [c.rotations for c in cs], style, label=label)
        axes[1].plot(fr, [c.latency for c in cs], style, label=label)
        md += [f"| {net} | {layer} | {n} | {kind} | {f:.2f} | {c.rotations} | {c.counts['pmuls']} | {c.latency:.4f} |"
               for f, c in zip(fr, cs)]
    axes[0].set(xlabel="pruned fraction", ylabel="rotations", title="rotations vs pruned fraction")
    axes[1].set(xlabel="pruned fraction", ylabel="latency (s)", title="latency vs pruned fraction")
    axes[1].legend(fontsize=7)
    atomic_write(out / "sweeps.png", _png(fig))
    return md + ["", "![sweeps](sweeps.png)", ""]


def _pareto_section(rows: list[dict], ratios: dict, out: Path) -> list[str]:
    import matplotlib.pyplot as plt

    if not rows:
        return []
    panels = sorted({(r["model"], r["dataset"], r["input_size"]) for r in rows},
                    key=lambda k: (k[0], k[1], int(k[2]) if k[2].isdigit() else k[2]))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, 4.2 * nrows), squeeze=False)
    for ax, (model, dataset, size) in zip(axes.flat, panels):
        sel = [r for r in rows if (r["model"], r["dataset"], r["input_size"]) == (model, dataset, size)]
        for method in sorted({r["method"] for r in sel}):
            pts = sorted((int(r["rotations"]), float(r["accuracy"])) for r in sel if r["method"] == method)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=method)
        ax.set(xlabel="rotations (engine plan)", ylabel="validation accuracy (%)",
               title=f"{model}, {dataset}, {size}x{size}: accuracy vs rotations")
        ax.legend()
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    atomic_write(out / "pareto.png", _png(fig))
    return (["## Pruning", "", "![pareto](pareto.png)", ""]
            + [f"- {k}: {v:.2f}x" for k, v in sorted(ratios.items())] + [""])


def write_report(paths: list[str | Path], out_dir: str | Path,
                 pruning_csv: str | Path | list[str | Path] | None = None) -> dict:
    """Fit, plot and write report.md, report.csv, cost_model.json into out_dir. Returns cost_model.json's content.

    pruning_csv: one pruning_summary.csv or a list of them (missing ones are left out with a warning).
    """
    import matplotlib

    matplotlib.use("Agg")

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
        md += _fits_section(n, cs, prim, model, out)

    model["method_ratios"] = method_ratios(cases)
    md += _methods_section(cases, model["method_ratios"])
    md += _sweeps_section(cases, out)
    rows, ratios = _pareto(_as_paths(pruning_csv))
    model["pruning_ratios"] = ratios
    md += _pareto_section(rows, ratios, out)

    prov = model["provenance"]
    md += ["## Provenance", "", f"- report made at git revision {prov['git_revision']}",
           f"- machine: {prov['machine']}", f"- versions: {prov['versions']}",
           "- benchmark files: " + ", ".join(f"{o['file']} (revision {o.get('git_revision', '?')})" for o in origins), ""]
    headline = model["per_n"][str(HEADLINE_N if HEADLINE_N in by_n else min(by_n))]
    model.update({k: headline[k] for k in ("r2_full", "max_rel_err_full", "r2_rotation_only", "max_rel_err_rotation_only")})
    model = _finite(model)

    atomic_write(out / "report.csv", tidy_table(cases).to_csv(index=False, lineterminator="\n").encode())
    atomic_write(out / "cost_model.json", json.dumps(model, indent=2, allow_nan=False).encode())
    atomic_write(out / "report.md", "\n".join(md).encode())
    return model


def render_readme_block(cost_model: dict) -> str:
    """A short Markdown summary of cost_model.json's content, for the README's results block.

    >>> block = render_readme_block({"per_n": {"8192": {"cases": 3, "r2_rotation_only": 0.9,
    ...     "max_rel_err_rotation_only": 0.1, "r2_full": 0.99, "max_rel_err_full": 0.01, "rotations_dominate": 2}}})
    >>> print(block.splitlines()[4])
    | 8192 | 3 | 0.9000 | 10.0% | 0.9900 | 1.0% | 2 of 3 |
    """
    per_n = cost_model.get("per_n", {})
    lines = [("_Written by `artemis report` from `results/cost_model.json`; do not edit by hand. "
              "Full report: [results/report.md](results/report.md)._"), "",
             ("| N | cases | R^2 rotations only | worst rel. error | R^2 full model | worst rel. error "
              "| rotations dominate |"),
             "|---|---|---|---|---|---|---|"]
    for n, p in sorted(per_n.items(), key=lambda kv: int(kv[0])):
        k = p.get("rotations_dominate")
        verdict = "n/a" if k is None else f"{k} of {p['cases']}"
        lines.append(f"| {n} | {p['cases']} | {_fmt(p.get('r2_rotation_only'), '.4f')} "
                     f"| {_fmt(p.get('max_rel_err_rotation_only'), '.1%')} | {_fmt(p.get('r2_full'), '.4f')} "
                     f"| {_fmt(p.get('max_rel_err_full'), '.1%')} | {verdict} |")
    if all("rotations_dominate" in p for p in per_n.values()):
        dominant, total = sum(p["rotations_dominate"] for p in per_n.values()), sum(p["cases"] for p in per_n.values())
    else:  # files written before the per-N count: case names, which may repeat across N
        shares = [s for s in cost_model.get("rotation_share", {}).values() if s is not None]
        dominant, total = sum(s > 0.5 for s in shares), len(shares)
    lines += ["", ("Rotation-only model: latency = a x rotations + b; full model: non-negative unit costs for "
                   "rotations, multiplications, additions and rescales. Rotations dominate (more than half of a "
                   f"case's time by measured unit costs) in {dominant} of {total} cases."), ""]
    pruning = cost_model.get("pruning_ratios") or {}
    if pruning:
        lines += [("Rotation ratios of the pruning methods (each method's most pruned step that kept the "
                   "accuracy budget, engine plan, `pruning_summary.csv`):"), ""]
        lines += [f"- {k}: {v:.2f}x" for k, v in sorted(pruning.items())] + [""]
    methods = cost_model.get("method_ratios") or {}
    if methods:
        lines += ["Pruned checkpoints run encrypted (model suite):", "",
                  "| model | methods | rotations | server latency | accuracy |", "|---|---|---|---|---|"]
        for m, d in sorted(methods.items()):
            for k, v in d.items():
                acc = "; ".join(f"{meth}: {_accuracy_text(a)}" for meth, a in (v.get("accuracy") or {}).items())
                lines.append(f"| {m} | {k} | {_fmt(v.get('rotations'), '.2f')}x | {_fmt(v.get('latency'), '.2f')}x "
                             f"| {acc} |")
        lines.append("")
    prov = cost_model.get("provenance") or {}
    sources = ", ".join(f"`{o.get('file', '?')}` (revision {o.get('git_revision', '?')})"
                        for o in cost_model.get("sources", []))
    lines.append(f"Report made at git revision {prov.get('git_revision', '?')} from {sources or 'no files'}.")
    return "\n".join(lines)


def _split_readme(path: str | Path) -> tuple[str, str, str]:
    """(text up to and including the begin marker line, the block, the end marker line and the rest)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    lines = text.splitlines(keepends=True)
    begin = [i for i, line in enumerate(lines) if line.strip() == README_BEGIN]
    end = [i for i, line in enumerate(lines) if line.strip() == README_END]
    if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
        raise ValueError(f"{path}: needs one line '{README_BEGIN}' and, after it, one line '{README_END}' "
                         f"(found {len(begin)} and {len(end)})")
    b, e = begin[0], end[0]
    return "".join(lines[:b + 1]), "".join(lines[b + 1:e]), "".join(lines[e:])


def read_readme_block(path: str | Path) -> str:
    """The text between the README's results markers, without its final newline."""
    return _split_readme(path)[1].rstrip("\n")


def update_readme(path: str | Path, block: str) -> bool:
    """Replace the text between the results markers of `path` with `block`; False when it was already there."""
    head, old, tail = _split_readme(path)
    body = block.rstrip("\n")
    new = head + (body + "\n" if body else "") + tail
    if new == head + old + tail:
        return False
    atomic_write(path, new.encode())
    return True
