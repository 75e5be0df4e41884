"""Progress that moves (issue 21): per epoch and per step, totals that are the work that will run,
reused cells announced, one line per stage outside a terminal."""

import io

from bench.cli.progress import SweepView
from bench.experiments.progress import CellReporter, SweepTracker

TRAIN = "train/resnet20/digits/8/n200/N8192/output-rotation/proximal/lp0/ld0.3/s0/e2"
PRUNE = "prune/hunter/threshold/d1/f1/q3c1d2e/p2/resnet20/digits/8/n200/N8192/output-rotation/proximal/lp0/ld0/s0/e2"


class _Put:
    def __init__(self):
        self.events = []

    def remote(self, event):
        self.events.append(event)


class _Box:
    def __init__(self):
        self.put = _Put()


def test_reporter_sends_each_finished_epoch_not_each_batch():
    box = _Box()
    report = CellReporter(box, TRAIN, units=2, interval=3600.0)
    for batch in range(1, 21):  # 2 epochs of 10 batches: train() reports every batch
        report(batch, 20, {"epoch": 1 + (batch - 1) // 10, "loss": 0.5})
    assert [(e[1], e[2]) for e in box.put.events] == [(0.1, 2), (1.0, 2), (2.0, 2)]
    steps = CellReporter(box, PRUNE, units=14, interval=3600.0)
    steps(1, 6, {"fraction": 0.02, "accuracy": 80.0, "rotations": 700})  # 6 steps will run, not 14
    assert box.put.events[-1] == (PRUNE, 1.0, 6, {"fraction": 0.02, "accuracy": 80.0, "rotations": 700})


def _view():
    stream = io.StringIO()
    return SweepView("demo", stream=stream), stream


def test_outside_a_terminal_one_line_per_stage():
    view, stream = _view()
    tracker = SweepTracker({TRAIN: 2, PRUNE: 14}, view.progress)
    view.progress(0, 0, {"event": "reused", "cells": ["prune/dense/x/s0"], "trained": []})
    tracker.event(TRAIN, 0.5, 2, {})  # within an epoch: no line
    tracker.event(TRAIN, 1.0, 2, {"epoch": 1})
    tracker.event(TRAIN, 1.0, 2, {"epoch": 1})  # the same stage twice: one line
    tracker.event(TRAIN, 2.0, 2, {"epoch": 2})
    tracker.finish(TRAIN, True)
    tracker.event(PRUNE, 1.0, 6, {"accuracy": 80.0, "rotations": 700})
    tracker.finish(PRUNE, True)  # stopped after one step: the rest will not run
    view.say("encrypted inference 1/3: dense")
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines == [
        "demo: reusing 1 finished pruning cell(s) and 0 trained model(s) from the database",
        "train resnet20 ld0.3 s0: epoch 1/2 (1/16 units of the sweep)",
        "train resnet20 ld0.3 s0: epoch 2/2 (2/16 units of the sweep)",
        "train resnet20 ld0.3 s0: done (2/16 units of the sweep)",
        "prune hunter s0: step 1/6, val 80.00, 700 rotations (3/8 units of the sweep)",
        "prune hunter s0: done (3/3 units of the sweep)",
        "encrypted inference 1/3: dense",
    ]


def test_nothing_reused_says_nothing():
    view, stream = _view()
    view.progress(0, 0, {"event": "reused", "cells": [], "trained": []})
    assert stream.getvalue() == ""


def test_a_resumed_cell_says_from_which_epoch_and_step():
    view, stream = _view()
    tracker = SweepTracker({TRAIN: 4, PRUNE: 14}, view.progress)
    tracker.event(TRAIN, 2.0, 4, {"epoch": 2, "resumed": 2})  # went on from its snapshot after epoch 2
    tracker.event(TRAIN, 3.0, 4, {"epoch": 3})
    tracker.event(PRUNE, 5.0, 14, {"resumed": 5})
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines == [
        "train resnet20 ld0.3 s0: resumed from its snapshot after epoch 2/4 (2/18 units of the sweep)",
        "train resnet20 ld0.3 s0: epoch 3/4 (3/18 units of the sweep)",
        "prune hunter s0: resumed from its snapshot after step 5/14 (8/18 units of the sweep)",
    ]
