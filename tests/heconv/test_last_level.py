"""Slot convs at the chain's last level without a rescale (heconv.bounds.last_level_split): exact counts,
outputs against torch on both backends, the split's headroom, and whole networks planned with a value
bound (residual partners at one scale, uploads at the layout's scale, the bound check at run time)."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from heconv.algorithms import SlotLayout, get_algorithm, run_layer
from heconv.algorithms.matvec.plan import MatvecPlan
from heconv.backends import make_backend
from heconv.backends.plain import PlainBackend
from heconv.bounds import LAST_LEVEL_MAX_BITS, LAST_LEVEL_MIN_BITS, headroom, last_level_split
from heconv.conv import ConvPlan, plan_conv
from heconv.errors import InputError
from heconv.frontend import lower_model
from heconv.network import Client, Encrypt, Server, ServerAdd, ServerConv, plan_network, run_network
from heconv.params import ckks_params, params_for_input

from .helpers import bn_model, kaiming

P = ckks_params(depth=1)


def _torch(x, w, b, stride):
    return F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), None if b is None else torch.from_numpy(b),
                    stride=stride, padding=w.shape[2] // 2)[0].numpy()


@pytest.mark.parametrize("bound", [0.5, 3.0, 20.0, 400.0, 3000.0, 9000.0, 1e5])
def test_the_split_leaves_the_bound_room_and_stays_within_its_limits(bound):
    split = last_level_split(P, bound)
    if split is None:
        assert bound >= headroom(P, 1, scale_bits=LAST_LEVEL_MIN_BITS)
        return
    a, w = split
    assert LAST_LEVEL_MIN_BITS <= a + w <= LAST_LEVEL_MAX_BITS
    assert bound < headroom(P, 1, scale_bits=a + w)  # it fits...
    assert a + w == LAST_LEVEL_MAX_BITS or bound >= headroom(P, 1, scale_bits=a + w + 1)  # ...with no bit spare
    assert 6 <= a - w <= 7


@pytest.mark.parametrize("algorithm,stride,options", [
    ("slot", 1, {"schedule": "output-rotation"}), ("slot", 2, {"schedule": "auto"}),
    ("slot", 1, {"schedule": "input-rotation"}), ("matvec", 1, {}), ("matvec", 2, {"baby_step": 4})])
def test_counts_and_outputs_match_on_both_backends(algorithm, stride, options):
    """An odd shape (5 -> 7 channels on 6x5, bias, one output ciphertext with no kept term): no rescale is
    counted, the output stays at the input's level, and it equals torch's (matvec's stride 2 multiplexed)."""
    rng = np.random.default_rng(1)
    w = kaiming(rng, 7, 5, 3)
    w[4:] = 0.0  # c_n 4: the second output ciphertext keeps no term (the bias encrypted alone)
    b = rng.normal(0, 0.1, 7)
    x = rng.uniform(-1, 1, (5, 6, 5))
    a, wb = last_level_split(P, 50.0)
    alg = get_algorithm(algorithm)
    for mode, tol in (("plain", 1e-12), ("encrypted", 2e-3)):
        run = run_layer(alg, w, b, x, make_backend(mode, P, seed=0), stride=stride, c_n=4, rescale=False,
                        input_scale_bits=a, weight_scale_bits=wb, **options)
        plan = run.plan
        assert (plan.level, alg.output_level(plan), plan.predicted.rescales) == (1, 1, 0)
        assert run.counts == plan.predicted and alg.output_layout(plan).scale(P) == 2.0 ** (a + wb)
        assert np.abs(run.output - _torch(x, w, b, stride)).max() < tol
    if algorithm == "slot":
        assert plan.empty_outputs == [1]
    rescaled = alg.plan(w, 6, 5, P, stride=stride, has_bias=True, c_n=4, **options)
    assert rescaled.predicted.rescales > 0 and rescaled.level == 0
    assert (plan.predicted.rotations, plan.predicted.pmuls) == (rescaled.predicted.rotations, rescaled.predicted.pmuls)


def test_the_plan_round_trips_and_names_what_it_lacks():
    w = kaiming(np.random.default_rng(0), 4, 4, 3)
    plan = plan_conv(w, 4, 4, P, rescale=False, input_scale_bits=30, weight_scale_bits=24)
    assert ConvPlan.from_dict(json.loads(plan.to_json())) == plan
    assert (plan.output_scale_bits, plan_conv(w, 4, 4, P).output_scale_bits) == (54, None)
    alg = get_algorithm("slot")
    assert alg.input_layout(plan) == SlotLayout.of(plan.packing, 4, scale_bits=30)
    assert alg.output_layout(plan).scale(P) == 2.0 ** 54 and alg.bound_point(plan) == (1, False, 54)
    mv = get_algorithm("matvec").plan(w, 4, 4, P, rescale=False, input_scale_bits=30, weight_scale_bits=24)
    assert MatvecPlan.from_dict(json.loads(mv.to_json())) == mv and mv.output_scale_bits == 54
    with pytest.raises(InputError, match="needs input_scale_bits and weight_scale_bits"):
        plan_conv(w, 4, 4, P, rescale=False)
    with pytest.raises(InputError, match="does not fit the 60-bit modulus at level 1"):
        plan_conv(w, 4, 4, P, rescale=False, input_scale_bits=40, weight_scale_bits=20)
    old = {k: v for k, v in json.loads(plan_conv(w, 4, 4, P).to_json()).items()
           if k not in ("rescale", "input_scale_bits", "weight_scale_bits")}  # a plan saved before the option
    assert ConvPlan.from_dict(old) == plan_conv(w, 4, 4, P)
    with pytest.raises(InputError, match="outside the chain"):
        plan_conv(w, 4, 4, P, rescale=False, input_scale_bits=30, weight_scale_bits=24, level=2)


def _network(name, hw, value_bound, mode="plain", choose=False):
    model = bn_model(name, 0)
    net = lower_model(model, (3, hw, hw))
    params = params_for_input(hw, hw)
    plan = plan_network(net, params, schedule="auto" if choose else "output-rotation", choose_algorithm=choose,
                        value_bound=value_bound)
    backend = make_backend(mode, params, seed=0) if mode != "plain" else PlainBackend(params)
    client = Client(backend)
    client.setup_keys(plan)
    return model, net, plan, client, Server(backend.public_view(), net, plan)


@pytest.mark.parametrize("name", ["resnet20", "resnet18"])
def test_networks_with_a_value_bound_run_their_slot_convs_at_the_last_level(name):
    model, net, plan, client, server = _network(name, 8, 8.0, choose=True)
    convs = [a for a in plan.actions if isinstance(a, ServerConv)]
    assert convs and all(not a.plan.rescale and a.plan.level == 1 for a in convs)  # slot and matvec alike
    plans = {a.dst: a for a in convs}
    for add in (a for a in plan.actions if isinstance(a, ServerAdd)):  # partners sum at one scale and level
        if add.a in plans and add.b in plans:
            pa, pb = plans[add.a], plans[add.b]
            la, lb = get_algorithm(pa.algorithm), get_algorithm(pb.algorithm)
            assert la.output_layout(pa.plan).placement == lb.output_layout(pb.plan).placement
    uploads = [a for a in plan.actions if isinstance(a, Encrypt) and isinstance(a.layout, SlotLayout)
               and a.layout.scale_bits is not None]
    assert uploads and all(a.level == 1 for a in uploads)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 8, 8))
    run = run_network(plan, client, server, x)
    ref = model.double()(torch.from_numpy(x)[None]).detach().numpy()[0]
    assert np.abs(run.logits - ref).max() < 1e-9  # the cleartext backend: exact
    assert all(r.counts == r.predicted for r in run.layers)
    assert plan.value_bound == 8.0


