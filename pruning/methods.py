"""Pruning methods, one class each (in the manner of torch.nn.utils.prune's
BasePruningMethod), as masks kept beside the weights and folded in at export.

A method names its prunable units and scores them; the units with the smallest scores go
first, either below one global threshold (the paper's procedure: `threshold_masks`) or as
a fraction of each conv's units (`masks`):

    method              units (score)                                  trained with
    dense               none                                           no Lasso
    unstructured        single weights (|w|)                           no Lasso
    hunter              plaintexts, diagonal and positional groups     no Lasso
                        (squared norm per second the engine saves)
    hunter-<s>-<u>      Hunter's variants: scoring s (rms, layer-rms,  no Lasso
                        energy-per-s, rms-per-rot) x units u (all,
                        groups = diagonal + positional, diag)
    hunter-plaintext    whole plaintexts M[bo, bi, d, pos] (RMS)       no Lasso
    diagonal-no-lasso   diagonal groups (RMS)                          no Lasso (the ablation)
    artemis-diagonal    diagonal groups (bo, d) (RMS)                  lambda_d
    artemis-positional  positional groups (bi, pos) (RMS)              lambda_p
    artemis-both        both kinds (RMS)                               lambda_p and lambda_d
    coefficient-block   the coefficient algorithm's kernel blocks       no Lasso
                        (output group, input chunk) (RMS)

RMS is a group's L2 norm over the square root of its size, so that groups of different
sizes (layers of different widths) meet one global threshold on equal terms.
Under a BSGS schedule the diagonal/positional slots hold its giant/baby-step groups.

`method_masks` and `method_threshold_masks` are the thin functional wrappers.
"""

from __future__ import annotations

import math
from abc import ABC
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from heconv.cost import DEFAULT_UNIT_COSTS
from heconv.errors import InputError

from .groups import LayerGroups, group_norms
from .masks import effective_weight
from .train import LASSO_MODES

Masks = dict[str, torch.Tensor]
KINDS = {"diagonal": ("diag_ids", "n_diag", "diag_saves"), "positional": ("pos_ids", "n_pos", "pos_saves"),
         "plaintext": ("plain_ids", "n_plain", None)}


@dataclass(frozen=True)
class Units:
    """One kind of unit of one conv: the unit of every weight (over weight.flatten()) and each unit's score."""

    path: str
    kind: str
    ids: torch.Tensor
    n: int
    scores: torch.Tensor
    saves: torch.Tensor | None = None  # [n] rotations each unit saves (rotation groups only)

    def mask(self, weight: torch.Tensor, pruned: torch.Tensor) -> torch.Tensor:
        """0/1 mask of the weight's shape zeroing the units flagged in `pruned` ([n] bool)."""
        return (~pruned).to(weight.dtype)[self.ids].reshape(weight.shape)


def smallest_groups_mask(weight: torch.Tensor, ids: torch.Tensor, n: int, fraction: float) -> torch.Tensor:
    """0/1 mask (weight's shape) zeroing the `fraction` of groups with the smallest norms.

    >>> w = torch.tensor([[1.0, 5.0], [0.1, 0.2]])
    >>> smallest_groups_mask(w, torch.tensor([0, 0, 1, 1]), 2, 0.5).tolist()
    [[1.0, 1.0], [0.0, 0.0]]
    """
    _check_fraction(fraction)
    unit = Units("", "", ids, n, group_norms(weight.detach(), ids, n))
    return unit.mask(weight, _smallest(unit.scores, fraction))


def rms_scores(weight: torch.Tensor, ids: torch.Tensor, n: int) -> torch.Tensor:
    """Each group's L2 norm over the square root of its size.

    >>> rms_scores(torch.tensor([3.0, 4.0, 2.0]), torch.tensor([0, 0, 1]), 2).tolist()
    [3.535533905029297, 2.0]
    """
    sizes = torch.bincount(ids, minlength=n).clamp(min=1).to(weight.dtype)
    return torch.sqrt(group_sq_norms(weight, ids, n)) / torch.sqrt(sizes)


def group_sq_norms(weight: torch.Tensor, ids: torch.Tensor, n: int) -> torch.Tensor:
    """Sum of squares of every group, exactly 0 for an all-zero group (no epsilon: a score of a
    group the Lasso zeroed must lie at or below every threshold).

    >>> group_sq_norms(torch.tensor([3.0, 4.0, 0.0]), torch.tensor([0, 0, 1]), 2).tolist()
    [25.0, 0.0]
    """
    w = weight.detach().reshape(-1)
    return torch.zeros(n, dtype=w.dtype).index_add_(0, ids.to(w.device), w * w)


def _check_fraction(fraction: float) -> None:
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"fraction must be in [0, 1], got {fraction}")


