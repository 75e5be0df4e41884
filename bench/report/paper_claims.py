"""The seed paper's claims, each beside every reading of it in the results: one table, at the top of
the report and of the README's results block, so that a reader sees at once where the readings
agree and where they do not.

A claim on a ratio is one entry of CLAIMS: its words, the verdict ratios that test it (names of
`bench.report.experiments.RATIOS`) and the threshold its interval is read against. Every database
the report reads (`cost_model.json`'s `experiments`) gives one row per model and ratio; nothing is
chosen among them. A row says how many candidates (lambda settings, over a family's variants)
validation chose each side from, names a side that pruned nothing, and names the databases whose
runs it repeats (a database begun as a copy of another's runs): the tally under the table counts a
repeated reading once. A reading that shares one side's runs with another (the same dense model in
two databases, or artemis-diagonal's runs under both Pareto ratios of one) is named too; the tally
counts it, calls the readings "distinct" and says how many are not independent.
"""

from __future__ import annotations

from dataclasses import dataclass

from .experiments import CLAIM, interval_side
from .fits import DOMINANT_SHARE
from .text import encrypted_parts, ratio_sides, seeds_text

VERDICTS = ("holds", "does not hold", "undecided", "not comparable", "not judged")
DENSE = "dense"  # the reference every ratio counts a run with no step within the budget as


@dataclass(frozen=True)
class PaperClaim:
    """A claim "the numerator needs more rotations than the denominator": it holds on a ratio whose
    interval lies above `threshold` (at least it; above it when `strict`) and does not hold on one
    whose interval lies below it."""

    words: str  # the claim, as the table states it
    ratios: tuple[str, ...]  # the verdict ratios that test it, "num / den"
    threshold: float
    strict: bool
    reads: str  # how a ratio reads against it, for the tally's line

    def verdict(self, r: dict) -> str:
        """One of VERDICTS from the ratio's interval.

        >>> c = PaperClaim("x", ("a / b",), 1.2, False, "")
        >>> c.verdict({"value": 1.3, "interval": (1.2, 1.4), "seeds": 5}), c.verdict({"value": 1, "seeds": 2})
        ('holds', 'not judged')
        """
        side = interval_side(r, self.threshold, self.strict)
        return {"above": "holds", "below": "does not hold", "across": "undecided", None: "not judged"}[side]


CLAIMS = (
    PaperClaim("HE-aware pruning cuts rotations below the dense model", ("dense / artemis-diagonal",), 1.0, True,
               "a reading holds when its interval lies above 1; the encrypted column says what that saves in "
               "server time under each plan"),
    PaperClaim(f"HE-aware training cuts rotations {CLAIM:g}-6x below Hunter", ("hunter / artemis-diagonal",),
               CLAIM, False, f"a reading holds when its interval's lower bound is at least {CLAIM:g}"),
    PaperClaim("diagonal groups need fewer rotations than positional ones or both (the paper's Pareto claim, read "
               "at one accuracy budget)",
               ("artemis-positional / artemis-diagonal", "artemis-both / artemis-diagonal"), 1.0, True,
               "a reading holds when its interval lies above 1 and does not hold when it lies below 1; one budget "
               "is one point of each Pareto front, not the fronts"),
)


def interval_text(lo: float, hi: float, marks: tuple[float, ...] = (1.0, CLAIM)) -> str:
    """'[lo, hi]' to 2 decimals, to 3 where a bound would round onto a threshold a verdict reads it against.

    >>> interval_text(1.0037, 1.84), interval_text(0.9966, 1.11), interval_text(0.75, 2.14)
    ('[1.004, 1.84]', '[0.997, 1.11]', '[0.75, 2.14]')
    """
    def bound(x: float) -> str:
        return f"{x:.3f}" if any(f"{x:.2f}" == f"{m:.2f}" for m in marks) else f"{x:.2f}"
    return f"[{bound(lo)}, {bound(hi)}]"


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
        out.append(f"| rotations dominate HE convolution | N = {n}: {total} layer and whole-model cases of the "
                   f"rotation-based algorithms | {k} of {total} cases ({k / total:.0%}) | - | {verdict} | - |")
    return out


