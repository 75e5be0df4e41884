"""`--schedule auto` across algorithms (heconv.algorithms.choice): per conv, the registered algorithm of
the lowest predicted time among those that keep the protocol's traffic; the plan says which and why."""

import numpy as np
import pytest
import torch

import models
from heconv.algorithms import ALGORITHMS, get_algorithm
from heconv.algorithms.choice import auto_algorithms, predicted_seconds
from heconv.backends.plain import PlainBackend
from heconv.frontend import lower_model
from heconv.network import Client, Server, ServerConv, plan_network, run_network
from heconv.params import params_for_input


def _net(name, hw, seed=0):
    torch.manual_seed(seed)
    model = models.build_model(name, 3, 10).eval()
    return model, lower_model(model, (3, hw, hw))


def test_the_candidates_keep_the_traffic():
    names = auto_algorithms(ALGORITHMS, "hybrid")
    assert len(names) >= 2 and all(not get_algorithm(n).changes_traffic for n in names)
    assert any(a.changes_traffic for a in ALGORITHMS.values())  # the coefficient algorithm is left out
    assert auto_algorithms(ALGORITHMS, "non-interactive") == [n for n in names if "non-interactive"
                                                               in get_algorithm(n).protocols]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("bound", [None, 16.0])
def test_each_conv_runs_by_the_lowest_predicted_time(workers, bound):
    """At level 0 (no value bound) matvec wins every conv of ResNet-18 at 8x8 (complex packing halves its
    terms); at the last level (a value bound of 16) the slot engine keeps some, by ties it wins."""
    _, net = _net("resnet18", 8)
    params = params_for_input(8, 8)
    plan = plan_network(net, params, schedule="auto", workers=workers, choose_algorithm=True, value_bound=bound)
    alone = {n: {a.name: a.plan for a in plan_network(net, params, schedule="auto", algorithm=n,
                                                      value_bound=bound).actions
                 if isinstance(a, ServerConv)} for n in auto_algorithms(ALGORITHMS, "hybrid")}
    convs = [a for a in plan.actions if isinstance(a, ServerConv)]
    reports = {r.name: r for r in plan.layers}
    for a in convs:
        times = {n: predicted_seconds(get_algorithm(n), plans[a.name], workers) for n, plans in alone.items()}
        best = min(times.values())
        assert times[a.algorithm] == best and a.algorithm == next(n for n, t in times.items() if t == best)
        r = reports[a.name]
        assert r.algorithm == a.algorithm and r.reason.startswith(f"auto: {r.schedule} ({a.algorithm})")
    chosen = {a.algorithm for a in convs}
    assert chosen == ({"matvec"} if bound is None else {"slot", "matvec"})


def test_without_auto_nothing_is_chosen():
    _, net = _net("resnet20", 8)
    plan = plan_network(net, params_for_input(8, 8), schedule="output-rotation", choose_algorithm=True)
    convs = [r for r in plan.layers if r.kind == "conv"]
    assert {r.algorithm for r in convs} == {plan.algorithm} and all(r.reason is None for r in convs)


def _matches_torch(model, net, plan, params, seed):
    """Run the plan in the plain backend on a random input: torch's logits, every count as predicted."""
    backend = PlainBackend(params)
    client = Client(backend)
    client.setup_keys(plan)
    x = np.random.default_rng(seed).uniform(-1, 1, (3, 8, 8))
    run = run_network(plan, client, Server(backend.public_view(), net, plan), x)
    ref = model.double()(torch.from_numpy(x)[None]).detach().numpy()[0]
    assert np.abs(run.logits - ref).max() < 1e-9 and all(r.counts == r.predicted for r in run.layers)


def test_a_mixed_network_matches_torch_with_exact_counts():
    """Convs of both algorithms (at the last level: a value bound of 16), residual adds between them, in the
    plain backend."""
    model, net = _net("resnet18", 8)
    params = params_for_input(8, 8)
    plan = plan_network(net, params, schedule="auto", choose_algorithm=True, value_bound=16.0)
    assert len({a.algorithm for a in plan.actions if isinstance(a, ServerConv)}) == 2
    _matches_torch(model, net, plan, params, seed=0)


def test_a_network_with_complex_packing_matches_torch_with_exact_counts():
    """At level 0 matvec packs some convs complex (two real blocks per ciphertext), beside real ones and
    identity shortcuts the client uploads in a complex output layout: torch's logits, every count."""
    from heconv.algorithms import ComplexLayout

    model, net = _net("resnet18", 8)
    params = params_for_input(8, 8)
    plan = plan_network(net, params, schedule="auto", choose_algorithm=True)
    convs = [a for a in plan.actions if isinstance(a, ServerConv)]
    packed = [a for a in convs if a.plan.geometry.complex_pack]
    assert packed and len(packed) < len(convs)
    assert all(isinstance(get_algorithm(a.algorithm).output_layout(a.plan), ComplexLayout) for a in packed)
    _matches_torch(model, net, plan, params, seed=1)
