"""The cost model judged as a predictor: fitted on layer cases, scored by leave-one-out
cross-validation, set beside the noise floor, and validated on whole models.

Terms, per N (counts of one case; `TERMS`):

    latency = u_rot * rotations + u_mac * (pmul + add) pairs + u_out * outputs + u_mask * masks
              + u_enc * encryptions

No separately fitted additions, plain additions or rescales: in every case additions track
multiplications and plain additions equal rescales (collinear, so a fit could split their
cost any way). An output is a rescale and a bias add; a mask (coefficient algorithm) a
public-key encryption of zero and its addition (before 2026-12-06's extraction also a random
polynomial drawn, or encoded, and added; the records' `mask_kind` says which). The server's other
encryptions (the slot algorithm's zero ciphertext for an output whose every weight is pruned) are a
term of their own, as they were when a mask did more than encrypt, so that the older runs' masks
are not priced as bare encryptions.
Fitted by non-negative least squares on relative error on the layer cases of one N (slot and
coefficient together), on each case's least time over its rounds; whole models are predicted
from that fit, never fitted.

The **noise floor** is the worst disagreement among cases with identical plans (every count
equal, same algorithm and N): (max - min) / (max + min) of their times. No model of the
counts can do better than that on these data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heconv.coeff_mask import MASK_KIND

from .cases import Case, is_coefficient

# term -> the count field it is read from (in Case.info["counts"], else Case.counts)
TERMS: dict[str, str] = {"rotations": "key_switches", "pmul_add_pairs": "pmuls", "outputs": "rescales",
                         "masks": "encryptions", "masks_before": "encryptions", "encryptions": "encryptions"}
# terms counted only in the cases of one kind of algorithm (is_coefficient: True/False); the others count 0
TERM_ALGORITHM: dict[str, bool] = {"masks": True, "masks_before": True, "encryptions": False}
# the mask terms, each counted only in the cases of its era: "masks" today's (an encryption of zero; no
# encode counted), "masks_before" the masks before the extraction (each counted an encode too)
TERM_MASK_ERA: dict[str, bool] = {"masks": True, "masks_before": False}
# the primitives whose streamed unit costs (the primitives suite) make up one unit of each term
TERM_PRIMITIVES: dict[str, tuple[str, ...]] = {"rotations": ("rotation",), "pmul_add_pairs": ("pmul", "add"),
                                               "outputs": ("rescale", "plain_add"), "masks": ("encrypt", "add"),
                                               "masks_before": ("encode", "encrypt"), "encryptions": ("encrypt",)}
PLAN_FIELDS = ("rotations", "key_switches", "pmuls", "cmuls", "adds", "plain_adds", "rescales", "encodes",
               "encryptions")
NOISE_TARGET = 0.05  # the goal for the floor; cases whose passes agree within it are judged apart


def term_counts(c: Case, terms: tuple[str, ...] = tuple(TERMS)) -> np.ndarray:
    """The case's count of each term.

    >>> term_counts(Case("c", "layer", 8192, 1.0, {"key_switches": 4, "pmuls": 9, "rescales": 2},
    ...                  {"counts": {"encryptions": 2}, "algorithm": "coefficient"}))
    array([4., 9., 2., 2., 0., 0.])
    >>> term_counts(Case("c", "layer", 8192, 1.0, {}, {"counts": {"encryptions": 2, "encodes": 2},
    ...                                                "algorithm": "coefficient"}))      # a mask before
    array([0., 0., 0., 0., 2., 0.])
    >>> term_counts(Case("c", "layer", 8192, 1.0, {"encryptions": 1}, {"schedule": "output-rotation"}))
    array([0., 0., 0., 0., 0., 1.])

    The multiply-accumulates are read in level-0 multiplications where the case records them
    (`pmuls_level0`: each weighted by the primes it works on), since one at the last level of
    [60, 40, 60] costs half; older records ran every multiplication at level 0.

    >>> term_counts(Case("c", "layer", 8192, 1.0, {"pmuls": 8}, {"pmuls_level0": 4.0}), ("pmul_add_pairs",))
    array([4.])

    Likewise the key switches of a whole model whose layers ran at other levels (slot convs at the last
    level, `--value-bound`), from its per-layer records: a key switch on one prime of two costs half.

    >>> term_counts(Case("m", "model", 8192, 1.0, {"key_switches": 30}, {"coeff_mod_bit_sizes": [60, 40, 60],
    ...     "layers": [{"level": 0, "key_switches": 10}, {"level": 1, "key_switches": 20}]}), ("rotations",))
    array([20.])
    """
    counts, coefficient = c.info.get("counts") or {}, is_coefficient(c)
    today = not counts.get("encodes", c.counts.get("encodes", 0))  # a mask before the extraction encoded

    def count(t: str) -> float:
        if TERM_ALGORITHM.get(t, coefficient) != coefficient:
            return 0.0
        if TERM_MASK_ERA.get(t, today) != today:
            return 0.0
        if t == "pmul_add_pairs" and c.info.get("pmuls_level0") is not None:
            return float(c.info["pmuls_level0"])
        if t == "rotations" and (level0 := _key_switches_level0(c.info)) is not None:
            return level0
        return float(counts.get(TERMS[t], c.counts.get(TERMS[t], 0)))

    return np.array([count(t) for t in terms])


def _key_switches_level0(info: dict) -> float | None:
    """A whole model's key switches in level-0 ones: each layer's weighted by the primes left at its level
    (CKKSParams.level_work); None without per-layer levels (a layer case: its record's own count)."""
    layers, bits = info.get("layers"), info.get("coeff_mod_bit_sizes")
    if not layers or not bits or any("level" not in r for r in layers):
        return None
    primes = len(bits) - 1
    return float(sum(float(r.get("key_switches") or 0) * (primes - min(int(r["level"]), primes - 1)) / primes
                     for r in layers))


def _nnls_relative(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    return nnls(x / y[:, None], np.ones_like(y))[0]


def fit_terms(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative unit costs minimising the relative error of x @ u against y.

    >>> x = np.array([[10, 100], [50, 100], [10, 900], [30, 400]], dtype=float)
    >>> np.round(fit_terms(x, x @ np.array([2e-3, 1e-4])), 8).tolist()
    [0.002, 0.0001]
    """
    return _nnls_relative(x, y)


def leave_one_out(x: np.ndarray, y: np.ndarray, fit=fit_terms) -> np.ndarray:
    """Each case predicted by the model fitted on all the others (NaN with fewer than 2 cases).

    >>> x = np.array([[1.0, 1], [2, 1], [3, 1], [4, 1]])
    >>> np.round(leave_one_out(x, x @ np.array([2.0, 1.0])), 6).tolist()
    [3.0, 5.0, 7.0, 9.0]
    """
    out = np.full(len(y), np.nan)
    if len(y) < 2:
        return out
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        out[i] = x[i] @ fit(x[keep], y[keep])
    return out


def _linear_with_intercept(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """latency = a * rotations + b, least squares on relative error (may be negative: no physical units)."""
    return np.linalg.lstsq(x / y[:, None], np.ones_like(y), rcond=None)[0]


def r2(y: np.ndarray, pred: np.ndarray) -> float | None:
    ok = np.isfinite(pred)
    y, pred = y[ok], pred[ok]
    ss_tot = float(((y - y.mean()) ** 2).sum()) if len(y) else 0.0
    return 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else None


def worst_rel_err(y: np.ndarray, pred: np.ndarray) -> float | None:
    err = np.abs(pred - y) / y
    err = err[np.isfinite(err)]
    return float(err.max()) if len(err) else None


UNRECORDED_MASK = "unrecorded"  # runs before the uniform mask record no kind: the interval mask was the only one


def mask_kinds(cases: list[Case]) -> dict[str, int]:
    """How many masked coefficient cases (a mask is an encryption) ran each mask kind
    (heconv.coeff_mask.mask_kind), so a fitted mask unit cost says which mask it prices.

    >>> def case(kind=None, **info):
    ...     return Case("c", "layer", 8192, 1.0, {}, {"algorithm": "coefficient", "counts": {"encryptions": 3},
    ...                                               **({"mask_kind": kind} if kind else {}), **info})
    >>> mask_kinds([case("uniform"), case("uniform"), case(), case("uniform", mask=False),
    ...             Case("s", "layer", 8192, 1.0, {}, {"counts": {"encryptions": 3}})])
    {'uniform': 2, 'unrecorded': 1}
    """
    out: dict[str, int] = {}
    for c in cases:
        masked = (c.info.get("counts") or {}).get("encryptions", 0) > 0 and c.info.get("mask") is not False
        if is_coefficient(c) and masked:
            kind = c.info.get("mask_kind") or UNRECORDED_MASK
            out[kind] = out.get(kind, 0) + 1
    return out


MASK_WORDS = {MASK_KIND: "with the unread coefficients withheld (the default: an encryption of zero each)",
              "uniform": "with the uniform mask (before the extraction)", "interval": "with the interval mask",
              UNRECORDED_MASK: "from runs before the uniform mask (the interval mask then; no kind recorded)"}


def mask_cost_text(n: int | str, unit_costs: dict, kinds: dict | None) -> str | None:
    """Which masks the fitted mask unit costs price, from `mask_kinds`: `masks` today's, `masks_before`
    the kinds before the extraction (their own term: they cost more); None without a mask term or
    kinds (a cost_model.json written before they were recorded).

    >>> mask_cost_text(8192, {"masks_before": 2e-3}, {"uniform": 26})[-92:]
    "ran today's mask, so a whole model that did is predicted without one (heconv/coeff_mask.py)."
    >>> mask_cost_text(8192, {"masks": 2e-3, "masks_before": 2e-3}, {"withheld": 3, "uniform": 2})[55:113]
    '`masks` on 3 layer cases with the unread coefficients with'
    """
    if not kinds or not {"masks", "masks_before"} & set(unit_costs or {}):
        return None
    today = kinds.get(MASK_KIND, 0)
    before = sorted((k, v) for k, v in kinds.items() if k != MASK_KIND)
    parts = [f"`masks` on {today} layer cases {MASK_WORDS[MASK_KIND]}"] if today else []
    if before:
        parts.append("`masks_before` on " + ", ".join(f"{v} {MASK_WORDS.get(k, 'with the ' + k + ' mask')}"
                                                     for k, v in before))
    text = f"The masks' unit costs at N = {n} are fitted per kind: " + "; ".join(parts)
    if not today:
        text += "; no layer case ran today's mask, so a whole model that did is predicted without one"
    return text + " (heconv/coeff_mask.py)."


def plan_key(c: Case) -> tuple:
    """What makes two cases the same plan for a count model: N, algorithm, suite and every count."""
    counts = c.info.get("counts") or c.counts
    return (c.n, c.info.get("algorithm", "slot"), c.suite, *(int(counts.get(f, 0)) for f in PLAN_FIELDS))


def noise_floor(cases: list[Case]) -> tuple[float | None, list[str]]:
    """The worst (max - min) / (max + min) of the times of cases with identical plans, and those cases.

    >>> cs = [Case(n, "layer", 8192, t, {"key_switches": r}, {}) for n, t, r in
    ...       (("a", 1.0, 5), ("b", 1.5, 5), ("c", 2.0, 9), ("d", 2.2, 9), ("e", 3.0, 7))]
    >>> floor, which = noise_floor(cs)
    >>> round(floor, 4), which
    (0.2, ['a', 'b'])
    >>> noise_floor(cs[-1:])
    (None, [])
    """
    groups: dict[tuple, list[Case]] = {}
    for c in cases:
        groups.setdefault(plan_key(c), []).append(c)
    best: tuple[float | None, list[str]] = (None, [])
    for g in groups.values():
        if len(g) < 2:
            continue
        t = [c.latency for c in g]
        spread = (max(t) - min(t)) / (max(t) + min(t))
        if best[0] is None or spread > best[0]:
            best = (spread, sorted(c.name for c in g))
    return best


@dataclass
class CrossValidated:
    """The cost model at one N: terms fitted on the layer cases, leave-one-out scores, the noise
    floor, whole models predicted; `summary()` is cost_model.json's per-N fields."""

    n: int
    layers: list[Case]
    models: list[Case]
    terms: tuple[str, ...]
    unit_costs: dict[str, float]
    cv_pred: np.ndarray
    rot_cases: list[Case]
    rot_cv_pred: np.ndarray
    model_pred: np.ndarray
    floor: float | None
    floor_cases: list[str]
    primitive_units: dict[str, float]

    @property
    def y(self) -> np.ndarray:
        return np.array([c.latency for c in self.layers])

    def agreeing(self) -> list[int]:
        """Indices of the layer cases whose repeated passes agree within NOISE_TARGET (merged runs only)."""
        return [i for i, c in enumerate(self.layers)
                if c.info.get("passes_spread") is not None and c.info["passes_spread"] <= NOISE_TARGET]

    def by_algorithm(self) -> dict[str, dict]:
        out = {}
        for algo in sorted({c.info.get("algorithm", "slot") for c in self.layers}):
            idx = [i for i, c in enumerate(self.layers) if c.info.get("algorithm", "slot") == algo]
            y, p = self.y[idx], self.cv_pred[idx]
            out[algo] = {"n_cases": len(idx), "cv_r2": r2(y, p), "cv_worst_rel_err": worst_rel_err(y, p)}
        return out

    def worst_cases(self, k: int = 5) -> list[dict]:
        err = (self.cv_pred - self.y) / self.y
        order = np.argsort(-np.abs(np.nan_to_num(err)))[:k]
        return [{"case": self.layers[i].name, "latency_s": float(self.y[i]), "cv_predicted_s": float(self.cv_pred[i]),
                 "rel_err": float(err[i])} for i in order]

    def summary(self) -> dict:
        y = self.y
        agree = self.agreeing()
        ym = np.array([c.latency for c in self.models])
        rot_y = np.array([c.latency for c in self.rot_cases])
        measured = {t: self.primitive_units.get(t) for t in self.terms}
        return {
            "n_cases": len(self.layers), "terms": list(self.terms), "unit_costs": self.unit_costs,
            "cv_r2": r2(y, self.cv_pred), "cv_worst_rel_err": worst_rel_err(y, self.cv_pred),
            "cv_by_algorithm": self.by_algorithm(), "cv_worst_cases": self.worst_cases(),
            "noise_floor": self.floor, "noise_floor_cases": self.floor_cases,
            "agreeing_cases": len(agree) if any(c.info.get("passes_spread") is not None for c in self.layers)
            else None,
            "cv_worst_rel_err_agreeing": worst_rel_err(y[agree], self.cv_pred[agree]) if agree else None,
            "cv_r2_rotation_only": r2(rot_y, self.rot_cv_pred),
            "cv_worst_rel_err_rotation_only": worst_rel_err(rot_y, self.rot_cv_pred),
            "rotation_only_cases": len(self.rot_cases),
            "models_worst_rel_err": worst_rel_err(ym, self.model_pred) if len(ym) else None,
            "models": {c.name: {"latency_s": c.latency, "predicted_s": float(p)}
                       for c, p in zip(self.models, self.model_pred)},
            "unit_costs_primitives": measured, "mask_kinds": mask_kinds(self.layers),
            "unit_costs_over_primitives": {t: (self.unit_costs[t] / m if m else None)
                                           for t, m in measured.items() if t in self.unit_costs},
        }


def primitive_term_units(prim: dict[tuple[int, int, str], float], n: int) -> dict[str, float]:
    """Each term's unit cost from the primitives suite at N, level 0 (a term is missing when a primitive is)."""
    units = {p: s for (nn, lv, p), s in prim.items() if nn == n and lv == 0}
    return {t: sum(units[p] for p in ps) for t, ps in TERM_PRIMITIVES.items() if all(p in units for p in ps)}


def cross_validate(n: int, cases: list[Case], prim: dict[tuple[int, int, str], float]) -> CrossValidated | None:
    """The cost model at N from `cases` (layers and models of any algorithm); None without a layer case
    that does counted work. Cases that count no operation are left out (nothing predicts them)."""
    worked = [c for c in cases if c.n == n and term_counts(c).any()]
    layers = [c for c in worked if c.suite == "layer"]
    models = [c for c in worked if c.suite == "model"]
    if not layers:
        return None
    x, y = np.array([term_counts(c) for c in layers]), np.array([c.latency for c in layers])
    used = [j for j in range(x.shape[1]) if x[:, j].any()]
    terms = tuple(t for j, t in enumerate(TERMS) if j in used)
    x = x[:, used]
    coef = fit_terms(x, y) if len(y) else np.zeros(len(used))
    rot_cases = [c for c in layers if not is_coefficient(c)]
    xr = np.array([[term_counts(c, ("rotations",))[0], 1.0] for c in rot_cases]).reshape(-1, 2)
    yr = np.array([c.latency for c in rot_cases])
    xm = np.array([term_counts(c, terms) for c in models]).reshape(-1, len(terms))
    floor, floor_cases = noise_floor(layers)
    return CrossValidated(n, layers, models, terms, {t: float(u) for t, u in zip(terms, coef)},
                          leave_one_out(x, y), rot_cases, leave_one_out(xr, yr, _linear_with_intercept),
                          xm @ coef, floor, floor_cases, primitive_term_units(prim, n))