def unpruned_sides(methods: dict, r: dict) -> list[str]:
    """The sides of a ratio (other than the dense reference) whose chosen step has the dense model's
    rotations, or no step within the budget (counted as dense), on every seed of the ratio: a reading
    then says more about that side's training or budget than about its groups.

    >>> m = {"dense": {"rotations": {"0": 9, "1": 9}}, "b": {"rotations": {"0": 9, "1": None}},
    ...      "a": {"rotations": {"0": 5, "1": 9}}}
    >>> unpruned_sides(m, {"num": "b", "den": "a", "per_seed": {"0": 1.8, "1": 1.0}})
    ['b']
    """
    dense, seeds = _by_seed(methods, DENSE, "rotations"), [str(s) for s in r.get("per_seed") or {}]
    return [side for side in (r.get("num"), r.get("den")) if side != DENSE and seeds
            and all(_by_seed(methods, side, "rotations").get(s) in (None, dense.get(s)) for s in seeds)]


def _by_seed(methods: dict, method: str | None, field: str) -> dict:
    """A method's per-seed field keyed by the seed as text, as cost_model.json keys it (in memory or read)."""
    return {str(k): v for k, v in ((methods.get(method) or {}).get(field) or {}).items()}


def _fingerprints(methods: dict, r: dict) -> dict[str, tuple]:
    """Per seed of the ratio, what identifies its two runs: method, lambdas, rotations and test accuracy at
    the chosen step. Two databases with equal fingerprints hold the same runs (one began as a copy)."""
    out = {}
    for s in r.get("per_seed") or {}:
        sides = []
        for side in (r.get("num"), r.get("den")):
            m = methods.get(side) or {}
            sides.append((m.get("method"), m.get("lambda_p"), m.get("lambda_d"),
                          _by_seed(methods, side, "rotations").get(str(s)),
                          _by_seed(methods, side, "test_accuracy").get(str(s))))
        out[str(s)] = tuple(sides)
    return out


@dataclass(frozen=True)
class ClaimRow:
    """One reading of a claim: a ratio of one model in one database, with its verdict."""

    claim: str
    source: str
    model: str
    ratio: dict
    verdict: str
    note: str
    seeds: dict  # seed -> fingerprint (_fingerprints)

    def shared_with(self, other: "ClaimRow") -> list[str]:
        """The seeds where `other` holds the same two runs."""
        return [s for s, f in self.seeds.items() if other.seeds.get(s) == f]

    def side_shared_with(self, other: "ClaimRow") -> list[str]:
        """The seeds where `other` holds the same run on one side only (a shared dense model, say): the two
        readings are then correlated, though neither repeats the other."""
        return [s for s, f in self.seeds.items() if (o := other.seeds.get(s)) and o != f
                and any(a == b for a, b in zip(f, o))]


def _row(claim: PaperClaim, source: str, model: str, summary: dict, r: dict) -> ClaimRow:
    methods = summary.get("methods") or {}
    if r.get("value") is None:
        return ClaimRow(claim.words, source, model, r, "not judged", "no seed where both are within the budget", {})
    verdict, note = claim.verdict(r), ""
    idle = unpruned_sides(methods, r)
    if idle:
        verdict, note = "not comparable", f"{' and '.join(idle)} pruned nothing within the budget on any seed"
    elif verdict == "holds" and r.get("num_method") != r.get("num") and r.get("num_variants") == 1:
        # a family stood for by one member: a stronger member might not lose; "does not hold" carries over
        verdict, note = "not judged", f"only one of {r['num']}'s variants ran: a win over it is not one over the rest"
    return ClaimRow(claim.words, source, model, r, verdict, note, _fingerprints(methods, r))


@dataclass(frozen=True)
class ClaimReading:
    """A ClaimRow in the table: the databases whose runs it repeats (source, seeds), the readings it shares
    one side's runs with (their index in the table, how the table names them, seeds), and whether it
    counts in the tally."""

    row: ClaimRow
    repeats: list[tuple[str, list[str]]]
    correlated: list[tuple[int, str, list[str]]]
    counts: bool  # False: every seed of it repeats a reading with as many seeds or more, listed first

    def markdown(self) -> str:
        """Its table row: the ClaimRow, with the runs it repeats and the readings it shares a side with."""
        row, r = self.row, self.row.ratio
        iv = f" {interval_text(*r['interval'])}" if r.get("interval") else ""
        value = f"{r['value']:.2f}x{iv} ({seeds_text(r['seeds'])})" if r.get("value") is not None else "-"
        same = "; ".join(f"seeds {', '.join(s)} the same runs as in `{src}`" for src, s in self.repeats)
        half = "; ".join(f"seeds {', '.join(s)} share one side's runs with {what}" for _, what, s in self.correlated)
        note = "; ".join(x for x in (row.note, same, half) if x)
        enc = "; ".join(encrypted_parts(r.get("encrypted") or {})) or "not measured"
        return (f"| {row.claim} | {row.model}, `{row.source}`: {ratio_sides(r, r['num'] + ' / ' + r['den'])} "
                f"| {value} | {r.get('num_settings', '?')} / {r.get('den_settings', '?')} "
                f"| {row.verdict}{f' ({note})' if note else ''} | {enc} |")


