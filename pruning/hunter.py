"""Hunter's family: readings of Hunter's pruning of a plainly trained model, one scoring of its
units (plaintexts, diagonal and positional groups) times one set of units that may go.

    >>> [m.name for m in hunter_variants()][:3]
    ['hunter-rms-all', 'hunter-rms-groups', 'hunter-layer-rms-all']

diagonal-no-lasso (diagonal groups by RMS) and hunter-plaintext are members of the family too;
they are `GroupPruning`s (pruning/method_base.py), registered in pruning/methods.py.
"""

from __future__ import annotations

import math

import torch

from heconv.cost import DEFAULT_UNIT_COSTS
from heconv.errors import InputError

from .groups import LayerGroups
from .method_base import KINDS, PruningMethod, Units, group_sq_norms, rms_scores, rotation_saves


def _seconds_saved(g: LayerGroups, kind: str, ids: torch.Tensor, n: int, cost) -> torch.Tensor:
    """Engine seconds a unit's removal saves: its plaintext multiplications and additions, plus
    one rotation where the unit is a whole rotation group."""
    per_plain = cost.pmul + cost.add
    if kind == "plaintext":
        return torch.full((n,), per_plain, dtype=torch.float64)
    saves = getattr(g, KINDS[kind][2]).double()
    return _plaintexts_per_group(ids, g.plain_ids, n) * per_plain + saves * cost.rotation


def _rotations_saved(g: LayerGroups, kind: str, n: int) -> torch.Tensor:
    return torch.zeros(n, dtype=torch.float64) if kind == "plaintext" else getattr(g, KINDS[kind][2]).double()


def _per(score: torch.Tensor, saved: torch.Tensor) -> torch.Tensor:
    """score / saved, +inf where a unit saves nothing (it goes last), exactly 0 where the score is 0."""
    out = score.double() / saved.clamp(min=1e-300)
    return torch.where(saved > 0, out, torch.where(score > 0, torch.full_like(out, math.inf), torch.zeros_like(out)))


# Hunter's scorings: how a unit's weights and what its removal saves make its score (smallest first).
HUNTER_SCORINGS = {
    "rms": lambda w, ids, n, saved_s, saved_rot: rms_scores(w, ids, n).double(),
    "layer-rms": lambda w, ids, n, saved_s, saved_rot: rms_scores(w, ids, n).double()
    / max(float(w.pow(2).mean().sqrt()), 1e-30),
    "energy-per-s": lambda w, ids, n, saved_s, saved_rot: _per(group_sq_norms(w, ids, n), saved_s),
    "rms-per-rot": lambda w, ids, n, saved_s, saved_rot: _per(rms_scores(w, ids, n), saved_rot),
}
# Hunter's unit sets: which structures may go.
HUNTER_UNITS = {"all": ("plaintext", "diagonal", "positional"), "groups": ("diagonal", "positional"),
                "diag": ("diagonal",)}
# Scorings under which a non-zero plaintext, saving no rotation, scores infinite: under one global
# threshold (the quantiles leave infinite scores out) it goes only at fraction 1, a step no model
# survives, so the "all" unit set prunes as "groups" does; per-conv fractions (`masks`) count it.
PLAINTEXTS_SCORE_INFINITE = ("rms-per-rot",)


class Hunter(PruningMethod):
    """One reading of Hunter: the units of `kinds` (plaintexts, diagonal and positional groups,
    which share one rotation) of a plainly trained model, scored by `scoring` (HUNTER_SCORINGS).

    `hunter` itself is energy per second saved over all three kinds (the seconds a unit saves:
    its plaintext multiplications and additions, plus one rotation where it is a whole group;
    engine unit costs, heconv.cost.DEFAULT_UNIT_COSTS). Squared norms are not normalised by a
    unit's size, so the small units of narrow layers rank low; the other variants do normalise.
    The family's member chosen on validation is the `hunter` of the verdicts. Under one global
    threshold hunter-rms-per-rot-all prunes as hunter-rms-per-rot-groups (`same_as`): a non-zero
    plaintext saves no rotation, scores infinite and would go only at fraction 1.
    """

    family = "hunter"

    def __init__(self, name: str = "hunter", scoring: str = "energy-per-s", units: str = "all",
                 unit_costs=DEFAULT_UNIT_COSTS, same_as: str | None = None):
        if scoring not in HUNTER_SCORINGS or units not in HUNTER_UNITS:
            raise InputError(f"hunter: unknown scoring {scoring!r} or unit set {units!r}; known: "
                             f"{list(HUNTER_SCORINGS)} x {list(HUNTER_UNITS)}")
        self.name, self.scoring, self.kinds, self.cost = name, scoring, HUNTER_UNITS[units], unit_costs
        self.same_as = same_as

    def units(self, weights, groups):
        score = HUNTER_SCORINGS[self.scoring]
        out = []
        for path, g in groups.items():
            w = weights[path].detach()
            for kind in self.kinds:
                ids, n = getattr(g, KINDS[kind][0]), getattr(g, KINDS[kind][1])
                s = score(w, ids, n, _seconds_saved(g, kind, ids, n, self.cost), _rotations_saved(g, kind, n))
                out.append(Units(path, kind, ids, n, s.to(w.dtype), rotation_saves(g, kind)))
        return out


def hunter_variants() -> list[Hunter]:
    """Every scoring x unit set as `hunter-<scoring>-<units>`, less the two that exist under other
    names: `hunter` (energy-per-s, all) and diagonal-no-lasso (rms, diag).

    >>> [m.name for m in hunter_variants()][:3]
    ['hunter-rms-all', 'hunter-rms-groups', 'hunter-layer-rms-all']
    >>> len(hunter_variants())
    10
    """
    return [Hunter(f"hunter-{s}-{u}", s, u,
                   same_as=f"hunter-{s}-groups" if s in PLAINTEXTS_SCORE_INFINITE and u == "all" else None)
            for s in HUNTER_SCORINGS for u in HUNTER_UNITS if (s, u) not in (("energy-per-s", "all"), ("rms", "diag"))]


def _plaintexts_per_group(ids: torch.Tensor, plain_ids: torch.Tensor, n: int) -> torch.Tensor:
    """How many distinct plaintexts hold weights of each group.

    >>> _plaintexts_per_group(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 1, 2]), 2).tolist()
    [2.0, 1.0]
    """
    pairs = torch.unique(torch.stack([ids, plain_ids]), dim=1)
    return torch.bincount(pairs[0], minlength=n).double()
