"""Whole networks under the coefficient algorithm (hybrid protocol): aligned residual adds,
coefficient uploads and refreshes, counts equal the plan's, logits equal PyTorch's."""

import numpy as np
import pytest
import torch

import models
from heconv.algorithms import get_algorithm
from heconv.algorithms.base import NetworkContext
from heconv.backends.plain import PlainBackend
from heconv.coeff import plan_coeff_conv
from heconv.coeff_plan import CoeffPlan
from heconv.errors import InputError
from heconv.frontend import conv_plans, lower_model
from heconv.geometry import coefficient_block_ids
from heconv.network import Client, Server, ServerAdd, ServerConv, plan_network, run_network
from heconv.params import ckks_params, params_for_input
from heconv.traffic import extracted_bytes

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
    return plan, client, server, run_network(plan, client, server, x), x


@pytest.mark.parametrize("name", ["resnet20", "resnet18"])
def test_network_matches_torch_with_exact_counts(name):
    model = _model(name)
    shape = (3, 8, 8)
    plan, client, server, run, x = _run(model, shape, params_for_input(8, 8))
    ref = model.double()(torch.from_numpy(x)[None]).detach().numpy()[0]
    assert np.abs(run.logits - ref).max() < 1e-9
    assert all(r.counts == r.predicted for r in run.layers)
    convs = [a for a in plan.actions if isinstance(a, ServerConv)]
    assert plan.algorithm == "coefficient" and all(isinstance(a.plan, CoeffPlan) for a in convs)
    assert sum(r.counts.rotations for r in run.layers if r.kind == "conv") == 0  # only the linear layer rotates
    assert run.ciphertexts_client_to_server > 0 and run.bytes_server_to_client > 0
    assert set(server.mask_seconds) == {a.name for a in convs}
    again = run_network(plan, client, server, x)  # a run's parts are its own, not the totals
    assert 0 < run.part_seconds["mask"] and 0 < again.part_seconds["mask"]
    assert run.part_seconds["mask"] + again.part_seconds["mask"] == pytest.approx(server.part_totals()["mask"])


def test_resnet18_shortcuts_share_the_output_layout():
    plan = plan_network(lower_model(_model("resnet18"), (3, 16, 16)), ckks_params(depth=1), algorithm="coefficient")
    layout = {a.dst: a.plan.chunking.output_layout for a in plan.actions if isinstance(a, ServerConv)}
    adds = [a for a in plan.actions if isinstance(a, ServerAdd) and a.a in layout and a.b in layout]
    assert len(adds) == 3  # the three 1x1 projection shortcuts
    assert all(layout[a.a] == layout[a.b] for a in adds)


def test_count_mode_large_model_and_chunkings():
    model = _model("resnet18")
    params = params_for_input(16, 16)
    plan, _, _, run, _ = _run(model, (3, 16, 16), params, mode="count")
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


class _Projection(torch.nn.Module):
    """One residual block with a 1x1 projection shortcut: the two convs a residual add sums
    (`stem` channels into the block, `width` out of it)."""

    def __init__(self, stem=4, width=8, seed=0, std=0.3):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.stem = torch.nn.Conv2d(3, stem, 3, padding=1)
        self.conv1 = torch.nn.Conv2d(stem, width, 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(width, width, 3, padding=1)
        self.proj = torch.nn.Conv2d(stem, width, 1, stride=2)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(width, 10)
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=g) * std

    def forward(self, x):
        x = torch.relu(self.stem(x))
        y = torch.relu(self.conv2(torch.relu(self.conv1(x))) + self.proj(x))
        return self.fc(torch.flatten(self.pool(y), 1))


def _pairs(plan):
    """(first planned, second planned) for each residual add of two convs."""
    convs = {a.dst: a for a in plan.actions if isinstance(a, ServerConv)}
    order = [a.name for a in plan.actions if isinstance(a, ServerConv)]
    out = []
    for add in (a for a in plan.actions if isinstance(a, ServerAdd) and a.a in convs and a.b in convs):
        a, b = sorted((convs[add.a], convs[add.b]), key=lambda c: order.index(c.name))
        out.append((a, b))
    return out


def test_projection_pairs_share_one_mask():
    """Only the sum of a block and its projection reaches the client, so the conv planned second leaves
    unmasked every output group the first masks: ResNet18's three pairs mask their sums once."""
    plan = plan_network(lower_model(_model("resnet18"), (3, 16, 16)), ckks_params(depth=1), algorithm="coefficient")
    pairs = _pairs(plan)
    assert len(pairs) == 3
    for a, b in pairs:
        assert a.plan.covered == () and b.plan.covered == tuple(g for g, k in enumerate(a.plan.blocks) if k)
        assert b.plan.predicted.encryptions == b.plan.n_out - b.plan.chunking.tiles * len(b.plan.covered)
    # a pruned first conv with an output group left empty masks nothing there: the second masks it;
    # outputs read elsewhere too (not sum-only) are masked on both
    w = np.random.default_rng(0).normal(size=(64, 64, 3, 3))
    first = plan_coeff_conv(w, 16, 16, ckks_params(depth=1))
    w[:first.chunking.group] = 0.0  # the first output group's channels
    first = plan_coeff_conv(w, 16, 16, ckks_params(depth=1))
    assert first.chunking.groups > 1 and first.blocks[0] == []
    alg = get_algorithm("coefficient")
    covered = alg.network_options(NetworkContext(3, first, (64, 64, 3, 3), True))["covered"]
    assert 0 not in covered and covered == tuple(range(1, first.chunking.groups))
    assert "covered" not in alg.network_options(NetworkContext(3, first, (64, 64, 3, 3), False))


