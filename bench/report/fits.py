"""The count models fitted per ring dimension N (in-sample, descriptive), and the share of a
case's time its rotations take.

    rotation-only:  latency = a * key_switches + b
    full:           latency = sum_term u_term * count_term   (no intercept, u_term >= 0; the
                    terms of bench.report.crossval: rotations, (pmul + add) pairs, outputs, masks)

both by least squares on relative error, since cases span three orders of magnitude; the
full model is also evaluated with the unit costs the primitives suite measured (no fitting),
as is and scaled by one fitted overhead factor. How well the count model *predicts* is
judged out of sample, by leave-one-out on the layer cases (bench.report.crossval, `NFit.cv`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heconv.errors import InputError

from .cases import OPS, PRIMITIVE_OF, Case
from .crossval import TERMS, term_counts

DOMINANT_SHARE = 0.5  # rotations "dominate" a case when they take more than this share of its time


@dataclass
class Fit:
    coef: dict[str, float]
    r2: float
    max_rel_err: float


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss_res = float(((y - pred) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def _fit_summary(coef: dict[str, float], y: np.ndarray, pred: np.ndarray) -> Fit:
    return Fit(coef, _r2(y, pred), float(np.max(np.abs(pred - y) / y)))


def _relative_lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares on relative errors (rows divided by y): cases span 0.05 s to 30 s."""
    sol, *_ = np.linalg.lstsq(x / y[:, None], np.ones_like(y), rcond=None)
    return sol


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


def fit_full(cases: list[Case]) -> Fit:
    """latency = sum_term u_term * count_term with u_term >= 0 (non-negative least squares on relative
    error), over the terms of bench.report.crossval.TERMS that any case counts.

    Additions track multiplications and plain additions equal rescales, so they are not
    separate terms (their costs are not identifiable): a (pmul + add) pair and an output
    (rescale + bias add) are.
    """
    from scipy.optimize import nnls

    x = np.array([term_counts(c) for c in cases]).reshape(-1, len(TERMS))
    used = [j for j in range(len(TERMS)) if x[:, j].any()]
    x = x[:, used]
    y = np.array([c.latency for c in cases])
    sol, _ = nnls(x / y[:, None], np.ones_like(y))
    return _fit_summary({t: float(s) for t, s in zip([list(TERMS)[j] for j in used], sol)}, y, x @ sol)


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


def shares_by_kind(cases: list[Case]) -> dict[str, dict]:
    """Per kind of case (`Case.kind`), how many cases, how many rotations dominate, and the share's spread.

    >>> cs = [Case(str(s), "layer", 8192, 1.0, {}, {"kernel": 1}, rotation_share=s) for s in (0.6, 1.0)]
    >>> shares_by_kind(cs)
    {'1x1 conv': {'cases': 2, 'dominate': 2, 'min': 0.6, 'median': 0.8, 'max': 1.0}}
    """
    out = {}
    for kind in sorted({c.kind for c in cases}):
        s = np.array([c.rotation_share for c in cases if c.kind == kind])
        out[kind] = {"cases": len(s), "dominate": int((s > DOMINANT_SHARE).sum()), "min": float(s.min()),
                     "median": float(np.median(s)), "max": float(s.max())}
    return out


@dataclass
class NFit:
    """Everything fitted at one N; `fit_n` makes it and fills in its cases' shares and predictions."""

    n: int
    cases: list[Case]
    fitted: list[Case]
    empty: list[Case]
    rot: Fit
    full: Fit
    measured: Fit
    scaled: Fit
    units: dict[str, float]
    source: str
    cv: dict | None = None  # the cross-validated cost model's fields (bench.report.crossval), set by the report

    def summary(self) -> dict:
        """This N's entry of cost_model.json's per_n: the cross-validated fields first, then the in-sample ones."""
        return {**(self.cv or {}),
            "cases": len(self.cases), "fitted_cases": len(self.fitted),
            "cases_without_operations": [c.name for c in self.empty],
            "r2_rotation_only": self.rot.r2, "max_rel_err_rotation_only": self.rot.max_rel_err,
            "r2_full": self.full.r2, "max_rel_err_full": self.full.max_rel_err,
            "fitted_unit_costs_s": self.full.coef, "rotation_only_fit": self.rot.coef,
            "primitive_unit_costs_s": self.units, "measured_units_from": self.source,
            "r2_full_measured_units": self.measured.r2, "max_rel_err_full_measured_units": self.measured.max_rel_err,
            "overhead_factor": self.scaled.coef["overhead_factor"], "r2_full_measured_scaled": self.scaled.r2,
            "max_rel_err_full_measured_scaled": self.scaled.max_rel_err,
            # over fitted_cases (those with counted operations), as the report's verdict and the shares by kind
            "rotations_dominate": sum(c.rotation_share > DOMINANT_SHARE for c in self.fitted),
            "rotation_share_by_kind": shares_by_kind(self.fitted),
        }