def claim_rows(experiments: dict) -> list[ClaimReading]:
    """Every reading of CLAIMS, with the readings it repeats or shares one side with. A repeat is the same
    ratio over the same two runs; a shared side is any reading of the same claim with one side's runs in
    common: the same dense model in two databases, or artemis-diagonal's runs under both of the Pareto
    claim's ratios in one."""
    rows = [_row(claim, source, key, summary, r)
            for claim in CLAIMS for source, models in experiments.items() for key, summary in sorted(models.items())
            for name in claim.ratios if (r := (summary.get("ratios") or {}).get(name))]
    out = []
    for i, row in enumerate(rows):
        same_claim = [(j, o) for j, o in enumerate(rows) if j != i and o.claim == row.claim]
        others = [(j, o, row.shared_with(o)) for j, o in same_claim
                  if (o.ratio.get("num"), o.ratio.get("den")) == (row.ratio.get("num"), row.ratio.get("den"))]
        repeats = [(o.source, s) for _, o, s in others if s]
        covered = any(len(s) == len(row.seeds) and (len(o.seeds) > len(row.seeds) or j < i)
                      for j, o, s in others if s)
        correlated = [(j, f"`{o.source}`" + ("" if o.ratio.get("num") == row.ratio.get("num") else
                                            f"'s {o.ratio.get('num')} / {o.ratio.get('den')}"), s)
                      for j, o in same_claim if (s := row.side_shared_with(o))]
        out.append(ClaimReading(row, repeats, correlated, not covered))
    return out


def claims_lines(cost_model: dict) -> list[str]:
    """Markdown: the claims table and, per claim, how many readings give each verdict."""
    rows = claim_rows(cost_model.get("experiments") or {})
    per_n = cost_model.get("per_n") or {}
    dominance = dominance_rows(per_n)
    if not rows and not dominance:
        return []
    floors = [p["noise_floor"] for p in per_n.values() if p.get("noise_floor")]
    noise = (f" Server-time ratios within {max(floors):.1%} of 1 are within the noise floor of the layer timings "
             "(results/report.md)." if floors else "")
    out = ["The seed paper's claims, each against every reading of it in these results (one row per database, model "
           "and ratio; nothing chosen among them). Ratios: rotations at the chosen steps, geometric mean over seeds "
           "with a 95% t-interval on the log ratios. Candidates: how many lambda settings (over a family's variants) "
           "validation chose each side from. Encrypted: the chosen models run encrypted, per plan (docs/pruning.md)."
           + noise, "",
           "| claim | reading | ratio (seeds) | candidates | verdict | encrypted |", "|---|---|---|---|---|---|",
           *dominance, *(c.markdown() for c in rows), ""]
    if dominance:
        out.append(f"- Rotations dominate: a case's rotations take more than {DOMINANT_SHARE:.0%} of its time by "
                   "the unit costs measured in the primitives suite; the coefficient algorithm's cases are not "
                   "counted here.")
    for claim in CLAIMS:
        mine = [c for c in rows if c.row.claim == claim.words]
        counted = [c.row.verdict for c in mine if c.counts]
        repeated = sum(1 for c in mine if not c.counts)
        # correlated with another counted reading through one side's runs (a dense model both used, say)
        linked = sum(1 for c in mine if c.counts and any(rows[j].counts for j, _, _ in c.correlated))
        if counted:
            said = ", ".join(f"{v} in {counted.count(v)}" for v in VERDICTS if v in counted)
            again = (f"; {repeated} more reading{'s' * (repeated != 1)} repeat{'s' * (repeated == 1)} runs "
                     "counted here") if repeated else ""
            kind = "distinct" if linked else "independent"
            tied = (f", {linked} of which share{'s' * (linked == 1)} one side's runs with another counted here, so "
                    "they are not independent") if linked else ""
            out.append(f"- {claim.words[0].upper()}{claim.words[1:]}: {said} of {len(counted)} {kind} "
                       f"reading{'s' * (len(counted) != 1)}{tied}{again} ({claim.reads}).")
    return out + [""]
