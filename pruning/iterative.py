"""Iterative pruning: raise a global threshold on the units' scores step by step (the paper's
procedure; or, as an option, the pruned fraction of every conv), fine-tune with masks held,
keep the accepted step with the fewest rotations.

The selection protocol: a step is accepted when its *validation* accuracy is within the budget
of the reference (the same seed's dense model); the chosen step is the accepted one with the
fewest rotations; the test split is read once, at the chosen step, and never selects. Every
method gets the same budget: a recovery fine-tune at its first step, the same epochs at each
later one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from heconv.errors import InputError
from heconv.params import CKKSParams

from .data import Dataset
from .groups import LayerGroups
from .masks import apply_masks, restore, snapshot, sparsity
from .methods import current_weights, get_method, method_masks, method_threshold_masks
from .summary import he_cost
from .train import Progress, SaveState, TrainConfig, evaluate, train


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
    test_accuracy: float | None = None  # read at the chosen step only
    threshold: float | None = None
    finetune_epochs: float = 0.0  # fine-tuning epochs spent up to and including this step

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PruneResult:
    method: str
    dense_accuracy: float
    steps: list[PruneStep] = field(default_factory=list)
    cut_off: bool = False  # the schedule ran out with the last step accepted: the point is a bound

    @property
    def chosen(self) -> PruneStep:
        """The accepted step with the fewest rotations (the higher validation accuracy on a tie);
        step 0 if none is accepted (e.g. a Lasso model already past the drop: then `within_budget` is False)."""
        return choose_step(self.steps)

    @property
    def within_budget(self) -> bool:
        return self.chosen.accepted


def choose_step(steps: list[PruneStep]) -> PruneStep:
    """The accepted step with the fewest rotations, by validation only.

    >>> s = [PruneStep(0, 0, 90, 0, 100, 9, 0, True), PruneStep(1, .5, 89.5, .5, 60, 5, .5, True),
    ...      PruneStep(2, .7, 88, 2, 40, 4, .7, False)]
    >>> choose_step(s).step
    1
    """
    accepted = [s for s in steps if s.accepted]
    return min(accepted, key=lambda s: (s.rotations, -s.accuracy, s.step)) if accepted else steps[0]


# Fine at the start (a method whose first units are whole rotation groups moves most of its
# front within the first few percent of its units) and on to every unit, so that a run stops
# on accuracy, never on the end of the schedule.
DEFAULT_FRACTIONS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99,
                     1.0)
MODES = ("threshold", "fraction")
# How the threshold schedule steps (part of a sweep cell's id, so that runs of another rule never mix):
# quantiles over the method's rotation groups (PruningMethod.thresholds), on the current weights.
STEP_RULE = "rotation-groups-current"


def iterative_prune(model: nn.Module, data: Dataset, groups: dict[str, LayerGroups], method: str,
                    params: CKKSParams, max_drop: float = 1.0, fractions: tuple[float, ...] = DEFAULT_FRACTIONS,
                    finetune: TrainConfig | None = None, progress: Progress | None = None,
                    reference: float | None = None,
                    schedule: str | dict[str, str] = "output-rotation", mode: str = "threshold",
                    patience: int = 2, recovery: TrainConfig | None = None, save_state: SaveState | None = None,
                    resume: dict | None = None) -> PruneResult:
    """Raise the pruning step by step, fine-tune with masks held (no Lasso), and keep the
    accepted step (validation accuracy within `max_drop` points of `reference`, the dense
    model's; by default the starting model's) with the fewest rotations.

    Every step is fine-tuned: the first with `recovery` (default: `finetune`), each later one
    with `finetune`, whatever the method, so that budgets are equal. The test split is
    evaluated once, at the chosen step.

    mode "threshold": one global threshold on the method's unit scores, at each step the value
    below which `fractions` of its rotation groups lie in the current model; mode "fraction":
    each conv loses `fractions` of its units. Every step is fine-tuned (equal budgets).
    The loop stops after `patience` rejected steps in a row; the chosen step is the last accepted.

    `schedule` (one for every conv, or one per conv path) is the engine schedule the
    rotations are counted under; the groups must follow the same one.

    The model is left at the chosen step, its masks beside the weights.

    `save_state` gets a state after every step that another may follow (pruning.train.SaveState);
    `resume`, such a state of the same starting model, data and settings, goes on at the next step
    and ends with the result and weights an uninterrupted run gives.
    """
    if max_drop < 0:
        raise InputError(f"max_drop must be non-negative, got {max_drop}")
    if list(fractions) != sorted(fractions) or not all(0 < f <= 1 for f in fractions):
        raise InputError(f"fractions must increase within (0, 1], got {fractions}")
    if patience < 1:
        raise InputError(f"patience must be at least 1, got {patience}")
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    finetune = _plain(finetune or TrainConfig(epochs=1, lr=0.01))
    recovery = _plain(recovery) if recovery else finetune
    shape = (data.in_channels, data.input_size, data.input_size)
    vx, vy = data.tensors("val")
    algorithm = get_method(method).algorithm
    # A Lasso-trained model may start below the budget: its first step (the groups the Lasso
    # already zeroed, then the recovery fine-tune) is where it is judged, so step 0 never stops the loop.
    todo = [] if method == "dense" else list(fractions)
    pm = get_method(method)
    if resume is None:
        start = evaluate(model, vx, vy)
        base = start if reference is None else reference
        cost = he_cost(model, shape, params, schedule, algorithm)
        result = PruneResult(method, base, [PruneStep(0, 0.0, start, base - start, cost["rotations"], cost["pmuls"],
                                                      sparsity(model, groups), base - start <= max_drop)])
        best, best_step, rejected, epochs = snapshot(model), 0, 0, 0.0
    else:
        result, best, best_step, rejected, epochs = _resumed(model, resume, method, todo)
        base = result.dense_accuracy
        if progress:
            progress(len(result.steps) - 1, len(todo), {"resumed": len(result.steps) - 1})
    for i, frac in enumerate(todo, start=1):
        if i < len(result.steps):  # done before the resumed state was saved
            continue
        # The threshold is taken on the current weights at each step: fine-tuning rescales the
        # survivors (a Lasso model's shrunken groups regrow), so thresholds fixed on the starting
        # model stop biting. Pruned groups score 0 and stay below it: `frac` of the rotation groups
        # are pruned after the step.
        cut = pm.thresholds(current_weights(model, groups), groups, (frac,))[0] if mode == "threshold" else None
        masks = (method_threshold_masks(model, groups, method, cut) if cut is not None
                 else method_masks(model, groups, method, frac))
        apply_masks(model, masks)
        cfg = recovery if i == 1 else finetune
        # The fine-tune's batches report as a fraction of this step, so a caller's progress (and a sweep
        # worker's pause, bench.experiments.pause) is heard within the step, not only at its end.
        within = (lambda done, total, info, i=i, frac=frac:
                  progress(i - 1 + done / max(1, total), len(todo), {"fraction": frac})) if progress else None
        train(model, data, cfg, None, within)
        epochs += cfg.epochs
        acc = evaluate(model, vx, vy)
        cost = he_cost(model, shape, params, schedule, algorithm)
        ok = base - acc <= max_drop
        step = PruneStep(i, frac, acc, base - acc, cost["rotations"], cost["pmuls"], sparsity(model, groups), ok,
                         None, cut, epochs)
        result.steps.append(step)
        if progress:
            progress(i, len(todo), {"fraction": frac, "accuracy": acc, "rotations": cost["rotations"]})
        if ok and choose_step(result.steps) is step:
            best, best_step = snapshot(model), i
        # One rejected step may be noise (the validation split's standard error is about half a point
        # at 2,000 images): the loop stops after `patience` rejected steps in a row.
        rejected = 0 if ok else rejected + 1
        if rejected >= patience:
            break
        if save_state and i < len(todo):
            save_state(_state(model, result, best, best_step, rejected, epochs, todo))
    else:
        result.cut_off = bool(todo) and result.steps[-1].accepted
    restore(model, best)
    result.chosen.test_accuracy = evaluate(model, *data.tensors("test"))  # the one reading of test
    return result


def _state(model: nn.Module, result: PruneResult, best: tuple[dict, dict], best_step: int, rejected: int,
           epochs: float, todo: list[float]) -> dict:
    """What iterative_prune needs to go on after its last step: the weights with their masks (as
    booleans, a quarter of the floats), the steps so far, the chosen step's weights (unless they
    are the current ones), the patience count and the fine-tune epochs spent."""
    masks = {n: m.weight_mask for n, m in model.named_modules() if hasattr(m, "weight_mask")}
    return {"kind": "prune", "method": result.method, "fractions": todo, "dense_accuracy": result.dense_accuracy,
            "steps": [s.to_dict() for s in result.steps], "rejected": rejected, "epochs": epochs,
            "model": {k: v for k, v in model.state_dict().items() if not k.endswith(".weight_mask")},
            "masks": _packed(masks), "best_step": best_step, "torch_rng": torch.get_rng_state(),
            "best": None if best_step == result.steps[-1].step else {"state": best[0], "masks": _packed(best[1])}}


def _packed(masks: dict[str, torch.Tensor]) -> dict:
    """0/1 masks as booleans and the name of their dtype (exact both ways)."""
    return {k: {"mask": m.bool(), "dtype": str(m.dtype).removeprefix("torch.")} for k, m in masks.items()}


def _unpacked(masks: dict, device: torch.device) -> dict[str, torch.Tensor]:
    return {k: m["mask"].to(device=device, dtype=getattr(torch, m["dtype"])) for k, m in masks.items()}


def _resumed(model: nn.Module, state: dict, method: str, todo: list[float]):
    """The loop's variables back from _state's dict, and `model` (the run's starting model) at its last step."""
    if state.get("kind") != "prune" or state["method"] != method or list(state["fractions"]) != todo:
        raise ValueError(f"iterative_prune: the resume state is not one of this run ({method}, {len(todo)} steps)")
    device = next(model.parameters()).device
    masks = _unpacked(state["masks"], device)
    apply_masks(model, masks)  # the pruned layout (weight_orig beside weight_mask) that the state fills
    model.load_state_dict({**state["model"], **{f"{k}.weight_mask": m for k, m in masks.items()}})
    torch.set_rng_state(state["torch_rng"])
    result = PruneResult(method, state["dense_accuracy"], [PruneStep(**s) for s in state["steps"]])
    saved = state["best"]  # None: the chosen step is the last one, whose weights are the model's now
    best = snapshot(model) if saved is None else (saved["state"], _unpacked(saved["masks"], device))
    return result, best, state["best_step"], state["rejected"], state["epochs"]


def _plain(cfg: TrainConfig) -> TrainConfig:
    """Fine-tuning holds the masks and adds no Lasso."""
    return TrainConfig(**{**asdict(cfg), "lambda_p": 0.0, "lambda_d": 0.0})