def fit_n(n: int, cs: list[Case], prim: dict[tuple[int, int, str], float]) -> NFit:
    """Fit the cases of one N (prim: {(N, level, primitive): seconds}) and fill in their shares and predictions."""
    units = {p: s for (nn, lv, p), s in prim.items() if nn == n and lv == 0}
    # A layer with every group pruned does no counted HE work (the server only encrypts its
    # bias); the count model cannot predict its time, so it is listed but not fitted.
    empty = [c for c in cs if not any(c.counts[op] for op in OPS)]
    fitted = [c for c in cs if c not in empty]
    if not fitted:
        raise InputError(f"N = {n}: no case with counted operations to fit ({len(cs)} cases all empty)")
    rot, full = fit_rotation_only(fitted), fit_full(fitted)
    measured, scaled = predict_with_units(fitted, units)
    source = "primitives suite" if {"rotation", "pmul", "add"} <= set(units) else "each case's own process"
    for c in cs:
        c.rotation_share = rotation_share(c, units)
        c.predicted_rotation_only_s = rot.coef["a"] * c.counts["key_switches"] + rot.coef["b"]
        c.predicted_full_s = float(term_counts(c) @ np.array([full.coef.get(t, 0.0) for t in TERMS]))
    return NFit(n, cs, fitted, empty, rot, full, measured, scaled, units, source)


COEFF_OPS = ("pmuls", "adds", "plain_adds", "rescales", "encryptions", "encodes")  # masks: encryptions, encodes


@dataclass
class CoefficientFit:
    """The count models on the coefficient algorithm's cases (docs/design.md): rotation-only cannot
    predict them (every case counts 0 rotations, so it fits a constant); the full model uses the
    operations the algorithm does, the masks' encryptions and encodes included."""

    cases: list[Case]
    rot: Fit
    full: Fit

    def summary(self) -> dict:
        return {"cases": len(self.cases), "rotations": sorted({c.rotations for c in self.cases}),
                "r2_rotation_only": self.rot.r2, "max_rel_err_rotation_only": self.rot.max_rel_err,
                "r2_full": self.full.r2, "max_rel_err_full": self.full.max_rel_err,
                "fitted_unit_costs_s": self.full.coef}


def coefficient_counts(c: Case) -> dict[str, float]:
    """A coefficient case's counts, masks included (Case.counts holds the slot engine's OPS only); its
    multiplications and additions in level-0 operations where the case records `pmuls_level0` (a
    last-level conv's work on one prime of two: each counts half), as the crossval reads them.

    >>> coefficient_counts(Case("c", "layer", 8192, 1.0, {}, {"counts": {"pmuls": 8, "adds": 6},
    ...                                                       "pmuls_level0": 4.0}))["adds"]
    3.0
    """
    counts = c.info.get("counts") or {}
    out = {op: float(counts.get(op, 0)) for op in COEFF_OPS}
    if c.info.get("pmuls_level0") is not None and out["pmuls"]:
        factor = float(c.info["pmuls_level0"]) / out["pmuls"]
        out["pmuls"] *= factor
        out["adds"] *= factor
    return out


def fit_coefficient(cases: list[Case]) -> CoefficientFit | None:
    """Both count models on the coefficient cases (None without any).

    >>> cs = [Case(str(p), "layer", 8192, 1e-4 * p + 0.002 * p // 8, {"key_switches": 0},
    ...            {"counts": {"pmuls": p, "encryptions": p // 8}}) for p in (64, 192, 576)]
    >>> f = fit_coefficient(cs)
    >>> round(f.rot.coef["a"], 6), f.rot.r2 <= 0.0, round(f.full.r2, 6)
    (0.0, True, 1.0)
    """
    from scipy.optimize import nnls

    if not cases:
        return None
    rot = fit_rotation_only(cases)
    used = [op for op in COEFF_OPS if any(coefficient_counts(c)[op] for c in cases)]
    x = np.array([[coefficient_counts(c)[op] for op in used] for c in cases], dtype=float)
    y = np.array([c.latency for c in cases])
    sol, _ = nnls(x / y[:, None], np.ones_like(y))
    return CoefficientFit(cases, rot, _fit_summary({op: float(s) for op, s in zip(used, sol)}, y, x @ sol))
