"""The proximal step of the group Lasso: group soft-thresholding, which makes groups exactly zero.

Plain SGD on lambda * ||W_g||_2 only oscillates around zero (docs/pruning.md, "Training with the group Lasso"). After
each optimizer step the proximal operator of the penalty is applied instead:

    W_g <- W_g * max(0, 1 - lr * lambda * s_g / ||W_g||_2)

where s_g weights a group by what zeroing it saves (1, or 0 for a group that saves no
rotation when `rotation_weighted`). A group whose norm is at most lr * lambda * s_g lands
on exactly zero and stays there while its gradient is too weak to lift it back.

With `relative` (the default in training) the threshold is also scaled by the group's size
and its conv's current RMS weight, tau_g = lr * lambda * s_g * sqrt(|g|) * rms(W): BatchNorm
after a conv makes the conv's scale free (W and 2W compute the same network), so an
absolute threshold mostly shrinks whole layers and zeroes almost nothing (measured on
ResNet-20: lambda_d = 0.6 cut the penalty 10x and zeroed 0.1% of the groups), whereas a
relative one zeroes the groups whose RMS falls below lr * lambda of their layer's.
"""

from __future__ import annotations

import torch
from torch import nn

from heconv.errors import InputError

from .groups import LayerGroups, group_norms


def group_soft_threshold(weight: torch.Tensor, ids: torch.Tensor, n: int, tau: torch.Tensor | float) -> torch.Tensor:
    """The weight with every group g shrunk by tau_g toward zero (to exactly zero below it).

    >>> w = torch.tensor([3.0, 4.0, 0.3, 0.4])           # groups: norm 5 and norm 0.5
    >>> group_soft_threshold(w, torch.tensor([0, 0, 1, 1]), 2, 1.0).tolist()
    [2.4000000953674316, 3.200000047683716, 0.0, 0.0]
    """
    norms = group_norms(weight.detach(), ids, n)
    tau = torch.as_tensor(tau, dtype=weight.dtype, device=weight.device)
    scale = torch.clamp(1.0 - tau / norms, min=0.0)
    scale = torch.where(norms <= 1e-7, torch.zeros_like(scale), scale)  # an all-zero group stays zero
    return weight * scale[ids.to(weight.device)].reshape(weight.shape)


@torch.no_grad()
def proximal_step(model: nn.Module, groups: dict[str, LayerGroups], lr: float, lambda_p: float = 0.0,
                  lambda_d: float = 0.0, rotation_weighted: bool = False, relative: bool = False,
                  optimizer: torch.optim.Optimizer | None = None) -> None:
    """Apply the group-Lasso proximal operator to every conv weight in place (diagonal groups
    with lr*lambda_d, then positional ones with lr*lambda_p; `relative`: times sqrt(|g|) * rms(W)).

    With `optimizer`, the momentum of the weights just set to zero is cleared too: otherwise
    the next step's momentum lifts the group straight back off zero.
    """
    if lr < 0 or lambda_p < 0 or lambda_d < 0:
        raise InputError(f"proximal_step: lr and lambdas must be non-negative, got lr={lr}, "
                         f"lambda_p={lambda_p}, lambda_d={lambda_d}")
    modules = dict(model.named_modules())
    for path, g in groups.items():
        w = modules[path].weight
        for lam, ids, n, saves in ((lambda_d, g.diag_ids, g.n_diag, g.diag_saves),
                                   (lambda_p, g.pos_ids, g.n_pos, g.pos_saves)):
            if lam:
                tau = lr * lam * (saves.to(w.dtype) if rotation_weighted else torch.ones(n, dtype=w.dtype))
                if relative:
                    sizes = torch.bincount(ids, minlength=n).to(w.dtype)
                    tau = tau * torch.sqrt(sizes) * w.detach().pow(2).mean().sqrt().cpu()
                w.copy_(group_soft_threshold(w, ids, n, tau))
        if optimizer is not None and (lambda_p or lambda_d):
            buf = optimizer.state.get(w, {}).get("momentum_buffer")
            if buf is not None:
                buf.mul_((w != 0).to(buf.dtype))


@torch.no_grad()
def zero_group_fractions(model: nn.Module, groups: dict[str, LayerGroups]) -> dict[str, float]:
    """Fraction of diagonal and of positional groups (over all convs) whose weights are all zero."""
    modules = dict(model.named_modules())
    counts = {"diagonal": [0, 0], "positional": [0, 0]}
    for path, g in groups.items():
        w = modules[path].weight
        for kind, ids, n in (("diagonal", g.diag_ids, g.n_diag), ("positional", g.pos_ids, g.n_pos)):
            norms = group_norms(w, ids, n)
            counts[kind][0] += int((norms <= 1e-7).sum())
            counts[kind][1] += n
    return {f"zero_{k}_groups": (z / t if t else 0.0) for k, (z, t) in counts.items()}
