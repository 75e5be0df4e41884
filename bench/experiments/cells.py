"""One sweep cell each: train a model, or prune a trained one. Pure work: a cell's function
takes its frozen configuration (and what it depends on) and returns data; it writes nothing.

A training cell is keyed by what decides the trained weights (model, data, seed, lambdas,
epochs ...), so every pruning method that starts from the same model shares it. A pruning
cell is keyed by its training cell and the method's own settings.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field

import torch

from .diverged import check_converged


@dataclass(frozen=True)
class TrainCell:
    """What decides a trained model.

    >>> TrainCell("resnet20", seed=1, lambda_d=0.05).run_id
    'train/resnet20/fashion-mnist/16/n20000/N8192/output-rotation/proximal/lp0/ld0.05/s1/e12'
    """

    model: str
    dataset: str = "fashion-mnist"
    input_size: int = 16
    subset: int | None = 20000
    poly_modulus_degree: int = 8192
    schedule: str = "output-rotation"
    lasso: str = "proximal"
    lambda_p: float = 0.0
    lambda_d: float = 0.0
    seed: int = 0
    epochs: int = 12
    lr: float = 0.05
    batch_size: int = 128
    data_dir: str | None = field(default=None, compare=False)

    @property
    def run_id(self) -> str:
        return (f"train/{self.model}/{self.dataset}/{self.input_size}/n{self.subset or 'all'}/"
                f"N{self.poly_modulus_degree}/{self.schedule}/{self.lasso}/lp{self.lambda_p:g}/ld{self.lambda_d:g}/"
                f"s{self.seed}/e{self.epochs}")

    def fields(self) -> dict:
        """The database columns this cell fills."""
        return {**{k: v for k, v in asdict(self).items() if k != "data_dir"}, "config": asdict(self)}


@dataclass(frozen=True)
class PruneCell:
    """A pruning method applied to a trained model; the drop is measured from `reference`'s
    (the plainly trained model of the same seed) validation accuracy."""

    train: TrainCell
    reference: TrainCell
    method: str
    max_drop: float = 1.0
    mode: str = "threshold"
    fractions: tuple[float, ...] = ()
    finetune_epochs: int = 1
    finetune_lr: float = 0.01
    patience: int = 2  # rejected steps in a row that stop the pruning

    @property
    def run_id(self) -> str:
        """Readable, with a short digest of the pruning schedule (another schedule is another cell)."""
        from pruning.iterative import DEFAULT_FRACTIONS

        steps = hashlib.sha256(repr(tuple(self.fractions or DEFAULT_FRACTIONS)).encode()).hexdigest()[:6]
        return (f"prune/{self.method}/{self.mode}/d{self.max_drop:g}/f{self.finetune_epochs}/q{steps}/"
                f"p{self.patience}/" + self.train.run_id.removeprefix("train/"))

    def fields(self) -> dict:
        t = self.train
        return {"model": t.model, "dataset": t.dataset, "input_size": t.input_size, "subset": t.subset,
                "poly_modulus_degree": t.poly_modulus_degree, "schedule": t.schedule, "method": self.method,
                "lasso": t.lasso, "lambda_p": t.lambda_p, "lambda_d": t.lambda_d, "seed": t.seed,
                "config": {**asdict(self), "train": t.run_id, "reference": self.reference.run_id,
                           "fractions": list(self.fractions or _default_fractions())}}


def _default_fractions() -> tuple[float, ...]:
    from pruning.iterative import DEFAULT_FRACTIONS

    return DEFAULT_FRACTIONS


def _setup(cell: TrainCell, threads: int):
    from heconv.params import params_for_input
    from pruning.data import load_dataset

    torch.set_num_threads(max(1, threads))
    data = load_dataset(cell.dataset, cell.input_size, cell.data_dir, subset=cell.subset, seed=cell.seed)
    params = params_for_input(cell.input_size, cell.input_size, cell.poly_modulus_degree)
    return data, (data.in_channels, cell.input_size, cell.input_size), params


def _device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _checkpoint(model: torch.nn.Module, meta: dict) -> bytes:
    """The one checkpoint format (models.checkpoint), so a sweep's models load like any other."""
    from models.checkpoint import checkpoint_bytes

    return checkpoint_bytes({k: v.detach().cpu() for k, v in model.state_dict().items()}, meta)