def test_a_bound_too_loose_for_some_convs_keeps_them_and_their_partners_at_level_0():
    """resnet18 at 8x8 with B = 300: some convs' outputs leave too few bits and stay at level 0 with their
    rescale; a residual partner of one of them follows it there (or auto drops the candidate that would
    not), so every add still sums two values at one place, level and scale; the run equals torch's."""
    model, net, plan, client, server = _network("resnet18", 8, 300.0, choose=True)
    convs = {a.dst: a for a in plan.actions if isinstance(a, ServerConv)}
    levels = {a.plan.level for a in convs.values()}
    assert levels == {0, 1}
    for add in (a for a in plan.actions if isinstance(a, ServerAdd)):
        if add.a in convs and add.b in convs:
            pa, pb = convs[add.a], convs[add.b]
            la, lb = get_algorithm(pa.algorithm), get_algorithm(pb.algorithm)
            assert (la.output_layout(pa.plan).placement, la.output_level(pa.plan)) == \
                (lb.output_layout(pb.plan).placement, lb.output_level(pb.plan))
    x = np.random.default_rng(0).uniform(-1, 1, (3, 8, 8))
    run = run_network(plan, client, server, x)
    assert np.abs(run.logits - model.double()(torch.from_numpy(x)[None]).detach().numpy()[0]).max() < 1e-9


def test_without_a_value_bound_the_plan_is_unchanged():
    _, _, plan, _, _ = _network("resnet20", 8, None)
    assert all(a.plan.rescale and a.plan.level == 0 for a in plan.actions if isinstance(a, ServerConv))


def test_an_input_beyond_the_bound_is_refused_before_it_is_encrypted():
    _, _, plan, client, server = _network("resnet20", 8, 1.0)
    x = np.full((3, 8, 8), 50.0)
    with pytest.raises(InputError, match="values may reach .* exceeds the plan's --value-bound"):
        run_network(plan, client, server, x)


def test_encrypted_resnet20_with_a_value_bound_agrees_with_torch():
    model, _, plan, client, server = _network("resnet20", 8, 8.0, mode="encrypted")
    x = np.random.default_rng(0).uniform(-1, 1, (3, 8, 8))
    run = run_network(plan, client, server, x)
    ref = model.double()(torch.from_numpy(x)[None]).detach().numpy()[0]
    assert np.abs(run.logits - ref).max() < 1e-2
    assert all(r.counts == r.predicted for r in run.layers)


def test_the_non_interactive_protocol_refuses_a_value_bound():
    net = lower_model(bn_model("small-cnn", 0), (3, 8, 8))
    with pytest.raises(InputError, match="hybrid protocol"):
        plan_network(net, params_for_input(8, 8), "non-interactive", value_bound=4.0)


def test_an_encrypted_network_with_a_value_bound_on_two_workers_counts_as_planned():
    """The forked workers touch each layer's plaintexts with an operand at its input's scale (at the last
    level a level-0 scale would overflow the one prime), and finish their outputs without a rescale."""
    from bench.harness.model import measure_model, prepare_model

    model = bn_model("resnet20", 3)
    shape = (3, 8, 8)
    x = np.random.default_rng(2).uniform(-1, 1, (1,) + shape)
    prep = prepare_model(model, shape, params_for_input(8, 8), "encrypted", schedule="auto", workers=2,
                         value_bound=8.0)
    try:
        rec = measure_model(prep, model, x)
    finally:
        prep.close()
    assert rec.workers == 2 and rec.counts_match_plan and rec.max_abs_error < 1e-2 and rec.value_bound == 8.0
    assert {layer["level"] for layer in rec.layers if layer["kind"] == "conv"} == {1}
