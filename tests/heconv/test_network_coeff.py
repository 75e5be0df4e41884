"""Whole networks under the coefficient algorithm (hybrid protocol): aligned residual adds,
coefficient uploads and refreshes, counts equal the plan's, logits equal PyTorch's."""

import numpy as np
import pytest
import torch

import models
from heconv.backends.plain import PlainBackend
from heconv.coeff_plan import CoeffPlan
from heconv.frontend import conv_plans, lower_model
from heconv.geometry import coefficient_block_ids
from heconv.network import Client, Server, ServerAdd, ServerConv, plan_network, run_network
from heconv.params import ckks_params, params_for_input

from .helpers import bn_model


def _model(name, seed=0):
    return bn_model(name, seed)


def _run(model, shape, params, mode="plain"):
    net = lower_model(model, shape)
    plan = plan_network(net, params, algorithm="coefficient")
    backend = PlainBackend(params, track_values=mode == "plain")
    client = Client(backend)
    client.setup_keys(plan)
    server = Server(backend.public_view(), net, plan)
    x = np.random.default_rng(0).uniform(-1, 1, shape)
    return plan, server, run_network(plan, client, server, x), x


@pytest.mark.parametrize("name", ["resnet20", "resnet18"])
def test_network_matches_torch_with_exact_counts(name):
    model = _model(name)
    shape = (3, 8, 8)
    plan, server, run, x = _run(model, shape, params_for_input(8, 8))
    ref = model.double()(torch.from_numpy(x)[None]).detach().numpy()[0]
    assert np.abs(run.logits - ref).max() < 1e-9
    assert all(r.counts == r.predicted for r in run.layers)
    convs = [a for a in plan.actions if isinstance(a, ServerConv)]
    assert plan.algorithm == "coefficient" and all(isinstance(a.plan, CoeffPlan) for a in convs)
    assert sum(r.counts.rotations for r in run.layers if r.kind == "conv") == 0  # only the linear layer rotates
    assert run.ciphertexts_client_to_server > 0 and run.bytes_server_to_client > 0
    assert set(server.mask_seconds) == {a.name for a in convs}


def test_resnet18_shortcuts_share_the_output_layout():
    plan = plan_network(lower_model(_model("resnet18"), (3, 16, 16)), ckks_params(depth=1), algorithm="coefficient")
    layout = {a.dst: a.plan.chunking.output_layout for a in plan.actions if isinstance(a, ServerConv)}
    adds = [a for a in plan.actions if isinstance(a, ServerAdd) and a.a in layout and a.b in layout]
    assert len(adds) == 3  # the three 1x1 projection shortcuts
    assert all(layout[a.a] == layout[a.b] for a in adds)


def test_count_mode_large_model_and_chunkings():
    model = _model("resnet18")
    params = params_for_input(16, 16)
    plan, _, run, _ = _run(model, (3, 16, 16), params, mode="count")
    assert all(r.counts == r.predicted for r in run.layers)
    chunkings = {path: p.chunking for path, p in conv_plans(model, (3, 16, 16), params, "coefficient").items()}
    conv = dict(model.named_modules())["layers.0.0.conv1"]
    ids, n = coefficient_block_ids(tuple(conv.weight.shape), chunkings["layers.0.0.conv1"])
    assert ids.shape == tuple(conv.weight.shape) and ids.max() == n - 1


def test_coefficient_needs_the_hybrid_protocol():
    net = lower_model(models.build_model("small-cnn-square", 1, 10).eval(), (1, 8, 8))
    with pytest.raises(ValueError, match="hybrid protocol only"):
        plan_network(net, ckks_params(depth=4, poly_modulus_degree=16384), "non-interactive", algorithm="coefficient")
    with pytest.raises(ValueError, match="unknown conv algorithm"):
        plan_network(net, ckks_params(depth=1), algorithm="cheetah")
