"""Synthetic sparsity: random weights with a chosen fraction of the engine's groups zeroed.

The groups are the engine's (`heconv.geometry.group_ids`, docs/pruning.md, "Pruning groups"), from the
same packing geometry the engine runs, so "50% of the diagonals" means what it costs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from heconv.errors import InputError
from heconv.frontend import conv_packings
from heconv.geometry import group_ids, packing_geometry
from heconv.params import CKKSParams


def _check_fraction(name: str, frac: float) -> None:
    if not 0.0 <= frac <= 1.0:
        raise InputError(f"{name} must be a fraction in [0, 1], got {frac}")


def _zero_random(w: np.ndarray, ids: np.ndarray, n_groups: int, fraction: float, rng: np.random.Generator) -> None:
    dead = rng.permutation(n_groups)[: int(round(fraction * n_groups))]
    w[np.isin(ids, dead)] = 0.0


def random_conv_weights(
    c_out: int,
    c_in: int,
    kernel: int,
    slots: int,
    height: int,
    width: int,
    prune_diagonals: float = 0.0,
    prune_positions: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Kaiming-normal weights with a random fraction of diagonal / positional groups zeroed.

    >>> w = random_conv_weights(16, 16, 3, 4096, 8, 8, prune_diagonals=0.5, seed=1)
    >>> w.shape, float((w == 0).mean())
    ((16, 16, 3, 3), 0.5)
    """
    _check_fraction("prune_diagonals", prune_diagonals)
    _check_fraction("prune_positions", prune_positions)
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, np.sqrt(2.0 / (c_in * kernel * kernel)), (c_out, c_in, kernel, kernel))
    g = group_ids(w.shape, packing_geometry(c_in, c_out, height, width, slots).c_n)
    _zero_random(w, g.diagonal, g.n_diagonal, prune_diagonals, rng)
    _zero_random(w, g.positional, g.n_positional, prune_positions, rng)
    return w


def zero_random_diagonals(weight: np.ndarray, c_n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Zero a random `fraction` of the diagonal groups (bo, d) that have weights.

    >>> w = zero_random_diagonals(np.ones((4, 4, 1, 1)), 4, 0.5, np.random.default_rng(0))
    >>> int((w == 0).sum())
    8
    """
    _check_fraction("fraction of diagonal groups", fraction)
    ids = group_ids(weight.shape, c_n).diagonal
    groups = np.unique(ids)
    dead = rng.choice(groups, int(round(fraction * len(groups))), replace=False)
    out = np.array(weight, dtype=np.float64, copy=True)
    out[np.isin(ids, dead)] = 0.0
    return out


def prune_model_diagonals(model: nn.Module, input_shape: tuple[int, int, int], params: CKKSParams, fraction: float,
                          seed: int = 0) -> None:
    """Zero a random fraction of every conv's diagonal groups in place (synthetic sparsity).

    The groups come from the engine's own packing of each layer (`conv_packings`).
    """
    rng = np.random.default_rng(seed)
    modules = dict(model.named_modules())
    for path, packing in conv_packings(model, input_shape, params).items():
        conv = modules[path]
        w = zero_random_diagonals(conv.weight.detach().double().numpy(), packing.c_n, fraction, rng)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w).to(conv.weight.dtype))
