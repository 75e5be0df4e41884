"""Whole networks with a rotation schedule per layer (docs/design.md, "Rotation schedules")."""

import numpy as np
import pytest

from bench.harness.model import measure_model, prepare_model
from heconv.backends.plain import PlainBackend
from heconv.cost import DEFAULT_UNIT_COSTS, floor_seconds
from heconv.frontend import lower_model
from heconv.network import Client, Server, ServerConv, plan_network, run_network
from heconv.params import ckks_params, params_for_input

from .helpers import expected_schedule_rotations
from .test_network import _model


def _count(net, params, schedule):
    plan = plan_network(net, params, "hybrid", schedule)
    backend = PlainBackend(params, track_values=False)
    client = Client(backend)
    client.setup_keys(plan)
    run = run_network(plan, client, Server(backend.public_view(), net, plan, stream=True), np.zeros(net.input_shape))
    return plan, run


@pytest.mark.parametrize("name, total_or, most_auto", [("resnet18", 5041, 1900), ("resnet20", 826, 646)])
def test_auto_cuts_rotations_and_counts_match(name, total_or, most_auto):
    params = ckks_params(depth=1)
    net = lower_model(_model(name), (3, 16, 16))
    orr, orr_run = _count(net, params, "output-rotation")
    auto, auto_run = _count(net, params, "auto")
    assert orr.predicted.rotations == orr_run.counts.rotations == total_or
    assert auto_run.counts.rotations == auto.predicted.rotations <= most_auto
    assert auto_run.counts == auto.predicted
    for layer in auto_run.layers:
        assert layer.counts == layer.predicted, layer.name
    assert auto.predicted.pmuls == orr.predicted.pmuls and len(auto.galois_steps) < len(orr.galois_steps)
    convs = {a.name: a.plan for a in auto.actions if isinstance(a, ServerConv)}
    orrs = {a.name: a.plan for a in orr.actions if isinstance(a, ServerConv)}
    ops = {op.name: op for op in net.ops if getattr(op, "weight", None) is not None and op.name in convs}
    for path, plan in convs.items():
        # Per layer: no worse than OR in predicted time; the count agrees with the group count.
        assert (floor_seconds(plan.predicted, DEFAULT_UNIT_COSTS)
                <= floor_seconds(orrs[path].predicted, DEFAULT_UNIT_COSTS)), path
        if plan.spec.height >= 8:  # every (j, pos) its own shift
            assert plan.predicted.rotations == expected_schedule_rotations(
                ops[path].weight, plan.packing.c_n, plan.baby_step), path
    summary = {r["layer"]: r for r in auto.summary()}
    assert summary["conv1"]["schedule"] in ("output-rotation", "bsgs:2")
    assert all(r["schedule"] is None for r in summary.values() if r["kind"] != "conv")


def test_per_layer_mapping_and_errors():
    params = ckks_params(depth=1)
    net = lower_model(_model("resnet20"), (3, 16, 16))
    plan = plan_network(net, params, schedule={"conv1": "input-rotation", "layers.2.2.conv2": "bsgs:4"})
    got = {r.name: r.schedule for r in plan.layers if r.kind == "conv"}
    assert got["conv1"] == "input-rotation" and got["layers.2.2.conv2"] == "bsgs:4"
    assert got["layers.0.0.conv1"] == "output-rotation"
    with pytest.raises(ValueError, match=r"schedule names layers that are not convs of the network: \['fc'\]"):
        plan_network(net, params, schedule={"fc": "bsgs:2"})
    with pytest.raises(ValueError, match="layer conv1: schedule 'bsgs:32': the baby step B must divide c_n = 16"):
        plan_network(net, params, schedule="bsgs:32")
    with pytest.raises(ValueError, match="^unknown rotation schedule 'bsgs'"):
        plan_network(net, params, schedule="bsgs")


def test_encrypted_network_with_auto_matches_torch():
    model = _model("resnet20")
    shape = (3, 8, 8)
    prep = prepare_model(model, shape, params_for_input(*shape[1:]), mode="encrypted", schedule="auto")
    r = measure_model(prep, model, np.random.default_rng(0).uniform(-1, 1, (1,) + shape)).to_dict()
    assert r["predictions"] == r["reference_predictions"] and r["max_abs_error"] < 1e-2
    assert r["counts_match_plan"] and r["rotations"] == r["predicted_rotations"] == r["key_switches"]
    schedules = {layer["schedule"] for layer in r["layers"] if layer["kind"] == "conv"}
    assert schedules - {"output-rotation"}  # some layer runs a baby step B > 1
    assert {layer["baby_step"] for layer in r["layers"] if layer["kind"] != "conv"} == {None}


@pytest.mark.parametrize("schedule", ["auto", "input-rotation"])
def test_non_interactive_takes_a_schedule(schedule):
    model = _model("small-cnn-square", in_channels=1)
    shape = (1, 8, 8)
    prep = prepare_model(model, shape, mode="plain", protocol="non-interactive", schedule=schedule)
    r = measure_model(prep, model, np.random.default_rng(4).uniform(-1, 1, (1,) + shape)).to_dict()
    assert r["max_abs_error"] < 1e-6 and r["counts_match_plan"]
    if schedule == "input-rotation":
        assert {layer["schedule"] for layer in r["layers"] if layer["kind"] == "conv"} == {"input-rotation"}
