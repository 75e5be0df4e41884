"""Whole networks through the hybrid protocol."""

import numpy as np
import pytest
import torch

import models
from bench.harness.model import measure_model, prepare_model
from heconv.backends.plain import PlainBackend
from heconv.frontend import lower_model
from heconv.network import Client, ConvOp, Refresh, Server, ServerConv, plan_network, run_network
from heconv.params import ckks_params, params_for_input
from heconv.schedule import dense_rotations

from .helpers import expected_rotations, zero_groups


def _model(name, seed=0, classes=10, in_channels=3):
    torch.manual_seed(seed)
    m = models.build_model(name, in_channels, classes)
    for mod in m.modules():  # non-trivial BatchNorm statistics, so folding is exercised
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)
    return m.eval()


def _count_run(net, params):
    """Run the network in the counting backend; return (plan, run)."""
    plan = plan_network(net, params)
    backend = PlainBackend(params, track_values=False)
    client = Client(backend)
    client.setup_keys(plan)
    server = Server(backend.public_view(), net, plan, stream=True)
    return plan, run_network(plan, client, server, np.zeros(net.input_shape))


@pytest.mark.parametrize("name, size", [("resnet18", 32), ("resnet50", 32), ("resnet18", 64)])
@pytest.mark.parametrize("pruned", [False, True], ids=["dense", "zero-groups"])
def test_counts_equal_cost_model_per_layer(name, size, pruned):
    params = ckks_params(depth=1)
    net = lower_model(_model(name), (3, size, size))
    if pruned:
        rng = np.random.default_rng(5)
        geometry = {a.name: a.plan.packing for a in plan_network(net, params).actions if isinstance(a, ServerConv)}
        for op in net.ops:
            if isinstance(op, ConvOp):
                op.weight = zero_groups(op.weight, geometry[op.name].c_n, rng, 0.5, 0.3, 0.2)
    plan, run = _count_run(net, params)
    convs = {a.name: a.plan for a in plan.actions if isinstance(a, ServerConv)}
    ops = {op.name: op for op in net.ops if isinstance(op, ConvOp)}
    assert len(run.layers) == len(plan.layers)
    for layer in run.layers:
        assert layer.counts == layer.predicted, layer.name
        assert layer.counts.key_switches == layer.counts.rotations
        if layer.kind == "conv":
            cp = convs[layer.name]
            independent = expected_rotations(ops[layer.name].weight, cp.packing.c_n, cp.spec.height)
            assert layer.counts.rotations == independent, layer.name
            if not pruned:
                assert layer.counts.rotations == dense_rotations(cp.packing, cp.spec.kernel)
    assert run.counts.rotations == plan.predicted.rotations


def test_dense_resnet18_rotation_total_at_16():
    """Dense ResNet18 at 16x16 under output-rotation: about 5,000 rotations."""
    params = ckks_params(depth=1)
    plan = plan_network(lower_model(_model("resnet18"), (3, 16, 16)), params)
    assert 4500 < plan.predicted.rotations < 5500
    summary = plan.summary()
    # Stem 3->64 on 16x16: P = 256, c_n = 16, n_in = 1, n_out = 4.
    stem = summary[0]
    assert (stem["layer"], stem["kind"]) == ("conv1", "conv")
    assert (stem["rotations"], stem["pmuls"], stem["galois_keys"]) == (1 * 8 + 4 * 15, 1 * 4 * 16 * 9, 8 + 15)


