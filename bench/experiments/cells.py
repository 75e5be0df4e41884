"""One sweep cell each: train a model, or prune a trained one. Pure work: a cell's function
takes its frozen configuration (and what it depends on) and returns data; it writes nothing but,
when the sweep hands it one, its mid-cell snapshot (bench.experiments.snapshots), from which a
killed cell goes on at its last finished epoch or step.

A training cell is keyed by what decides the trained weights (model, data, seed, lambdas,
epochs ...), so every pruning method that starts from the same model shares it. A pruning
cell is keyed by its training cell and the method's own settings.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from pruning.train import TrainConfig

    from .snapshots import CellSnapshot


@dataclass(frozen=True)
class TrainCell:
    """What decides a trained model; its defaults are the project's training defaults (the
    `train`, `sweep` and `demo` commands build their options from them).

    A plain model (no lambdas) trains to convergence: the plateau schedule of
    pruning.train.TrainConfig (rate cut 10x when validation gains less than `converge` points
    over 3 epochs, stop at the third plateau, `epochs` the cap). A Lasso model starts from the
    converged plain model of the same seed (`parent`, a warm start) and trains `lasso_epochs`
    more with the proximal group Lasso at `lasso_lr`; with warm_start=False it trains from
    scratch on the plain model's schedule.

    >>> c = TrainCell("resnet20", seed=1, lambda_d=0.5)
    >>> c.parent.run_id
    'train/resnet20/fashion-mnist/16/n20000/tall/N8192/output-rotation/plain/s1/plateau0.2-e40'
    >>> c.run_id.removeprefix(c.parent.run_id)
    '/proximal/lp0/ld0.5/warm-e4-lr0.01'
    """

    model: str
    dataset: str = "fashion-mnist"
    input_size: int = 16
    subset: int | None = 20000  # training images before the validation split (None: all)
    poly_modulus_degree: int = 8192
    schedule: str = "output-rotation"
    lasso: str = "proximal"
    lambda_p: float = 0.0
    lambda_d: float = 0.0
    seed: int = 0
    epochs: int = 40  # the cap of a plain training (or every epoch, with converge None)
    lr: float = 0.05
    batch_size: int = 128
    converge: float | None = 0.2  # None: a cosine schedule over `epochs`
    warm_start: bool = True
    lasso_epochs: float = 4
    lasso_lr: float = 0.01
    test_images: int | None = None  # None: the whole test split (the test reading)
    data_dir: str | None = field(default=None, compare=False)

    @property
    def has_lasso(self) -> bool:
        return bool(self.lambda_p or self.lambda_d)

    @property
    def parent(self) -> "TrainCell | None":
        """The plain model a warm-started Lasso model starts from."""
        return (replace(self, lambda_p=0.0, lambda_d=0.0, lasso=type(self).lasso) if self.has_lasso and self.warm_start
                else None)

    @property
    def run_id(self) -> str:
        # the batch size and the plain learning rate enter the id only off their defaults, so that the
        # ids of the cells already in a database (all at the defaults) stay what they were
        batch = f"/b{self.batch_size}" if self.batch_size != type(self).batch_size else ""
        if self.parent is not None:  # the plain lr is the parent's, in its id
            return (f"{self.parent.run_id}/{self.lasso}/lp{self.lambda_p:g}/ld{self.lambda_d:g}/"
                    f"warm-e{self.lasso_epochs:g}-lr{self.lasso_lr:g}{batch}")
        lr = f"/lr{self.lr:g}" if self.lr != type(self).lr else ""
        sched = f"plateau{self.converge:g}-e{self.epochs}" if self.converge is not None else f"cosine-e{self.epochs}"
        lasso = f"{self.lasso}/lp{self.lambda_p:g}/ld{self.lambda_d:g}" if self.has_lasso else "plain"
        return (f"train/{self.model}/{self.dataset}/{self.input_size}/n{self.subset or 'all'}/"
                f"t{self.test_images or 'all'}/N{self.poly_modulus_degree}/{self.schedule}/{lasso}/s{self.seed}/"
                f"{sched}{lr}{batch}")

    def config(self) -> "TrainConfig":
        """The pruning.train settings of this cell's own training (from its parent, for a warm start)."""
        from pruning.train import TrainConfig

        warm = self.parent is not None
        return TrainConfig(epochs=self.lasso_epochs if warm else self.epochs, lr=self.lasso_lr if warm else self.lr,
                           batch_size=self.batch_size, lambda_p=self.lambda_p, lambda_d=self.lambda_d,
                           seed=self.seed, lasso=self.lasso,
                           lr_schedule="plateau" if self.converge is not None and not warm else "cosine",
                           converge=self.converge or 0.0)

    def fields(self) -> dict:
        """The database columns this cell fills."""
        return {**{k: v for k, v in asdict(self).items() if k != "data_dir"}, "config": asdict(self)}


