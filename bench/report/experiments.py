"""Verdicts on the pruning claims from the experiments database, with intervals over seeds.

The selection protocol (docs/pruning.md):

- A run's point is its chosen step: the accepted step (validation accuracy within `max_drop`
  points of the same seed's dense model) with the fewest rotations. Rotations and test
  accuracy are read at that step. Test never selects; nothing is interpolated. A run with no
  accepted step has no point.
- Per model, a method's lambdas, and a family's member (the Hunter variants), are chosen on
  validation, on the seeds every candidate ran: the largest share of seeds with a point, then the
  fewest rotations (geometric mean). Seeds run only for the chosen candidates confirm: they
  enter the ratios and are listed apart.
- Ratios between methods are taken per seed; their geometric mean has a 95% t-interval on the
  log ratios (df = seeds - 1). A claim of at least `CLAIM`x "holds" when the interval's lower
  bound is at least CLAIM, "does not hold" when its upper bound is below it, and is
  "undecided" otherwise; beside it, whether the method is better at all (lower bound above 1).
- A run that ended on the schedule's last step, still accepted, is "cut off": its point is
  only a bound, and the report says so.
"""

from __future__ import annotations

import math

import numpy as np

from heconv.traffic import DEFAULT_BANDWIDTH_BPS, transfer_seconds

from ..experiments.readings import READINGS
from .encrypted_cost import cost_section
from .selection import (  # noqa: F401 (the selection's names, for this module's callers)
    PROTOCOL,
    MethodResult,
    candidates,
    choose,
    distinct_members,
    duplicates,
    family_members,
    groups_by_model,
    model_results,
    run_point,
    selection_seeds,
)
from .text import encrypted_parts, seeds_text

REFERENCE = "artemis-diagonal"
MIN_SEEDS = 3  # fewer seeds give a ratio and no verdict
CLAIM = 1.2  # the paper's lowest claimed factor over Hunter
# (numerator, denominator, what the ratio says) of rotations at the chosen steps
RATIOS = (("hunter", REFERENCE, "the paper's claim (1.2-6x) against the best Hunter variant on validation"),
          ("dense", REFERENCE, "against no pruning"),
          ("unstructured", REFERENCE, "against unstructured magnitude pruning"),
          ("diagonal-no-lasso", REFERENCE, "what the group-Lasso training adds (same groups, plain training)"),
          ("dense", "diagonal-no-lasso", "what the choice of groups alone gives (no Lasso)"),
          ("artemis-positional", REFERENCE, "> 1: diagonal groups beat positional ones"),
          ("artemis-both", REFERENCE, "> 1: diagonal groups beat diagonal + positional"))
