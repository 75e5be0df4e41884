"""Giving a Lasso-trained model back its reference's weight scale before it is pruned.

A conv followed by BatchNorm has a free scale: W and c*W compute the same network once BN's running
statistics are scaled alike (mean by c, variance plus eps by c^2). The group Lasso spends most
of its penalty on that free scale: on ResNet18 (Fashion-MNIST 16x16, lambda_d 0.5, 4 warm epochs) it
shrank every conv's RMS weight to 0.25-0.32 of the dense model's while BN's gamma / sd grew 3-6x to
compensate, and no group reached zero. A smaller weight makes the same learning rate hotter (with BN,
a conv's effective step grows as lr / ||W||^2): one recovery epoch at lr 0.01 moved the surviving
weights 22-60% of their norm from the Lasso model, against 1.0-1.3% from the dense one. Restoring each
conv's RMS to the reference's (the same seed's plainly trained model) before pruning keeps the
network's function and gives every method's fine-tuning the same effective step.
"""

from __future__ import annotations

import torch
from torch import nn

from heconv.errors import InputError
from heconv.frontend import conv_batchnorm_pairs


def _rms(w: torch.Tensor) -> float:
    return float(w.detach().double().pow(2).mean().sqrt())


@torch.no_grad()
def match_weight_scale(model: nn.Module, reference: nn.Module) -> dict[str, float]:
    """Scale every conv that BatchNorm follows to its counterpart's RMS weight in `reference` (same
    architecture), BN's running mean by the same factor and its running variance by its square, in place.
    Returns {conv path: factor}. In eval mode the function is unchanged (the variance takes eps along:
    (var + eps) * c^2 - eps); in train mode, where BN normalises by the batch's variance plus eps, up to
    that eps.

    >>> m = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2)).eval()
    >>> ref = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2))
    >>> ref.load_state_dict({**m.state_dict(), "0.weight": 4 * m[0].weight.detach()})
    <All keys matched successfully>
    >>> x = torch.randn(1, 1, 5, 5); y = m(x)
    >>> round(match_weight_scale(m, ref)["0"], 6), torch.allclose(m(x), y, atol=1e-4)
    (4.0, True)
    """
    modules, ref_modules = dict(model.named_modules()), dict(reference.named_modules())
    factors: dict[str, float] = {}
    for conv_path, bn_path in conv_batchnorm_pairs(model):
        conv, bn, ref = modules[conv_path], modules[bn_path], ref_modules.get(conv_path)
        if not isinstance(ref, nn.Conv2d) or ref.weight.shape != conv.weight.shape:
            raise InputError(f"match_weight_scale: the reference has no conv {conv_path!r} of shape "
                             f"{list(conv.weight.shape)}")
        own = _rms(conv.weight)
        if own == 0.0:
            continue  # a wholly pruned conv has no scale to restore
        factors[conv_path] = _scale(conv, bn, _rms(ref.weight) / own)
    return factors


def weight_scales(model: nn.Module) -> dict[str, tuple[str, float]]:
    """Every conv that BatchNorm follows: its BN's path and its RMS weight (what hold_weight_scale holds).

    >>> m = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2), nn.Conv2d(2, 2, 1))
    >>> _ = m[0].weight.data.fill_(0.5); weight_scales(m)   # the last conv has no BN after it
    {'0': ('1', 0.5)}
    """
    modules = dict(model.named_modules())
    return {conv: (bn, _rms(modules[conv].weight)) for conv, bn in conv_batchnorm_pairs(model)}


@torch.no_grad()
def hold_weight_scale(model: nn.Module, scales: dict[str, tuple[str, float]]) -> None:
    """Set every conv of `scales` (weight_scales') back to its RMS weight there, its BN's running
    statistics alike (as match_weight_scale): the held-scale Lasso's step after each proximal step, so
    the penalty can only move weight between a conv's groups, not shrink the conv's free scale. A conv
    held at 0, or now all zero, is left as it is.

    >>> m = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2)).eval()
    >>> held = weight_scales(m); _ = m[0].weight.data.mul_(0.5); x = torch.randn(1, 1, 5, 5); y = m(x)
    >>> hold_weight_scale(m, held); round(_rms(m[0].weight) / held["0"][1], 6), torch.allclose(m(x), y, atol=1e-4)
    (1.0, True)
    """
    modules = dict(model.named_modules())
    for conv_path, (bn_path, target) in scales.items():
        conv = modules[conv_path]
        own = _rms(conv.weight)
        if target > 0.0 and own > 0.0:
            _scale(conv, modules[bn_path], target / own)


def _scale(conv: nn.Conv2d, bn: nn.BatchNorm2d, c: float) -> float:
    """conv's weight (and bias) times c, BN's running mean by c and variance by c^2; returns c."""
    conv.weight.mul_(c)
    if conv.bias is not None:
        conv.bias.mul_(c)
    if bn.running_mean is not None:
        bn.running_mean.mul_(c)
        # (var + eps) * c^2 - eps: BN's eval output exactly unchanged, near-dead channels (var ~ eps) too
        bn.running_var.mul_(c * c).add_((c * c - 1.0) * bn.eps)
    return c