@dataclass(frozen=True)
class PruneCell:
    """A pruning method applied to a trained model; the drop is measured from `reference`'s
    (the plainly trained model of the same seed) validation accuracy. Every method gets the
    same budget: `recovery_epochs` of fine-tuning at its first step, `finetune_epochs` (a
    fraction of an epoch is allowed) at each later one."""

    train: TrainCell
    reference: TrainCell
    method: str
    max_drop: float = 1.0
    mode: str = "threshold"
    fractions: tuple[float, ...] = ()
    finetune_epochs: float = 1.0
    finetune_lr: float = 0.01
    patience: int = 2  # rejected steps in a row that stop the pruning
    recovery_epochs: float = 2.0

    @property
    def run_id(self) -> str:
        """Readable, with a short digest of the pruning schedule (another schedule is another cell)."""
        from pruning.iterative import STEP_RULE

        steps = hashlib.sha256(repr((tuple(self.fractions or _default_fractions()), STEP_RULE)).encode()
                               ).hexdigest()[:6]
        return (f"prune/{self.method}/{self.mode}/d{self.max_drop:g}/r{self.recovery_epochs:g}"
                f"-f{self.finetune_epochs:g}-lr{self.finetune_lr:g}/q{steps}/p{self.patience}/"
                + self.train.run_id.removeprefix("train/"))

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
    data = load_dataset(cell.dataset, cell.input_size, cell.data_dir, subset=cell.subset, seed=cell.seed,
                        test_images=cell.test_images)
    params = params_for_input(cell.input_size, cell.input_size, cell.poly_modulus_degree)
    return data, (data.in_channels, cell.input_size, cell.input_size), params


def _device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _checkpoint(model: torch.nn.Module, meta: dict) -> bytes:
    """The one checkpoint format (models.checkpoint), so a sweep's models load like any other."""
    from models.checkpoint import checkpoint_bytes

    return checkpoint_bytes({k: v.detach().cpu() for k, v in model.state_dict().items()}, meta)


def run_train_cell(cell: TrainCell, threads: int = 1, parent: dict | None = None, progress=None,
                   snapshot: "CellSnapshot | None" = None) -> dict:
    """Train one model (from `parent`'s weights, run_train_cell's result for cell.parent, when it
    has one); returns its accuracies, per-epoch history, schedules and weights (bytes).
    `progress`: pruning.train's callable (bench.experiments.progress.CellReporter in a sweep).
    `snapshot`: saved after every epoch, and gone on from when it holds one of this cell (and parent)."""
    from models import build_model
    from models.checkpoint import checkpoint_from_bytes
    from pruning.groups import model_groups, model_schedules
    from pruning.train import evaluate, train

    start = time.time()
    data, shape, params = _setup(cell, threads)
    torch.manual_seed(cell.seed)
    model = build_model(cell.model, data.in_channels, data.num_classes)
    if cell.parent is not None:
        if parent is None:
            raise ValueError(f"{cell.run_id}: a warm start needs the trained model {cell.parent.run_id}")
        model.load_state_dict(checkpoint_from_bytes(parent["state"], cell.parent.run_id)[0])
    schedules = model_schedules(model, shape, params, cell.schedule)  # fixed before training
    groups = model_groups(model, shape, params, schedules)
    model.to(_device())
    if snapshot is not None and parent is not None:
        snapshot = snapshot.with_inputs(hashlib.sha256(parent["state"]).hexdigest())
    save, resume, ignored = _resumable(snapshot)
    history = train(model, data, cell.config(), groups, progress, save, resume)
    model.cpu()
    _check_finite(model, cell.run_id)
    blob = _checkpoint(model, {"model": cell.model, "in_channels": data.in_channels,
                               "num_classes": data.num_classes, "run_id": cell.run_id, **cell.fields()["config"],
                               "schedules": schedules})
    return {"val_accuracy": evaluate(model, *data.tensors("val")),
            "test_accuracy": evaluate(model, *data.tensors("test")),
            "history": history, "schedules": schedules, "data_source": data.source, "data_note": data.note,
            "n_train": len(data.train.y), "n_val": len(data.val.y), "n_test": len(data.test.y),
            "in_channels": data.in_channels, "num_classes": data.num_classes, "state": blob,
            "checkpoint_sha256": hashlib.sha256(blob).hexdigest(), "wall_s": time.time() - start,
            **_snapshot_fields(resume, ignored)}


def _resumable(snapshot: "CellSnapshot | None") -> tuple:
    """(save_state, resume, why a snapshot was ignored) for pruning's loops: the snapshot's saver and
    what it holds (None without one)."""
    return (snapshot.save, *snapshot.read()) if snapshot is not None else (None, None, None)


