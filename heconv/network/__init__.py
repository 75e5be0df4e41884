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

from ..errors import InputError
from ..parallel_plan import check_workers, plan_parallel
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
                 algorithm: str = "slot", objective: Objective | None = None) -> NetworkPlan:
    """The protocol's plan of `net` (one of PROTOCOLS). Touches no ciphertext.

    `schedule` is every conv's rotation schedule (heconv.schedule): "output-rotation",
    "input-rotation", "bsgs:B" or "auto" (a baby step per layer, from its weights); or a
    mapping from conv name to schedule (convs left out: output-rotation). `workers`: the
    processes each conv may run on (heconv.parallel_plan; each uses at most its (bo, g)
    groups); the layers' predicted counts are then the parallel runs'. `algorithm`: every conv's,
    "slot" or "coefficient" (heconv.coeff; hybrid protocol only, always in-process). `objective`:
    what the coefficient chunking minimises (heconv.traffic.Objective; default end to end at the
    default bandwidth with seeded uploads). The slot schedules never differ in traffic (heconv.schedule).
    """
    planner = PLANNERS.get(protocol)
    if planner is None:
        raise InputError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    check_workers(workers)
    if algorithm != "slot":
        if protocol != "hybrid":
            raise InputError(f"the {algorithm} algorithm runs in the hybrid protocol only, not {protocol!r}")
        return plan_hybrid(net, params, schedule, algorithm, objective)
    plan = planner(net, params, schedule)
    return plan if workers == 1 else parallelize(plan, workers)


def parallelize(plan: NetworkPlan, workers: int) -> NetworkPlan:
    """The plan with every conv split over up to `workers` processes, predictions updated."""
    actions, split = [], {}
    for a in plan.actions:
        if isinstance(a, ServerConv):
            split[a.name] = plan_parallel(a.plan, workers)
            a = dataclasses.replace(a, parallel=split[a.name])
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
]
