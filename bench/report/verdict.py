"""The verdicts report.md opens with: a sentence or two per claim, every figure computed from the fits.

1. Does the rotation count predict latency? (the rotation-only model and the cost model per N,
   cross-validated, beside the noise floor; in-sample where a run has no layer case)
2. Where do rotations dominate, and where not? (rotation shares by kind of case)
3. Does artemis-diagonal save rotations and time over the baselines? (method ratios, when measured)
4. Was the machine busy? (the canary, a fixed workload timed beside every case; wall time against
   process CPU time for runs made before it)
"""

from __future__ import annotations

import math

import numpy as np

from .cases import Case
from .compare import REFERENCE_METHOD
from .fits import DOMINANT_SHARE, NFit, shares_by_kind
from .text import fmt, spread

GOOD_R2 = 0.99  # a count model "predicts" latency when its cross-validated R^2 is at least this ...
GOOD_WORST_REL_ERR = 0.10  # ... and its cross-validated worst relative error at most this
BUSY_WALL_OVER_CPU = 1.2  # wall time above this multiple of CPU time: the process waited (busy machine)


def _meets_bar(r2: float | None, worst: float | None) -> bool | None:
    """Whether a fit meets the bar; None when undefined (R^2 of fewer than two distinct cases)."""
    if r2 is None or worst is None or not (math.isfinite(r2) and math.isfinite(worst)):
        return None
    return r2 >= GOOD_R2 and worst <= GOOD_WORST_REL_ERR


def _fit_text(name: str, r2: float, worst: float) -> str:
    return f"{name} R^2 {fmt(r2, '.4f')}, worst relative error {fmt(worst, '.1%')}"


# the cost model's terms (bench.report.crossval.TERMS) in words; the terms a verdict names when its fit does not
_TERM_WORDS = {"rotations": "rotations", "pmul_add_pairs": "multiplications", "outputs": "outputs", "masks": "masks"}


def crossval_verdict(n: int, cv: dict) -> str:
    """Does the rotation count alone predict latency at this N, and does the cost model, out of sample?

    >>> cv = {"n_cases": 40, "rotation_only_cases": 30, "cv_r2_rotation_only": 0.95,
    ...       "cv_worst_rel_err_rotation_only": 0.4, "cv_r2": 0.995, "cv_worst_rel_err": 0.08, "noise_floor": 0.06,
    ...       "models_worst_rel_err": 0.12}
    >>> print(crossval_verdict(8192, cv))  # doctest: +NORMALIZE_WHITESPACE
    N = 8192 (40 layer cases, leave-one-out): no, not on its own (rotation-only model R^2 0.9500, worst relative
    error 40.0%, on 30 slot layer cases); the cost model (rotations, multiplications, outputs, masks) meets the bar
    (cost model R^2 0.9950, worst relative error 8.0%), beside a noise floor of 6.0%. Whole models predicted from
    the layer fit: worst relative error 12.0%.
    """
    rot = _fit_text("rotation-only model", cv["cv_r2_rotation_only"], cv["cv_worst_rel_err_rotation_only"])
    full = _fit_text("cost model", cv["cv_r2"], cv["cv_worst_rel_err"])
    head = f"N = {n} ({cv['n_cases']} layer case{'s' * (cv['n_cases'] != 1)}, leave-one-out): "
    rot_ok = _meets_bar(cv["cv_r2_rotation_only"], cv["cv_worst_rel_err_rotation_only"])
    full_ok = _meets_bar(cv["cv_r2"], cv["cv_worst_rel_err"])
    if rot_ok is None and full_ok is None:
        return head + f"too few cases to judge ({rot}; {full})."
    text = head + ("too few slot cases to judge the rotation count alone" if rot_ok is None else
                   "yes, the rotation count alone predicts latency" if rot_ok else "no, not on its own")
    text += f" ({rot}, on {cv['rotation_only_cases']} slot layer cases)"
    terms = ", ".join(_TERM_WORDS.get(t, t) for t in cv.get("terms") or _TERM_WORDS)
    text += (f"; the cost model ({terms}) "
             f"{'meets' if full_ok else 'misses' if full_ok is False else 'cannot be judged against'} the bar "
             f"({full}), " + (f"beside a noise floor of {cv['noise_floor']:.1%}." if cv.get("noise_floor") is not None
                              else "with no noise floor measurable (no two cases share a plan)."))
    if cv.get("models_worst_rel_err") is not None:
        text += f" Whole models predicted from the layer fit: worst relative error {cv['models_worst_rel_err']:.1%}."
    return text


