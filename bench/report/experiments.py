"""Verdicts on the pruning claims from the experiments database, with intervals over seeds.

Per model, every finished pruning run gives a front of (rotations, accuracy) points, one per
step. The rotations a method needs at an accuracy drop of at most `max_drop` points from the
dense model of the same seed are read off that front by linear interpolation between its
Pareto points (`rotations_at_drop`). Lambdas are chosen on the validation split; the figures
reported are on the test split. Ratios between methods are taken per seed and summarised by
their geometric mean, with a percentile bootstrap over seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

REFERENCE = "artemis-diagonal"
MIN_SEEDS = 3  # the experiments issue's minimum for a verdict
# (numerator, denominator, what the ratio says) of rotations at the accuracy budget
RATIOS = (("hunter", REFERENCE, "the paper's claim (1.2-6x) against our strongest Hunter"),
          ("hunter-plaintext", REFERENCE, "against the plaintext-only reading of Hunter"),
          ("dense", REFERENCE, "against no pruning"),
          ("unstructured", REFERENCE, "against unstructured magnitude pruning"),
          ("diagonal-no-lasso", REFERENCE, "what the group-Lasso training adds (same groups, plain training)"),
          ("dense", "diagonal-no-lasso", "what the choice of groups alone gives (no Lasso)"),
          ("artemis-positional", REFERENCE, "> 1: diagonal groups beat positional ones"),
          ("artemis-both", REFERENCE, "> 1: diagonal groups beat diagonal + positional"))


def rotations_at_drop(points: list[tuple[float, float]], target: float) -> float | None:
    """Fewest rotations at which the front of (rotations, accuracy) points reaches `target` accuracy,
    interpolated linearly between Pareto points; None when no point reaches it.

    >>> rotations_at_drop([(1000, 90.0), (600, 89.5), (300, 87.0)], 89.0)
    540.0
    >>> rotations_at_drop([(1000, 90.0), (300, 89.9)], 89.0), rotations_at_drop([(1000, 88.0)], 89.0)
    (300.0, None)
    """
    front = pareto_front(points)
    ok = [(r, a) for r, a in front if a >= target]
    if not ok:
        return None
    r_ok, a_ok = min(ok)
    below = [(r, a) for r, a in front if r < r_ok]
    if not below:
        return float(r_ok)
    r_lo, a_lo = max(below)  # the next Pareto point with fewer rotations (and accuracy under target)
    return float(r_lo + (target - a_lo) / (a_ok - a_lo) * (r_ok - r_lo))


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both fewer rotations and higher accuracy, by rotations.

    >>> pareto_front([(100, 80.0), (200, 79.0), (300, 85.0)])
    [(100, 80.0), (300, 85.0)]
    """
    front: list[tuple[float, float]] = []
    for r, a in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or a > front[-1][1]:
            front.append((r, a))
    return front


