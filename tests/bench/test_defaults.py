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


def test_every_training_setting_is_in_the_cell_id_and_the_default_ids_stay():
    """Two trainings that differ in any setting are two cells; the ids of cells at the defaults are
    the ones the committed database holds (a changed id would orphan them)."""
    from dataclasses import replace

    from bench.experiments.cells import TrainCell

    base = TrainCell("resnet20", seed=1)
    assert base.run_id == ("train/resnet20/fashion-mnist/16/n20000/tall/N8192/output-rotation/plain/s1/"
                           "plateau0.2-e40")
    variants = [replace(base, **{f: v}) for f, v in (("lr", 0.1), ("batch_size", 64), ("epochs", 5), ("converge", None),
                                                    ("subset", 1000), ("test_images", 500), ("seed", 2))]
    warm = replace(base, lambda_d=0.7)  # a warm start from `base` (its parent)
    assert warm.parent == base
    variants += [warm, replace(warm, batch_size=64), replace(warm, lasso_lr=0.02), replace(warm, lasso_epochs=2)]
    ids = [base.run_id] + [v.run_id for v in variants]
    assert len(set(ids)) == len(ids)
