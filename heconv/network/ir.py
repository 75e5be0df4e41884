"""The network IR: a small torch-free graph of convs (BatchNorm folded), residual adds,
activations, option-A shortcuts, global average pooling and one linear layer.

`heconv.frontend.lower_model` makes it from a PyTorch model; the planners read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np


@dataclass
class ConvOp:
    name: str
    src: str
    out: str
    weight: np.ndarray
    bias: np.ndarray | None
    stride: int = 1


@dataclass
class AddOp:
    name: str
    a: str
    b: str
    out: str


@dataclass
class ActOp:
    """Activation: 'relu' (a refresh point) or 'square'."""

    name: str
    src: str
    out: str
    kind: str = "relu"


@dataclass
class PadShortcutOp:
    name: str
    src: str
    out: str
    stride: int
    c_out: int


@dataclass
class PoolOp:
    name: str
    src: str
    out: str


@dataclass
class LinearOp:
    name: str
    src: str
    out: str
    weight: np.ndarray
    bias: np.ndarray | None


Op = Union[ConvOp, AddOp, ActOp, PadShortcutOp, PoolOp, LinearOp]


@dataclass
class Network:
    input_shape: tuple[int, int, int]
    ops: list[Op]
    output: str
    input_name: str = "x"


def levels_needed(net: Network) -> int:
    """Multiplicative levels the non-interactive mode uses: one per conv, square and linear."""
    return sum(1 for op in net.ops
               if isinstance(op, (ConvOp, LinearOp)) or (isinstance(op, ActOp) and op.kind == "square"))
