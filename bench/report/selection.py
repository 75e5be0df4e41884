"""Which run stands for each method: a run's point, and the lambdas and Hunter variant chosen on
validation (the selection protocol of bench.report.experiments and docs/pruning.md). Test
accuracy plays no part in any choice here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from heconv.errors import InputError

from ..experiments.readings import READINGS


@dataclass
class MethodResult:
    """One method (at its chosen lambdas; for a family, its chosen member) on one model, per seed."""

    method: str
    lambdas: tuple[float, float]
    seeds: list[int]
    rotations: dict[int, int | None]  # at the chosen step; None: no step within the budget
    test: dict[int, float | None] = field(default_factory=dict)  # test accuracy at the chosen step
    val: dict[int, float | None] = field(default_factory=dict)
    epochs: dict[int, float] = field(default_factory=dict)  # fine-tuning epochs up to the chosen step
    cut_off: dict[int, bool] = field(default_factory=dict)
    # per encrypted reading (bench.experiments.readings), the chosen step's server time per seed, where measured
    encrypted: dict[str, dict[int, float]] = field(default_factory=dict)
    traffic: dict[str, dict[int, float]] = field(default_factory=dict)  # ... and its bytes per image, both ways
    family: str = ""
    members: list["MethodResult"] = field(default_factory=list)  # a family's members that ran (on its result)
    chosen_on: list[int] = field(default_factory=list)  # the seeds its lambdas / variant were chosen on
    settings: int = 1  # the candidates validation chose it from: its lambda settings, over a family's members

    @property
    def within(self) -> list[int]:
        return [s for s in self.seeds if self.rotations.get(s) is not None]


def _runs(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["run_id"], []).append(r)
    return {k: sorted(v, key=lambda r: int(r["step"])) for k, v in out.items()}


def _flag(v) -> bool:
    return str(v).strip().lower() in ("1", "true", "1.0")


def _num(v) -> float | None:
    return None if v in (None, "") else float(v)


def run_point(steps: list[dict]) -> dict:
    """A run's point: its chosen step's rotations and accuracies, None rotations when that step is
    not within the budget. Reads the `chosen` column; test accuracy plays no part in the choice.

    >>> run_point([{"step": 0, "rotations": 90, "val_accuracy": 90, "test_accuracy": "", "accepted": 1, "chosen": 0},
    ...            {"step": 1, "rotations": 40, "val_accuracy": 89.5, "test_accuracy": 88.0, "accepted": 1,
    ...             "chosen": 1, "finetune_epochs": 1.0}])["rotations"]
    40
    """
    chosen = [s for s in steps if _flag(s.get("chosen"))] or steps[:1]
    c = chosen[0]
    ok = _flag(c.get("accepted", 1))
    return {"rotations": int(c["rotations"]) if ok else None, "test": _num(c.get("test_accuracy")),
            "val": _num(c.get("val_accuracy")), "epochs": _num(c.get("finetune_epochs")) or 0.0,
            "cut_off": any(_flag(s.get("cut_off")) for s in steps),
            "encrypted": {r.name: _num(c.get(r.column)) for r in READINGS},
            "traffic": {r.name: _num(c.get(r.bytes_column)) for r in READINGS}}


def selection_seeds(members: list[MethodResult]) -> list[int]:
    """The seeds a choice among `members` is made on: those every candidate ran. Seeds run only for
    the chosen candidates (the confirmation seeds of a staged grid) then cast no vote, and a candidate
    is never preferred for having run on more seeds. With no seed in common (a sweep just started),
    every seed any of them ran.

    >>> a = MethodResult("artemis-diagonal", (0, 1), [0, 1, 2, 3, 4], {})
    >>> b = MethodResult("artemis-diagonal", (0, 2), [0, 1, 2], {})
    >>> selection_seeds([a, b]), selection_seeds([a])
    ([0, 1, 2], [0, 1, 2, 3, 4])
    """
    common = set.intersection(*(set(m.seeds) for m in members)) if members else set()
    return sorted(common) or sorted({s for m in members for s in m.seeds})


def _validation_key(r: MethodResult, seeds: list[int]) -> tuple[float, float]:
    """On the selection `seeds`: the largest share of them within the budget, then the fewest
    rotations (geometric mean), all chosen on validation."""
    ran = [s for s in seeds if s in r.seeds] or r.seeds
    vals = [r.rotations[s] for s in ran if r.rotations.get(s) is not None]
    return (-len(vals) / max(1, len(ran)), float(np.mean(np.log(np.maximum(vals, 1)))) if vals else math.inf)


def choose(members: list[MethodResult]) -> tuple[MethodResult, list[MethodResult], list[int]]:
    """(the member chosen on validation, all of them best first, the seeds the choice was made on)."""
    seeds = selection_seeds(members)
    ranked = sorted(members, key=lambda r: _validation_key(r, seeds))
    return ranked[0], ranked, seeds


def candidates(rows: list[dict]) -> dict[tuple[str, tuple[float, float]], MethodResult]:
    """Every (method, lambdas) of one model's rows with its per-seed points (seeds with a dense run only)."""
    runs = _runs(rows)
    dense = {int(s[0]["seed"]) for s in runs.values() if s[0]["method"] == "dense"}
    out: dict[tuple[str, tuple[float, float]], MethodResult] = {}
    for steps in runs.values():
        s0 = steps[0]
        seed = int(s0["seed"])
        if seed not in dense:
            continue
        lams = (float(s0["lambda_p"]), float(s0["lambda_d"]))
        res = out.setdefault((s0["method"], lams), MethodResult(s0["method"], lams, [], {}))
        if seed in res.seeds:  # two pruning configurations of one cell would be averaged as if one
            raise InputError(f"experiments: {s0['method']} (lambdas {lams}) has two runs of seed {seed} in one model's "
                             f"rows ({s0['run_id']} and another): a database holds one pruning configuration")
        p = run_point(steps)
        res.seeds.append(seed)
        res.rotations[seed], res.test[seed], res.val[seed] = p["rotations"], p["test"], p["val"]
        res.epochs[seed], res.cut_off[seed] = p["epochs"], p["cut_off"]
        for reading, server_s in p["encrypted"].items():
            if server_s is not None:
                res.encrypted.setdefault(reading, {})[seed] = server_s
                if p["traffic"][reading] is not None:  # a run measured before the view had its bytes has none
                    res.traffic.setdefault(reading, {})[seed] = p["traffic"][reading]
    return out


