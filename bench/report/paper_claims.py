"""The seed paper's claims, each beside every reading of it in the results: one table, at the top of
the report and of the README's results block, so that a reader sees at once where the readings
agree and where they do not.

A claim is one entry of CLAIMS: its words, the verdict ratios that test it (names of
`bench.report.experiments.RATIOS`) and how one ratio's interval reads against it. Every database
the report reads (`cost_model.json`'s `experiments`) gives one row per model and ratio; nothing is
chosen among them. Each row says how many candidates (lambda settings, a family's variants)
validation chose each side from, since a side with one candidate had no grid of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..experiments.readings import READINGS
from .experiments import CLAIM, better_at_all, claim_verdict
from .fits import DOMINANT_SHARE
from .text import ratio_sides

VERDICTS = ("holds", "does not hold", "undecided", "not judged")


def at_least(r: dict) -> str:
    """The paper's claim on a ratio, "the numerator needs at least CLAIM times the denominator's rotations"
    (bench.report.experiments.claim_verdict), as one of VERDICTS.

    >>> at_least({"value": 1.3, "interval": (1.21, 1.4), "seeds": 5})
    'holds'
    >>> at_least({"value": 1.1, "interval": (0.9, 1.3), "seeds": 2})
    'not judged'
    """
    v = claim_verdict(r)
    return {"holds": "holds", "does not hold": "does not hold", "is undecided": "undecided"}.get(v, "not judged")


def above_one(r: dict) -> str:
    """"The numerator needs more rotations than the denominator at all" (bench.report.experiments.better_at_all:
    the lower bound above 1), as one of VERDICTS.

    >>> above_one({"value": 1.3, "interval": (1.0, 1.7), "seeds": 5})
    'undecided'
    >>> above_one({"value": 0.8, "interval": (0.7, 0.95), "seeds": 5})
    'does not hold'
    """
    return {"yes": "holds", "no": "does not hold", "not shown": "undecided"}.get(better_at_all(r).split(" (")[0],
                                                                                  "not judged")


@dataclass(frozen=True)
class PaperClaim:
    words: str  # the claim, as the table states it
    ratios: tuple[str, ...]  # the verdict ratios that test it, "num / den"
    judge: Callable[[dict], str]  # a ratio's summary -> one of VERDICTS
    reads: str  # how a ratio reads against it


CLAIMS = (
    PaperClaim("HE-aware pruning cuts rotations below the dense model", ("dense / artemis-diagonal",), above_one,
               "a reading holds when its interval lies above 1; the encrypted column says what that saves in "
               "server time under each plan"),
    PaperClaim(f"HE-aware training cuts rotations {CLAIM:g}-6x below Hunter", ("hunter / artemis-diagonal",),
               at_least, f"a reading holds when its interval's lower bound is at least {CLAIM:g}"),
    PaperClaim("diagonal pruning alone is Pareto-optimal",
               ("artemis-positional / artemis-diagonal", "artemis-both / artemis-diagonal"), above_one,
               "a reading holds when its interval lies above 1, that is when diagonal groups need fewer rotations "
               "than the other group choice at the same accuracy budget, and does not hold when it lies below 1"),
)


def dominance_rows(per_n: dict) -> list[str]:
    """The claim "rotations dominate HE convolution", one row per N, from the fitted cases' shares.

    >>> dominance_rows({"8192": {"rotations_dominate": 3, "fitted_cases": 4}})[0].split(" | ")[2:]
    ['3 of 4 cases (75%)', '-', 'holds in most cases', '- |']
    """
    out = []
    for n, p in sorted(per_n.items(), key=lambda kv: int(kv[0])):
        k, total = p.get("rotations_dominate"), p.get("fitted_cases")
        if k is None or not total:
            continue
        verdict = "holds in most cases" if k > total / 2 else "does not hold in most cases"
        out.append(f"| rotations dominate HE convolution | N = {n}: the slot algorithm's {total} cases with "
                   f"operations | {k} of {total} cases ({k / total:.0%}) | - | {verdict} | - |")
    return out


def _encrypted(r: dict) -> str:
    """The fixed schedule's rotation and server-time ratios, then every other reading's server-time ratio.

    >>> _encrypted({"encrypted": {"fixed": {"rotations": 1.5, "server_time": 1.6, "seeds": [0, 1, 2]},
    ...                           "coefficient": {"server_time": 1.04, "seeds": [0, 1, 2]}}})
    'fixed schedule 1.50x / 1.60x; coefficient encoding 1.04x (3 seeds)'
    """
    enc = r.get("encrypted") or {}
    parts = [f"{g.label} {enc[g.name]['rotations']:.2f}x / {enc[g.name]['server_time']:.2f}x" if g.counted
             else f"{g.label} {enc[g.name]['server_time']:.2f}x" for g in READINGS if g.name in enc]
    seeds = max((len(e.get("seeds", [])) for e in enc.values()), default=0)
    return ("; ".join(parts) + f" ({seeds} seeds)") if parts else "not measured"


def unpruned_sides(methods: dict, r: dict) -> list[str]:
    """The sides of a ratio whose chosen step has the dense model's rotations on every seed of the ratio:
    a reading then says more about that side's training or budget than about its groups.

    >>> m = {"dense": {"rotations": {"0": 9, "1": 9}}, "b": {"rotations": {"0": 9, "1": 9}},
    ...      "a": {"rotations": {"0": 5, "1": 9}}}
    >>> unpruned_sides(m, {"num": "b", "den": "a", "per_seed": {"0": 1.8, "1": 1.0}})
    ['b']
    """
    def rotations(m: str | None) -> dict[str, int | None]:  # seeds as cost_model.json keys them, in memory or read
        return {str(k): v for k, v in ((methods.get(m) or {}).get("rotations") or {}).items()}

    dense, seeds, out = rotations("dense"), [str(s) for s in r.get("per_seed") or {}], []
    for side in (r.get("num"), r.get("den")):
        rot = rotations(side)
        if side != "dense" and seeds and all(rot.get(s) is not None and rot.get(s) == dense.get(s) for s in seeds):
            out.append(side)
    return out


def claim_rows(experiments: dict) -> tuple[list[str], dict[str, dict[str, int]]]:
    """(the table rows of CLAIMS' ratios over every database and model, the count of each verdict per claim)."""
    rows, counts = [], {c.words: {v: 0 for v in VERDICTS} for c in CLAIMS}
    for claim in CLAIMS:
        for source, models in experiments.items():
            for key, summary in sorted(models.items()):
                for name in claim.ratios:
                    r = (summary.get("ratios") or {}).get(name)
                    if not r or r.get("value") is None:
                        continue
                    verdict = claim.judge(r)
                    counts[claim.words][verdict] += 1
                    idle = unpruned_sides(summary.get("methods") or {}, r)
                    note = f" ({' and '.join(idle)} pruned nothing within the budget on any seed)" if idle else ""
                    iv = f" [{r['interval'][0]:.2f}, {r['interval'][1]:.2f}]" if r.get("interval") else ""
                    cands = f"{r.get('num_settings', '?')} / {r.get('den_settings', '?')}"
                    rows.append(f"| {claim.words} | {key.split('/')[0]}, `{source}`: {ratio_sides(r, name)} "
                                f"| {r['value']:.2f}x{iv} ({r['seeds']} seeds) | {cands} | {verdict}{note} "
                                f"| {_encrypted(r)} |")
    return rows, counts


def claims_lines(cost_model: dict) -> list[str]:
    """Markdown: the claims table and, per claim, how many readings give each verdict."""
    rows, counts = claim_rows(cost_model.get("experiments") or {})
    dominance = dominance_rows(cost_model.get("per_n") or {})
    if not rows and not dominance:
        return []
    out = ["**The seed paper's claims**, each against every reading of it in these results (one row per database, "
           "model and ratio; nothing chosen among them). Ratios: rotations at the chosen steps, geometric mean over "
           "seeds with a 95% t-interval on the log ratios. Candidates: how many lambda settings (over a family's "
           "variants) validation chose each side from. Encrypted: the chosen models run encrypted, the fixed "
           "schedule's rotations / server time, then each other reading's server time (docs/pruning.md).", "",
           "| claim | reading | ratio (seeds) | candidates | verdict | encrypted |", "|---|---|---|---|---|---|",
           *dominance, *rows, ""]
    if dominance:
        out.append(f"- Rotations dominate: a case's rotations take more than {DOMINANT_SHARE:.0%} of its time by "
                   "the unit costs measured in the primitives suite; cases of the other algorithms (coefficient "
                   "encoding, matvec) are not counted here.")
    for claim in CLAIMS:
        c = counts[claim.words]
        n = sum(c.values())
        if n:
            said = ", ".join(f"{v} in {c[v]}" for v in VERDICTS if c[v])
            out.append(f"- {claim.words[0].upper()}{claim.words[1:]}: {said} of {n} reading{'s' * (n != 1)} "
                       f"({claim.reads}).")
    return out + [""]