def _watch(server, add):
    """Record, on `server`, which ciphertexts its backend re-randomises, for each output of the residual
    `add` whether exactly one operand was (one mask per sum), and every wire it sends."""
    fresh, once, wires, kept = set(), [], [], []
    rerandomize, step, send = server.backend.rerandomize, server.add, server.send

    def rerandomized(ct):
        fresh.add(id(ct))
        kept.append(ct)  # alive, so that no later ciphertext takes its id
        rerandomize(ct)

    def watched(action, x, y):
        if action is add:
            once.extend((id(u) in fresh) + (id(v) in fresh) == 1 for u, v in zip(x, y))
        return step(action, x, y)

    def sent(cts, reads=None):
        out = send(cts, reads)
        wires.extend(out)
        return out

    server.backend.rerandomize, server.add, server.send = rerandomized, watched, sent
    return once, wires


def test_encrypted_sum_of_a_pair_is_masked_once_and_decrypts():
    """SEAL: each output of the residual sum has exactly one re-randomised operand (the first conv's);
    every download is extracted, at its modelled bytes; the logits are PyTorch's; counts equal the plan's."""
    from heconv.backends.seal import SealBackend

    model = _Projection().eval()
    net = lower_model(model, (3, 8, 8))
    params = ckks_params(depth=1)
    plan = plan_network(net, params, algorithm="coefficient")
    (a, b), = _pairs(plan)
    assert b.plan.covered and not a.plan.covered
    backend = SealBackend(params, seed=0)
    client = Client(backend)
    client.setup_keys(plan)
    server = Server(backend.public_view(), net, plan)
    add = next(x for x in plan.actions if isinstance(x, ServerAdd) and x.a in (a.dst, b.dst))
    once, wires = _watch(server, add)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 8, 8))
    run = run_network(plan, client, server, x)
    ref = model.double()(torch.from_numpy(x)[None]).detach().numpy()[0]
    assert np.abs(run.logits - ref).max() < 1e-2
    assert all(r.counts == r.predicted for r in run.layers)
    assert len(once) == a.plan.n_out and all(once)
    coefficient = [w for w in wires if w.read is not None]
    assert coefficient and all(w.nbytes == len(w.payload) == extracted_bytes(params, 1, int(w.read.sum()))
                               for w in coefficient)
    assert len(coefficient) == 3  # the stem's, conv1's and the sum's; the logits come back whole (slots)


def test_a_plan_whose_covered_groups_lost_their_partner_is_refused():
    """`covered` is sound only beside its partner: a network plan whose partner no longer masks (edited,
    or loaded from elsewhere) is refused by the server, before any ciphertext exists."""
    import dataclasses

    model = _Projection().eval()
    net = lower_model(model, (3, 8, 8))
    params = ckks_params(depth=1)
    plan = plan_network(net, params, algorithm="coefficient")
    (a, b), = _pairs(plan)
    bare = dataclasses.replace(a, plan=dataclasses.replace(a.plan, mask=False))
    edited = dataclasses.replace(plan, actions=[bare if x is a else x for x in plan.actions])
    backend = PlainBackend(params)
    with pytest.raises(InputError, match=r"layer proj: output groups \[0\] are left to a residual partner's mask"):
        Server(backend.public_view(), net, edited)
    Server(backend.public_view(), net, plan)  # the planner's own passes


def test_every_download_of_a_pruned_pair_is_masked_where_unread():
    """SEAL, a pair whose first conv has an empty (pruned) output group: that group's sum is re-randomised
    by the second conv, every other by the first, each exactly once."""
    from heconv.backends.seal import SealBackend

    model = _Projection(stem=16, width=64, seed=1, std=0.1).eval()  # several output groups on 8x8 maps
    params = ckks_params(depth=1)
    first = plan_network(lower_model(model, (3, 16, 16)), params, algorithm="coefficient")
    (a, _), = _pairs(first)
    group = a.plan.chunking.group
    with torch.no_grad():
        model.conv2.weight[:group] = 0.0  # conv2's first output group: empty, so proj must mask it
    net = lower_model(model, (3, 16, 16))
    plan = plan_network(net, params, algorithm="coefficient")
    (a, b), = _pairs(plan)
    assert a.plan.chunking.groups > 1 and a.plan.blocks[0] == [] and 0 not in b.plan.covered and b.plan.covered
    backend = SealBackend(params, seed=1)
    client = Client(backend)
    client.setup_keys(plan)
    server = Server(backend.public_view(), net, plan)
    add = next(x for x in plan.actions if isinstance(x, ServerAdd) and x.a in (a.dst, b.dst))
    once, _ = _watch(server, add)
    run_network(plan, client, server, np.random.default_rng(0).uniform(-1, 1, (3, 16, 16)))
    assert len(once) == a.plan.n_out and all(once), [i for i, ok in enumerate(once) if not ok]
