"""Planner for the non-interactive mode: the whole network under encryption in one
modulus chain, square activations, rotate-and-sum pooling. Touches no ciphertext.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..algorithms import DEFAULT_ALGORITHM
from ..algorithms.layout import SlotLayout
from ..basics import OpCounts
from ..conv import plan_conv
from ..errors import InputError
from ..geometry import packing_geometry
from ..linear import plan_linear
from ..params import CKKSParams, max_secure_depth
from ..schedule import check_network_schedule, layer_schedule
from ..traffic import Objective
from .actions import (
    Action,
    Encrypt,
    LayerReport,
    NetworkPlan,
    Refresh,
    ServerConv,
    ServerLinear,
    ServerPool,
    ServerSquare,
    galois_steps,
)
from .ir import ActOp, AddOp, ConvOp, LinearOp, Network, PoolOp, levels_needed


def plan_non_interactive(net: Network, params: CKKSParams, schedule: str | Mapping[str, str] = "output-rotation",
                         algorithm: str = DEFAULT_ALGORITHM, choose_algorithm: bool = False,
                         workers: int = 1, objective: Objective | None = None,
                         value_bound: float | None = None) -> NetworkPlan:
    """Everything under encryption, no refresh: square activations within one modulus chain.

    `schedule` applies to every conv, as in the hybrid planner (one c_n for all layers). The convs run
    on the slot engine (heconv.conv), which keeps one layout from layer to layer; `algorithm` is the
    name of an algorithm that lists this protocol (`ConvAlgorithm.protocols`, checked by plan_network);
    `choose_algorithm`, `workers` and `objective` change nothing here (no other algorithm lists the
    protocol; plan_network splits the convs afterwards); a `value_bound` is refused.

    One c_n for the whole network keeps every layer's output in the layout the next
    layer reads; global pooling is a rotate-and-sum, the linear layer reads its result.
    """
    if value_bound is not None:
        raise InputError("a value bound places convs at the chain's last level between refreshes: the hybrid "
                         "protocol's; the non-interactive one spends one level per layer")
    check_network_schedule(schedule, [op.name for op in net.ops if isinstance(op, ConvOp)])
    need = levels_needed(net)
    if need > params.depth:
        raise InputError(
            f"the network needs {need} multiplicative levels (one per conv, square activation and linear "
            f"layer), but N={params.poly_modulus_degree} with moduli {list(params.coeff_mod_bit_sizes)} has "
            f"{params.depth}; "
            + (f"use ckks_params(depth={need})" if need <= max_secure_depth(32768)
               else "no secure N holds that many: use the hybrid protocol")
        )
    c, h, w = net.input_shape
    convs = [op for op in net.ops if isinstance(op, ConvOp)]
    widest = max([c] + [max(op.weight.shape[:2]) for op in convs])

    c_n = packing_geometry(widest, widest, h, w, params.slots).c_n  # one c_n for every layer
    layout = packing_geometry(c, c, h, w, params.slots, c_n)
    p = layout.channel_slots
    actions: list[Action] = [Encrypt("x", "x@0", 0, 1, SlotLayout.of(layout, c), ciphertexts=layout.n_in)]
    layers: list[LayerReport] = []
    alias = {"x": "x@0"}
    level = {"x@0": 0}
    pooled: set[str] = set()
    for op in net.ops:
        src = alias.get(op.src if not isinstance(op, AddOp) else op.a)
        if src is None:
            raise ValueError(f"layer {op.name}: input is not produced by an earlier layer")
        lv = level[src]
        if isinstance(op, ConvOp):
            if op.stride != 1:
                raise InputError(f"layer {op.name}: the non-interactive mode needs stride-1 convolutions, "
                                 f"got {op.stride}")
            plan = plan_conv(op.weight, h, w, params, has_bias=op.bias is not None, name=op.name, level=lv, c_n=c_n,
                             schedule=layer_schedule(schedule, op.name))
            if plan.packing.n_in != 1 or plan.packing.n_out != 1:
                raise InputError(f"layer {op.name}: the non-interactive mode keeps each feature map in one "
                                 f"ciphertext ({c_n} channels); got {op.weight.shape[1]}->{op.weight.shape[0]}")
            actions.append(ServerConv(op.name, src, op.out, plan))
            layers.append(LayerReport(op.name, "conv", plan.predicted, len(plan.rotation_steps), lv,
                                      plan.schedule_name, plan.baby_step))
        elif isinstance(op, ActOp):
            if op.kind != "square":
                raise InputError(f"layer {op.name}: {op.kind!r} cannot run without a refresh; the non-interactive "
                                 f"mode takes square activations (use the hybrid protocol for ReLU)")
            actions.append(ServerSquare(op.name, src, op.out, lv, 1))
            layers.append(LayerReport(op.name, "square", OpCounts(cmuls=1, rescales=1), 0, lv))
        elif isinstance(op, PoolOp):
            steps = [1 << k for k in range(p.bit_length() - 1)]
            actions.append(ServerPool(op.name, src, op.out, steps))
            n = len(steps)
            layers.append(LayerReport(op.name, "pool", OpCounts(rotations=n, key_switches=n, adds=n), n, lv))
            pooled.add(op.out)
            level[op.out] = lv
            alias[op.out] = op.out
            continue
        elif isinstance(op, LinearOp):
            if src not in pooled:
                raise InputError(f"layer {op.name}: in the non-interactive mode a linear layer reads a pooled value")
            plan = plan_linear(op.weight / (h * w), params, has_bias=op.bias is not None, name=op.name,
                               level=lv, lane_stride=p)
            actions.append(ServerLinear(op.name, src, op.out, plan, 1.0 / (h * w)))
            layers.append(LayerReport(op.name, "linear", plan.predicted, len(plan.rotation_steps), lv))
        else:
            raise InputError(f"layer {op.name}: {type(op).__name__} is not supported in the non-interactive mode")
        alias[op.out] = op.out
        level[op.out] = lv + 1
    out = alias.get(net.output)
    last = actions[-1]
    if not isinstance(last, ServerLinear) or out != last.dst:
        raise InputError("the non-interactive mode needs the network to end in its linear layer")
    actions.append(Refresh("output", out, "logits", last.plan.n_out, "none", False, None, last.plan,
                           ciphertexts=1, level=level[out]))
    return NetworkPlan(params, actions, "logits", galois_steps(actions), layers, "non-interactive")
