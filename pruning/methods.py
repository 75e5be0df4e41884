"""Pruning methods, one class each (in the manner of torch.nn.utils.prune's
BasePruningMethod), as masks kept beside the weights and folded in at export.

Each method zeroes a `fraction` of its units in every conv, smallest L2 norm first:

    artemis-diagonal    diagonal groups (bo, d)          -> output rotations
    artemis-positional  positional groups (bi, pos)      -> input rotations
    artemis-both        both, each at `fraction`
    hunter              whole plaintexts M[bo, bi, d, pos] (our reading of Hunter)
    unstructured        single weights, global magnitude over all convs
    dense               nothing

`method_masks(model, groups, name, fraction)` is the thin functional wrapper.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from .groups import LayerGroups, group_norms
from .masks import effective_weight

Masks = dict[str, torch.Tensor]


def smallest_groups_mask(weight: torch.Tensor, ids: torch.Tensor, n: int, fraction: float) -> torch.Tensor:
    """0/1 mask (weight's shape) zeroing the `fraction` of groups with the smallest norms.

    >>> w = torch.tensor([[1.0, 5.0], [0.1, 0.2]])
    >>> smallest_groups_mask(w, torch.tensor([0, 0, 1, 1]), 2, 0.5).tolist()
    [[1.0, 1.0], [0.0, 0.0]]
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    k = int(round(fraction * n))
    keep = torch.ones(n, dtype=weight.dtype)
    if k:
        norms = group_norms(weight.detach(), ids, n)
        keep[torch.argsort(norms, stable=True)[:k]] = 0.0
    return keep[ids].reshape(weight.shape)


class PruningMethod(ABC):
    """A way of choosing which weights of every conv to zero at a given fraction."""

    name: str

    @abstractmethod
    def masks(self, weights: dict[str, torch.Tensor], groups: dict[str, LayerGroups], fraction: float) -> Masks:
        """A 0/1 mask per conv path, from the current (effective) weights."""


class Dense(PruningMethod):
    name = "dense"

    def masks(self, weights, groups, fraction):
        return {path: torch.ones_like(w) for path, w in weights.items()}


class Unstructured(PruningMethod):
    """Global magnitude pruning over all convs (torch's global_unstructured)."""

    name = "unstructured"

    def masks(self, weights, groups, fraction):
        flat = torch.cat([w.abs().reshape(-1) for w in weights.values()])
        k = int(round(fraction * flat.numel()))
        threshold = torch.kthvalue(flat, k).values if k else torch.tensor(-1.0)
        return {path: (w.abs() > threshold).to(w.dtype) for path, w in weights.items()}


class GroupPruning(PruningMethod):
    """Per conv, the `fraction` of each named group kind with the smallest norms."""

    # group kind -> (ids attribute, count attribute) of LayerGroups
    KINDS = {"diagonal": ("diag_ids", "n_diag"), "positional": ("pos_ids", "n_pos"),
             "plaintext": ("plain_ids", "n_plain")}

    def __init__(self, name: str, kinds: tuple[str, ...]):
        unknown = [k for k in kinds if k not in self.KINDS]
        if unknown:
            raise ValueError(f"unknown group kinds {unknown}; known: {list(self.KINDS)}")
        self.name, self.kinds = name, kinds

    def masks(self, weights, groups, fraction):
        out = {}
        for path, g in groups.items():
            w = weights[path]
            m = torch.ones_like(w)
            for kind in self.kinds:
                ids, n = (getattr(g, a) for a in self.KINDS[kind])
                m = m * smallest_groups_mask(w, ids, n, fraction)
            out[path] = m
        return out


_ALL = [Dense(), Unstructured(), GroupPruning("hunter", ("plaintext",)),
        GroupPruning("artemis-diagonal", ("diagonal",)), GroupPruning("artemis-positional", ("positional",)),
        GroupPruning("artemis-both", ("diagonal", "positional"))]
REGISTRY: dict[str, PruningMethod] = {m.name: m for m in _ALL}
METHODS = tuple(REGISTRY)


def get_method(name: str) -> PruningMethod:
    if name not in REGISTRY:
        raise ValueError(f"unknown pruning method {name!r}; known: {', '.join(METHODS)}")
    return REGISTRY[name]


def method_masks(model: nn.Module, groups: dict[str, LayerGroups], method: str, fraction: float) -> Masks:
    """The mask of every conv for `method` at `fraction` (computed from the current weights)."""
    pm = get_method(method)
    modules = dict(model.named_modules())
    weights = {path: effective_weight(modules[path]).detach() for path in groups}
    return pm.masks(weights, groups, fraction)