COMPARED = tuple(dict.fromkeys(m for pair in RATIOS for m in pair[:2]))  # every side of RATIOS, first seen first


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% t-interval over the values; one value gives a zero-width interval.

    >>> [round(v, 3) for v in mean_interval([1.0, 2.0, 3.0])]
    [2.0, -0.484, 4.484]
    """
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), float(v.mean()), float(v.mean())
    from scipy import stats

    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def log_t_interval(ratios: list[float]) -> tuple[float, float, float]:
    """(geometric mean, low, high): the 95% t-interval on the log ratios, mapped back.

    >>> [round(v, 3) for v in log_t_interval([2.0, 2.0, 2.0])]
    [2.0, 2.0, 2.0]
    >>> [round(v, 3) for v in log_t_interval([1.0, 2.0, 4.0])]   # logs 0, .69, 1.39: t(2) = 4.303
    [2.0, 0.357, 11.19]
    """
    m, lo, hi = mean_interval([math.log(r) for r in ratios])
    return math.exp(m), math.exp(lo), math.exp(hi)


def ratio(results: dict[str, MethodResult], num: str, den: str) -> dict | None:
    """Per-seed ratio of rotations at the chosen steps, geometric mean and t-interval on the logs."""
    a, b = results.get(num), results.get(den)
    if a is None or b is None:
        return None
    seeds = sorted(set(a.seeds) & set(b.seeds))
    dense = results.get("dense")

    def rot(r: MethodResult, s: int) -> int | None:
        # A run with no step within the budget leaves the user the dense model: it counts as dense.
        if r.rotations.get(s) is not None:
            return r.rotations[s]
        return dense.rotations.get(s) if dense is not None else None

    per_seed = {s: rot(a, s) / rot(b, s) for s in seeds if rot(a, s) and rot(b, s)}
    base = {"num": num, "den": den, "num_method": a.method, "den_method": b.method,
            # how many of each side's family ran (its method chosen on validation among them)
            "num_variants": len(family_members(results, num)), "den_variants": len(family_members(results, den)),
            # ... of which distinct (a member that prunes as another that ran counts once)
            "num_distinct": len(distinct_members(results, num)), "den_distinct": len(distinct_members(results, den)),
            # the candidates (lambda settings, over a family's members) validation chose each side from
            "num_settings": a.settings, "den_settings": b.settings,
            "seeds": len(per_seed),
            "per_seed": per_seed, "outside_budget": [s for s in seeds if s not in per_seed],
            "as_dense": sorted({s for s in per_seed for r in (a, b) if r.rotations.get(s) is None}),
            # seeds that chose neither side's lambdas or variant: they confirm the choice
            "confirmation": [s for s in per_seed if (a.chosen_on and s not in a.chosen_on)
                             or (b.chosen_on and s not in b.chosen_on)]}
    if not per_seed:
        return {**base, "value": None, "interval": None}
    value, lo, hi = log_t_interval(list(per_seed.values()))
    return {**base, "value": value, "interval": (lo, hi) if len(per_seed) > 1 else None}


def interval_side(r: dict | None, threshold: float, strict: bool = False) -> str | None:
    """Where a ratio's interval lies against `threshold`: "above" (lower bound at least it, or above it
    when `strict`), "below" (upper bound below it), "across", or None where no verdict is taken (no
    value, no interval, fewer than MIN_SEEDS seeds). The one rule every verdict's words come from.

    >>> interval_side({"value": 1.3, "interval": (1.2, 1.4), "seeds": 5}, 1.2), \\
    ...     interval_side({"value": 1.3, "interval": (1.2, 1.4), "seeds": 5}, 1.2, strict=True)
    ('above', 'across')
    """
    if r is None or r.get("value") is None or r.get("interval") is None or r.get("seeds", 0) < MIN_SEEDS:
        return None
    lo, hi = r["interval"]
    return "above" if (lo > threshold if strict else lo >= threshold) else "below" if hi < threshold else "across"


def claim_verdict(r: dict | None, claim: float = CLAIM) -> str:
    """The claim "num needs at least `claim` times the rotations of den" in words.

    >>> claim_verdict({"value": 2.0, "interval": (1.5, 2.6), "seeds": 5})
    'holds'
    >>> claim_verdict({"value": 1.1, "interval": (0.9, 1.3), "seeds": 5})
    'is undecided'
    >>> claim_verdict({"value": 1.0, "interval": (0.9, 1.1), "seeds": 2})
    'is not judged on 2 seed(s) (a verdict needs at least 3)'
    """
    if r is None or r["value"] is None:
        return "cannot be judged"
    side = interval_side(r, claim)
    if side is None:
        return f"is not judged on {r['seeds']} seed(s) (a verdict needs at least {MIN_SEEDS})"
    return {"above": "holds", "below": "does not hold", "across": "is undecided"}[side]


def better_at_all(r: dict | None) -> str:
    """Whether the denominator needs fewer rotations at all (the interval's bounds against 1).

    >>> better_at_all({"value": 1.1, "interval": (1.02, 1.2), "seeds": 3})
    'yes (lower bound above 1)'
    """
    return {"above": "yes (lower bound above 1)", "below": "no (upper bound below 1)", "across": "not shown",
            None: "not judged"}[interval_side(r, 1.0, strict=True)]


def fmt_ratio(r: dict | None) -> str:
    if r is None:
        return "not measured"
    if r["value"] is None:
        return f"undefined (no seed where both are within the budget; {len(r['outside_budget'])} outside)"
    if r["interval"] is None:
        return f"{r['value']:.2f}x (1 seed, no interval)"
    lo, hi = r["interval"]
    dense = f"; seeds {r['as_dense']} with no step within the budget count as dense" if r.get("as_dense") else ""
    return f"{r['value']:.2f}x [95% t {lo:.2f}-{hi:.2f}, {r['seeds']} seeds{dense}]"


def per_seed_text(r: dict | None) -> str:
    """The ratio of each seed, seed by seed.

    >>> per_seed_text({"per_seed": {1: 0.5, 0: 0.625}})
    '0: 0.62, 1: 0.50'
    """
    per = (r or {}).get("per_seed") or {}
    return ", ".join(f"{s}: {v:.2f}" for s, v in sorted(per.items())) or "-"


def _mean(values) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def experiments_summary(rows: list[dict], max_drop: float = 1.0) -> dict:
    """Per model: each method's figures and the ratios of RATIOS (what cost_model.json records)."""
    out = {}
    for key, sel in groups_by_model(rows).items():
        results = model_results(sel, max_drop)
        out["/".join(key)] = {
            "methods": {m: {"method": r.method, "lambda_p": r.lambdas[0], "lambda_d": r.lambdas[1], "seeds": r.seeds,
                            "rotations": r.rotations, "test_accuracy": r.test, "finetune_epochs": r.epochs,
                            "cut_off": [s for s, c in r.cut_off.items() if c],
                            **{g.column: r.encrypted.get(g.name, {}) for g in READINGS},
                            **{g.bytes_column: r.traffic.get(g.name, {}) for g in READINGS}, "chosen_on": r.chosen_on}
                        for m, r in results.items()},
            "ratios": {f"{n} / {d}": _judged(results, n, d) for n, d, _ in RATIOS}}
    return out


def _judged(results: dict[str, MethodResult], num: str, den: str) -> dict | None:
    """A ratio with its words: the paper's claim (Hunter's ratio only), better at all, and encrypted."""
    r = ratio(results, num, den)
    if r is None:
        return None
    claim = {"claim": claim_verdict(r)} if num == "hunter" and den == REFERENCE else {}
    return {**r, **claim, "better_at_all": better_at_all(r), "encrypted": encrypted_ratios(results, num, den)}


def experiments_section(rows: list[dict], max_drop: float = 1.0, source: str | None = None,
                        figure: str = "experiments_pareto.png", noise: dict[int, float] | None = None) -> list[str]:
    """Markdown: per model the methods' table, the ratios with intervals and the verdicts in words.
    `source`: the database's name for the heading; `figure`: its Pareto plot beside the report;
    `noise`: the timings' noise floor per N, where the report measured one."""
    md = [f"## Pruning verdicts: `{source}`" if source else "## Pruning verdicts (experiments database)", "",
          f"Each run's point is its accepted step (validation accuracy within {max_drop:g} point(s) of the dense "
          "model of the same seed) with the fewest rotations; rotations and test accuracy are read there, and test "
          "selects nothing. Lambdas and Hunter's variant are chosen per model on validation. Ratios: geometric mean "
          "over seeds with a 95% t-interval on the log ratios. A claim of at least "
          f"{CLAIM:g}x holds when the interval's lower bound is at least {CLAIM:g}, does not hold when its upper "
          "bound is below it, and is undecided otherwise. A run with no step within the budget counts as the dense "
          "model. The budget's reference is the dense model's best validation epoch (its plateau schedule keeps "
          "those weights); a Lasso model's training from that model is not in the fine-tune column.", "",
          f"![pareto with intervals]({figure})", ""]
    for key, sel in groups_by_model(rows).items():
        model, dataset, size, n = key
        results = model_results(sel, max_drop)
        seeds = sorted({s for r in results.values() for s in r.seeds})
        md += [f"### {model}, {dataset} {size}x{size}, N = {n} ({seeds_text(len(seeds))}: {seeds})", "",
               "| method (chosen on validation) | lambda_p / lambda_d | seeds within budget | rotations "
               "(mean; per seed) | test acc at the chosen step (95% CI) | fine-tune epochs to it | cut off |",
               "|---|---|---|---|---|---|---|"]
        for m, r in sorted(results.items()):
            if m != r.family and r.family in results and len(family_members(results, r.family)) > 1 \
                    and m not in COMPARED:
                continue  # a family's members have their own table below
            name = m if m == r.method else f"{m} ({r.method})"
            per = ", ".join("-" if r.rotations[s] is None else str(r.rotations[s]) for s in r.seeds)
            rot = _mean(r.rotations[s] for s in r.within)
            tests = [r.test[s] for s in r.within if r.test.get(s) is not None]
            acc = (f"{mean_interval(tests)[0]:.2f} ({mean_interval(tests)[1]:.2f}-{mean_interval(tests)[2]:.2f})"
                   if len(tests) > 1 else f"{tests[0]:.2f}" if tests else "-")
            cut = sum(r.cut_off.values())
            md.append(f"| {name} | {r.lambdas[0]:g} / {r.lambdas[1]:g} | {len(r.within)} of {len(r.seeds)} | "
                      f"{'-' if rot is None else f'{rot:.0f}'} ({per}) | {acc} | "
                      f"{_mean(r.epochs.values()) or 0:.1f} | {f'{cut} of {len(r.seeds)}' if cut else 'no'} |")
        for fam in sorted({r.family for r in results.values() if r.family}):
            variants = family_members(results, fam)
            if len(variants) > 1:
                md += ["", f"{fam}'s variants (validation decides; the first is `{fam}` above):", "",
                       "| variant | lambda_p / lambda_d | seeds within budget | rotations at the chosen step (mean) |",
                       "|---|---|---|---|"]
                same = duplicates(variants)
                md += [f"| {v.method}{f' (pruned as {same[v.method]})' if v.method in same else ''} | "
                       f"{v.lambdas[0]:g} / {v.lambdas[1]:g} | {len(v.within)} of {len(v.seeds)} | "
                       f"{'-' if not v.within else f'{_mean(v.rotations[s] for s in v.within):.0f}'} |"
                       for v in variants]
        md += ["", "| ratio | rotations at the chosen steps | per seed | better at all | chosen steps, encrypted: "
                   "rotations / server time | what it says |", "|---|---|---|---|---|---|"]
        for num, den, what in RATIOS:
            r = ratio(results, num, den)
            md.append(f"| {num} / {den} | {fmt_ratio(r)} | {per_seed_text(r)} | {better_at_all(r)} | "
                      f"{_latency(results, num, den)} | {what} |")
        md += ["", *verdict_lines(results), ""]
        md += cost_section(results, list(COMPARED), (noise or {}).get(int(n)))
    return md


def encrypted_ratios(results: dict[str, MethodResult], num: str, den: str) -> dict:
    """Rotation and server-time ratios of the chosen steps run encrypted: geometric means over the seeds
    both ran, per encrypted reading measured (bench.experiments.readings). Where both recorded their
    bytes, also the ratio of server time plus those bytes at `DEFAULT_BANDWIDTH_BPS` (`with_transfer`,
    in cost_model.json): pruning leaves the bytes about as they are, so the transfer only draws the ratio
    toward 1, the more so under a reading that sends more (the coefficient algorithm). The report
    shows the bytes in `bench.report.encrypted_cost`'s table instead, where readings are compared.

    >>> a = MethodResult("dense", (0, 0), [0], {0: 200}, encrypted={"fixed": {0: 2.0}}, traffic={"fixed": {0: 125e6}})
    >>> b = MethodResult("x", (0, 0), [0], {0: 100}, encrypted={"fixed": {0: 1.0}}, traffic={"fixed": {0: 125e6}})
    >>> encrypted_ratios({"dense": a, "x": b}, "dense", "x")["fixed"]  # (2 + 1) / (1 + 1) s at 1 Gbit/s
    {'server_time': 2.0, 'seeds': [0], 'rotations': 2.0, 'with_transfer': 1.5, 'transfer_bps': 1000000000.0}
    """
    a, b = results.get(num), results.get(den)
    out: dict = {}
    if not a or not b:
        return out

    def gmean(x: dict[int, float], y: dict[int, float], seeds: list[int]) -> float:
        return float(np.exp(np.mean([math.log(x[s] / y[s]) for s in seeds])))

    def moved(times: dict[int, float], nbytes: dict[int, float], seeds: list[int]) -> dict[int, float]:
        return {s: times[s] + transfer_seconds(nbytes[s], DEFAULT_BANDWIDTH_BPS) for s in seeds}
    # the rotations recorded at the chosen steps are the fixed schedule's: auto's ratio is its time alone
    for reading in READINGS:
        g = reading.name
        ta, tb = a.encrypted.get(g, {}), b.encrypted.get(g, {})
        seeds = [s for s in sorted(set(ta) & set(tb)) if a.rotations.get(s) and b.rotations.get(s)]
        if not seeds:
            continue
        out[g] = {"server_time": gmean(ta, tb, seeds), "seeds": seeds}
        if reading.counted:
            out[g]["rotations"] = gmean(a.rotations, b.rotations, seeds)
        ba, bb = a.traffic.get(g, {}), b.traffic.get(g, {})
        if all(s in ba and s in bb for s in seeds):
            out[g]["with_transfer"] = gmean(moved(ta, ba, seeds), moved(tb, bb, seeds), seeds)
            out[g]["transfer_bps"] = DEFAULT_BANDWIDTH_BPS
    return out


def _latency(results: dict[str, MethodResult], num: str, den: str) -> str:
    return "; ".join(encrypted_parts(encrypted_ratios(results, num, den))) or "not measured"


def verdict_lines(results: dict[str, MethodResult]) -> list[str]:
    """The claims in words; a claim that does not hold is said not to hold."""
    hunter, lasso = ratio(results, "hunter", REFERENCE), ratio(results, "diagonal-no-lasso", REFERENCE)
    groups = ratio(results, "dense", "diagonal-no-lasso")
    pos, both = ratio(results, "artemis-positional", REFERENCE), ratio(results, "artemis-both", REFERENCE)
    variant = f" (its variant chosen on validation: {results['hunter'].method})" if "hunter" in results else ""
    ours = results.get(REFERENCE)
    if ours is not None and ours.method != REFERENCE:
        variant += f", for {REFERENCE} its variant chosen on validation: {ours.method}"
    out = [f"- Claim, at least {CLAIM:g}x fewer rotations than Hunter{variant} at the same accuracy budget: "
           f"{fmt_ratio(hunter)}; the claim {claim_verdict(hunter)}; fewer rotations at all: "
           f"{better_at_all(hunter)}.",
           f"- The Lasso training against the same groups without it: {fmt_ratio(lasso)}; it helps: "
           f"{better_at_all(lasso)}. The choice of groups alone (dense over diagonal-no-lasso): {fmt_ratio(groups)}."]
    conf = hunter["confirmation"] if hunter and hunter.get("confirmation") else []
    if conf:
        per = ", ".join(f"seed {s}: {hunter['per_seed'][s]:.2f}x" for s in conf)
        out.append(f"- The choices were made on seeds {results[REFERENCE].chosen_on} (artemis-diagonal's lambda and "
                   f"variant) and {results['hunter'].chosen_on} (Hunter's variant); seeds {conf} did not run every "
                   f"candidate, cast no vote and confirm: {per}.")
    if pos or both:
        out.append(f"- Diagonal-only pruning against positional ({fmt_ratio(pos)}; diagonal needs fewer: "
                   f"{better_at_all(pos)}) and both kinds ({fmt_ratio(both)}; {better_at_all(both)}).")
    cut = sorted(m for m, r in results.items() if any(r.cut_off.values()))
    if cut:
        out.append(f"- Cut off by the end of the schedule (their points are bounds): {', '.join(cut)}.")
    return out
