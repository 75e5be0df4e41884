"""Sweeps on Ray: a grid of models x methods x lambdas x seeds x input sizes, one Ray task per
cell (train, or prune), results in the experiments database as each cell finishes.

- A model is trained once per (model, size, seed, lambdas) and shared, through Ray's object
  store, by every method that prunes it; the plainly trained model of the same seed is the
  reference every drop is measured from.
- Resumable: a cell that is done in the database is skipped; a trained model whose
  checkpoint is on disk (sha256 as recorded) is read back instead of retrained. One recorded
  done whose checkpoint is lost is retrained only when asked (`retrain_lost`): a retraining
  is not the same model bit for bit on another machine, so the cells already pruned from the
  lost one would be compared with cells pruned from another; its row keeps the earlier record
  under `config.replaced`. A cell killed
  part-way goes on from its last finished epoch or pruning step (its snapshot under
  `<checkpoints>/snapshots/`, bench.experiments.snapshots), removed once the cell is done.
- A failed cell is recorded with its error and the others go on (the cells that needed it
  are recorded as failed too).
- Ray schedules everything (local by default, a cluster with `address`): each task asks for
  `cpus` CPUs (and a GPU where the cluster has one) and sets torch's threads to match.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

from heconv.errors import InputError
from pruning.methods import get_method

from ..atomic import atomic_write
from .cells import PruneCell, TrainCell, run_prune_cell, run_train_cell
from .claims import claim_cells
from .cluster import start_ray
from .grid import checked_grid
from .progress import CellReporter, Progress, SweepTracker, progress_box
from .snapshots import cell_snapshot, clean_snapshots, snapshot_path
from .store import ExperimentStore, checkpoint_on_disk

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepGrid:
    """The grid. Methods trained with a Lasso take every lambda of their kind; the others
    (dense, unstructured, hunter, diagonal-no-lasso ...) prune the plainly trained model.

    >>> g = SweepGrid(models=("small",), methods=("dense", "artemis-diagonal"), lambdas_d=(0.1, 0.2), seeds=(0, 1))
    >>> [c.run_id.split("/")[1] for c in g.prune_cells()].count("artemis-diagonal"), len(g.train_cells())
    (4, 6)
    """

    models: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    lambdas_d: tuple[float, ...] = (0.05,)
    lambdas_p: tuple[float, ...] = (0.05,)
    input_sizes: tuple[int, ...] = (16,)
    base: TrainCell = TrainCell("resnet20")
    prune: PruneCell | None = None  # its max_drop, mode, fractions, fine-tuning (train/method/reference ignored)

    def __post_init__(self) -> None:
        for m in self.methods:
            get_method(m)  # a one-line error naming the known methods
        for name in ("models", "methods", "seeds", "input_sizes"):
            if not getattr(self, name):
                raise InputError(f"sweep grid: {name} is empty")

    def _lambdas(self, lasso: tuple[str, ...]) -> list[tuple[float, float]]:
        """(lambda_p, lambda_d) pairs a method trained with `lasso` takes."""
        if not lasso:
            return [(0.0, 0.0)]
        ps = self.lambdas_p if "p" in lasso else (0.0,)
        ds = self.lambdas_d if "d" in lasso else (0.0,)
        return [(p, d) for p in ps for d in ds]

    def prune_cells(self) -> list[PruneCell]:
        template = self.prune or PruneCell(self.base, self.base, "dense")
        cells = []
        for model in self.models:
            for size in self.input_sizes:
                for seed in self.seeds:
                    plain = replace(self.base, model=model, input_size=size, seed=seed, lambda_p=0.0, lambda_d=0.0)
                    for method in self.methods:
                        m = get_method(method)
                        training = {"lasso": m.training} if m.training and m.lasso else {}
                        for lp, ld in self._lambdas(m.lasso):
                            trained = replace(plain, lambda_p=lp, lambda_d=ld, **training)
                            cells.append(replace(template, train=trained, reference=plain, method=method))
        return cells

    def train_cells(self) -> list[TrainCell]:
        """Every model the grid trains (the plain ones too: they are the references and the warm starts)."""
        seen: dict[str, TrainCell] = {}
        for c in self.prune_cells():
            for t in (c.reference, c.train.parent, c.train):
                if t is not None:
                    seen.setdefault(t.run_id, t)
        return list(seen.values())


def _save_checkpoint(blob: bytes, path: Path) -> str:
    """Write bytes atomically (bench.atomic, in place now: the database records it next); returns their sha256."""
    atomic_write(path, blob, defer=False)
    return hashlib.sha256(blob).hexdigest()


def _checkpoint_path(folder: Path, run_id: str) -> Path:
    return folder / (run_id.replace("/", "_") + ".pt")


def _reusable(store: ExperimentStore, cell: TrainCell) -> dict | None:
    """A finished training run whose checkpoint is on disk with the recorded sha256, as run_train_cell returns it."""
    run = store.run(cell.run_id)
    path = checkpoint_on_disk(run)
    if path is None:
        return None
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != run["checkpoint_sha256"]:
        log.warning("%s: checkpoint %s does not match its recorded sha256", cell.run_id, run["checkpoint"])
        return None
    return {"val_accuracy": run["val_accuracy"], "test_accuracy": run["test_accuracy"],
            "schedules": (run["config"] or {}).get("schedules"), "state": blob}


def run_sweep(grid: SweepGrid, store: ExperimentStore, checkpoints: str | Path, address: str | None = None,
              cpus_per_task: int = 1, num_cpus: int | None = None, provenance: dict | None = None,
              progress: Progress | None = None, retrain_lost: bool = False) -> dict:
    """Run every cell of the grid (checked first: bench.experiments.grid) not yet done in `store` nor
    claimed by another sweep; returns counts of done, failed and skipped cells, the failed cells'
    ids and the cells another sweep holds. `progress` (bench.experiments.progress): the cells reused,
    then epochs and pruning steps as they finish. A training recorded done whose checkpoint is
    missing (or not the recorded bytes) is an InputError unless `retrain_lost`."""
    grid = checked_grid(grid)
    folder = Path(checkpoints)
    prune_cells = grid.prune_cells()
    todo, elsewhere = claim_cells(store, [c for c in prune_cells if store.status(c.run_id) != "done"])
    try:
        return _run(grid, store, folder, prune_cells, todo, elsewhere, address, cpus_per_task, num_cpus,
                    provenance, progress, retrain_lost)
    finally:
        try:
            store.release_claims()
        except ValueError:  # the database failed (the error on its way out says why)
            pass


def _run(grid, store, folder, prune_cells, todo, elsewhere, address, cpus_per_task, num_cpus, provenance,
         progress, retrain_lost) -> dict:
    import ray

    total = len(prune_cells)
    skipped = total - len(todo) - len(elsewhere)
    reuse, to_train = _training_plan(store, [t for c in todo for t in (c.train, c.reference)])
    lost, carried = lost_trainings(store, list(to_train.values()))
    if lost and not retrain_lost:
        rid, old = next(iter(lost.items()))
        raise InputError(f"sweep: {len(lost)} trained model(s) recorded done have no checkpoint with the recorded "
                         f"sha256 ({rid}: {old['why']}); a retraining is not the same model bit "
                         f"for bit on another machine, and the cells already pruned from it would be compared with "
                         f"cells pruned from another. Put the checkpoints back at their recorded paths, or pass "
                         f"--retrain-lost (the rows keep the earlier records under config.replaced)")
    for rid in lost:
        log.warning("%s: its checkpoint is lost; retraining it (the earlier record stays in config.replaced)", rid)
    replaced = {**carried, **lost}
    if progress:
        progress(0, 0, {"event": "reused", "cells": [c.run_id for c in prune_cells if c not in todo],
                        "trained": list(reuse)})
    if not todo:
        return {"cells": total, "done": 0, "failed": 0, "skipped": skipped, "trained": 0, "failed_cells": [],
                "elsewhere": elsewhere}
    snaps = folder.absolute()  # the cells' tasks write their snapshots, whatever their working folder
    clean_snapshots(snaps)
    start_ray(address, num_cpus)
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    train_task = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus, max_retries=0)(run_train_cell)
    prune_task = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus, max_retries=0)(run_prune_cell)
    tracker = SweepTracker({**{k: _epochs(t) for k, t in to_train.items()},
                            **{c.run_id: _steps(c) for c in todo}}, progress)
    box = progress_box() if progress else None

    def reporter(run_id: str, units: int):
        return CellReporter(box, run_id, units) if box is not None else None
    prov = provenance or {}
    refs: dict[str, object] = {}
    pending: dict[object, tuple[str, object]] = {}
    trained = 0

    def trained_ref(t: TrainCell):
        if t.run_id not in refs:
            if reuse.get(t.run_id) is not None:
                refs[t.run_id] = ray.put(reuse[t.run_id])
            else:
                parent = trained_ref(t.parent) if t.parent is not None else None  # a warm start waits for it
                store.start_run(t.run_id, "train", {**t.fields(), "provenance": prov,
                                                    "config": _config(t, {}, replaced)},
                                parent=t.parent.run_id if t.parent is not None else None)
                refs[t.run_id] = train_task.remote(t, cpus_per_task, parent, reporter(t.run_id, _epochs(t)),
                                                   cell_snapshot(snaps, t.run_id, t.fields()))
                pending[refs[t.run_id]] = ("train", t)
        return refs[t.run_id]

    # In grid order (seed by seed), each model just before the first cell that prunes it, so that
    # Ray runs a seed's pruning cells while the next seed trains and results come in early.
    for c in todo:
        store.start_run(c.run_id, "prune", {**c.fields(), "provenance": prov}, parent=c.train.run_id)
        ref = prune_task.remote(c, trained_ref(c.train), trained_ref(c.reference), cpus_per_task,
                                reporter(c.run_id, _steps(c)), cell_snapshot(snaps, c.run_id, c.fields()))
        pending[ref] = ("prune", c)
    done = failed = 0
    failed_cells: list[str] = []
    refreshed = time.time()
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0 if box is not None else 60.0)
        if box is not None:
            tracker.drain(box)
        if time.time() - refreshed > 60:  # this sweep's claims stay live while it runs
            store.refresh_claims()
            refreshed = time.time()
        if not ready:
            continue
        kind, cell = pending.pop(ready[0])
        try:
            result = ray.get(ready[0])
        except Exception as e:  # a failed cell is recorded and the others go on
            store.fail_run(cell.run_id, f"{type(e).__name__}: {e}")
            log.info("%s failed: %s", cell.run_id, str(e).splitlines()[-1] if str(e) else type(e).__name__)
            failed += kind == "prune"
            if kind == "prune":  # the command's last line names them
                failed_cells.append(cell.run_id)
            tracker.finish(cell.run_id, False)
            continue
        path = _checkpoint_path(folder, cell.run_id)
        sha = _save_checkpoint(result.pop("state"), path)
        fields = {**result, "checkpoint": str(path), "checkpoint_sha256": sha,
                  "config": _config(cell, {"schedules": result.get("schedules"),
                                           **{k: result[k] for k in RECORDED if result.get(k) is not None}},
                                    replaced)}
        store.finish_run(cell.run_id, fields, result.get("steps"))
        snapshot_path(snaps, cell.run_id).unlink(missing_ok=True)  # recorded done: nothing to go on from
        if result.get("snapshot_ignored"):
            log.warning("%s: %s; it was ignored and the cell ran from the start", cell.run_id,
                        result["snapshot_ignored"])
        if box is not None:
            tracker.drain(box)  # the cell's last events before its end
        tracker.finish(cell.run_id, True)
        trained += kind == "train"
        done += kind == "prune"
    return {"cells": total, "done": done, "failed": failed, "skipped": skipped, "trained": trained,
            "failed_cells": failed_cells, "elsewhere": elsewhere, "finished": time.time()}


# What a cell's result adds to its recorded config (the database's `config` column).
RECORDED = ("cut_off", "within_budget", "resumed_from", "scale_factors", "parents_sha256")


def _config(cell, extra: dict, replaced: dict[str, dict]) -> dict:
    """A run's recorded config: the cell's, what its run added and, for a retrained lost model, the
    record it replaces."""
    old = replaced.get(cell.run_id)
    return {**cell.fields()["config"], **extra, **({"replaced": old} if old else {})}


def lost_trainings(store: ExperimentStore, cells: list[TrainCell]) -> tuple[dict[str, dict], dict[str, dict]]:
    """Of the trainings in `cells` (those that must run: their checkpoints are not reusable), (the ones
    recorded done, which a sweep retrains only when asked: {run_id: the record a retraining replaces,
    and why}, the ones a retraining already replaced and that did not finish since, killed or failed:
    {run_id: the earlier record, kept by the next attempt}). A record replaced twice holds the first
    under its own `replaced`."""
    lost, carried = {}, {}
    for t in cells:
        run = store.run(t.run_id)
        if not run:
            continue
        before = (run["config"] or {}).get("replaced")
        if run["status"] == "done":
            path = Path(run["checkpoint"]) if run["checkpoint"] else None
            why = ("has no checkpoint recorded" if path is None else
                   f"{path} does not hold the recorded bytes" if path.is_file() else f"{path} is missing")
            lost[t.run_id] = {k: run[k] for k in ("checkpoint", "checkpoint_sha256", "val_accuracy", "test_accuracy",
                                                  "finished", "provenance")} | {
                "why": why, **({"replaced": before} if before else {})}
        elif before:
            carried[t.run_id] = before
    return lost, carried


def _steps(cell: PruneCell) -> int:
    """The pruning steps a cell will run at most (dense: its one unpruned step)."""
    from .cells import _default_fractions

    return 1 if cell.method == "dense" else len(cell.fractions or _default_fractions())


def _training_plan(store: ExperimentStore, cells: list[TrainCell]) -> tuple[dict[str, dict], dict[str, TrainCell]]:
    """The trained models read back from disk ({run_id: _reusable's result}) and the training cells that
    will run: these cells where not reusable, and the warm-start parents of those that run."""
    reuse: dict[str, dict] = {}
    train: dict[str, TrainCell] = {}
    todo = list(cells)
    while todo:
        t = todo.pop()
        if t.run_id in reuse or t.run_id in train:
            continue
        found = _reusable(store, t)
        if found is not None:
            reuse[t.run_id] = found
        else:
            train[t.run_id] = t
            if t.parent is not None:
                todo.append(t.parent)
    return reuse, train


def _epochs(cell: TrainCell) -> int:
    """The epochs a training cell will run at most (a plain training may stop at its plateau sooner)."""
    return max(1, math.ceil(cell.config().epochs))
