"""Iterative pruning: raise the pruned fraction step by step, fine-tune with masks held,
keep the largest step within the accuracy budget."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from torch import nn

from heconv.params import CKKSParams

from .data import Dataset
from .groups import LayerGroups
from .masks import apply_masks, restore, snapshot, sparsity
from .methods import method_masks
from .summary import he_cost
from .train import Progress, TrainConfig, evaluate, train


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
                    reference: float | None = None,
                    schedule: str | dict[str, str] = "output-rotation") -> PruneResult:
    """Raise the pruned fraction step by step, fine-tune with masks held (no Lasso), and keep
    the largest step whose validation accuracy stays within `max_drop` points of `reference`
    (the dense model's accuracy; by default the starting model's).

    `schedule` (one for every conv, or one per conv path) is the engine schedule the
    rotations are counted under; the groups must follow the same one.

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
    cost = he_cost(model, shape, params, schedule)
    result = PruneResult(method, base, [PruneStep(0, 0.0, start, base - start, cost["rotations"], cost["pmuls"],
                                                  sparsity(model, groups), base - start <= max_drop)])
    best = snapshot(model)
    todo = [] if method == "dense" or not result.steps[0].accepted else list(fractions)
    for i, frac in enumerate(todo, start=1):
        apply_masks(model, method_masks(model, groups, method, frac))
        train(model, data, finetune, None)
        acc = evaluate(model, vx, vy)
        cost = he_cost(model, shape, params, schedule)
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
