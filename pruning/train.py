"""HE-aware training (task loss + group Lasso) and evaluation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data import Dataset
from .groups import LayerGroups, group_lasso

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


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy in percent."""
    was = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            correct += int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
    model.train(was)
    return 100.0 * correct / max(1, len(y))


def train(model: nn.Module, data: Dataset, cfg: TrainConfig, groups: dict[str, LayerGroups] | None = None,
          progress: Progress | None = None) -> list[dict]:
    """SGD with a cosine schedule on the task loss plus the group-Lasso penalties.

    Returns one record per epoch (loss, penalty, train and validation accuracy).
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
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        total = penalty_sum = 0.0
        correct = 0
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            xb, yb = x[idx], y[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            pen = group_lasso(model, groups, cfg.lambda_p, cfg.lambda_d, cfg.rotation_weighted) if groups and (
                cfg.lambda_p or cfg.lambda_d) else torch.zeros(())
            opt.zero_grad(set_to_none=True)
            (loss + pen).backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            penalty_sum += float(pen.detach())
            correct += int((out.argmax(1) == yb).sum())
            if progress:
                progress(epoch * steps_per_epoch + step + 1, cfg.epochs * steps_per_epoch,
                         {"epoch": epoch + 1, "loss": float(loss.detach()), "penalty": float(pen.detach())})
        record = {"epoch": epoch + 1, "loss": total / len(y), "penalty": penalty_sum / steps_per_epoch,
                  "train_accuracy": 100.0 * correct / len(y), "val_accuracy": evaluate(model, vx, vy)}
        log.info("epoch %d: %s", epoch + 1, record)
        history.append(record)
    return history
