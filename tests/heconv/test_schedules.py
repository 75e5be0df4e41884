"""Rotation schedules (docs/design.md, "Rotation schedules"): exact counts for every baby step B in both
backends, differential tests against torch conv2d, "auto", the plan's JSON round trip."""

import json

import numpy as np
import pytest

from bench.harness.layer import torch_conv
from heconv.backends.plain import PlainBackend
from heconv.conv import ConvPlan, plan_conv
from heconv.cost import DEFAULT_UNIT_COSTS, UnitCosts, floor_seconds
from heconv.schedule import baby_step_choices, dense_rotations

from .helpers import expected_schedule_rotations, kaiming, run_layer, zero_schedule_groups

# (c_in, c_out, hw, k): one ciphertext each side, every (j, pos) its own shift; small enough for SEAL.
SMALL = [(3, 16, 8, 3), (16, 16, 8, 3), (16, 32, 8, 1), (8, 8, 6, 5)]
SCHEDULES = ["output-rotation", "bsgs:2", "bsgs:4", "input-rotation"]


def _ids(shape):
    return "{}-{}-{}x{}-k{}".format(shape[0], shape[1], shape[2], shape[2], shape[3])


def _dense_check(backend, rng, shape, schedule):
    c_in, c_out, hw, k = shape
    w = kaiming(rng, c_out, c_in, k)
    plan, _, counts = run_layer(backend, w, None, rng.uniform(-1, 1, (c_in, hw, hw)), schedule=schedule)
    g, b = plan.packing, plan.baby_step
    formula = g.n_in * (k * k * b - 1) + g.n_out * (g.c_n // b - 1)
    assert counts.rotations == plan.predicted.rotations == dense_rotations(g, k, b) == formula
    assert counts.key_switches == counts.rotations
    assert counts.pmuls == plan.predicted.pmuls == g.n_in * g.n_out * g.c_n * k * k
    assert counts == plan.predicted
    return plan, backend


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("shape", SMALL, ids=_ids)
def test_dense_counts_every_schedule(backend, rng, shape, schedule):
    plan, backend = _dense_check(backend, rng, shape, schedule)
    assert plan.schedule == schedule and plan.candidates == []
    named = {"output-rotation": 1, "input-rotation": plan.packing.c_n}
    assert plan.baby_step == (named[schedule] if schedule in named else int(schedule.removeprefix("bsgs:")))
    # One block each side: every rotation has its own step, so one Galois key per rotation.
    assert len(backend.galois_steps) == len(plan.rotation_steps) == plan.predicted.rotations


@pytest.mark.parametrize("shape", [(32, 32, 16, 3), (64, 128, 8, 3), (16, 48, 16, 1)], ids=_ids)
def test_dense_counts_every_baby_step_multi_block(rng, params, shape):
    """Several ciphertexts per side, every B of the layer, cleartext backend."""
    c_n = plan_conv(np.ones(shape[1::-1] + (shape[3],) * 2), shape[2], shape[2], params).packing.c_n
    for b in baby_step_choices(c_n):
        _dense_check(PlainBackend(params), rng, shape, f"bsgs:{b}")


@pytest.mark.parametrize("b", [1, 2, 4, 16])
def test_pruned_counts_every_schedule(rng, params, b):
    c_in, c_out, hw = 32, 48, 16  # c_n = 16: n_in = 2, n_out = 3
    w = zero_schedule_groups(kaiming(rng, c_out, c_in, 3), 16, b, rng, 0.4, 0.4)
    plan, y, counts = run_layer(PlainBackend(params), w, rng.normal(size=c_out), rng.uniform(-1, 1, (c_in, hw, hw)),
                                schedule=f"bsgs:{b}")
    assert counts == plan.predicted
    assert counts.rotations == counts.key_switches == expected_schedule_rotations(w, 16, b)
    assert counts.rotations < dense_rotations(plan.packing, 3, b)
    assert counts.pmuls == len(plan.terms)


@pytest.mark.parametrize("schedule", ["bsgs:2", "input-rotation"])
def test_pruned_counts_seal_small(backend, rng, schedule):
    w = kaiming(rng, 16, 16, 3)
    b = 2 if schedule == "bsgs:2" else 16
    w = zero_schedule_groups(w, 16, b, rng, 0.3, 0.3)
    plan, _, counts = run_layer(backend, w, None, rng.uniform(-1, 1, (16, 8, 8)), schedule=schedule)
    assert counts == plan.predicted
    assert counts.rotations == expected_schedule_rotations(w, 16, b)


# (c_in, c_out, hw, k, stride)
DIFF = [(16, 16, 8, 3, 1), (16, 32, 8, 3, 2), (16, 32, 8, 1, 1), (16, 32, 8, 1, 2), (3, 16, 8, 3, 1)]


@pytest.mark.parametrize("schedule", ["output-rotation", "bsgs:2", "input-rotation"])
@pytest.mark.parametrize("shape", DIFF, ids=lambda s: "{}-{}-{}x{}-k{}-s{}".format(s[0], s[1], s[2], s[2], s[3], s[4]))
def test_encrypted_matches_torch_every_schedule(params, shape, schedule):
    from heconv.backends.seal import SealBackend

    c_in, c_out, hw, k, stride = shape
    rng = np.random.default_rng(11)
    w, b = kaiming(rng, c_out, c_in, k), rng.normal(0, 0.1, c_out)
    x = rng.uniform(-1, 1, (c_in, hw, hw))
    ref = torch_conv(x, w, b, stride)
    plan, y_seal, c_seal = run_layer(SealBackend(params), w, b, x, stride, schedule)
    _, y_plain, c_plain = run_layer(PlainBackend(params), w, b, x, stride, schedule)
    assert y_seal.shape == ref.shape
    assert np.abs(y_seal - ref).max() < 1e-3
    assert np.abs(y_plain - ref).max() < 1e-9
    assert c_seal == c_plain == plan.predicted


@pytest.mark.parametrize("shape", [(32, 32, 16, 3, 1), (32, 48, 16, 3, 2), (4, 4, 2, 3, 1), (4, 8, 1, 3, 1),
                                   (2, 3, 9, 7, 1), (4, 6, 7, 5, 1)],
                         ids=["two-blocks", "two-blocks-s2", "2x2", "1x1-image", "7x7", "5x5-odd"])
def test_plain_matches_torch_every_baby_step(params, shape):
    """Cleartext backend, every B: several blocks, narrow images where shifts coincide across j."""
    c_in, c_out, hw, k, stride = shape
    rng = np.random.default_rng(3)
    w, b = kaiming(rng, c_out, c_in, k), rng.normal(0, 0.1, c_out)
    x = rng.uniform(-1, 1, (c_in, hw, hw))
    ref = torch_conv(x, w, b, stride)
    c_n = plan_conv(w, hw, hw, params).packing.c_n
    for bb in baby_step_choices(c_n):
        plan, y, counts = run_layer(PlainBackend(params), w, b, x, stride, f"bsgs:{bb}")
        assert np.abs(y - ref).max() < 1e-9, bb
        assert counts == plan.predicted, bb


def test_narrow_image_shares_baby_steps_across_j(params):
    """512->512 on 2x2 (P = 4, c_n = 512): shifts j*P + sigma run over a contiguous range, so
    baby steps of different j coincide and share one rotation: 4B + 2 of them, not 7B - 1."""
    w = np.ones((512, 512, 3, 3))
    for b in (1, 8, 16, 512):
        plan = plan_conv(w, 2, 2, params, schedule=f"bsgs:{b}")
        assert plan.input_shifts[0] == sorted({v % params.slots for v in range(-3, 4 * b)} - {0})
        assert plan.predicted.rotations == (4 * b + 2) + (512 // b - 1)
    auto = plan_conv(w, 2, 2, params, schedule="auto")
    assert (auto.baby_step, auto.predicted.rotations) == (8, 97)  # OR: 517
    backend = PlainBackend(params, track_values=False)
    plan, _, counts = run_layer(backend, w, None, np.zeros((512, 2, 2)), schedule="auto")
    assert counts == plan.predicted and counts.rotations == 97


@pytest.mark.parametrize("seed, fracs", [(0, (0.0, 0.0)), (1, (0.5, 0.0)), (2, (0.0, 0.6)), (3, (0.7, 0.7))])
@pytest.mark.parametrize("shape", [(64, 64, 16, 3), (128, 128, 8, 3), (256, 512, 4, 1), (16, 32, 8, 3)], ids=_ids)
def test_auto_is_no_worse_than_any_schedule(params, shape, seed, fracs):
    c_in, c_out, hw, k = shape
    rng = np.random.default_rng(seed)
    c_n = plan_conv(np.ones((c_out, c_in, k, k)), hw, hw, params).packing.c_n
    w = zero_schedule_groups(kaiming(rng, c_out, c_in, k), c_n, 1, rng, *fracs)
    auto = plan_conv(w, hw, hw, params, schedule="auto", name="l")
    cost = floor_seconds(auto.predicted, DEFAULT_UNIT_COSTS)
    assert [c.baby_step for c in auto.candidates] == baby_step_choices(c_n)
    for c in auto.candidates:
        fixed = plan_conv(w, hw, hw, params, schedule=f"bsgs:{c.baby_step}", name="l")
        assert c.rotations == fixed.predicted.rotations and c.galois_keys == len(fixed.rotation_steps)
        assert c.predicted_s == floor_seconds(fixed.predicted, DEFAULT_UNIT_COSTS)
        assert c.schedule == fixed.schedule_name
        assert cost <= c.predicted_s
    orr = plan_conv(w, hw, hw, params, name="l")
    assert cost <= floor_seconds(orr.predicted, DEFAULT_UNIT_COSTS)
    assert auto.predicted.pmuls == orr.predicted.pmuls and auto.predicted.adds == orr.predicted.adds
    chosen = next(c for c in auto.candidates if c.baby_step == auto.baby_step)
    assert chosen.rotations == auto.predicted.rotations and chosen.galois_keys == len(auto.rotation_steps)


def test_auto_breaks_ties_on_galois_keys(params):
    """With free rotations every B costs the same: the fewest Galois keys wins."""
    free = UnitCosts(rotation=0.0, pmul=1e-4, add=4e-5, plain_add=4e-5, rescale=3e-4, encrypt=2e-3, encode=6e-4)
    w = kaiming(np.random.default_rng(0), 64, 64, 3)
    plan = plan_conv(w, 16, 16, params, schedule="auto", unit_costs=free)
    assert len({c.predicted_s for c in plan.candidates}) == 1
    fewest = min(c.galois_keys for c in plan.candidates)
    assert len(plan.rotation_steps) == fewest
    assert plan.baby_step == min(c.baby_step for c in plan.candidates if c.galois_keys == fewest)


def test_auto_with_measured_unit_costs_is_deterministic(params):
    w = kaiming(np.random.default_rng(0), 128, 128, 3)
    a = plan_conv(w, 8, 8, params, schedule="auto")
    assert a == plan_conv(w, 8, 8, params, schedule="auto")
    assert (a.schedule, a.schedule_name, a.baby_step) == ("auto", "bsgs:2", 2)


@pytest.mark.parametrize("schedule", ["auto", "bsgs:4", "input-rotation", "output-rotation"])
def test_plan_json_round_trip(params, rng, schedule):
    w = kaiming(rng, 24, 8, 3)
    w[:, :, 0, 0] = 0.0
    plan = plan_conv(w, 8, 8, params, has_bias=True, name="layer1.0.conv1", schedule=schedule)
    again = ConvPlan.from_dict(json.loads(plan.to_json()))
    assert again == plan and again.schedule_name == plan.schedule_name
    assert bool(again.candidates) == (schedule == "auto")


def test_plan_json_from_before_schedules_reads_as_output_rotation(params, rng):
    plan = plan_conv(kaiming(rng, 8, 8, 3), 8, 8, params)
    old = json.loads(plan.to_json())
    for key in ("baby_step", "giants", "candidates"):
        del old[key]
    assert ConvPlan.from_dict(old) == plan


@pytest.mark.parametrize("schedule, message", [
    ("bsgs:32", "layer l1: schedule 'bsgs:32': the baby step B must divide c_n = 16 (one of [1, 2, 4, 8, 16])"),
    ("bsgs:3", "layer l1: schedule 'bsgs:3': the baby step B must be a power of two, got 3"),
    ("bsgs:0", "the baby step B must be a power of two, got 0"),
    ("bsgs:-2", "layer l1: schedule 'bsgs:-2': expected 'bsgs:B' with an integer B"),
    ("gazelle", "layer l1: unknown rotation schedule 'gazelle'"),
])
def test_schedule_errors_name_the_layer(params, schedule, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        plan_conv(np.ones((16, 16, 3, 3)), 8, 8, params, name="l1", schedule=schedule)
