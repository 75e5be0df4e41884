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


def test_the_demo_is_the_sweep_but_for_its_explained_overrides():
    from bench.demo import DEMO_OVERRIDES, DemoConfig

    d = _defaults("demo")
    for name, default in TRAIN_DEFAULTS.items():
        if name in d and name not in ("lambda_d",):  # the demo's one Lasso weight; the sweep takes a grid
            want = DEMO_OVERRIDES[name][0] if name in DEMO_OVERRIDES else default
            assert d[name] == want, name
    cfg = DemoConfig()
    for name in set(TRAIN_DEFAULTS) | set(PRUNE_DEFAULTS):
        if hasattr(cfg, name) and name not in DEMO_OVERRIDES and name not in ("fractions", "lambda_d", "model", "mode"):
            assert getattr(cfg, name) == {**TRAIN_DEFAULTS, **PRUNE_DEFAULTS}[name], name
    assert all(why for _, why in DEMO_OVERRIDES.values())
