"""Whole networks with every conv split over worker processes (plan_network(..., workers=N))."""

import os

import numpy as np
import pytest

from bench.harness.model import measure_model, prepare_model
from heconv.backends.base import OpCounts
from heconv.frontend import lower_model
from heconv.network import Server, ServerConv, plan_network
from heconv.params import ckks_params, params_for_input

from .test_network import _model


def test_plan_predicts_the_split_of_every_conv():
    params = ckks_params(depth=1)
    net = lower_model(_model("resnet18"), (3, 16, 16))
    one = plan_network(net, params, "hybrid", "auto")
    two = plan_network(net, params, "hybrid", "auto", workers=2)
    assert (one.workers, two.workers) == (1, 2)
    convs = [a for a in two.actions if isinstance(a, ServerConv)]
    assert convs and all(a.parallel is not None and a.parallel.workers == 2 for a in convs)
    extra = sum(a.parallel.extra_rotations for a in convs)
    assert two.predicted == one.predicted + OpCounts(rotations=extra, key_switches=extra)
    assert {r["workers"] for r in two.summary() if r["kind"] == "conv"} == {2}
    assert two.galois_steps == one.galois_steps  # the same keys: workers share them
    with pytest.raises(ValueError, match="workers must be a positive integer, got 0"):
        plan_network(net, params, "hybrid", "auto", workers=0)


def test_plain_network_on_two_workers_equals_one():
    model = _model("resnet20", seed=3)
    shape = (3, 8, 8)
    x = np.random.default_rng(2).uniform(-1, 1, (1,) + shape)
    one = measure_model(prepare_model(model, shape, params_for_input(8, 8), "plain", schedule="auto"), model, x)
    prep = prepare_model(model, shape, params_for_input(8, 8), "plain", schedule="auto", workers=2)
    pids = prep.server.conv_pool.pids
    try:
        two = measure_model(prep, model, x)
    finally:
        prep.close()
    assert all(not os.path.exists(f"/proc/{pid}") for pid in pids)
    assert two.workers == 2 and two.counts_match_plan and one.counts_match_plan
    assert two.max_abs_error < 1e-9 and two.predictions == one.predictions
    assert two.pmuls == one.pmuls and two.adds == one.adds and two.rotations > one.rotations
    assert two.transfer_bytes > 0 and two.transfer_s > 0 and two.serial_floor_s > 0 and two.floor_s > 0
    convs = [layer for layer in two.layers if layer["kind"] == "conv"]
    assert {layer["workers"] for layer in convs} == {2}


def test_encrypted_network_on_two_workers_counts_and_agrees():
    model = _model("small-cnn", in_channels=1)
    shape = (1, 8, 8)
    prep = prepare_model(model, shape, params_for_input(8, 8), mode="encrypted", workers=2)
    try:
        r = measure_model(prep, model, np.random.default_rng(0).uniform(-1, 1, (1,) + shape)).to_dict()
    finally:
        prep.close()
    assert r["workers"] == 2 and r["counts_match_plan"] and r["rotations"] == r["predicted_rotations"]
    assert r["predictions"] == r["reference_predictions"] and r["max_abs_error"] < 1e-2


def test_streaming_cannot_fork_after_compile():
    model = _model("small-cnn", in_channels=1)
    with pytest.raises(ValueError, match="stream=True encodes each layer after the worker processes are forked"):
        prepare_model(model, (1, 8, 8), params_for_input(8, 8), "plain", stream=True, workers=2)
    net = lower_model(model, (1, 8, 8))
    plan = plan_network(net, params_for_input(8, 8), workers=1)
    from heconv.backends.plain import PlainBackend

    assert Server(PlainBackend(plan.params), net, plan, stream=True).conv_pool is None
