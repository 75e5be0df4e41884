"""A small CNN for the fully non-interactive mode (square activations) and quick runs."""

from __future__ import annotations

import torch
from torch import nn

from heconv.errors import InputError
from heconv.frontend.modules import Square


class SmallCNN(nn.Module):
    """conv3x3(c->8) - act - conv3x3(8->16) - act - global average pool - fc."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, activation: str = "relu", width: int = 8):
        super().__init__()
        if activation not in ("relu", "square"):
            raise InputError(f"SmallCNN: activation must be 'relu' or 'square', got {activation!r}")
        act = nn.ReLU if activation == "relu" else Square
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1)
        self.act1 = act()
        self.conv2 = nn.Conv2d(width, 2 * width, 3, 1, 1)
        self.act2 = act()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))
