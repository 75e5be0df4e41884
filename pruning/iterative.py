"""Iterative pruning: raise a global threshold on the units' scores step by step (the paper's
procedure; or, as an option, the pruned fraction of every conv), fine-tune with masks held,
keep the last step within the accuracy budget."""

from __future__ import annotations

from heconv.errors import InputError

from dataclasses import asdict, dataclass, field

from torch import nn

from heconv.params import CKKSParams

from .data import Dataset
from .groups import LayerGroups
from .masks import apply_masks, restore, snapshot, sparsity
from .methods import current_weights, get_method, method_masks, method_threshold_masks
from .summary import he_cost
from .train import Progress, TrainConfig, evaluate, train


@dataclass
class PruneStep:
    """One step: `accuracy` is on the validation split (it decides `accepted`), `test_accuracy`
    on the test split (reported, never used to choose). `fraction` is the fraction of units
    the step's threshold was set at (per conv in fraction mode)."""

    step: int
    fraction: float
    accuracy: float
    accuracy_drop: float
    rotations: int
    pmuls: int
    sparsity: float
    accepted: bool
    test_accuracy: float | None = None
    threshold: float | None = None

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


# Fine at the start: a method whose first units are whole rotation groups (hunter) moves
# most of its front within the first few percent of its units.
DEFAULT_FRACTIONS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
MODES = ("threshold", "fraction")


def iterative_prune(model: nn.Module, data: Dataset, groups: dict[str, LayerGroups], method: str,
                    params: CKKSParams, max_drop: float = 1.0, fractions: tuple[float, ...] = DEFAULT_FRACTIONS,
                    finetune: TrainConfig | None = None, progress: Progress | None = None,
                    reference: float | None = None,
                    schedule: str | dict[str, str] = "output-rotation", mode: str = "threshold",
                    patience: int = 2) -> PruneResult:
    """Raise the pruning step by step, fine-tune with masks held (no Lasso), and keep the last
    step whose validation accuracy stays within `max_drop` points of `reference` (the dense
    model's accuracy; by default the starting model's).

    mode "threshold": one global threshold on the method's unit scores, raised through the
    values below which `fractions` of all units lie in the starting model; mode "fraction":
    each conv loses `fractions` of its units. A step that zeroes nothing new is not fine-tuned.
    The loop stops after `patience` rejected steps in a row; the chosen step is the last accepted.

    `schedule` (one for every conv, or one per conv path) is the engine schedule the
    rotations are counted under; the groups must follow the same one.

    The model is left at the chosen step, its masks beside the weights.
    """
    if max_drop < 0:
        raise InputError(f"max_drop must be non-negative, got {max_drop}")
    if list(fractions) != sorted(fractions) or not all(0 < f <= 1 for f in fractions):
        raise InputError(f"fractions must increase within (0, 1], got {fractions}")
    if patience < 1:
        raise InputError(f"patience must be at least 1, got {patience}")
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    finetune = finetune or TrainConfig(epochs=1, lr=0.01)
    finetune = TrainConfig(**{**asdict(finetune), "lambda_p": 0.0, "lambda_d": 0.0})
    shape = (data.in_channels, data.input_size, data.input_size)
    vx, vy = data.tensors("val")
    tx, ty = data.tensors("test")
    start = evaluate(model, vx, vy)
    base = start if reference is None else reference
    cost = he_cost(model, shape, params, schedule, get_method(method).algorithm)
    zeros = sparsity(model, groups)
    result = PruneResult(method, base, [PruneStep(0, 0.0, start, base - start, cost["rotations"], cost["pmuls"],
                                                  zeros, base - start <= max_drop, evaluate(model, tx, ty))])
    best = snapshot(model)
    # A Lasso-trained model may start below the budget: its first step (the groups the Lasso
    # already zeroed, then fine-tuning without the Lasso) is where it is judged, so step 0 never stops the loop.
    todo = [] if method == "dense" else list(fractions)
    cuts = get_method(method).thresholds(current_weights(model, groups), groups, tuple(todo)) \
        if mode == "threshold" else [None] * len(todo)
    if mode == "threshold":  # a threshold equal to the one before it prunes nothing new: one step each
        kept = [k for k in range(len(cuts)) if k == 0 or cuts[k] > cuts[k - 1]]
        todo, cuts = [todo[k] for k in kept], [cuts[k] for k in kept]
    rejected = 0
    for i, (frac, cut) in enumerate(zip(todo, cuts), start=1):
        masks = (method_threshold_masks(model, groups, method, cut) if cut is not None
                 else method_masks(model, groups, method, frac))
        apply_masks(model, masks)
        # Fine-tune when the step zeroed something, or when the model stands outside the budget
        # (a Lasso-trained model is judged after its zeroed groups are masked and it is fine-tuned).
        if sparsity(model, groups) > zeros or not result.steps[-1].accepted:
            train(model, data, finetune, None)
        zeros = sparsity(model, groups)
        acc = evaluate(model, vx, vy)
        cost = he_cost(model, shape, params, schedule, get_method(method).algorithm)
        ok = base - acc <= max_drop
        result.steps.append(PruneStep(i, frac, acc, base - acc, cost["rotations"], cost["pmuls"], zeros, ok,
                                      evaluate(model, tx, ty), cut))
        if progress:
            progress(i, len(todo), {"fraction": frac, "accuracy": acc, "rotations": cost["rotations"]})
        # One rejected step may be noise (the validation split's standard error is about half a point
        # at 2,000 images): the loop stops after `patience` rejected steps in a row.
        rejected = 0 if ok else rejected + 1
        if rejected >= patience:
            break
        if ok:
            best = snapshot(model)
    restore(model, best)
    return result
