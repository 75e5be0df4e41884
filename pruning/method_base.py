"""The base of every pruning method (in the manner of torch.nn.utils.prune's BasePruningMethod):
`PruningMethod` names a conv's prunable units and scores them, the units with the smallest
scores go first; `Units` holds one kind of unit of one conv. Also the methods that need nothing
beyond it: dense, unstructured magnitude pruning, group kinds scored by their RMS
(`GroupPruning`) and the coefficient algorithm's kernel blocks. Hunter's family is in
pruning/hunter.py, the registry in pruning/methods.py.

RMS is a group's L2 norm over the square root of its size, so that groups of different
sizes (layers of different widths) meet one global threshold on equal terms.
"""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass

import numpy as np
import torch

from heconv.errors import InputError

from .groups import LayerGroups, group_norms
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
                out.append(Units(path, kind, ids, n, rms_scores(weights[path], ids, n), rotation_saves(g, kind)))
        return out


def rotation_saves(g: LayerGroups, kind: str) -> torch.Tensor | None:
    """Rotations each unit of a kind saves (None for plaintexts: they save one only all together)."""
    return None if kind == "plaintext" else getattr(g, KINDS[kind][2]).detach().cpu()


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
