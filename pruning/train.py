"""HE-aware training (task loss + group Lasso) and evaluation."""

from __future__ import annotations

from heconv.errors import InputError

import logging
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data import Dataset
from .groups import LayerGroups, group_lasso
from .proximal import proximal_step, zero_group_fractions

log = logging.getLogger(__name__)

# progress(done, total, info): called by the long loops; the command line draws the bar.
Progress = Callable[[int, int, dict], None]


@dataclass
class TrainConfig:
    epochs: int = 5
    lr: float = 0.05
    batch_size: int = 128
    weight_decay: float = 5e-4
    lambda_p: float = 0.0
    lambda_d: float = 0.0
    rotation_weighted: bool = True
    seed: int = 0
    # "proximal": group soft-thresholding after each step (groups reach exact zero);
    # "subgradient": the penalty added to the loss (kept to show that it does not).
    lasso: str = "proximal"
    # The proximal threshold relative to each conv's RMS weight and the group's size
    # (pruning.proximal: BatchNorm makes a conv's scale free, so an absolute one zeroes little).
    relative_lasso: bool = True

    def __post_init__(self) -> None:
        if self.lasso not in LASSO_MODES:
            raise InputError(f"TrainConfig.lasso must be one of {LASSO_MODES}, got {self.lasso!r}")


LASSO_MODES = ("proximal", "subgradient")


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy in percent."""
    was = model.training
    model.eval()
    correct = 0
    dev = _device(model)
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            out = model(x[i : i + batch_size].to(dev)).argmax(1).cpu()
            correct += int((out == y[i : i + batch_size]).sum())
    model.train(was)
    return 100.0 * correct / max(1, len(y))


def train(model: nn.Module, data: Dataset, cfg: TrainConfig, groups: dict[str, LayerGroups] | None = None,
          progress: Progress | None = None) -> list[dict]:
    """SGD with a cosine schedule on the task loss, with the group-Lasso penalties applied by
    a proximal step after each optimizer step (or, with cfg.lasso = "subgradient", added to the loss).

    Returns one record per epoch: loss, penalty (the Lasso term at the epoch's end), train and
    validation accuracy, and the fractions of diagonal and positional groups that are all zero.
    """
    if (cfg.lambda_p or cfg.lambda_d) and not groups:
        raise ValueError("train: group Lasso needs the model's pruning groups")
    torch.manual_seed(cfg.seed)
    x, y = data.tensors("train")
    vx, vy = data.tensors("val")
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True)
    steps_per_epoch = max(1, -(-len(y) // cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * steps_per_epoch))
    gen = torch.Generator().manual_seed(cfg.seed)
    lasso = bool(groups) and bool(cfg.lambda_p or cfg.lambda_d)
    proximal = lasso and cfg.lasso == "proximal"
    dev = _device(model)
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        correct = 0
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            xb, yb = x[idx].to(dev), y[idx].to(dev)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            pen = (group_lasso(model, groups, cfg.lambda_p, cfg.lambda_d, cfg.rotation_weighted)
                   if lasso and not proximal else torch.zeros(()))
            opt.zero_grad(set_to_none=True)
            (loss + pen).backward()
            opt.step()
            if proximal:
                proximal_step(model, groups, opt.param_groups[0]["lr"], cfg.lambda_p, cfg.lambda_d,
                              cfg.rotation_weighted, cfg.relative_lasso, opt)
            sched.step()
            total += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == yb).sum())
            if progress:
                progress(epoch * steps_per_epoch + step + 1, cfg.epochs * steps_per_epoch,
                         {"epoch": epoch + 1, "loss": float(loss.detach()), "penalty": float(pen.detach())})
        with torch.no_grad():
            penalty = float(group_lasso(model, groups, cfg.lambda_p, cfg.lambda_d, cfg.rotation_weighted)) if lasso \
                else 0.0
        record = {"epoch": epoch + 1, "loss": total / len(y), "penalty": penalty,
                  "train_accuracy": 100.0 * correct / len(y), "val_accuracy": evaluate(model, vx, vy),
                  **(zero_group_fractions(model, groups) if groups else {})}
        log.info("epoch %d: %s", epoch + 1, record)
        history.append(record)
    return history
