"""Mid-cell resume in a sweep: a cell killed after an epoch or a pruning step goes on from its
snapshot, ends with the results of an uninterrupted sweep, and leaves no snapshot behind; a
snapshot of another configuration is ignored."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace

import pytest
import torch

import bench.experiments.progress as progress_mod
from bench.experiments.cells import PruneCell, TrainCell, run_prune_cell, run_train_cell
from bench.experiments.snapshots import CellSnapshot, cell_snapshot, snapshot_path
from bench.experiments.store import ExperimentStore
from bench.experiments.sweep import SweepGrid, run_sweep
from tests.bench.test_faults_runs import FakeRay

BASE = TrainCell("small-cnn", dataset="digits", input_size=8, subset=300, epochs=3, converge=None, test_images=100)
GRID = SweepGrid(models=("small-cnn",), methods=("dense", "hunter"), seeds=(0,), input_sizes=(8,), base=BASE,
                 prune=PruneCell(BASE, BASE, "dense", max_drop=5.0, fractions=(0.2, 0.5, 0.8),
                                 finetune_epochs=0.5, recovery_epochs=0.5, patience=3))


class Killed(Exception):
    pass


@pytest.fixture
def fake_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", FakeRay)
    monkeypatch.setattr(progress_mod, "wait_while_paused", lambda *a, **k: 0.0)  # a timing run's pause is not ours


def _kill_after(monkeypatch, prefix: str, k: int) -> None:
    """The k-th snapshot of the cell whose run id starts with `prefix` is saved, then the cell dies."""
    save = CellSnapshot.save
    seen: list = []

    def saved_then_killed(self, state):
        save(self, state)
        if self.run_id.startswith(prefix):
            seen.append(1)
            if len(seen) == k:
                raise Killed(f"{self.run_id} killed after its snapshot {k}")
    monkeypatch.setattr(CellSnapshot, "save", saved_then_killed)


def _sweep(tmp_path, name: str) -> tuple[dict, list[dict]]:
    events: list[dict] = []
    summary = run_sweep(GRID, ExperimentStore(tmp_path / f"{name}.sqlite"), tmp_path / name,
                        progress=lambda d, t, i: events.append(i))
    return summary, events


def _results(tmp_path, name: str) -> dict:
    """Each run's status, history, steps and checkpoint contents (not its bytes: a checkpoint's pickle
    shares equal strings only when they were one object, e.g. schedules not read back from the database)."""
    store = ExperimentStore(tmp_path / f"{name}.sqlite")
    out = {}
    for r in store.runs():
        ck = torch.load(r["checkpoint"], weights_only=True)
        out[r["run_id"]] = (r["status"], r["history"], store.steps(r["run_id"]), ck["meta"],
                            {k: v.tolist() for k, v in ck["state_dict"].items()})
    return out


def test_killed_cells_resume_from_their_snapshots_and_end_as_an_uninterrupted_sweep(tmp_path, fake_ray,
                                                                                      monkeypatch):
    summary, _ = _sweep(tmp_path, "whole")
    assert summary["done"] == 2 and summary["failed"] == 0
    want = _results(tmp_path, "whole")
    # 1: the training dies after its first epoch (its pruning cells fail with it)
    with monkeypatch.context() as m:
        _kill_after(m, "train/", 1)
        summary, _ = _sweep(tmp_path, "cut")
    assert summary["done"] == 0 and summary["failed"] >= 1  # (FakeRay hands both the one failed reference)
    train_id = next(r for r in want if r.startswith("train/"))
    assert snapshot_path(tmp_path / "cut", train_id).is_file()
    # 2: the training goes on after epoch 1; hunter's pruning dies after its first step
    with monkeypatch.context() as m:
        _kill_after(m, "prune/hunter/", 1)
        summary, events = _sweep(tmp_path, "cut")
    assert summary["done"] == 1 and summary["failed"] == 1
    assert [(e["cell"], e["resumed"]) for e in events if "resumed" in e] == [(train_id, 1)]
    hunter = next(r for r in want if r.startswith("prune/hunter/"))
    left = sorted(p.name for p in (tmp_path / "cut" / "snapshots").iterdir())
    assert left == [snapshot_path(tmp_path, hunter).name]  # the training is done: its snapshot is gone
    # 3: hunter goes on after step 1
    summary, events = _sweep(tmp_path, "cut")
    assert summary["done"] == 1 and summary["skipped"] == 1
    assert [(e["cell"], e["resumed"]) for e in events if "resumed" in e] == [(hunter, 1)]
    assert _results(tmp_path, "cut") == want  # the histories, steps and weights of an uninterrupted sweep
    assert list((tmp_path / "cut" / "snapshots").iterdir()) == []
    store = ExperimentStore(tmp_path / "cut.sqlite")
    assert store.run(hunter)["config"]["resumed_from"] == 1 and store.run(train_id)["config"]["resumed_from"] == 1


def test_a_snapshot_of_another_configuration_is_ignored(tmp_path, caplog, monkeypatch):
    t = BASE
    want = run_train_cell(t)
    snap = cell_snapshot(tmp_path, t.run_id, t.fields())
    with monkeypatch.context() as m:
        _kill_after(m, "train/", 2)
        with pytest.raises(Killed):
            run_train_cell(t, snapshot=snap)
    assert snap.load()["epoch"] == 2
    other = cell_snapshot(tmp_path, t.run_id, {**t.fields(), "lr": 0.5})  # same file, another configuration
    assert other.path == snap.path and other.load() is None
    resumed = run_train_cell(t, snapshot=snap)  # its own configuration: it goes on after epoch 2
    assert resumed["resumed_from"] == 2 and resumed["history"] == want["history"]
    assert resumed["checkpoint_sha256"] == want["checkpoint_sha256"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        got = run_train_cell(t, snapshot=other)
    assert "is of another configuration; ignored" in caplog.text
    assert got["snapshot_ignored"].endswith("is of another configuration") and "resumed_from" not in got
    assert got["history"] == want["history"] and got["checkpoint_sha256"] == want["checkpoint_sha256"]


def test_a_pruning_snapshot_of_another_starting_model_is_ignored(tmp_path, monkeypatch):
    """The digest covers what a cell starts from: the trained model's checkpoint too."""
    trained = run_train_cell(BASE)
    cell = PruneCell(BASE, BASE, "hunter", max_drop=5.0, fractions=(0.2, 0.5, 0.8), finetune_epochs=0.5,
                     recovery_epochs=0.5)
    snap = cell_snapshot(tmp_path, cell.run_id, cell.fields())
    with monkeypatch.context() as m:
        _kill_after(m, "prune/", 1)
        with pytest.raises(Killed):
            run_prune_cell(cell, trained, trained, snapshot=snap)
    state = torch.load(snap.path, weights_only=True)
    assert state["state"]["kind"] == "prune" and len(state["state"]["steps"]) == 2
    other = dict(trained, state=run_train_cell(replace(BASE, seed=1))["state"])
    got = run_prune_cell(cell, other, trained, snapshot=snap)
    assert "snapshot_ignored" in got and "resumed_from" not in got


def test_a_snapshot_that_cannot_be_written_costs_only_the_resume_point(tmp_path, caplog):
    (tmp_path / "snapshots").write_text("a file where the folder should be")
    snap = cell_snapshot(tmp_path, "train/x/s0", {"seed": 0})
    with caplog.at_level(logging.WARNING):
        snap.save({"epoch": 1, "w": torch.ones(3)})  # no exception: the cell goes on
    assert "its snapshot was not written" in caplog.text and snap.load() is None