def prediction_verdict(f: NFit) -> str:
    """Does the rotation count alone predict latency at this N, and does the full count model?
    Cross-validated (`crossval_verdict`) when the N has layer cases; else in-sample, as below.

    >>> from .fits import Fit
    >>> f = NFit(8192, [], [None] * 40, [], Fit({}, 0.9169, 0.751), Fit({}, 0.9997, 0.21), Fit({}, 0.99, 0.15),
    ...          Fit({}, 0.99, 0.2), {}, "primitives suite")
    >>> print(prediction_verdict(f))  # doctest: +NORMALIZE_WHITESPACE
    N = 8192 (40 fitted cases, in-sample): no, not on its own (rotation-only model R^2 0.9169, worst relative
    error 75.1%); with multiplications, additions and rescales counted too the full count model still misses the
    bar (full count model R^2 0.9997, worst relative error 21.0%). Unit costs measured in the primitives suite,
    unfitted: R^2 0.9900, worst relative error 15.0%.
    """
    if f.cv:
        return crossval_verdict(f.n, f.cv)
    rot = _fit_text("rotation-only model", f.rot.r2, f.rot.max_rel_err)
    full = _fit_text("full count model", f.full.r2, f.full.max_rel_err)
    head = f"N = {f.n} ({len(f.fitted)} fitted case{'s' * (len(f.fitted) != 1)}, in-sample): "
    rot_ok, full_ok = _meets_bar(f.rot.r2, f.rot.max_rel_err), _meets_bar(f.full.r2, f.full.max_rel_err)
    if rot_ok is None:
        return head + f"too few cases to judge ({rot}; {full})."
    text = head + (f"yes, the rotation count alone predicts latency ({rot})" if rot_ok
                   else f"no, not on its own ({rot})")
    text += (f"; with multiplications, additions and rescales counted too the full count model "
             f"{'meets' if full_ok else 'still misses'} the bar ({full}).")
    where = "in the primitives suite" if f.source == "primitives suite" else f"in {f.source}"
    return text + (f" Unit costs measured {where}, unfitted: R^2 {fmt(f.measured.r2, '.4f')}, "
                   f"worst relative error {fmt(f.measured.max_rel_err, '.1%')}.")


def dominance_verdict(f: NFit) -> str:
    """In how many cases rotations take most of the time at this N, and in which kinds of case they do or not."""
    kinds = shares_by_kind(f.fitted)
    dominant = sum(v["dominate"] for v in kinds.values())
    text = (f"N = {f.n}: rotations take more than {DOMINANT_SHARE:.0%} of a case's time (by unit costs measured "
            f"{'in the primitives suite' if f.source == 'primitives suite' else 'in ' + f.source}) in {dominant} "
            f"of {len(f.fitted)} cases.")

    def items(ks):
        return "; ".join(f"{k} ({kinds[k]['dominate']} of {kinds[k]['cases']}, rotation share "
                         f"{spread(kinds[k]['min'], kinds[k]['median'], kinds[k]['max'])})" for k in ks)

    yes = [k for k, v in kinds.items() if v["median"] > DOMINANT_SHARE]
    no = [k for k in kinds if k not in yes]
    if yes:
        text += f" They dominate in {items(yes)}"
        text += f", and not in {items(no)}." if no else "."
    else:
        text += f" They dominate in no kind of case: {items(no)}."
    return text


