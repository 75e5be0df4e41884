"""Planner for the hybrid protocol (docs/design.md, "Whole networks and the protocol"): the server runs every linear
layer, the client refreshes at each ReLU. Touches no ciphertext.

Every conv runs by one algorithm: "slot" (heconv.conv, with its rotation schedule) or
"coefficient" (heconv.coeff). Under "coefficient", two convs whose outputs a residual add sums
share one frame kernel and output layout (the second planned is aligned with the first), and a
cleartext operand of such an add is uploaded in that output layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..basics import OpCounts
from ..coeff import plan_coeff_conv
from ..coeff_plan import ALGORITHMS
from ..conv import plan_conv
from ..errors import InputError
from ..geometry import CoeffChunking, Packing, pack
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
    """Plan-time description of a server-side tensor."""

    channels: int
    height: int  # logical (after the pending subsample)
    width: int
    level: int
    pending: int = 1
    packing: Packing | None = None
    linear: LinearPlan | None = None
    coeff: CoeffChunking | None = None
    ciphertexts: int = 0


def _add_partners(net: Network) -> dict[str, tuple[str, int]]:
    """Coefficient algorithm: conv name -> (the conv whose output a residual add sums with its own,
    the larger kernel of the two, which frames both)."""
    convs = {op.out: op for op in net.ops if isinstance(op, ConvOp)}
    partners = {}
    for op in net.ops:
        if isinstance(op, AddOp) and op.a in convs and op.b in convs:
            a, b = convs[op.a], convs[op.b]
            k = max(a.weight.shape[2], b.weight.shape[2])
            partners[a.name], partners[b.name] = (b.name, k), (a.name, k)
    return partners


def _output_uploads(net: Network) -> dict[str, int]:
    """Coefficient algorithm: conv name -> the residual operands the client uploads in its output
    layout (an add of its output and a value that is no conv's output: an identity shortcut)."""
    convs = {op.out: op for op in net.ops if isinstance(op, ConvOp)}
    out: dict[str, int] = {}
    for op in net.ops:
        if isinstance(op, AddOp) and (op.a in convs) != (op.b in convs):
            name = convs[op.a if op.a in convs else op.b].name
            out[name] = out.get(name, 0) + 1
    return out


class _HybridPlanner:
    """Walks the IR once; each op kind has its own method (see HANDLERS)."""

    def __init__(self, net: Network, params: CKKSParams, schedule: str | Mapping[str, str] = "output-rotation",
                 algorithm: str = "slot", objective: Objective | None = None):
        self.params = params
        self.schedule = schedule
        self.algorithm = algorithm
        self.objective = objective
        self.partners = _add_partners(net) if algorithm == "coefficient" else {}
        self.convs = {op.name: op for op in net.ops if isinstance(op, ConvOp)}
        self.output_uploads = _output_uploads(net) if algorithm == "coefficient" else {}
        self.chunkings: dict[str, CoeffChunking] = {}
        self.shapes: dict[str, tuple] = {net.input_name: tuple(net.input_shape)}  # client-side values
        self.enc: dict[str, ServerTensor] = {}  # server-side tensors
        self.actions: list[Action] = []
        self.layers: list[LayerReport] = []
        self.uploads: dict[tuple, str] = {}

    def upload(self, src: str, level: int, subsample: int = 1, packing: Packing | None = None,
               linear: LinearPlan | None = None, coeff: CoeffChunking | None = None, coeff_output: bool = False) -> str:
        key = (src, level, subsample, packing, id(linear) if linear else None, coeff, coeff_output)
        if key not in self.uploads:
            dst = f"{src}@{len(self.uploads)}"
            shape = self.shapes[src]
            c, h, w = shape if len(shape) == 3 else (shape[0], 1, 1)
            hh, ww = -(-h // subsample), -(-w // subsample)
            if coeff is not None:
                n = coeff.tiles * (coeff.groups if coeff_output else coeff.chunks)
            else:
                n = 1 if linear is not None else len(pack(np.zeros((c, hh, ww)), packing))
            self.actions.append(Encrypt(src, dst, level, subsample, packing, linear, coeff, coeff_output, n))
            self.enc[dst] = ServerTensor(c, hh, ww, level, 1, packing, linear, coeff if coeff_output else None, n)
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
        if self.algorithm == "coefficient":
            self.coefficient_conv(op, hh, ww, sub)
            return
        plan = plan_conv(op.weight, hh, ww, self.params, stride=op.stride // sub, has_bias=op.bias is not None,
                         name=op.name, schedule=layer_schedule(self.schedule, op.name))
        src = self.upload(op.src, 0, sub, plan.packing)
        self.actions.append(ServerConv(op.name, src, op.out, plan))
        stride = op.stride // sub
        self.enc[op.out] = ServerTensor(plan.spec.c_out, -(-hh // stride), -(-ww // stride), 1, stride, plan.packing,
                                        ciphertexts=plan.packing.n_out)
        self.layers.append(LayerReport(op.name, "conv", plan.predicted, len(plan.rotation_steps),
                                       schedule=plan.schedule_name, baby_step=plan.baby_step))

    def coefficient_conv(self, op: ConvOp, hh: int, ww: int, sub: int) -> None:
        partner, frame = self.partners.get(op.name, (None, None))
        align = self.chunkings.get(partner)
        # the first of an added pair chooses the layout for both: it prices its partner's share too
        shape = self.convs[partner].weight.shape if partner and align is None else None
        plan = plan_coeff_conv(op.weight, hh, ww, self.params, stride=op.stride // sub, has_bias=op.bias is not None,
                               name=op.name, frame_kernel=frame, align=align, objective=self.objective,
                               output_uploads=self.output_uploads.get(op.name, 0),
                               partner=(shape[1], shape[2]) if shape else None)
        self.chunkings[op.name] = plan.chunking
        src = self.upload(op.src, 0, sub, coeff=plan.chunking)
        self.actions.append(ServerConv(op.name, src, op.out, plan))
        stride = op.stride // sub
        self.enc[op.out] = ServerTensor(plan.spec.c_out, -(-hh // stride), -(-ww // stride), 1, stride,
                                        coeff=plan.chunking, ciphertexts=plan.n_out)
        self.layers.append(LayerReport(op.name, "conv", plan.predicted, 0, schedule="coefficient"))

    def add(self, op: AddOp) -> None:
        self.known(op.a, op)
        self.known(op.b, op)
        enc, shapes = self.enc, self.shapes
        if op.a not in enc and op.b not in enc:
            raise InputError(f"layer {op.name}: at least one operand of a residual add must be encrypted")
        ref = enc[op.a] if op.a in enc else enc[op.b]
        if ref.pending != 1 or (ref.packing is None and ref.coeff is None):
            raise InputError(f"layer {op.name}: cannot add a strided or non-feature-map value before a refresh")

        def layout(e: ServerTensor):
            return e.coeff.output_layout if e.coeff is not None else e.packing.layout if e.packing else None

        keys = []
        for name in (op.a, op.b):
            if name in enc:
                e = enc[name]
                if (layout(e), e.level, e.pending, e.channels) != (layout(ref), ref.level, 1, ref.channels):
                    raise InputError(
                        f"layer {op.name}: residual operands differ in layout: "
                        f"{e.channels} ch layout {layout(e)} level {e.level} vs "
                        f"{ref.channels} ch layout {layout(ref)} level {ref.level}"
                    )
                keys.append(name)
            else:
                if tuple(shapes[name]) != (ref.channels, ref.height, ref.width):
                    raise InputError(f"layer {op.name}: operand {name!r} is {shapes[name]}, the other "
                                     f"{(ref.channels, ref.height, ref.width)}")
                keys.append(self.upload(name, ref.level, 1, ref.packing, coeff=ref.coeff, coeff_output=True)
                            if ref.coeff is not None else self.upload(name, ref.level, 1, ref.packing))
        n = (ref.coeff.groups * ref.coeff.tiles if ref.coeff is not None
             else len(pack(np.zeros((ref.channels, ref.height, ref.width)), ref.packing)))
        self.actions.append(ServerAdd(op.name, keys[0], keys[1], op.out, n))
        enc[op.out] = ServerTensor(ref.channels, ref.height, ref.width, ref.level, 1, ref.packing, coeff=ref.coeff,
                                   ciphertexts=n)
        self.layers.append(LayerReport(op.name, "add", OpCounts(adds=n), 0, ref.level))

    def act(self, op: ActOp) -> None:
        self.known(op.src, op)
        if op.kind != "relu":
            raise InputError(f"layer {op.name}: activation {op.kind!r} needs the non-interactive mode; "
                             f"the hybrid protocol refreshes with ReLU")
        if op.src in self.enc:
            e = self.enc[op.src]
            self.actions.append(Refresh(op.name, op.src, op.out, e.channels, e.pending, "relu", False, e.packing,
                                        e.linear, e.coeff, e.ciphertexts, e.level))
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
            self.actions.append(Refresh(op.name, op.src, op.out, e.channels, e.pending, "none", True, e.packing,
                                        coeff=e.coeff, ciphertexts=e.ciphertexts, level=e.level))
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
        self.enc[op.out] = ServerTensor(op.weight.shape[0], 1, 1, 1, 1, None, plan, ciphertexts=1)
        self.layers.append(LayerReport(op.name, "linear", plan.predicted, len(plan.rotation_steps)))

    def finish(self, output: str) -> NetworkPlan:
        if output in self.enc:
            e = self.enc[output]
            self.actions.append(Refresh("output", output, "logits", e.channels, e.pending, "none", False, e.packing,
                                        e.linear, e.coeff, e.ciphertexts, e.level))
        elif output in self.shapes:
            raise ValueError("the network output is never computed by the server")
        else:
            raise ValueError(f"network output {output!r} is not produced by any layer")
        return NetworkPlan(self.params, self.actions, "logits", galois_steps(self.actions), self.layers,
                           algorithm=self.algorithm)


HANDLERS = {ConvOp: _HybridPlanner.conv, AddOp: _HybridPlanner.add, ActOp: _HybridPlanner.act,
            PadShortcutOp: _HybridPlanner.pad, PoolOp: _HybridPlanner.pool, LinearOp: _HybridPlanner.linear}


def plan_hybrid(net: Network, params: CKKSParams, schedule: str | Mapping[str, str] = "output-rotation",
                algorithm: str = "slot", objective: Objective | None = None) -> NetworkPlan:
    """Lower the IR onto the hybrid protocol's actions. Touches no ciphertext.

    `schedule` applies to every slot conv (heconv.schedule): "auto" picks a baby step per layer
    from its own weights; "bsgs:B" must divide every conv's c_n. A mapping gives one per
    conv name (those left out: output-rotation). `algorithm`: "slot" or "coefficient" (no
    schedule: it never rotates; each conv's chunking minimises `objective`, default end to end
    at the default bandwidth, heconv.coeff_choice).
    """
    if algorithm not in ALGORITHMS:
        raise InputError(f"conv algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    check_network_schedule(schedule, [op.name for op in net.ops if isinstance(op, ConvOp)])
    planner = _HybridPlanner(net, params, schedule, algorithm, objective)
    for op in net.ops:
        handler = HANDLERS.get(type(op))
        if handler is None:
            raise TypeError(f"unknown network op {type(op).__name__}")
        handler(planner, op)
    return planner.finish(net.output)
