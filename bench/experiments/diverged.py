"""A training that diverged (a non-finite loss or weight) is an error, never a finished model:
`sweep --lambdas-d inf` once recorded a model of 13% validation accuracy and NaN weights as done."""

from __future__ import annotations

import math

import torch

from heconv.errors import InputError


class DivergedError(InputError):
    """The training of a cell (or of `artemis train`) diverged: a smaller --lr or lambda may not."""


def check_converged(model: torch.nn.Module, history: list[dict], what: str) -> None:
    """Raise DivergedError naming the first non-finite loss or weight.

    >>> check_converged(torch.nn.Linear(2, 1), [{"epoch": 1, "loss": 0.5}], "train/x")
    >>> check_converged(torch.nn.Linear(2, 1), [{"epoch": 1, "loss": float("nan")}], "train/x")
    Traceback (most recent call last):
    ...
    bench.experiments.diverged.DivergedError: train/x diverged: its loss is nan at epoch 1
    """
    for record in history:
        loss = record.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise DivergedError(f"{what} diverged: its loss is {loss} at epoch {record.get('epoch')}")
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise DivergedError(f"{what} diverged: its weights {name} hold NaN or Inf")