def _smallest(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    k = int(round(fraction * len(scores)))
    pruned = torch.zeros(len(scores), dtype=torch.bool)
    if k:
        pruned[torch.argsort(scores, stable=True)[:k]] = True
    return pruned


class PruningMethod(ABC):
    """A way of choosing which weights of every conv to zero."""

    name: str
    # Which group-Lasso weights the model it prunes is trained with ("p", "d"); () is plain training.
    lasso: tuple[str, ...] = ()
    # The engine algorithm whose cost the method cuts (and its steps are counted under).
    algorithm: str = "slot"
    # The verdicts compare families: a family's member (and lambdas) is chosen per model on validation.
    family: str = ""
    # Before pruning, each conv's weight scale is set back to the reference model's (pruning.rescale):
    # what the Lasso shrank and BatchNorm cancelled no longer makes the fine-tuning's step hotter.
    rescale: bool = False
    # The Lasso training its model gets (pruning.train.LASSO_MODES); None: the sweep's.
    training: str | None = None
    # Another method this one prunes as under one global threshold, by construction (the report counts
    # the two once where their runs agree).
    same_as: str | None = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "name" in cls.__dict__ and "family" not in cls.__dict__:
            cls.family = cls.name

    def units(self, weights: dict[str, torch.Tensor], groups: dict[str, LayerGroups]) -> list[Units]:
        """The scored units of every conv (none: nothing to prune)."""
        return []

    def masks(self, weights: dict[str, torch.Tensor], groups: dict[str, LayerGroups], fraction: float) -> Masks:
        """Per conv, the `fraction` of its units (all kinds pooled) with the smallest scores."""
        _check_fraction(fraction)
        out = {path: torch.ones_like(w) for path, w in weights.items()}
        by_path: dict[str, list[Units]] = {}
        for u in self.units(weights, groups):
            by_path.setdefault(u.path, []).append(u)
        for path, units in by_path.items():
            pooled = torch.cat([u.scores for u in units])
            cut = _smallest(pooled, fraction)
            start = 0
            for u in units:
                out[path] = out[path] * u.mask(weights[path], cut[start : start + u.n])
                start += u.n
        return out

    def threshold_masks(self, weights: dict[str, torch.Tensor], groups: dict[str, LayerGroups],
                        threshold: float) -> Masks:
        """Every unit, in any conv, whose score is at most `threshold`."""
        out = {path: torch.ones_like(w) for path, w in weights.items()}
        for u in self.units(weights, groups):
            out[u.path] = out[u.path] * u.mask(weights[u.path], u.scores <= threshold)
        return out

    def thresholds(self, weights: dict[str, torch.Tensor], groups: dict[str, LayerGroups],
                   fractions: tuple[float, ...]) -> tuple[float, ...]:
        """The increasing thresholds below which these fractions of the method's rotation groups (the
        units that save a rotation, pooled over convs; every unit where it has none) lie now.

        Stepping through the rotation groups makes a step cost about as many rotations whatever
        else a method prunes beside them (plaintexts go along when their score is under the
        threshold); infinite scores are left out of the quantiles, and fraction 1 takes every unit.
        """
        units = self.units(weights, groups)
        if not units:
            return ()
        pooled = np.concatenate([u.scores.detach().double().numpy() for u in units])
        base = np.concatenate([u.scores.detach().double().numpy()[u.saves.numpy() > 0] for u in units
                               if u.saves is not None] or [np.zeros(0)])
        base = base[np.isfinite(base)]
        if base.size == 0:
            base = pooled[np.isfinite(pooled)] if np.isfinite(pooled).any() else pooled
        return tuple(float(pooled.max()) if f >= 1 else float(np.quantile(base, f, method="lower"))
                     for f in fractions)


class Dense(PruningMethod):
    name = "dense"


class Unstructured(PruningMethod):
    """Global magnitude pruning over all convs (torch's global_unstructured)."""

    name = "unstructured"

    def units(self, weights, groups):
        return [Units(path, "weight", torch.arange(w.numel()), w.numel(), w.detach().abs().reshape(-1))
                for path, w in weights.items()]

    def masks(self, weights, groups, fraction):
        _check_fraction(fraction)
        flat = torch.cat([w.abs().reshape(-1) for w in weights.values()])
        k = int(round(fraction * flat.numel()))
        threshold = torch.kthvalue(flat, k).values if k else torch.tensor(-1.0)
        return {path: (w.abs() > threshold).to(w.dtype) for path, w in weights.items()}


class GroupPruning(PruningMethod):
    """Named group kinds of every conv, scored by their RMS."""

    def __init__(self, name: str, kinds: tuple[str, ...], lasso: tuple[str, ...] = (), family: str | None = None,
                 rescale: bool = False, training: str | None = None):
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise InputError(f"unknown group kinds {unknown}; known: {list(KINDS)}")
        self.name, self.kinds, self.lasso, self.family = name, kinds, lasso, family or name
        if training is not None and training not in LASSO_MODES:
            raise InputError(f"method {name!r}: training {training!r} is not a Lasso mode; known: {LASSO_MODES}")
        self.rescale, self.training = rescale, training

    def units(self, weights, groups):
        out = []
        for path, g in groups.items():
            for kind in self.kinds:
                ids, n = getattr(g, KINDS[kind][0]), getattr(g, KINDS[kind][1])
                out.append(Units(path, kind, ids, n, rms_scores(weights[path], ids, n), _saves(g, kind)))
        return out


def _saves(g: LayerGroups, kind: str) -> torch.Tensor | None:
    """Rotations each unit of a kind saves (None for plaintexts: they save one only all together)."""
    return None if kind == "plaintext" else getattr(g, KINDS[kind][2]).detach().cpu()


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
                out.append(Units(path, kind, ids, n, s.to(w.dtype), _saves(g, kind)))
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


class CoefficientBlock(PruningMethod):
    """Kernel blocks of the coefficient algorithm (one plaintext multiplication per tile each), by RMS."""

    name = "coefficient-block"
    algorithm = "coefficient"

    def units(self, weights, groups):
        out = []
        for path, g in groups.items():
            if g.block_ids is None:
                raise ValueError(f"layer {path}: coefficient-block needs the coefficient algorithm's kernel blocks; "
                                 "build the groups with model_groups(..., algorithm='coefficient')")
            out.append(Units(path, "block", g.block_ids, g.n_block, rms_scores(weights[path], g.block_ids, g.n_block)))
        return out


def _plaintexts_per_group(ids: torch.Tensor, plain_ids: torch.Tensor, n: int) -> torch.Tensor:
    """How many distinct plaintexts hold weights of each group.

    >>> _plaintexts_per_group(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 1, 2]), 2).tolist()
    [2.0, 1.0]
    """
    pairs = torch.unique(torch.stack([ids, plain_ids]), dim=1)
    return torch.bincount(pairs[0], minlength=n).double()


# hunter-plaintext and diagonal-no-lasso are readings of Hunter too (plaintexts alone; diagonal
# groups alone by RMS): as members of its family, the best Hunter on validation is never weaker.
_ALL = [Dense(), Unstructured(), Hunter(), *hunter_variants(), GroupPruning("hunter-plaintext", ("plaintext",),
                                                                            family="hunter"),
        GroupPruning("diagonal-no-lasso", ("diagonal",), family="hunter"),
        GroupPruning("artemis-diagonal", ("diagonal",), ("d",)),
        # The Lasso model at the dense model's weight scale (pruning.rescale): a member of the family, so the
        # artemis-diagonal of the verdicts is the better of the two on validation.
        GroupPruning("artemis-diagonal-rescaled", ("diagonal",), ("d",), family="artemis-diagonal", rescale=True),
        # The Lasso trained with each conv's weight scale held (pruning.train, "proximal-held"): the penalty
        # moves weight between groups instead of shrinking the free scale.
        GroupPruning("artemis-diagonal-held", ("diagonal",), ("d",), family="artemis-diagonal",
                     training="proximal-held"),
        GroupPruning("artemis-positional", ("positional",), ("p",)),
        GroupPruning("artemis-both", ("diagonal", "positional"), ("p", "d")), CoefficientBlock()]
REGISTRY: dict[str, PruningMethod] = {m.name: m for m in _ALL}
METHODS = tuple(REGISTRY)


def family_members(family: str) -> tuple[str, ...]:
    """The methods of a family (a method alone is its own family).

    >>> family_members("artemis-positional"), "diagonal-no-lasso" in family_members("hunter")
    (('artemis-positional',), True)
    >>> family_members("artemis-diagonal")
    ('artemis-diagonal', 'artemis-diagonal-rescaled', 'artemis-diagonal-held')
    """
    return tuple(m.name for m in _ALL if m.family == family)


def get_method(name: str) -> PruningMethod:
    if name not in REGISTRY:
        raise InputError(f"unknown pruning method {name!r}; known: {', '.join(METHODS)}")
    return REGISTRY[name]


def current_weights(model: nn.Module, groups: dict[str, LayerGroups]) -> dict[str, torch.Tensor]:
    """The effective (masked) weight of every conv in `groups`, detached."""
    modules = dict(model.named_modules())
    return {path: effective_weight(modules[path]).detach() for path in groups}


def method_masks(model: nn.Module, groups: dict[str, LayerGroups], method: str, fraction: float) -> Masks:
    """The mask of every conv for `method` at `fraction` per conv (computed from the current weights)."""
    return get_method(method).masks(current_weights(model, groups), groups, fraction)


def method_threshold_masks(model: nn.Module, groups: dict[str, LayerGroups], method: str,
                           threshold: float) -> Masks:
    """The mask of every conv for `method` at one global `threshold` on its unit scores."""
    return get_method(method).threshold_masks(current_weights(model, groups), groups, threshold)
