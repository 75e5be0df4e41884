"""Models for encrypted inference: CIFAR-style ResNet18/50, ResNet-20 and a small CNN;
`models.checkpoint` is the one safe loader of their checkpoints."""

from __future__ import annotations

from torch import nn

from heconv.errors import InputError
from heconv.frontend.modules import PadShortcut, Square

from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet20, resnet50
from .small_cnn import SmallCNN

MODELS = ("resnet18", "resnet50", "resnet20", "small-cnn", "small-cnn-square")


def build_model(name: str, in_channels: int = 3, num_classes: int = 10) -> nn.Module:
    """A fresh model by name (one of MODELS)."""
    if name == "resnet18":
        return resnet18(in_channels, num_classes)
    if name == "resnet50":
        return resnet50(in_channels, num_classes)
    if name == "resnet20":
        return resnet20(in_channels, num_classes)
    if name == "small-cnn":
        return SmallCNN(in_channels, num_classes, "relu")
    if name == "small-cnn-square":
        return SmallCNN(in_channels, num_classes, "square")
    raise InputError(f"unknown model {name!r}; known: {', '.join(MODELS)}")


__all__ = ["MODELS", "build_model", "BasicBlock", "Bottleneck", "PadShortcut", "ResNet", "SmallCNN", "Square",
           "resnet18", "resnet20", "resnet50"]