def bootstrap_interval(values: list[float], reps: int = 10000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the geometric mean of positive values (resampling them).

    >>> bootstrap_interval([2.0, 2.0, 2.0])
    (2.0, 2.0)
    """
    logs = np.log(np.asarray(values, dtype=float))
    rng = np.random.default_rng(seed)
    means = logs[rng.integers(0, len(logs), (reps, len(logs)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(round(math.exp(lo), 12)), float(round(math.exp(hi), 12))


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% t-interval over the values; one value gives a zero-width interval."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), float(v.mean()), float(v.mean())
    from scipy import stats

    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


@dataclass
class MethodResult:
    """One method (at its chosen lambdas) on one model: per seed, rotations at the budget."""

    method: str
    lambdas: tuple[float, float]
    seeds: list[int]
    rotations: dict[int, float | None]  # test split, per seed
    val_rotations: dict[int, float | None]
    chosen_test: list[float] = field(default_factory=list)  # test accuracy of the step chosen on validation
    chosen_rotations: list[int] = field(default_factory=list)
    server_s: dict[int, float] = field(default_factory=dict)  # encrypted server time of the chosen step, where measured


def _runs(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["run_id"], []).append(r)
    return {k: sorted(v, key=lambda r: int(r["step"])) for k, v in out.items()}


def model_results(rows: list[dict], max_drop: float = 1.0) -> dict[str, MethodResult]:
    """The results of every method on one model's rows (experiments.csv rows of one model/data/size)."""
    runs = _runs(rows)
    dense = {int(s[0]["seed"]): s[0] for s in runs.values() if s[0]["method"] == "dense"}
    by_method: dict[tuple[str, tuple[float, float]], list[list[dict]]] = {}
    for steps in runs.values():
        s0 = steps[0]
        by_method.setdefault((s0["method"], (float(s0["lambda_p"]), float(s0["lambda_d"]))), []).append(steps)
    candidates: dict[str, list[MethodResult]] = {}
    for (method, lams), all_steps in by_method.items():
        res = MethodResult(method, lams, [], {}, {})
        for steps in all_steps:
            seed = int(steps[0]["seed"])
            if seed not in dense:
                continue
            res.seeds.append(seed)
            ref = dense[seed]
            res.rotations[seed] = rotations_at_drop([(int(s["rotations"]), float(s["test_accuracy"])) for s in steps],
                                                    float(ref["test_accuracy"]) - max_drop)
            res.val_rotations[seed] = rotations_at_drop(
                [(int(s["rotations"]), float(s["val_accuracy"])) for s in steps], float(ref["val_accuracy"]) - max_drop)
            chosen = [s for s in steps if int(s["chosen"])] or steps[:1]
            res.chosen_test.append(float(chosen[0]["test_accuracy"]))
            res.chosen_rotations.append(int(chosen[0]["rotations"]))
            if chosen[0].get("encrypted_server_s") not in (None, ""):
                res.server_s[seed] = float(chosen[0]["encrypted_server_s"])
        if res.seeds:
            candidates.setdefault(method, []).append(res)
    return {m: min(rs, key=_validation_key) for m, rs in candidates.items()}


def _validation_key(r: MethodResult) -> tuple[int, float]:
    """Lambdas are chosen on validation: most seeds within budget, then fewest rotations."""
    vals = [v for v in r.val_rotations.values() if v is not None]
    return (-len(vals), float(np.mean(vals)) if vals else math.inf)


def latency_ratio(results: dict[str, MethodResult], num: str, den: str) -> tuple[float, float, int] | None:
    """(rotation ratio, server-time ratio, seed) of the chosen steps, on the first seed both ran encrypted."""
    a, b = results.get(num), results.get(den)
    if a is None or b is None:
        return None
    seeds = sorted(set(a.server_s) & set(b.server_s))
    if not seeds:
        return None
    s = seeds[0]
    ra = a.chosen_rotations[a.seeds.index(s)] / max(1, b.chosen_rotations[b.seeds.index(s)])
    return ra, a.server_s[s] / b.server_s[s], s


def ratio(results: dict[str, MethodResult], num: str, den: str) -> dict | None:
    """Per-seed ratio of rotations at the budget, geometric mean and bootstrap interval."""
    a, b = results.get(num), results.get(den)
    if a is None or b is None:
        return None
    seeds = sorted(set(a.seeds) & set(b.seeds))
    per_seed = {s: a.rotations[s] / b.rotations[s] for s in seeds
                if a.rotations.get(s) and b.rotations.get(s)}
    if not per_seed:
        return {"num": num, "den": den, "seeds": len(seeds), "per_seed": {}, "value": None, "interval": None}
    vals = list(per_seed.values())
    return {"num": num, "den": den, "seeds": len(per_seed), "per_seed": per_seed,
            "value": float(math.exp(np.mean(np.log(vals)))), "interval": bootstrap_interval(vals)}


def _fmt_ratio(r: dict | None) -> str:
    if r is None:
        return "not measured"
    if r["value"] is None:
        return f"undefined ({r['seeds']} seeds; a method never within the budget)"
    if r["seeds"] == 1:
        return f"{r['value']:.2f}x (1 seed, no interval)"
    lo, hi = r["interval"]
    return f"{r['value']:.2f}x [95% bootstrap {lo:.2f}-{hi:.2f}, {r['seeds']} seeds]"


def _seeds(n: int) -> str:
    """'1 seed', '3 seeds'."""
    return f"{n} seed{'' if n == 1 else 's'}"


def _holds(r: dict | None, low: float, high: float = math.inf) -> str:
    """'holds' when the whole interval lies in [low, high], 'does not hold' when it lies outside, else 'undecided';
    not judged on fewer than MIN_SEEDS seeds (a bootstrap over one or two seeds is no interval)."""
    if r is None or r["value"] is None:
        return "cannot be judged"
    if r["seeds"] < MIN_SEEDS:
        return f"is not judged on {r['seeds']} seed(s) (a verdict needs at least {MIN_SEEDS})"
    lo, hi = r["interval"]
    if low <= lo and hi <= high:
        return "holds"
    if hi < low or lo > high:
        return "does not hold"
    return "is undecided (the interval straddles the bound)"


def groups_by_model(rows: list[dict]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault((r["model"], r["dataset"], str(r["input_size"]), str(r["poly_modulus_degree"])), []).append(r)
    return out


def experiments_summary(rows: list[dict], max_drop: float = 1.0) -> dict:
    """Per model: each method's figures and the ratios of RATIOS (what cost_model.json records)."""
    out = {}
    for key, sel in groups_by_model(rows).items():
        results = model_results(sel, max_drop)
        out["/".join(key)] = {
            "methods": {m: {"lambda_p": r.lambdas[0], "lambda_d": r.lambdas[1], "seeds": r.seeds,
                            "rotations_at_budget": r.rotations, "chosen_test_accuracy": mean_interval(r.chosen_test),
                            "chosen_rotations": r.chosen_rotations, "encrypted_server_s": r.server_s}
                        for m, r in results.items()},
            "ratios": {f"{n} / {d}": ratio(results, n, d) for n, d, _ in RATIOS}}
    return out


def experiments_section(rows: list[dict], max_drop: float = 1.0) -> list[str]:
    """Markdown: per model the methods' table, the ratios with intervals and the verdicts in words."""
    md = ["## Pruning verdicts (experiments database)", "",
          f"Rotations at a test-accuracy drop of at most {max_drop:g} point(s) from the dense model of the same seed, "
          "read off each run's front; lambdas chosen on validation; intervals are 95% (t over seeds for accuracy, "
          "percentile bootstrap over seeds for ratios). Made from the experiments database the report was given "
          "(`--db`; `artemis results export` writes its rows as CSV).", "", "![pareto with intervals](experiments_pareto.png)", ""]
    for key, sel in groups_by_model(rows).items():
        model, dataset, size, n = key
        results = model_results(sel, max_drop)
        seeds = sorted({s for r in results.values() for s in r.seeds})
        md += [f"### {model}, {dataset} {size}x{size}, N = {n} ({_seeds(len(seeds))}: {seeds})", "",
               "| method | lambda_p / lambda_d | seeds | rotations at budget (mean, per seed) | chosen step: test acc "
               "(95% CI) | chosen step: rotations |", "|---|---|---|---|---|---|"]
        for m, r in sorted(results.items()):
            rot = [v for v in r.rotations.values() if v is not None]
            per = ", ".join("-" if r.rotations[s] is None else f"{r.rotations[s]:.0f}" for s in r.seeds)
            acc, lo, hi = mean_interval(r.chosen_test)
            ci = f" ({lo:.2f}-{hi:.2f})" if len(r.chosen_test) > 1 else " (1 seed, no interval)"
            md.append(f"| {m} | {r.lambdas[0]:g} / {r.lambdas[1]:g} | {len(r.seeds)} | "
                      f"{(f'{np.mean(rot):.0f}' if rot else '-')} ({per}) | {acc:.2f}{ci} | "
                      f"{np.mean(r.chosen_rotations):.0f} |")
        md += ["", "| ratio | rotations at the budget | chosen steps, encrypted: rotations / server time | "
                   "what it says |", "|---|---|---|---|"]
        for num, den, what in RATIOS:
            lat = latency_ratio(results, num, den)
            enc = f"{lat[0]:.2f}x / {lat[1]:.2f}x (seed {lat[2]})" if lat else "not measured"
            md.append(f"| {num} / {den} | {_fmt_ratio(ratio(results, num, den))} | {enc} | {what} |")
        md += ["", *verdict_lines(results), ""]
    return md


def verdict_lines(results: dict[str, MethodResult]) -> list[str]:
    """The claims in words; a claim that does not hold is said not to hold."""
    hunter = ratio(results, "hunter", REFERENCE)
    lasso = ratio(results, "diagonal-no-lasso", REFERENCE)
    groups = ratio(results, "dense", "diagonal-no-lasso")
    pos, both = ratio(results, "artemis-positional", REFERENCE), ratio(results, "artemis-both", REFERENCE)
    out = [f"- Claim 1.2-6x fewer rotations than Hunter at the same accuracy: measured {_fmt_ratio(hunter)}; "
           f"the claim {_holds(hunter, 1.2, 6.0)} (it holds when the whole interval lies within 1.2-6x).",
           f"- The Lasso training against the same groups without it: {_fmt_ratio(lasso)}; "
           f"that it helps {_holds(lasso, 1.0 + 1e-9)} (it holds when the whole interval lies above 1x). The choice "
           f"of groups alone (dense over "
           f"diagonal-no-lasso): {_fmt_ratio(groups)}."]
    if pos or both:
        out.append(f"- Diagonal-only pruning Pareto-optimal against positional ({_fmt_ratio(pos)}: "
                   f"{_holds(pos, 1.0)}) and both ({_fmt_ratio(both)}: {_holds(both, 1.0)}), where holds means the "
                   "other needs at least as many rotations at the budget.")
    return out