def methods_verdict(ratios: dict, pruning_ratios: dict) -> list[str]:
    """Whether artemis-diagonal needs fewer rotations and less time than each baseline, where measured."""
    out = []
    comps = [(model, key.split("/")[0], v) for model, d in ratios.items() for key, v in d.items()]
    if comps:
        fewer = sum(v.get("rotations") is not None and v["rotations"] > 1 for *_, v in comps)
        faster = sum(v.get("latency") is not None and v["latency"] > 1 for *_, v in comps)
        detail = "; ".join(f"{model} {other} {fmt(v.get('rotations'), '.2f')}x rotations, "
                           f"{fmt(v.get('latency'), '.2f')}x server time" for model, other, v in comps)
        out.append(f"Pruned checkpoints run encrypted (model suite): {REFERENCE_METHOD} needs fewer rotations than "
                   f"the baseline in {fewer} of {len(comps)} comparisons and less server time in {faster} of "
                   f"{len(comps)} (baseline over {REFERENCE_METHOD}: {detail}).")
    if pruning_ratios:
        fewer = sum(v > 1 for v in pruning_ratios.values())
        detail = "; ".join(f"{k.split(': ')[0]} {k.split(': ')[1].split(' / ')[0]} {v:.2f}x"
                           for k, v in sorted(pruning_ratios.items()))
        out.append(f"Pruning summaries (engine plan, each method's most pruned step within the accuracy budget): "
                   f"{REFERENCE_METHOD} needs fewer rotations in {fewer} of {len(pruning_ratios)} comparisons "
                   f"(baseline over {REFERENCE_METHOD}: {detail}).")
    return out


def wall_cpu_summary(cases: list[Case]) -> dict | None:
    """Wall over CPU time across the cases that recorded CPU time; None when none did.

    >>> cs = [Case(str(r), "layer", 8192, r, {}, {"cpu_s": 1.0}) for r in (1.0, 1.1, 3.0)]
    >>> s = wall_cpu_summary(cs + [Case("old", "layer", 8192, 1.0, {}, {})])
    >>> s["cases"], s["of_cases"], s["median"], s["max"], s["max_case"], s["busy_cases"]
    (3, 4, 1.1, 3.0, '3.0', 1)
    """
    r = sorted((c.wall_over_cpu, c.name) for c in cases if c.wall_over_cpu is not None)
    if not r:
        return None
    vals = np.array([v for v, _ in r])
    return {"cases": len(r), "of_cases": len(cases), "median": float(np.median(vals)), "min": float(vals.min()),
            "max": r[-1][0], "max_case": r[-1][1], "busy_cases": int((vals > BUSY_WALL_OVER_CPU).sum())}


def wall_cpu_verdict(s: dict | None) -> str:
    """How far wall time exceeded process CPU time, and what that says about the machine."""
    if s is None:
        return ("The run recorded no CPU time (a harness before cpu_s), so whether the machine was busy "
                "cannot be told from it.")
    text = (f"Wall time was {fmt(s['median'], '.2f')}x the process CPU time at the median and "
            f"{fmt(s['max'], '.2f')}x at worst ({s['max_case']}), over the {s['cases']} of {s['of_cases']} cases "
            f"that recorded CPU time")
    if s["busy_cases"]:
        return text + (f"; {s['busy_cases']} ran over {BUSY_WALL_OVER_CPU}x their CPU time, a sign of a busy machine "
                       "or waiting, so their latencies are likely inflated.")
    return text + f"; none ran over {BUSY_WALL_OVER_CPU}x, so the machine was not visibly busy."


def canary_summary(cases: list[Case]) -> dict | None:
    """The canaries recorded beside the cases (bench.harness.canary); None when none was.

    A case is slow when its run recorded it so (`canary_slow`: more than the threshold above its
    pass's median canary, or slow in every pass of a merged run).

    >>> cs = [Case(str(t), "layer", 8192, 1.0, {}, {"canary_s": t, "canary_slow": t > 0.06})
    ...       for t in (0.05, 0.05, 0.07)]
    >>> s = canary_summary(cs + [Case("old", "layer", 8192, 1.0, {}, {})])
    >>> s["cases"], s["of_cases"], s["median_s"], s["max_s"], s["slow_cases"], s["slow"]
    (3, 4, 0.05, 0.07, 1, ['0.07'])
    """
    from ..harness.canary import SLOW, case_canary

    rec = [(c.info.get("canary_s", case_canary(c.info)), c) for c in cases]
    rec = [(float(v), c) for v, c in rec if v is not None]
    if not rec:
        return None
    vals = np.array([v for v, _ in rec])
    slow = sorted(c.name for _, c in rec if c.info.get("canary_slow"))
    spreads = [c.info["passes_spread"] for c in cases if c.info.get("passes_spread") is not None]
    return {"cases": len(rec), "of_cases": len(cases), "median_s": float(np.median(vals)), "min_s": float(vals.min()),
            "max_s": float(vals.max()), "threshold": SLOW, "slow_cases": len(slow), "slow": slow,
            "passes_spread_median": float(np.median(spreads)) if spreads else None,
            "passes_spread_max": float(max(spreads)) if spreads else None}


