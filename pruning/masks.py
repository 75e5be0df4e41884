"""Masks kept beside the weights (torch.nn.utils.prune), folded in at export."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from .groups import LayerGroups


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