@pytest.mark.parametrize("name, size", [("small-cnn", 8), ("resnet20", 8)])
def test_encrypted_logits_match_torch(name, size):
    model = _model(name, in_channels=1 if name == "small-cnn" else 3)
    shape = (model.conv1.in_channels, size, size)
    prep = prepare_model(model, shape, params_for_input(*shape[1:]), mode="encrypted")
    images = np.random.default_rng(0).uniform(-1, 1, (2,) + shape)
    r = measure_model(prep, model, images).to_dict()
    assert r["predictions"] == r["reference_predictions"]
    assert r["top1_agreement"] == 1.0 and r["max_abs_error"] < 1e-2
    assert r["counts_match_plan"] and r["rotations"] == r["predicted_rotations"] == r["key_switches"]
    assert r["bytes_client_to_server"] > 0 and r["bytes_server_to_client"] > 0 and r["galois_key_bytes"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("size", [16, 32])
def test_encrypted_resnet20_larger_inputs(size):
    model = _model("resnet20")
    shape = (3, size, size)
    prep = prepare_model(model, shape, params_for_input(*shape[1:]), mode="encrypted", stream=True)
    r = measure_model(prep, model, np.random.default_rng(1).uniform(-1, 1, (2,) + shape)).to_dict()
    assert r["predictions"] == r["reference_predictions"] and r["max_abs_error"] < 1e-2


def test_server_cannot_decrypt():
    model = _model("small-cnn", in_channels=1)
    shape = (1, 8, 8)
    prep = prepare_model(model, shape, params_for_input(*shape[1:]), mode="encrypted")
    assert prep.client.backend.has_secret_key and not prep.server.backend.has_secret_key
    ct = prep.client.backend.encrypt(np.zeros(prep.client.backend.slots))
    with pytest.raises(PermissionError, match="no secret key"):
        prep.server.backend.decrypt(ct)
    with pytest.raises(PermissionError):
        prep.server.backend.generate_galois_keys([1])


def test_plain_mode_matches_torch_exactly():
    model = _model("resnet20", seed=3)
    shape = (3, 16, 16)
    prep = prepare_model(model, shape, params_for_input(*shape[1:]), mode="plain")
    r = measure_model(prep, model, np.random.default_rng(2).uniform(-1, 1, (1,) + shape)).to_dict()
    assert r["max_abs_error"] < 1e-9 and r["counts_match_plan"]


def test_stream_and_resident_give_same_counts():
    model = _model("small-cnn", in_channels=1)
    shape = (1, 8, 8)
    x = np.random.default_rng(0).uniform(-1, 1, (1,) + shape)
    params = params_for_input(*shape[1:])
    a = measure_model(prepare_model(model, shape, params, "plain", stream=False), model, x).to_dict()
    b = measure_model(prepare_model(model, shape, params, "plain", stream=True), model, x).to_dict()
    assert [layer["rotations"] for layer in a["layers"]] == [layer["rotations"] for layer in b["layers"]]
    assert a["predictions"] == b["predictions"]


def test_protocol_errors():
    from heconv.network import ActOp, AddOp, Network

    params = ckks_params(depth=1)
    conv = ConvOp("c", "x", "y", np.ones((4, 3, 3, 3)), None)
    bad = Network((3, 8, 8), [conv, ConvOp("c2", "y", "z", np.ones((4, 4, 3, 3)), None)], "z")
    with pytest.raises(ValueError, match="layer c2: a convolution must read a refreshed value"):
        plan_network(bad, params)
    missing = Network((3, 8, 8), [AddOp("a", "x", "nowhere", "y")], "y")
    with pytest.raises(ValueError, match="layer a: input 'nowhere' is not produced"):
        plan_network(missing, params)
    square = Network((3, 8, 8), [conv, ActOp("sq", "y", "z", "square")], "z")
    with pytest.raises(ValueError, match="layer sq: activation 'square' needs the non-interactive mode"):
        plan_network(square, params)


def test_non_interactive_small_cnn_encrypted():
    model = _model("small-cnn-square", in_channels=1)
    shape = (1, 8, 8)
    prep = prepare_model(model, shape, mode="encrypted", protocol="non-interactive")
    assert prep.plan.params.poly_modulus_degree == 16384 and prep.plan.params.depth == 5
    assert not any(isinstance(a, Refresh) and a.name != "output" for a in prep.plan.actions)
    r = measure_model(prep, model, np.random.default_rng(4).uniform(-1, 1, (2,) + shape)).to_dict()
    assert r["predictions"] == r["reference_predictions"] and r["max_abs_error"] < 1e-2
    assert r["counts_match_plan"] and r["cmuls"] == 2 and r["client_s"] >= 0
    kinds = [layer["kind"] for layer in r["layers"]]
    assert kinds == ["conv", "square", "conv", "square", "pool", "linear"]
    assert [layer["level"] for layer in r["layers"]] == [0, 1, 2, 3, 4, 4]
    # Pooling over P = 64 slots: log2(64) rotate-and-sum steps.
    assert r["layers"][4]["rotations"] == 6


def test_too_deep_fails_before_encryption():
    from heconv.network import levels_needed

    model = _model("small-cnn-square", in_channels=1)
    net = lower_model(model, (1, 8, 8))
    assert levels_needed(net) == 5
    with pytest.raises(ValueError, match=r"needs 5 multiplicative levels.*has 2"):
        plan_network(net, ckks_params(depth=2), "non-interactive")
    with pytest.raises(ValueError, match=r"needs 5 multiplicative levels, but N=8192 holds at most 2"):
        prepare_model(model, (1, 8, 8), mode="encrypted", protocol="non-interactive", poly_modulus_degree=8192)


def test_non_interactive_refuses_relu_and_strides():
    params = ckks_params(depth=7)
    with pytest.raises(ValueError, match="'relu' cannot run without a refresh"):
        plan_network(lower_model(_model("small-cnn", in_channels=1), (1, 8, 8)), params, "non-interactive")
    strided = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, 2, 1), models.Square(), torch.nn.AdaptiveAvgPool2d(1),
                                  torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    with pytest.raises(ValueError, match="stride-1 convolutions"):
        plan_network(lower_model(strided, (1, 8, 8)), params, "non-interactive")
    with pytest.raises(ValueError, match="needs 20 multiplicative levels.*use the hybrid protocol"):
        plan_network(lower_model(_model("resnet20"), (3, 8, 8)), ckks_params(depth=19), "non-interactive")
