"""Whole networks (docs/design.md, "Whole networks and the protocol"): IR -> plan -> run.

    net = heconv.frontend.lower_model(model, (C, H, W))   # torch-free IR
    plan = plan_network(net, params, "hybrid")            # actions; touches no ciphertext
    client, server = Client(backend), Server(backend.public_view(), net, plan)
    client.setup_keys(plan)
    run = run_network(plan, client, server, image)        # executes the actions

A planner per protocol (`PLANNERS`): "hybrid" (the server runs the linear layers, the
client refreshes at each ReLU) and "non-interactive" (one modulus chain, square
activations).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..algorithms import DEFAULT_ALGORITHM, algorithm_names, get_algorithm
from ..errors import InputError
from ..parallel_plan import check_workers
from ..params import CKKSParams
from ..traffic import Objective
from .actions import (
    Action,
    ClientOp,
    Encrypt,
    LayerReport,
    NetworkPlan,
    Refresh,
    ServerAdd,
    ServerConv,
    ServerLinear,
    ServerPool,
    ServerSquare,
    check_placements,
)
from .hybrid import plan_hybrid
from .ir import ActOp, AddOp, ConvOp, LinearOp, Network, Op, PadShortcutOp, PoolOp, levels_needed
from .noninteractive import plan_non_interactive
from .parties import Client, Server
from .runner import LayerRun, NetworkRun, run_network

PLANNERS = {"hybrid": plan_hybrid, "non-interactive": plan_non_interactive}
PROTOCOLS = tuple(PLANNERS)


def plan_network(net: Network, params: CKKSParams, protocol: str = "hybrid",
                 schedule: str | Mapping[str, str] = "output-rotation", workers: int = 1,
                 algorithm: str = DEFAULT_ALGORITHM, choose_algorithm: bool = False,
                 objective: Objective | None = None, value_bound: float | None = None) -> NetworkPlan:
    """The protocol's plan of `net` (one of PROTOCOLS). Touches no ciphertext.

    `schedule` is every conv's rotation schedule (heconv.schedule), for an algorithm that takes one:
    "output-rotation", "input-rotation", "bsgs:B" or "auto" (a baby step per layer, from its
    weights); or a mapping from conv name to schedule (convs left out: output-rotation). `workers`:
    the processes each conv may run on (heconv.parallel_plan; each uses at most its (bo, g) groups),
    where the algorithm can split a conv (others run in-process); the layers' predicted counts are then
    the parallel runs'. `algorithm`: every conv's, a name in heconv.algorithms; it names the protocols
    it runs in (`ConvAlgorithm.protocols`). `choose_algorithm`: a conv under "auto" runs by whichever
    registered algorithm that keeps the protocol's traffic predicts the lowest time (heconv.algorithms.choice;
    hybrid protocol: the non-interactive one runs the slot engine only). `objective`: what a traffic-aware
    algorithm's plan minimises (the coefficient chunking, heconv.traffic.Objective; default end to end at the
    default bandwidth with seeded uploads). The slot schedules never differ in traffic (heconv.schedule).
    `value_bound` (hybrid protocol): the largest |value| the client uploads; a slot conv whose output then
    fits runs at the chain's last level without a rescale (heconv.network.hybrid.plan_hybrid).
    """
    planner = PLANNERS.get(protocol)
    if planner is None:
        raise InputError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    check_workers(workers)
    alg = get_algorithm(algorithm)
    if protocol not in alg.protocols:
        raise InputError(f"the {algorithm} algorithm runs in the {' and '.join(alg.protocols)} protocol only, "
                         f"not {protocol!r}")
    if value_bound is not None and not choose_algorithm and not alg.last_level:
        raise InputError(f"a value bound moves convs to the chain's last level, which the {algorithm} algorithm "
                         f"never uses (every conv at level 0); leave it out, or choose an algorithm that can "
                         f"({', '.join(n for n in algorithm_names() if get_algorithm(n).last_level)})")
    plan = planner(net, params, schedule, algorithm, choose_algorithm, workers, objective, value_bound)
    return plan if workers == 1 else parallelize(plan, workers)


def parallelize(plan: NetworkPlan, workers: int) -> NetworkPlan:
    """The plan with every conv whose algorithm can split it over up to `workers` processes, predictions
    updated (the others stay in-process)."""
    actions, split = [], {}
    for a in plan.actions:
        if isinstance(a, ServerConv):
            par = get_algorithm(a.algorithm).split(a.plan, workers)
            if par is not None:
                split[a.name] = par
                a = dataclasses.replace(a, parallel=par)
        actions.append(a)
    layers = [dataclasses.replace(r, predicted=split[r.name].predicted, workers=split[r.name].workers)
              if r.name in split else r for r in plan.layers]
    most = max((s.workers for s in split.values()), default=1)
    return dataclasses.replace(plan, actions=actions, layers=layers, workers=most)


__all__ = [
    "Action", "ClientOp", "Encrypt", "LayerReport", "NetworkPlan", "Refresh", "ServerAdd", "ServerConv",
    "ServerLinear", "ServerPool", "ServerSquare", "ActOp", "AddOp", "ConvOp", "LinearOp", "Network", "Op",
    "PadShortcutOp", "PoolOp", "levels_needed", "Client", "Server", "LayerRun", "NetworkRun", "run_network",
    "PLANNERS", "PROTOCOLS", "plan_network", "parallelize", "plan_hybrid", "plan_non_interactive",
    "check_placements",
]
