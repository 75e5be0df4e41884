"""HE-aware training (task loss + group Lasso), evaluation, and iterative pruning with fine-tuning."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from heconv.lower import lower_model
from heconv.network import plan_network
from heconv.params import CKKSParams

from .data import Dataset
from .groups import LayerGroups, group_lasso
from .prune import apply_masks, fold_masks, method_masks, restore, snapshot, sparsity

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


def he_cost(model: nn.Module, input_shape: tuple[int, int, int], params: CKKSParams) -> dict[str, int]:
    """Predicted rotations and plaintext multiplications of the (mask-folded) model on the engine."""
    folded = fold_masks(model).eval()
    plan = plan_network(lower_model(folded, input_shape), params)
    return {"rotations": plan.predicted.rotations, "pmuls": plan.predicted.pmuls}


@dataclass
class PruneStep:
    step: int
    fraction: float
    accuracy: float
    accuracy_drop: float
    rotations: int
    pmuls: int
    sparsity: float
    accepted: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PruneResult:
    method: str
    dense_accuracy: float
    steps: list[PruneStep] = field(default_factory=list)

    @property
    def chosen(self) -> PruneStep:
        """The last accepted step (step 0 if none is, e.g. a Lasso model already past the drop)."""
        accepted = [s for s in self.steps if s.accepted]
        return accepted[-1] if accepted else self.steps[0]


DEFAULT_FRACTIONS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)


def iterative_prune(model: nn.Module, data: Dataset, groups: dict[str, LayerGroups], method: str,
                    params: CKKSParams, max_drop: float = 1.0, fractions: tuple[float, ...] = DEFAULT_FRACTIONS,
                    finetune: TrainConfig | None = None, progress: Progress | None = None,
                    reference: float | None = None) -> PruneResult:
    """Raise the pruned fraction step by step, fine-tune with masks held (no Lasso), and keep
    the largest step whose validation accuracy stays within `max_drop` points of `reference`
    (the dense model's accuracy; by default the starting model's).

    The model is left at the chosen step, its masks beside the weights.
    """
    if max_drop < 0:
        raise ValueError(f"max_drop must be non-negative, got {max_drop}")
    if list(fractions) != sorted(fractions) or not all(0 < f <= 1 for f in fractions):
        raise ValueError(f"fractions must increase within (0, 1], got {fractions}")
    finetune = finetune or TrainConfig(epochs=1, lr=0.01)
    finetune = TrainConfig(**{**asdict(finetune), "lambda_p": 0.0, "lambda_d": 0.0})
    shape = (data.in_channels, data.input_size, data.input_size)
    vx, vy = data.tensors("val")
    start = evaluate(model, vx, vy)
    base = start if reference is None else reference
    cost = he_cost(model, shape, params)
    result = PruneResult(method, base, [PruneStep(0, 0.0, start, base - start, cost["rotations"], cost["pmuls"],
                                                  sparsity(model, groups), base - start <= max_drop)])
    best = snapshot(model)
    todo = [] if method == "dense" or not result.steps[0].accepted else list(fractions)
    for i, frac in enumerate(todo, start=1):
        apply_masks(model, method_masks(model, groups, method, frac))
        train(model, data, finetune, None)
        acc = evaluate(model, vx, vy)
        cost = he_cost(model, shape, params)
        ok = base - acc <= max_drop
        result.steps.append(PruneStep(i, frac, acc, base - acc, cost["rotations"], cost["pmuls"],
                                      sparsity(model, groups), ok))
        if progress:
            progress(i, len(todo), {"fraction": frac, "accuracy": acc, "rotations": cost["rotations"]})
        if not ok:
            break
        best = snapshot(model)
    restore(model, best)
    return result
