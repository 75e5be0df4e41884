"""The verdicts with intervals: fronts, lambdas chosen on validation, ratios per seed, words."""

import math

import pytest

from bench.report.experiments import (experiments_section, experiments_summary, model_results, ratio,
                                      rotations_at_drop)


def _run(method, seed, points, lambda_d=0.0, chosen=None):
    """Rows of one run: points are (rotations, val accuracy, test accuracy) per step."""
    rid = f"prune/{method}/ld{lambda_d}/s{seed}"
    chosen = len(points) - 1 if chosen is None else chosen
    return [{"run_id": rid, "model": "resnet20", "dataset": "fashion-mnist", "input_size": 16,
             "poly_modulus_degree": 8192, "method": method, "lambda_p": 0.0, "lambda_d": lambda_d, "seed": seed,
             "step": i, "rotations": r, "val_accuracy": v, "test_accuracy": t, "chosen": int(i == chosen),
             "encrypted_server_s": None} for i, (r, v, t) in enumerate(points)]


def _rows(hunter_scale=1.0):
    rows = []
    for seed in (0, 1, 2):
        rows += _run("dense", seed, [(1000, 90.0, 90.0)])
        # hunter reaches the 89.0 budget at 600 * scale rotations, artemis at 300 (lambda 1) or 500 (lambda 2)
        rows += _run("hunter", seed, [(1000, 90.0, 90.0), (600 * hunter_scale, 89.0, 89.0), (200, 80.0, 80.0)])
        rows += _run("artemis-diagonal", seed, [(1000, 90.0, 90.0), (300, 89.0, 89.0), (100, 80.0, 80.0)], 1.0)
        rows += _run("artemis-diagonal", seed, [(1000, 90.0, 90.0), (500, 89.5, 89.5), (400, 70.0, 70.0)], 2.0)
    return rows


def test_ratio_per_seed_with_interval_and_lambda_chosen_on_validation():
    results = model_results(_rows())
    assert results["artemis-diagonal"].lambdas == (0.0, 1.0)
    assert results["artemis-diagonal"].rotations == {0: 300.0, 1: 300.0, 2: 300.0}
    r = ratio(results, "hunter", "artemis-diagonal")
    assert r["value"] == pytest.approx(2.0) and r["interval"] == (2.0, 2.0) and r["seeds"] == 3
    assert ratio(results, "dense", "artemis-diagonal")["value"] == pytest.approx(1000 / 300)
    assert ratio(results, "diagonal-no-lasso", "artemis-diagonal") is None


def test_a_claim_that_does_not_hold_is_said_not_to_hold():
    md = "\n".join(experiments_section(_rows(hunter_scale=0.55)))  # hunter 330 vs artemis 300: 1.1x
    assert "1.10x" in md and "the claim does not hold" in md
    md = "\n".join(experiments_section(_rows()))
    assert "the claim holds" in md and "3 seeds" in md


def test_interpolation_and_out_of_budget():
    assert rotations_at_drop([(1000, 90.0), (500, 88.0)], 89.0) == pytest.approx(750.0)
    assert rotations_at_drop([(1000, 85.0)], 89.0) is None
    summary = experiments_summary(_rows())
    key = "resnet20/fashion-mnist/16/8192"
    assert math.isclose(summary[key]["ratios"]["hunter / artemis-diagonal"]["value"], 2.0)


def test_fewer_than_three_seeds_give_a_ratio_but_no_verdict():
    rows = [r for r in _rows() if r["seed"] in (0, 1)]
    text = "\n".join(experiments_section(rows))
    assert "2.00x" in text  # hunter 600 over artemis 300 on each seed
    assert "the claim is not judged on 2 seed(s) (a verdict needs at least 3)" in text