def _snapshot_fields(resume: dict | None, ignored: str | None) -> dict:
    """What the result says of its snapshot: the epoch or step it went on from, or why it was not used."""
    if resume is not None:
        return {"resumed_from": resume["epoch"] if resume["kind"] == "train" else len(resume["steps"]) - 1}
    return {"snapshot_ignored": ignored} if ignored else {}


def _check_finite(model: torch.nn.Module, run_id: str) -> None:
    """A diverged training is a failed cell, never a done one."""
    bad = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise FloatingPointError(f"{run_id}: the training diverged (non-finite weights in {', '.join(bad[:3])})")


def run_prune_cell(cell: PruneCell, trained: dict, reference: dict, threads: int = 1, progress=None,
                   snapshot: "CellSnapshot | None" = None) -> dict:
    """Prune the trained model (`trained`: run_train_cell's result) with the cell's method;
    returns the steps, the chosen step's accuracies and the pruned weights (bytes).
    `snapshot`: saved after every step, and gone on from when it holds one of this cell (and models)."""
    from models import build_model
    from models.checkpoint import checkpoint_from_bytes
    from pruning.groups import model_groups
    from pruning.iterative import iterative_prune
    from pruning.masks import fold_masks
    from pruning.methods import get_method
    from pruning.train import TrainConfig

    start = time.time()
    data, shape, params = _setup(cell.train, threads)
    torch.manual_seed(cell.train.seed)
    model = build_model(cell.train.model, data.in_channels, data.num_classes)
    model.load_state_dict(checkpoint_from_bytes(trained["state"], cell.train.run_id)[0])
    method = get_method(cell.method)
    factors = None
    if method.rescale:  # the reference's weight scale, before anything is scored (pruning.rescale)
        from pruning.rescale import match_weight_scale

        ref_model = build_model(cell.train.model, data.in_channels, data.num_classes)
        ref_model.load_state_dict(checkpoint_from_bytes(reference["state"], cell.reference.run_id)[0])
        factors = match_weight_scale(model, ref_model)
    schedules = trained["schedules"]
    groups = model_groups(model, shape, params, schedules, method.algorithm)
    seed = cell.train.seed
    if snapshot is not None:
        inputs = [hashlib.sha256(trained["state"]).hexdigest(), repr(reference["val_accuracy"])]
        if method.rescale:  # the starting weights depend on the reference's too
            inputs.append(hashlib.sha256(reference["state"]).hexdigest())
        snapshot = snapshot.with_inputs(*inputs)
    save, resume, ignored = _resumable(snapshot)
    result = iterative_prune(model, data, groups, cell.method, params, cell.max_drop,
                             cell.fractions or _default_fractions(),
                             TrainConfig(epochs=cell.finetune_epochs, lr=cell.finetune_lr, seed=seed),
                             progress, reference=reference["val_accuracy"], schedule=schedules, mode=cell.mode,
                             patience=cell.patience,
                             recovery=TrainConfig(epochs=cell.recovery_epochs, lr=cell.finetune_lr, seed=seed),
                             save_state=save, resume=resume)
    chosen = result.chosen
    steps = [{**s.to_dict(), "val_accuracy": s.accuracy, "chosen": s.step == chosen.step} for s in result.steps]
    blob = _checkpoint(fold_masks(model), {"model": cell.train.model, "in_channels": data.in_channels,
                                           "num_classes": data.num_classes, "method": cell.method,
                                           "run_id": cell.run_id, "input_size": cell.train.input_size,
                                           "dataset": cell.train.dataset, "seed": seed,
                                           "schedules": schedules, "val_accuracy": chosen.accuracy,
                                           "test_accuracy": chosen.test_accuracy})
    return {"steps": steps, "val_accuracy": chosen.accuracy, "test_accuracy": chosen.test_accuracy,
            "reference_val_accuracy": result.dense_accuracy, "schedules": schedules, "data_source": data.source,
            "n_train": len(data.train.y), "n_val": len(data.val.y), "n_test": len(data.test.y),
            "in_channels": data.in_channels, "num_classes": data.num_classes, "state": blob,
            "cut_off": result.cut_off, "within_budget": result.within_budget, "scale_factors": factors,
            "checkpoint_sha256": hashlib.sha256(blob).hexdigest(), "wall_s": time.time() - start,
            # which trainings it was pruned from, byte for byte (a lost model retrained is another)
            "parents_sha256": {"train": hashlib.sha256(trained["state"]).hexdigest(),
                               "reference": hashlib.sha256(reference["state"]).hexdigest()},
            **_snapshot_fields(resume, ignored)}
