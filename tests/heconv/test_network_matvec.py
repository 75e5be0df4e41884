"""Whole networks under the matvec algorithm (hybrid protocol): strided convs multiplexed at their own
resolution and unpacked by the refresh, residual adds of conv outputs and of uploads in a conv's output
layout, counts equal the plan's, logits equal PyTorch's."""

import numpy as np
import pytest
import torch
from torch import nn

import models
from heconv.algorithms import ComplexLayout, MultiplexedLayout, SlotLayout, get_algorithm
from heconv.backends import make_backend
from heconv.backends.plain import PlainBackend
from heconv.errors import InputError
from heconv.frontend import PadShortcut, lower_model
from heconv.network import Client, Encrypt, Refresh, Server, ServerAdd, ServerConv, plan_network, run_network
from heconv.params import ckks_params, params_for_input

from .helpers import bn_model


def _model(name, seed=0):
    return bn_model(name, seed)


def _run(model, shape, params, backend=None):
    net = lower_model(model, shape)
    plan = plan_network(net, params, algorithm="matvec")
    backend = backend or PlainBackend(params)
    client = Client(backend)
    client.setup_keys(plan)
    server = Server(backend.public_view(), net, plan)
    x = np.random.default_rng(0).uniform(-1, 1, shape)
    ref = model.double()(torch.from_numpy(x)[None]).detach().numpy()[0]
    return plan, run_network(plan, client, server, x), ref


@pytest.mark.parametrize("name,hw", [("small-cnn", 7), ("resnet20", 8), ("resnet18", 8)])
def test_network_matches_torch_with_exact_counts(name, hw):
    plan, run, ref = _run(_model(name), (3, hw, hw), params_for_input(hw, hw))
    assert np.abs(run.logits - ref).max() < 1e-9
    assert all(r.counts == r.predicted for r in run.layers)
    convs = [a for a in plan.actions if isinstance(a, ServerConv)]
    assert plan.algorithm == "matvec" and convs and all(a.algorithm == "matvec" for a in convs)
    assert all(r.schedule.startswith("matvec bsgs:") for r in plan.layers if r.kind == "conv")


