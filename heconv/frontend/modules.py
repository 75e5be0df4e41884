"""The torch modules the engine lowers besides torch.nn's own: Square and PadShortcut.

Models import them from here so that the frontend knows every leaf it can trace.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError


class Square(nn.Module):
    """x -> x*x: the CryptoNets activation, one multiplicative level under CKKS."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


class PadShortcut(nn.Module):
    """Option-A shortcut: x[:, :, ::stride, ::stride] with channels zero-padded to c_out.

    >>> PadShortcut(1, 2, 2)(torch.ones(1, 1, 4, 4)).shape
    torch.Size([1, 2, 2, 2])
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        if c_out < c_in:
            raise InputError(f"PadShortcut: c_out ({c_out}) must be >= c_in ({c_in})")
        self.c_in, self.c_out, self.stride = c_in, c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.c_out - self.c_in))
