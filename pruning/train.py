"""HE-aware training (task loss + group Lasso) and evaluation."""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from heconv.errors import InputError

from .data import Dataset
from .groups import LayerGroups, group_lasso
from .proximal import proximal_step, zero_group_fractions
from .rescale import hold_weight_scale, weight_scales

log = logging.getLogger(__name__)

# progress(done, total, info): called by the long loops; the command line draws the bar. `done` may be
# a fraction: a pruning step's fine-tune reports within the step (pruning.iterative).
Progress = Callable[[float, int, dict], None]
# save_state(state): called by the long loops after each finished epoch (pruning step) that another
# follows, with everything the loop needs to go on from there (`resume=state`) and end exactly as an
# uninterrupted run. Tensors, numbers, strings, lists and dicts only (a caller may torch.save it
# and read it back with weights_only=True); the tensors are the live ones: write or copy them
# before returning. Writing it is the caller's business (pruning writes nothing).
SaveState = Callable[[dict], None]


@dataclass
class TrainConfig:
    """One training run's settings; `epochs` may be a fraction (a fine-tuning step of half an epoch).

    lr_schedule "cosine" anneals over `epochs`; "plateau" trains to convergence: the rate is cut
    10x whenever validation gains less than `converge` points over the last `window` epochs,
    and training stops at the third such plateau (or at `epochs`, the cap), back at the weights
    of the best validation epoch.
    """

    epochs: float = 5
    lr: float = 0.05
    batch_size: int = 128
    weight_decay: float = 5e-4
    lambda_p: float = 0.0
    lambda_d: float = 0.0
    rotation_weighted: bool = True
    seed: int = 0
    # "proximal": group soft-thresholding after each step (groups reach exact zero);
    # "proximal-held": the same, each conv that BN follows then set back to its RMS weight at the start
    # (pruning.rescale: BN makes a conv's scale free, and the plain proximal step spends itself shrinking it);
    # "subgradient": the penalty added to the loss (kept to show that it does not).
    lasso: str = "proximal"
    # The proximal threshold relative to each conv's RMS weight and the group's size
    # (pruning.proximal: BatchNorm makes a conv's scale free, so an absolute one zeroes little).
    relative_lasso: bool = True
    lr_schedule: str = "cosine"
    converge: float = 0.2  # plateau: points of validation gain over `window` epochs that count as progress
    window: int = 3
    plateaus: int = 3  # plateau: stop at this plateau (the rate was cut 10x at each before it)

    def __post_init__(self) -> None:
        if self.lasso not in LASSO_MODES:
            raise InputError(f"TrainConfig.lasso must be one of {LASSO_MODES}, got {self.lasso!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(f"TrainConfig.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not (self.epochs > 0 and math.isfinite(self.epochs)):
            raise InputError(f"TrainConfig.epochs must be a positive number, got {self.epochs!r}")


LASSO_MODES = ("proximal", "proximal-held", "subgradient")
LR_SCHEDULES = ("cosine", "plateau")


def plateaued(val: list[float], window: int, converge: float) -> bool:
    """Whether the last `window` epochs gained less than `converge` points over the best before them.

    >>> plateaued([80.0, 85.0, 85.1, 85.15, 85.1], 3, 0.2), plateaued([80.0, 85.0, 85.1, 85.3, 85.1], 3, 0.2)
    (True, False)
    >>> plateaued([80.0, 85.0], 3, 0.2)
    False
    """
    if len(val) <= window:
        return False
    return max(val[-window:]) - max(val[:-window]) < converge


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
          progress: Progress | None = None, save_state: SaveState | None = None,
          resume: dict | None = None) -> list[dict]:
    """SGD with a cosine schedule on the task loss, with the group-Lasso penalties applied by
    a proximal step after each optimizer step (or, with cfg.lasso = "subgradient", added to the loss).

    Returns one record per epoch: loss, penalty (the Lasso term at the epoch's end), train and
    validation accuracy, and the fractions of diagonal and positional groups that are all zero.

    `save_state` gets a state after every epoch that another follows; `resume` (such a state, of
    the same model, data and cfg) goes on after its epoch, to the weights and history an
    uninterrupted run ends with: the data order's generator, the optimizer, the schedule and the
    plateau rule's best weights are all in it.
    """
    if (cfg.lambda_p or cfg.lambda_d) and not groups:
        raise ValueError("train: group Lasso needs the model's pruning groups")
    torch.manual_seed(cfg.seed)
    x, y = data.tensors("train")
    vx, vy = data.tensors("val")
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True)
    steps_per_epoch = max(1, -(-len(y) // cfg.batch_size))
    total_steps = max(1, round(cfg.epochs * steps_per_epoch))  # a fractional epoch is a share of the batches
    plateau = cfg.lr_schedule == "plateau"
    sched = None if plateau else torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    lasso = bool(groups) and bool(cfg.lambda_p or cfg.lambda_d)
    proximal = lasso and cfg.lasso.startswith("proximal")
    dev = _device(model)
    history: list[dict] = []
    best: tuple[float, dict] | None = None
    best_epoch = 0
    cuts = 0
    done = 0
    first = 0
    epochs = math.ceil(total_steps / steps_per_epoch)
    if resume is not None:
        if resume.get("kind") != "train" or resume.get("total_steps") != total_steps:
            raise ValueError(f"train: the resume state is not one of this training ({total_steps} batches)")
        first, done, cuts, best_epoch = resume["epoch"], resume["done"], resume["cuts"], resume["best_epoch"]
        history = [dict(h) for h in resume["history"]]
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        if sched:
            sched.load_state_dict(resume["scheduler"])
        _set_rng(gen, resume["rng"])
        if resume["best_accuracy"] is not None:  # the plateau rule's best weights (the current ones: not saved twice)
            best = (resume["best_accuracy"], copy.deepcopy(model.state_dict()) if resume["best_model"] is None
                    else {k: v.to(dev) for k, v in resume["best_model"].items()})
        if progress:
            progress(done, total_steps, {"epoch": first, "resumed": first})
    held = None
    if lasso and cfg.lasso == "proximal-held":  # the scales held are the start's, a resumed run's its state's
        held = ({k: (bn, float(v)) for k, (bn, v) in resume["held"].items()} if resume is not None
                else weight_scales(model))
        if not held:
            raise InputError(f"train: lasso 'proximal-held' holds the scale of convs that BatchNorm follows; "
                             f"{type(model).__name__} has none (use 'proximal')")
    for epoch in range(first, epochs):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        correct = seen = 0
        for step in range(min(steps_per_epoch, total_steps - done)):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            xb, yb = x[idx].to(dev), y[idx].to(dev)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"train: the loss became {float(loss)} at epoch {epoch + 1} "
                                         f"(lr {opt.param_groups[0]['lr']:g}): the training diverged")
            pen = (group_lasso(model, groups, cfg.lambda_p, cfg.lambda_d, cfg.rotation_weighted)
                   if lasso and not proximal else torch.zeros(()))
            opt.zero_grad(set_to_none=True)
            (loss + pen).backward()
            opt.step()
            if proximal:
                proximal_step(model, groups, opt.param_groups[0]["lr"], cfg.lambda_p, cfg.lambda_d,
                              cfg.rotation_weighted, cfg.relative_lasso, opt)
                if held is not None:
                    hold_weight_scale(model, held)
            if sched:
                sched.step()
            done += 1
            total += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == yb).sum())
            seen += len(idx)
            if progress:
                progress(done, total_steps, {"epoch": epoch + 1, "loss": float(loss.detach()),
                                             "penalty": float(pen.detach())})
        with torch.no_grad():
            penalty = float(group_lasso(model, groups, cfg.lambda_p, cfg.lambda_d, cfg.rotation_weighted)) if lasso \
                else 0.0
        record = {"epoch": epoch + 1, "loss": total / max(1, seen), "penalty": penalty, "lr": opt.param_groups[0]["lr"],
                  "train_accuracy": 100.0 * correct / max(1, seen), "val_accuracy": evaluate(model, vx, vy),
                  **(zero_group_fractions(model, groups) if groups else {})}
        log.info("epoch %d: %s", epoch + 1, record)
        history.append(record)
        if plateau:
            if best is None or record["val_accuracy"] > best[0]:
                best = (record["val_accuracy"], copy.deepcopy(model.state_dict()))
                best_epoch = epoch + 1
            # A plateau is judged on the epochs since the last cut, so a cut's own jump is not averaged away.
            since = [h["val_accuracy"] for h in history if h["lr"] == opt.param_groups[0]["lr"]]
            if plateaued(history_since_cut(history, since), cfg.window, cfg.converge):
                cuts += 1
                record["plateau"] = cuts
                if cuts >= cfg.plateaus:
                    break
                for g in opt.param_groups:
                    g["lr"] *= 0.1
        if save_state and epoch + 1 < epochs:
            save_state({"kind": "train", "total_steps": total_steps, "epoch": epoch + 1, "done": done, "cuts": cuts,
                        "history": history, "model": model.state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict() if sched else None, "rng": _get_rng(gen),
                        "best_accuracy": best[0] if best else None, "best_epoch": best_epoch,
                        "best_model": best[1] if best and best_epoch != epoch + 1 else None,
                        "held": {k: [bn, v] for k, (bn, v) in (held or {}).items()}})
    if plateau and best is not None:
        model.load_state_dict(best[1])
    return history


def _get_rng(gen: torch.Generator) -> dict:
    """The random states a training draws from: the data order's generator, torch's own (and CUDA's)."""
    return {"order": gen.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng(gen: torch.Generator, rng: dict) -> None:
    gen.set_state(rng["order"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def history_since_cut(history: list[dict], since: list[float]) -> list[float]:
    """Validation accuracies of the epochs at the current rate, led by the best one before them
    (what a plateau is measured against)."""
    before = [h["val_accuracy"] for h in history[: len(history) - len(since)]]
    return ([max(before)] if before else []) + since
