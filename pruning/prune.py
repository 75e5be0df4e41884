"""Pruning methods as masks kept beside the weights (torch.nn.utils.prune), folded at export.

Each method zeroes a `fraction` of its units in every conv, smallest L2 norm first:

    artemis-diagonal    diagonal groups (bo, d)          -> output rotations
    artemis-positional  positional groups (bi, pos)      -> input rotations
    artemis-both        both, each at `fraction`
    hunter              whole plaintexts M[bo, bi, d, pos] (our reading of Hunter)
    unstructured        single weights, global magnitude over all convs
    dense               nothing
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from .groups import LayerGroups, group_norms

METHODS = ("dense", "unstructured", "hunter", "artemis-diagonal", "artemis-positional", "artemis-both")


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


def method_masks(model: nn.Module, groups: dict[str, LayerGroups], method: str, fraction: float) -> dict[str, torch.Tensor]:
    """The mask of every conv for `method` at `fraction` (computed from the current weights)."""
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}; known: {', '.join(METHODS)}")
    modules = dict(model.named_modules())
    weights = {path: effective_weight(modules[path]).detach() for path in groups}
    if method == "dense":
        return {path: torch.ones_like(w) for path, w in weights.items()}
    if method == "unstructured":
        flat = torch.cat([w.abs().reshape(-1) for w in weights.values()])
        k = int(round(fraction * flat.numel()))
        threshold = torch.kthvalue(flat, k).values if k else torch.tensor(-1.0)
        return {path: (w.abs() > threshold).to(w.dtype) for path, w in weights.items()}
    masks = {}
    for path, g in groups.items():
        w = weights[path]
        if method == "hunter":
            masks[path] = smallest_groups_mask(w, g.plain_ids, g.n_plain, fraction)
            continue
        m = torch.ones_like(w)
        if method in ("artemis-diagonal", "artemis-both"):
            m = m * smallest_groups_mask(w, g.diag_ids, g.n_diag, fraction)
        if method in ("artemis-positional", "artemis-both"):
            m = m * smallest_groups_mask(w, g.pos_ids, g.n_pos, fraction)
        masks[path] = m
    return masks


def effective_weight(module: nn.Module) -> torch.Tensor:
    """The weight the module computes with: weight_orig * weight_mask when pruned."""
    if hasattr(module, "weight_mask"):
        return module.weight_orig * module.weight_mask
    return module.weight


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Hold these masks beside the weights (replacing earlier ones, which they must contain)."""
    modules = dict(model.named_modules())
    for path, mask in masks.items():
        m = modules[path]
        if hasattr(m, "weight_mask"):
            mask = mask * m.weight_mask  # pruning only ever adds zeros
            torch_prune.remove(m, "weight")
        torch_prune.custom_from_mask(m, "weight", mask)


def fold_masks(model: nn.Module) -> nn.Module:
    """A copy with every mask multiplied into its weight and the pruning hooks gone."""
    # torch.nn.utils.prune caches `weight` as a non-leaf tensor, which deepcopy refuses;
    # a detached cache is equivalent (the next forward recomputes it).
    pruned = [m for m in model.modules() if hasattr(m, "weight_mask")]
    cached = [m.weight for m in pruned]
    for m in pruned:
        m.weight = (m.weight_orig * m.weight_mask).detach()
    try:
        folded = copy.deepcopy(model)
    finally:
        for m, w in zip(pruned, cached):
            m.weight = w
    for m in folded.modules():
        if hasattr(m, "weight_mask"):
            torch_prune.remove(m, "weight")
    return folded


def sparsity(model: nn.Module, groups: dict[str, LayerGroups]) -> float:
    """Fraction of conv weights that are zero."""
    modules = dict(model.named_modules())
    zeros = total = 0
    for path in groups:
        w = effective_weight(modules[path])
        zeros += int((w == 0).sum())
        total += w.numel()
    return zeros / total if total else 0.0


def snapshot(model: nn.Module) -> tuple[dict, dict[str, torch.Tensor]]:
    """Folded weights and the masks held now, to come back to with `restore`."""
    masks = {name: m.weight_mask.detach().clone() for name, m in model.named_modules() if hasattr(m, "weight_mask")}
    return copy.deepcopy(fold_masks(model).state_dict()), masks


def restore(model: nn.Module, snap: tuple[dict, dict[str, torch.Tensor]]) -> None:
    """Back to a snapshot: its weights, and its masks beside them."""
    state, masks = snap
    for m in model.modules():
        if hasattr(m, "weight_mask"):
            torch_prune.remove(m, "weight")
    model.load_state_dict(state)
    if masks:
        apply_masks(model, masks)
