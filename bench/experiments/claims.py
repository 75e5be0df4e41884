"""Which cells of a sweep this process takes, so that two sweeps on one database never run a
cell twice: a pruning cell is taken together with the trainings it needs that are not done
yet, or whose checkpoint is gone (its model and its reference), all or nothing, through the store's claims
(ExperimentStore.claim: pid and host, refreshed while the sweep runs, stale when not)."""

from __future__ import annotations

from typing import Sequence

from .cells import PruneCell
from .store import ExperimentStore, checkpoint_on_disk


def claim_cells(store: ExperimentStore, cells: Sequence[PruneCell]) -> tuple[list[PruneCell], list[dict]]:
    """(the cells this process took, one claim of another sweep per cell it holds)."""
    mine, elsewhere = [], []
    for c in cells:
        needs = (c.train, c.reference, getattr(c.train, "parent", None))  # the parent: a warm start's plain model
        ids = [c.run_id] + [t.run_id for t in needs if t is not None and _to_train(store, t.run_id)]
        holder = store.claim(list(dict.fromkeys(ids)))
        if holder is None:
            mine.append(c)
        else:
            elsewhere.append({"cell": c.run_id, **holder})
    return mine, elsewhere


def _to_train(store: ExperimentStore, run_id: str) -> bool:
    """Whether a sweep that needs this training would run it: not done, or done with its checkpoint gone
    (a retraining, bench.experiments.sweep: two sweeps must not both retrain it)."""
    return checkpoint_on_disk(store.run(run_id)) is None