def run_train_cell(cell: TrainCell, threads: int = 1) -> dict:
    """Train one model; returns its accuracies, per-epoch history, schedules and weights (bytes)."""
    from models import build_model
    from pruning.groups import model_groups, model_schedules
    from pruning.train import TrainConfig, evaluate, train

    start = time.time()
    data, shape, params = _setup(cell, threads)
    torch.manual_seed(cell.seed)
    model = build_model(cell.model, data.in_channels, data.num_classes)
    schedules = model_schedules(model, shape, params, cell.schedule)  # fixed before training
    groups = model_groups(model, shape, params, schedules)
    model.to(_device())
    history = train(model, data, TrainConfig(epochs=cell.epochs, lr=cell.lr, batch_size=cell.batch_size,
                                             lambda_p=cell.lambda_p, lambda_d=cell.lambda_d, seed=cell.seed,
                                             lasso=cell.lasso), groups)
    check_converged(model, history, cell.run_id)  # recorded as failed, never done
    model.cpu()
    blob = _checkpoint(model, {"model": cell.model, "in_channels": data.in_channels,
                               "num_classes": data.num_classes, "run_id": cell.run_id, **cell.fields()["config"],
                               "schedules": schedules})
    return {"val_accuracy": evaluate(model, *data.tensors("val")), "test_accuracy": evaluate(model, *data.tensors("test")),
            "history": history, "schedules": schedules, "data_source": data.source, "data_note": data.note,
            "n_train": len(data.train.y), "n_val": len(data.val.y), "n_test": len(data.test.y),
            "in_channels": data.in_channels, "num_classes": data.num_classes, "state": blob,
            "checkpoint_sha256": hashlib.sha256(blob).hexdigest(), "wall_s": time.time() - start}


def run_prune_cell(cell: PruneCell, trained: dict, reference: dict, threads: int = 1) -> dict:
    """Prune the trained model (`trained`: run_train_cell's result) with the cell's method;
    returns the steps, the chosen step's accuracies and the pruned weights (bytes)."""
    from models import build_model
    from models.checkpoint import checkpoint_from_bytes
    from pruning.groups import model_groups
    from pruning.iterative import DEFAULT_FRACTIONS, iterative_prune
    from pruning.masks import fold_masks
    from pruning.train import TrainConfig

    start = time.time()
    data, shape, params = _setup(cell.train, threads)
    torch.manual_seed(cell.train.seed)
    model = build_model(cell.train.model, data.in_channels, data.num_classes)
    model.load_state_dict(checkpoint_from_bytes(trained["state"], cell.train.run_id)[0])
    from pruning.methods import get_method

    schedules = trained["schedules"]
    groups = model_groups(model, shape, params, schedules, get_method(cell.method).algorithm == "coefficient")
    result = iterative_prune(model, data, groups, cell.method, params, cell.max_drop,
                             cell.fractions or DEFAULT_FRACTIONS,
                             TrainConfig(epochs=cell.finetune_epochs, lr=cell.finetune_lr, seed=cell.train.seed),
                             reference=reference["val_accuracy"], schedule=schedules, mode=cell.mode,
                             patience=cell.patience)
    chosen = result.chosen
    steps = [{**s.to_dict(), "val_accuracy": s.accuracy, "chosen": s.step == chosen.step} for s in result.steps]
    blob = _checkpoint(fold_masks(model), {"model": cell.train.model, "in_channels": data.in_channels,
                                           "num_classes": data.num_classes, "method": cell.method,
                                           "run_id": cell.run_id, "input_size": cell.train.input_size,
                                           "dataset": cell.train.dataset, "seed": cell.train.seed,
                                           "schedules": schedules, "val_accuracy": chosen.accuracy,
                                           "test_accuracy": chosen.test_accuracy})
    return {"steps": steps, "val_accuracy": chosen.accuracy, "test_accuracy": chosen.test_accuracy,
            "reference_val_accuracy": result.dense_accuracy, "schedules": schedules, "data_source": data.source,
            "n_train": len(data.train.y), "n_val": len(data.val.y), "n_test": len(data.test.y),
            "in_channels": data.in_channels, "num_classes": data.num_classes, "state": blob,
            "checkpoint_sha256": hashlib.sha256(blob).hexdigest(), "wall_s": time.time() - start}
