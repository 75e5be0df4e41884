"""One source of defaults: the experiment commands' options come from the cells' fields."""

import argparse

import pytest

from bench.cli import build_parser
from bench.cli.options import DEFAULT_MODEL, PRUNE_DEFAULTS, TRAIN_DEFAULTS


def _defaults(command: str) -> dict:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a.default for a in sub.choices[command]._actions}


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_training_options_default_to_the_train_cell(command):
    d = _defaults(command)
    shared = {k: v for k, v in TRAIN_DEFAULTS.items() if k in d}
    assert {"subset", "epochs", "converge", "lr", "batch_size", "lasso_epochs", "lasso_lr"} <= set(shared)
    assert {k: d[k] for k in shared} == shared


@pytest.mark.parametrize("command", ["prune", "sweep"])
def test_pruning_options_default_to_the_prune_cell(command):
    d = _defaults(command)
    shared = {k: v for k, v in PRUNE_DEFAULTS.items() if k in d}
    assert {"max_drop", "recovery_epochs", "finetune_epochs", "finetune_lr", "patience"} <= set(shared)
    assert {k: d[k] for k in shared} == shared


def test_train_and_sweep_agree_on_the_model():
    assert _defaults("train")["model"] == DEFAULT_MODEL == _defaults("sweep")["models"][0]
