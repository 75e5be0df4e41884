"""Planner for the hybrid protocol (docs/design.md, "Whole networks and the protocol"): the server runs every linear
layer, the client refreshes at each ReLU. Touches no ciphertext.

Every conv runs by one registered algorithm (heconv.algorithms): the planner asks it for the plan, the
layout the conv reads (what the client uploads) and writes (what a refresh unpacks). Two convs whose
outputs a residual add sums are planned with the algorithm's `network_options` (the coefficient
algorithm gives both one frame kernel and output layout, and prices its chunking under the planner's
objective); a cleartext operand of such an add is uploaded in the encrypted operand's layout, and two
encrypted operands must be placed alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from ..algorithms import ALGORITHMS, DEFAULT_ALGORITHM, ConvAlgorithm, get_algorithm
from ..algorithms.base import NetworkContext
from ..algorithms.choice import auto_algorithms, choose_algorithm
from ..algorithms.layout import Layout
from ..basics import OpCounts
from ..bounds import conv_output_bound
from ..errors import InputError
from ..linear import LinearPlan, plan_linear
from ..params import CKKSParams
from ..schedule import check_network_schedule, layer_schedule
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
    galois_steps,
)
from .ir import ActOp, AddOp, ConvOp, LinearOp, Network, Op, PadShortcutOp, PoolOp


@dataclass
class ServerTensor:
    """Plan-time description of a server-side tensor: a feature map in `layout` (its shape, strided ones
    included, is the layout's) or the `linear` layer's output."""

    channels: int
    height: int
    width: int
    level: int
    layout: Layout | None = None
    linear: LinearPlan | None = None

    @property
    def ciphertexts(self) -> int:
        return 1 if self.layout is None else self.layout.ciphertexts


def _output_uploads(net: Network) -> dict[str, int]:
    """conv name -> the residual operands the client uploads in its output layout (an add of its output
    and a value that is no conv's output: an identity shortcut)."""
    convs = {op.out: op for op in net.ops if isinstance(op, ConvOp)}
    out: dict[str, int] = {}
    for op in net.ops:
        if isinstance(op, AddOp) and (op.a in convs) != (op.b in convs):
            name = convs[op.a if op.a in convs else op.b].name
            out[name] = out.get(name, 0) + 1
    return out


def _encrypted_sums(net: Network) -> set[str]:
    """conv names whose output a residual add sums with another add's result (encrypted on the server,
    its layout fixed: no upload the client could pack in the conv's layout)."""
    convs = {op.out: op for op in net.ops if isinstance(op, ConvOp)}
    sums = {op.out for op in net.ops if isinstance(op, AddOp)}
    return {convs[x].name for op in net.ops if isinstance(op, AddOp)
            for x, y in ((op.a, op.b), (op.b, op.a)) if x in convs and y in sums}


def _add_partners(net: Network) -> dict[str, tuple[str, int, bool]]:
    """conv name -> (the conv whose output a residual add sums with its own, the larger kernel of the two,
    whether the add alone reads both outputs: then only their sum reaches the client)."""
    convs = {op.out: op for op in net.ops if isinstance(op, ConvOp)}
    readers = Counter(name for op in net.ops for name in _reads(op))
    readers[net.output] += 1
    partners = {}
    for op in net.ops:
        if isinstance(op, AddOp) and op.a in convs and op.b in convs:
            a, b = convs[op.a], convs[op.b]
            k = max(a.weight.shape[2], b.weight.shape[2])
            sum_only = readers[op.a] == readers[op.b] == 1 and op.a != op.b
            partners[a.name], partners[b.name] = (b.name, k, sum_only), (a.name, k, sum_only)
    return partners


def _reads(op: Op) -> tuple[str, ...]:
    """The values an IR op reads."""
    return (op.a, op.b) if isinstance(op, AddOp) else (op.src,)


class _HybridPlanner:
    """Walks the IR once; each op kind has its own method (see HANDLERS)."""

    def __init__(self, net: Network, params: CKKSParams, schedule: str | Mapping[str, str] = "output-rotation",
                 algorithm: str = DEFAULT_ALGORITHM, choose: bool = False, workers: int = 1,
                 objective: Objective | None = None, value_bound: float | None = None):
        self.params = params
        self.value_bound = value_bound
        self.chosen: dict[str, str] = {}  # conv name -> the algorithm it runs by
        self.schedule = schedule
        self.algorithm = algorithm
        self.choose, self.workers, self.objective = choose, workers, objective
        self.conv_algorithm: ConvAlgorithm = get_algorithm(algorithm)
        self.partners = _add_partners(net)
        self.convs = {op.name: op for op in net.ops if isinstance(op, ConvOp)}
        self.output_uploads = _output_uploads(net)
        self.encrypted_sums = _encrypted_sums(net)
        self.plans: dict[str, object] = {}
        self.shapes: dict[str, tuple] = {net.input_name: tuple(net.input_shape)}  # client-side values
        self.enc: dict[str, ServerTensor] = {}  # server-side tensors
        self.actions: list[Action] = []
        self.layers: list[LayerReport] = []
        self.uploads: dict[tuple, str] = {}

    def upload(self, src: str, level: int, subsample: int = 1, layout: Layout | None = None,
               linear: LinearPlan | None = None) -> str:
        key = (src, level, subsample, layout, id(linear) if linear else None)
        if key not in self.uploads:
            dst = f"{src}@{len(self.uploads)}"
            self.actions.append(Encrypt(src, dst, level, subsample, layout, linear,
                                        1 if layout is None else layout.ciphertexts))
            shape = self.shapes[src]
            c, h, w = shape if len(shape) == 3 else (shape[0], 1, 1)
            self.enc[dst] = ServerTensor(c, -(-h // subsample), -(-w // subsample), level, layout, linear)
            self.uploads[key] = dst
        return self.uploads[key]

    def known(self, name: str, op: Op) -> None:
        if name not in self.shapes and name not in self.enc:
            raise ValueError(f"layer {op.name}: input {name!r} is not produced by an earlier layer")

    def conv(self, op: ConvOp) -> None:
        self.known(op.src, op)
        if op.src not in self.shapes:
            raise InputError(
                f"layer {op.name}: a convolution must read a refreshed value (after an activation) "
                f"in the hybrid protocol; {op.src!r} is still encrypted at level {self.enc[op.src].level}"
            )
        c, h, w = self.shapes[op.src]
        k = op.weight.shape[2]
        if op.weight.shape[1] != c:
            raise InputError(f"layer {op.name}: weight expects {op.weight.shape[1]} input channels, gets {c}")
        # A strided 1x1 conv is a subsample then a 1x1 conv: the client subsamples.
        sub = op.stride if k == 1 else 1
        hh, ww = -(-h // sub), -(-w // sub)
        schedule = layer_schedule(self.schedule, op.name)

        partner, kernel, sum_only = self.partners.get(op.name, (None, None, False))
        uploads = self.output_uploads.get(op.name, 0)
        output_bound = None
        if self.value_bound is not None:  # the output plus what a residual add sums with it
            output_bound = (self._conv_bound(op) + (self._conv_bound(self.convs[partner]) if partner else 0.0)
                            + uploads * self.value_bound)

        def plan_with(name: str):
            alg = get_algorithm(name)
            options = {"schedule": schedule} if alg.takes_schedule else {}
            options.update(alg.network_options(NetworkContext(
                kernel, self.plans.get(partner), self.convs[partner].weight.shape if partner else None,
                sum_only, uploads, self.objective, output_bound, self.params,
                summed_with_encrypted=op.name in self.encrypted_sums)))
            return alg.plan(op.weight, hh, ww, self.params, stride=op.stride // sub, has_bias=op.bias is not None,
                            name=op.name, **options)

        def matches_partner(name: str, plan) -> bool:
            """The output sits where a residual partner planned already has its own (same place, level, scale)."""
            if partner not in self.plans:
                return True
            alg, other = get_algorithm(name), get_algorithm(self.chosen[partner])
            return ((alg.output_layout(plan).placement, alg.output_level(plan))
                    == (other.output_layout(self.plans[partner]).placement, other.output_level(self.plans[partner])))

        name, reason = self.algorithm, None
        if self.choose and self.conv_algorithm.takes_schedule and schedule == "auto":
            choice = choose_algorithm(ALGORITHMS, auto_algorithms(ALGORITHMS, "hybrid"), plan_with, self.workers,
                                      accept=matches_partner)
            name, plan, reason = choice.algorithm, choice.plan, choice.reason
        else:
            plan = plan_with(name)
        alg = get_algorithm(name)
        self.plans[op.name], self.chosen[op.name] = plan, name
        src = self.upload(op.src, alg.input_level(plan), sub, alg.input_layout(plan))
        self.actions.append(ServerConv(op.name, src, op.out, plan, algorithm=name))
        out = alg.output_layout(plan)
        self.enc[op.out] = ServerTensor(out.shape[0], out.shape[1], out.shape[2], alg.output_level(plan), out)
        self.layers.append(LayerReport(op.name, "conv", alg.predicted(plan), len(alg.rotation_steps(plan)),
                                       level=alg.input_level(plan), schedule=alg.label(plan),
                                       baby_step=alg.baby_step(plan), algorithm=name, reason=reason))

    def _conv_bound(self, op: ConvOp) -> float:
        """The largest |output| of a conv whose input is within the value bound."""
        return conv_output_bound(op.weight, op.bias, self.value_bound)

    def add(self, op: AddOp) -> None:
        self.known(op.a, op)
        self.known(op.b, op)
        enc, shapes = self.enc, self.shapes
        if op.a not in enc and op.b not in enc:
            raise InputError(f"layer {op.name}: at least one operand of a residual add must be encrypted")
        ref = enc[op.a] if op.a in enc else enc[op.b]
        if ref.layout is None:
            raise InputError(f"layer {op.name}: cannot add a non-feature-map value before a refresh")
        keys = []
        for name in (op.a, op.b):
            if name in enc:
                e = enc[name]
                if (e.layout is None or (e.layout.placement, e.level, e.channels)
                        != (ref.layout.placement, ref.level, ref.channels)):
                    raise InputError(
                        f"layer {op.name}: residual operands differ in layout: {e.channels} ch in {e.layout} at "
                        f"level {e.level} vs {ref.channels} ch in {ref.layout} at level {ref.level}"
                    )
                keys.append(name)
            else:
                if tuple(shapes[name]) != (ref.channels, ref.height, ref.width):
                    raise InputError(f"layer {op.name}: operand {name!r} is {shapes[name]}, the other "
                                     f"{(ref.channels, ref.height, ref.width)}")
                keys.append(self.upload(name, ref.level, 1, ref.layout))
        n = ref.layout.ciphertexts
        self.actions.append(ServerAdd(op.name, keys[0], keys[1], op.out, n))
        enc[op.out] = ServerTensor(ref.channels, ref.height, ref.width, ref.level, ref.layout)
        self.layers.append(LayerReport(op.name, "add", OpCounts(adds=n), 0, ref.level))

    def act(self, op: ActOp) -> None:
        self.known(op.src, op)
        if op.kind != "relu":
            raise InputError(f"layer {op.name}: activation {op.kind!r} needs the non-interactive mode; "
                             f"the hybrid protocol refreshes with ReLU")
        if op.src in self.enc:
            e = self.enc[op.src]
            self.actions.append(Refresh(op.name, op.src, op.out, e.channels, "relu", False, e.layout, e.linear,
                                        e.ciphertexts, e.level))
            self.shapes[op.out] = (e.channels, e.height, e.width) if e.linear is None else (e.channels,)
        else:
            self.actions.append(ClientOp(op.name, op.src, op.out, "relu"))
            self.shapes[op.out] = self.shapes[op.src]

    def pad(self, op: PadShortcutOp) -> None:
        self.known(op.src, op)
        if op.src not in self.shapes:
            raise InputError(f"layer {op.name}: the option-A shortcut is done by the client on a refreshed value")
        c, h, w = self.shapes[op.src]
        self.actions.append(ClientOp(op.name, op.src, op.out, "pad", op.stride, op.c_out))
        self.shapes[op.out] = (op.c_out, -(-h // op.stride), -(-w // op.stride))

    def pool(self, op: PoolOp) -> None:
        self.known(op.src, op)
        if op.src in self.enc:
            e = self.enc[op.src]
            self.actions.append(Refresh(op.name, op.src, op.out, e.channels, "none", True, e.layout,
                                        ciphertexts=e.ciphertexts, level=e.level))
            self.shapes[op.out] = (e.channels,)
        else:
            self.actions.append(ClientOp(op.name, op.src, op.out, "pool"))
            self.shapes[op.out] = (self.shapes[op.src][0],)

    def linear(self, op: LinearOp) -> None:
        self.known(op.src, op)
        shapes = self.shapes
        if op.src not in shapes or len(shapes[op.src]) != 1:
            raise InputError(f"layer {op.name}: a linear layer reads a pooled, refreshed vector")
        if op.weight.shape[1] != shapes[op.src][0]:
            raise InputError(f"layer {op.name}: weight expects {op.weight.shape[1]} inputs, gets {shapes[op.src][0]}")
        plan = plan_linear(op.weight, self.params, has_bias=op.bias is not None, name=op.name)
        src = self.upload(op.src, 0, 1, None, plan)
        self.actions.append(ServerLinear(op.name, src, op.out, plan))
        self.enc[op.out] = ServerTensor(op.weight.shape[0], 1, 1, 1, None, plan)
        self.layers.append(LayerReport(op.name, "linear", plan.predicted, len(plan.rotation_steps)))

    def finish(self, output: str) -> NetworkPlan:
        if output in self.enc:
            e = self.enc[output]
            self.actions.append(Refresh("output", output, "logits", e.channels, "none", False, e.layout, e.linear,
                                        e.ciphertexts, e.level))
        elif output in self.shapes:
            raise ValueError("the network output is never computed by the server")
        else:
            raise ValueError(f"network output {output!r} is not produced by any layer")
        return NetworkPlan(self.params, self.actions, "logits", galois_steps(self.actions), self.layers,
                           algorithm=self.algorithm, value_bound=self.value_bound)


HANDLERS = {ConvOp: _HybridPlanner.conv, AddOp: _HybridPlanner.add, ActOp: _HybridPlanner.act,
            PadShortcutOp: _HybridPlanner.pad, PoolOp: _HybridPlanner.pool, LinearOp: _HybridPlanner.linear}


def plan_hybrid(net: Network, params: CKKSParams, schedule: str | Mapping[str, str] = "output-rotation",
                algorithm: str = DEFAULT_ALGORITHM, choose_algorithm: bool = False,
                workers: int = 1, objective: Objective | None = None,
                value_bound: float | None = None) -> NetworkPlan:
    """Lower the IR onto the hybrid protocol's actions. Touches no ciphertext.

    `algorithm`: every conv's, a name in heconv.algorithms. `schedule` applies to every conv of an
    algorithm that takes one (heconv.schedule): "auto" picks a baby step per layer from its own
    weights; "bsgs:B" must divide every conv's c_n. A mapping gives one per conv name (those left
    out: output-rotation). `objective`: what a traffic-aware algorithm's plan minimises (the coefficient
    chunking: end to end at the default bandwidth by default, heconv.coeff_choice).

    `choose_algorithm`: a conv whose schedule is "auto" (under an algorithm that takes schedules) runs by
    the registered algorithm of the lowest predicted time on `workers` processes, among those that keep
    the protocol's traffic (heconv.algorithms.choice); its LayerReport says which and why (`reason`).

    `value_bound`: the largest |value| the client will upload (every refreshed input and the image). A
    conv whose output (plus what a residual add sums with it) then stays small enough runs where its
    algorithm can make use of that (the slot engine: at the chain's last level with no rescale,
    heconv.bounds.last_level_split); the run's bound check refuses an input beyond it. None: no bound.
    """
    get_algorithm(algorithm)  # an InputError naming the known ones
    check_network_schedule(schedule, [op.name for op in net.ops if isinstance(op, ConvOp)])
    planner = _HybridPlanner(net, params, schedule, algorithm, choose_algorithm, workers, objective, value_bound)
    for op in net.ops:
        handler = HANDLERS.get(type(op))
        if handler is None:
            raise TypeError(f"unknown network op {type(op).__name__}")
        handler(planner, op)
    return planner.finish(net.output)