def canary_verdict(s: dict) -> str:
    """What the canary says about the host while the cases ran."""
    text = (f"The canary (a fixed workload of rotations and multiplications, timed before and after every case) "
            f"took {s['median_s'] * 1e3:.1f} ms at the median, {s['min_s'] * 1e3:.1f} to {s['max_s'] * 1e3:.1f} ms, "
            f"over the {s['cases']} of {s['of_cases']} cases that recorded it; ")
    when = "in every pass " if s.get("passes_spread_median") is not None else ""
    if s["slow_cases"]:
        shown = ", ".join(s["slow"][:5]) + (", ..." if s["slow_cases"] > 5 else "")
        text += (f"{s['slow_cases']} case(s) were timed {when}while it was more than {s['threshold']:.0%} above "
                 f"their pass's median, so the host was slower then and their times are likely inflated ({shown}).")
    else:
        text += f"no case was timed {when}while it was more than {s['threshold']:.0%} above its pass's median."
    if s.get("passes_spread_median") is not None:
        text += (f" Across the passes, a case's times spread (max - min) / (max + min) by "
                 f"{s['passes_spread_median']:.1%} at the median and {s['passes_spread_max']:.1%} at worst.")
    return text


def schedule_verdict(gains: list[dict]) -> list[str]:
    """Per whole model run under both schedules: how many times fewer rotations and how much
    less server time the per-layer baby step (auto) gives than output-rotation."""
    out = []
    for g in gains:
        if g["suite"] != "model" or g["rotation_ratio"] is None or g["latency_ratio"] is None:
            continue
        if g.get("weights") == "checkpoint":  # a real pruned model: its weights decide, and its accuracy holds
            what = f"{g['method']} checkpoint, test accuracy {fmt(g.get('test_accuracy'), '.2f')}%, the same under both"
        else:
            what = f"{g['method']}, {fmt(g['prune_diagonals'], '.0%')} of diagonals pruned"
        out.append(f"{g['network']} ({what}): "
                   f"{g['rotations_or']} -> {g['rotations_auto']} rotations ({g['rotation_ratio']:.2f}x fewer), "
                   f"server time {g['latency_or']:.2f} s -> {g['latency_auto']:.2f} s "
                   f"({g['latency_ratio']:.2f}x {'faster' if g['latency_ratio'] >= 1 else 'slower'}).")
    return out


def verdict_section(fits: list[NFit], ratios: dict, pruning_ratios: dict, wall_cpu: dict | None,
                    gains: list[dict] | None = None, canary: dict | None = None) -> list[str]:
    """The report's opening section: the verdicts above, as Markdown lines."""
    md = ["## Verdict", "",
          (f"A count model *predicts* latency here when, under leave-one-out cross-validation, its R^2 is at "
           f"least {GOOD_R2} and its worst relative error at most {GOOD_WORST_REL_ERR:.0%} (zero-operation "
           f"cases left out); the noise floor, which no model of the counts can beat, is stated beside it."), "",
          "**Does the rotation count predict latency?**", ""]
    md += [f"- {prediction_verdict(f)}" for f in fits]
    md += ["", "**Where do rotations dominate?**", ""]
    md += [f"- {dominance_verdict(f)}" for f in fits]
    methods = methods_verdict(ratios, pruning_ratios)
    if methods:
        md += ["", f"**Does {REFERENCE_METHOD} save over the baselines?**", ""]
        md += [f"- {m}" for m in methods]
    schedules = schedule_verdict(gains or [])
    if schedules:
        md += ["", "**Does a baby-step/giant-step schedule per layer (auto) beat output-rotation?**", ""]
        md += [f"- {m}" for m in schedules]
    busy = canary_verdict(canary) if canary else wall_cpu_verdict(wall_cpu)
    md += ["", "**Was the machine busy?**", "", f"- {busy}", ""]
    return md