def _registered(method: str):
    """The registered pruning method of that name (None: a name the registry no longer has)."""
    from pruning.methods import REGISTRY

    return REGISTRY.get(method)


def _family(method: str) -> str:
    m = _registered(method)
    return m.family if m is not None else method


def model_results(rows: list[dict], max_drop: float = 1.0) -> dict[str, MethodResult]:
    """Per method its result at the lambdas chosen on validation, and per family (a name such as
    `hunter` that several methods share) the member chosen on validation.

    `max_drop` is the budget the rows were pruned under (their `accepted` column); it is kept for
    the callers' signature."""
    by_method: dict[str, list[MethodResult]] = {}
    for (method, _), res in candidates(rows).items():
        by_method.setdefault(method, []).append(res)
    best = {}
    for m, rs in by_method.items():
        chosen, _, seeds = choose(rs)
        best[m] = replace(chosen, chosen_on=seeds, settings=len(rs), family=_family(m))
    families: dict[str, list[MethodResult]] = {}
    for r in best.values():
        families.setdefault(r.family, []).append(r)
    out = dict(best)
    for fam, members in families.items():
        if len(members) > 1 or fam not in out:
            chosen, ranked, seeds = choose(members)
            # the family's entry is its chosen member's figures, with every member beside them
            out[fam] = replace(chosen, members=ranked, chosen_on=sorted(set(seeds) & set(chosen.chosen_on)),
                               settings=sum(m.settings for m in members))
    return out


def family_members(results: dict[str, MethodResult], family: str) -> list[MethodResult]:
    """The members of a family that ran, best on validation first."""
    r = results.get(family)
    return r.members if r is not None and r.members else ([r] if r is not None else [])


def same_as(method: str) -> str | None:
    """The method `method` prunes as under one global threshold (pruning.method_base.PruningMethod.same_as).

    >>> same_as("hunter-rms-per-rot-all"), same_as("hunter")
    ('hunter-rms-per-rot-groups', None)
    """
    m = _registered(method)
    return m.same_as if m is not None else None


def duplicates(members: list[MethodResult]) -> dict[str, str]:
    """Member -> the member it prunes as (`same_as`), where both ran and agree on every seed they share:
    rotations, validation and test accuracy at the chosen step (a per-conv-fraction run, or one whose
    plaintexts were all zero, may not agree, and then counts apart)."""
    by_name = {m.method: m for m in members}
    out = {}
    for m in members:
        o = by_name.get(same_as(m.method) or "")
        shared = sorted(set(m.seeds) & set(o.seeds)) if o is not None else []
        if shared and all((m.rotations.get(s), m.val.get(s), m.test.get(s)) ==
                          (o.rotations.get(s), o.val.get(s), o.test.get(s)) for s in shared):
            out[m.method] = o.method
    return out


def distinct_members(results: dict[str, MethodResult], family: str) -> list[MethodResult]:
    """A family's members that ran, less those that pruned as another member that ran (`duplicates`)."""
    members = family_members(results, family)
    same = duplicates(members)
    return [m for m in members if m.method not in same]


PROTOCOL = ("subset", "n_val", "n_test")  # one model's rows share these, or their ratios compare unlike runs


def groups_by_model(rows: list[dict]) -> dict[tuple, list[dict]]:
    """Rows per (model, dataset, input size, N); an InputError where one model's rows mix protocols."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault((r["model"], r["dataset"], str(r["input_size"]), str(r["poly_modulus_degree"])), []).append(r)
    for key, sel in out.items():
        for col in PROTOCOL:
            seen = sorted({str(r[col]) for r in sel if r.get(col) not in (None, "")})
            if len(seen) > 1:
                raise InputError(f"experiments: {key[0]}'s rows mix {col} {' and '.join(seen)}; a report compares "
                                 "runs of one protocol (one database per protocol)")
    return out