def test_strided_convs_are_multiplexed_and_refreshed_at_their_resolution():
    """resnet18 at 8x8: its stride-2 3x3 convs write a quarter of the ciphertexts a full-resolution output
    would take (or complex pairs of them, half again), and the refresh reads them back at 4x4 (then 2x2, 1x1)."""
    plan = plan_network(lower_model(_model("resnet18"), (3, 8, 8)), params_for_input(8, 8), algorithm="matvec")
    refreshes = {a.src: a for a in plan.actions if isinstance(a, Refresh)}
    strided = [a for a in plan.actions if isinstance(a, ServerConv) and a.plan.spec.stride == 2]
    assert len(strided) == 3
    for a in strided:
        layout = refreshes[a.dst].layout
        inner = layout.inner if isinstance(layout, ComplexLayout) else layout
        assert isinstance(inner, MultiplexedLayout) and inner.geometry.complex_pack is False
        assert layout.shape == (a.plan.spec.c_out, -(-a.plan.spec.height // 2), -(-a.plan.spec.width // 2))
        assert layout.ciphertexts == a.plan.geometry.n_out
    # the 1x1 projection shortcuts (the client subsamples) and the second conv of each block share a layout
    adds = [a for a in plan.actions if isinstance(a, ServerAdd)]
    convs = {a.dst for a in plan.actions if isinstance(a, ServerConv)}
    assert sum(a.a in convs and a.b in convs for a in adds) == 3


class _StridedPlusShortcut(nn.Module):
    """A strided conv's (multiplexed) output plus an option-A shortcut the client uploads in its layout."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.short = PadShortcut(3, 6, 2)
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(6, 4)

    def forward(self, x):
        x = torch.relu(x)
        y = torch.relu(self.conv(x) + self.short(x))
        return self.fc(torch.flatten(self.pool(y), 1))


def test_a_multiplexed_output_takes_an_upload_in_its_layout():
    torch.manual_seed(1)
    plan, run, ref = _run(_StridedPlusShortcut().eval(), (3, 8, 8), params_for_input(8, 8))
    assert np.abs(run.logits - ref).max() < 1e-9 and all(r.counts == r.predicted for r in run.layers)
    uploads = [a for a in plan.actions if isinstance(a, Encrypt) and isinstance(a.layout, MultiplexedLayout)]
    assert len(uploads) == 1 and uploads[0].layout.shape == (6, 4, 4)


def test_stride_one_outputs_are_in_gazelle_packing():
    plan = plan_network(lower_model(_model("small-cnn"), (3, 8, 8)), params_for_input(8, 8), algorithm="matvec")
    refreshed = [a.layout for a in plan.actions if isinstance(a, Refresh) and a.layout is not None]
    assert refreshed and all(isinstance(lay, SlotLayout) for lay in refreshed)


def test_matvec_needs_the_hybrid_protocol():
    net = lower_model(models.build_model("small-cnn-square", 1, 10).eval(), (1, 8, 8))
    with pytest.raises(InputError, match="matvec algorithm runs in the hybrid protocol only"):
        plan_network(net, ckks_params(depth=4, poly_modulus_degree=16384), "non-interactive", algorithm="matvec")


def test_residual_partners_do_not_fold():
    """A dense and a one-weight conv summed by an add: each alone would choose its own number of frames
    (the dense one folds), which would place the sum's operands apart; beside a partner neither folds."""
    from heconv.network.ir import ActOp, AddOp, ConvOp, Network

    rng = np.random.default_rng(0)
    wb = np.zeros((8, 64, 1, 1))
    wb[0, 0] = 1.0
    wc = rng.normal(size=(4, 8, 3, 3))
    net = Network((64, 8, 8), [ConvOp("a", "x", "ya", rng.normal(size=(8, 64, 3, 3)), None),
                               ConvOp("b", "x", "yb", wb, None), AddOp("add", "ya", "yb", "s"),
                               ActOp("r", "s", "t", "relu"), ConvOp("c", "t", "out", wc, None)], "out")
    plan = plan_network(net, params_for_input(8, 8), algorithm="matvec")
    convs = {a.name: a.plan for a in plan.actions if isinstance(a, ServerConv)}
    assert convs["a"].geometry.fold == convs["b"].geometry.fold == 1 and convs["c"].geometry.fold > 1
    assert get_algorithm("matvec").output_layout(convs["a"]) == get_algorithm("matvec").output_layout(convs["b"])


def test_matvec_splits_over_workers_with_exact_counts():
    from bench.harness.model import measure_model, prepare_model

    model, shape = _model("resnet20"), (3, 8, 8)
    params = params_for_input(8, 8)
    plan = plan_network(lower_model(model, shape), params, workers=2, algorithm="matvec")
    convs = [a for a in plan.actions if isinstance(a, ServerConv)]
    assert plan.workers == 2 and all(a.parallel is not None and a.parallel.algorithm == "matvec" for a in convs)
    x = np.random.default_rng(2).uniform(-1, 1, (1,) + shape)
    one = measure_model(prepare_model(model, shape, params, "plain", algorithm="matvec"), model, x)
    prep = prepare_model(model, shape, params, "plain", algorithm="matvec", workers=2)
    try:
        two = measure_model(prep, model, x)
    finally:
        prep.close()
    assert two.counts_match_plan and one.counts_match_plan and two.predictions == one.predictions
    assert two.max_abs_error < 1e-9 and two.pmuls == one.pmuls and two.rotations >= one.rotations


@pytest.mark.slow
def test_encrypted_small_cnn_under_matvec():
    params = params_for_input(8, 8)
    plan, run, ref = _run(_model("small-cnn"), (3, 8, 8), params, make_backend("encrypted", params, 0))
    assert np.abs(run.logits - ref).max() < 1e-3
    assert all(r.counts == r.predicted for r in run.layers)
    assert sum(r.counts.rotations for r in run.layers) > 0
