"""Progress of a sweep's cells while they run: epochs of training, steps of pruning.

A cell runs in a Ray task, so its progress travels back through a small Ray actor
(`progress_box`, no CPU reserved): the task's `CellReporter` puts an event at every
finished epoch or step (and at most every few seconds within one), the driver drains the
box while it waits for results and `SweepTracker` turns the events into one figure of
work done against the work that will run. Units: one a training epoch, one a pruning step;
cells already done in the database, and trained models read back from disk, are not work
that will run and are announced instead. Nothing here prints (bench.cli draws it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from .pause import wait_while_paused

# progress(done, total, info): done and total in work units (epochs and steps) of the cells that run;
# info["event"] says what happened: "reused", "running", "cell-done", "cell-failed".
Progress = Callable[[float, float, dict], None]


class _Box:
    """The actor's class: a list of events, drained by the driver."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def put(self, event: tuple) -> None:
        self.events.append(event)

    def drain(self) -> list[tuple]:
        out, self.events = self.events, []
        return out


def progress_box():
    """A Ray actor holding the events of every cell (needs ray initialised)."""
    import ray

    return ray.remote(num_cpus=0)(_Box).remote()


@dataclass
class CellReporter:
    """The progress callable a cell's function is given (pruning.train / pruning.iterative's signature):
    it forwards (run_id, done, total, info) to the box at each finished unit, and otherwise at most
    every `interval` seconds. Picklable: it travels with the Ray task."""

    box: object
    run_id: str
    units: int  # epochs for training (train() counts batches), steps for pruning
    interval: float = 3.0
    _last: float = field(default=0.0, repr=False)
    _whole: int = field(default=-1, repr=False)

    def __call__(self, done: int, total: int, info: dict) -> None:
        """Scale (done, total) to units: batches to epochs, steps stay steps. Waits here while a
        timing run pauses the host's sweeps (bench.experiments.pause)."""
        wait_while_paused()
        units = self.units if total > self.units else total
        value = done * units / max(1, total)
        whole, now = int(value), time.monotonic()
        if whole == self._whole and now - self._last < self.interval:
            return
        self._whole, self._last = whole, now
        clean = {k: v for k, v in info.items() if isinstance(v, (int, float, str))}
        self.box.put.remote((self.run_id, value, units, clean))


class SweepTracker:
    """Work done against work that will run, from the cells' events.

    >>> seen = []
    >>> t = SweepTracker({"train/a": 4, "prune/b": 10}, lambda d, n, i: seen.append((d, n, i["event"])))
    >>> t.event("train/a", 2.0, 4, {})
    >>> t.event("prune/b", 1.0, 6, {})  # the pruning will run 6 steps, not 10
    >>> t.finish("prune/b", True)        # and stopped after 1: the rest will not run
    >>> seen
    [(2.0, 14, 'running'), (3.0, 10, 'running'), (3.0, 5, 'cell-done')]
    """

    def __init__(self, units: dict[str, int], progress: Progress | None) -> None:
        self.units = dict(units)
        self.done = {k: 0.0 for k in units}
        self.progress = progress or (lambda done, total, info: None)

    @property
    def total(self) -> float:
        return sum(self.units.values())

    def event(self, run_id: str, done: float, units: int, info: dict) -> None:
        if run_id not in self.units:
            return
        self.units[run_id] = units  # a cell knows its own work better than the estimate
        self.done[run_id] = min(done, units)
        self.progress(sum(self.done.values()), self.total,
                      {**info, "event": "running", "cell": run_id, "cell_done": done, "cell_total": units})

    def finish(self, run_id: str, ok: bool) -> None:
        if run_id not in self.units:
            return
        if ok:
            self.units[run_id] = max(1, int(round(self.done[run_id]))) if self.done[run_id] else self.units[run_id]
        self.done[run_id] = self.units[run_id]
        self.progress(sum(self.done.values()), self.total,
                      {"event": "cell-done" if ok else "cell-failed", "cell": run_id})

    def drain(self, box) -> None:
        """Forward every event the box holds."""
        import ray

        for run_id, done, units, info in ray.get(box.drain.remote()):
            self.event(run_id, done, units, info)
