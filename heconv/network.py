"""Whole networks under the hybrid protocol (DESIGN.md section 6): plan, then run.

A `Network` is a small torch-free IR (convs with BatchNorm folded, residual adds,
activations, option-A shortcuts, global average pooling, one linear layer), usually
made by `heconv.lower.lower_model`. `plan_network` turns it into a flat list of
actions: what the client encrypts and sends, what the server evaluates, what comes
back to be refreshed. Running (`run_network`) only executes that list.

The refresh is simulated in-process: the client decrypts, applies ReLU (and the stride
subsampling, re-packing or pooling that goes with it) and re-encrypts. In a deployed
protocol this step would be a two-party computation; here only its traffic is real.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Union

import numpy as np

from .backend import Backend, OpCounts
from .conv import CompiledConv, ConvPlan, compile_conv, plan_conv, run_conv
from .geometry import Packing, pack, unpack
from .linear import (
    CompiledLinear,
    LinearPlan,
    compile_linear,
    pack_linear_input,
    plan_linear,
    read_linear_output,
    run_linear,
)
from .params import CKKSParams, max_secure_depth

log = logging.getLogger(__name__)


# --- IR -----------------------------------------------------------------------
@dataclass
class ConvOp:
    name: str
    src: str
    out: str
    weight: np.ndarray
    bias: np.ndarray | None
    stride: int = 1


@dataclass
class AddOp:
    name: str
    a: str
    b: str
    out: str


@dataclass
class ActOp:
    """Activation: 'relu' (a refresh point) or 'square'."""

    name: str
    src: str
    out: str
    kind: str = "relu"


@dataclass
class PadShortcutOp:
    name: str
    src: str
    out: str
    stride: int
    c_out: int


@dataclass
class PoolOp:
    name: str
    src: str
    out: str


@dataclass
class LinearOp:
    name: str
    src: str
    out: str
    weight: np.ndarray
    bias: np.ndarray | None


Op = Union[ConvOp, AddOp, ActOp, PadShortcutOp, PoolOp, LinearOp]


@dataclass
class Network:
    input_shape: tuple[int, int, int]
    ops: list[Op]
    output: str
    input_name: str = "x"


# --- actions ------------------------------------------------------------------
@dataclass
class Encrypt:
    """Client: pack a cleartext value (subsampled first) and send it at `level`."""

    src: str
    dst: str
    level: int
    subsample: int = 1
    packing: Packing | None = None
    linear: LinearPlan | None = None


@dataclass
class ServerConv:
    name: str
    src: str
    dst: str
    plan: ConvPlan


@dataclass
class ServerAdd:
    name: str
    a: str
    b: str
    dst: str
    ciphertexts: int


@dataclass
class ServerLinear:
    name: str
    src: str
    dst: str
    plan: LinearPlan
    weight_scale: float = 1.0  # global pooling's 1/(H*W), folded into the weights


@dataclass
class ServerSquare:
    """x -> x*x, relinearised and rescaled, on every ciphertext (non-interactive mode)."""

    name: str
    src: str
    dst: str
    level: int
    ciphertexts: int


@dataclass
class ServerPool:
    """Global sum pooling by rotate-and-sum over each channel's P slots (non-interactive)."""

    name: str
    src: str
    dst: str
    steps: list[int]


@dataclass
class Refresh:
    """Server -> client: decrypt, unpack, subsample, then activation / pooling."""

    name: str
    src: str
    dst: str
    channels: int
    subsample: int
    activation: str  # relu | none
    pool: bool = False
    packing: Packing | None = None
    linear: LinearPlan | None = None


@dataclass
class ClientOp:
    """Work on a value the client already holds in the clear."""

    name: str
    src: str
    dst: str
    kind: str  # relu | pool | pad
    stride: int = 1
    c_out: int = 0


Action = Union[Encrypt, ServerConv, ServerAdd, ServerLinear, ServerSquare, ServerPool, Refresh, ClientOp]


@dataclass
class LayerReport:
    name: str
    kind: str
    predicted: OpCounts
    galois_steps: int
    level: int = 0  # where its rotations and multiplications happen


@dataclass
class NetworkPlan:
    params: CKKSParams
    actions: list[Action]
    output: str
    galois_steps: list[int]
    layers: list[LayerReport] = field(default_factory=list)
    protocol: str = "hybrid"

    @property
    def predicted(self) -> OpCounts:
        total = OpCounts()
        for layer in self.layers:
            total = total + layer.predicted
        return total

    def summary(self) -> list[dict]:
        """Per server layer: predicted rotations, multiplications, Galois keys."""
        return [
            {"layer": r.name, "kind": r.kind, "rotations": r.predicted.rotations, "pmuls": r.predicted.pmuls,
             "adds": r.predicted.adds, "galois_keys": r.galois_steps}
            for r in self.layers
        ]


@dataclass
class _Enc:
    """Plan-time description of a server-side tensor."""

    channels: int
    height: int  # logical (after the pending subsample)
    width: int
    level: int
    pending: int = 1
    packing: Packing | None = None
    linear: LinearPlan | None = None


PROTOCOLS = ("hybrid", "non-interactive")


def levels_needed(net: Network) -> int:
    """Multiplicative levels the non-interactive mode uses: one per conv, square and linear."""
    return sum(1 for op in net.ops if isinstance(op, (ConvOp, LinearOp)) or (isinstance(op, ActOp) and op.kind == "square"))


def plan_network(net: Network, params: CKKSParams, protocol: str = "hybrid") -> NetworkPlan:
    """Lower the IR onto actions for the hybrid protocol (or the non-interactive one). Touches no ciphertext."""
    if protocol == "non-interactive":
        return _plan_non_interactive(net, params)
    if protocol != "hybrid":
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    shapes: dict[str, tuple] = {net.input_name: tuple(net.input_shape)}  # client-side values
    enc: dict[str, _Enc] = {}  # server-side tensors
    actions: list[Action] = []
    layers: list[LayerReport] = []
    uploads: dict[tuple, str] = {}

    def upload(src: str, level: int, subsample: int = 1, packing: Packing | None = None, linear: LinearPlan | None = None) -> str:
        key = (src, level, subsample, packing, id(linear) if linear else None)
        if key not in uploads:
            dst = f"{src}@{len(uploads)}"
            actions.append(Encrypt(src, dst, level, subsample, packing, linear))
            c, h, w = shapes[src] if len(shapes[src]) == 3 else (shapes[src][0], 1, 1)
            enc[dst] = _Enc(c, -(-h // subsample), -(-w // subsample), level, 1, packing, linear)
            uploads[key] = dst
        return uploads[key]

    def known(name: str, op: Op) -> None:
        if name not in shapes and name not in enc:
            raise ValueError(f"layer {op.name}: input {name!r} is not produced by an earlier layer")

    for op in net.ops:
        if isinstance(op, ConvOp):
            known(op.src, op)
            if op.src not in shapes:
                raise ValueError(
                    f"layer {op.name}: a convolution must read a refreshed value (after an activation) "
                    f"in the hybrid protocol; {op.src!r} is still encrypted at level {enc[op.src].level}"
                )
            c, h, w = shapes[op.src]
            k = op.weight.shape[2]
            if op.weight.shape[1] != c:
                raise ValueError(f"layer {op.name}: weight expects {op.weight.shape[1]} input channels, gets {c}")
            # A strided 1x1 conv is a subsample then a 1x1 conv: the client subsamples.
            sub = op.stride if k == 1 else 1
            hh, ww = -(-h // sub), -(-w // sub)
            plan = plan_conv(op.weight, hh, ww, params, stride=op.stride // sub, has_bias=op.bias is not None, name=op.name)
            src = upload(op.src, 0, sub, plan.packing)
            actions.append(ServerConv(op.name, src, op.out, plan))
            stride = op.stride // sub
            enc[op.out] = _Enc(plan.spec.c_out, -(-hh // stride), -(-ww // stride), 1, stride, plan.packing)
            layers.append(LayerReport(op.name, "conv", plan.predicted, len(plan.rotation_steps)))
        elif isinstance(op, AddOp):
            known(op.a, op)
            known(op.b, op)
            if op.a not in enc and op.b not in enc:
                raise ValueError(f"layer {op.name}: at least one operand of a residual add must be encrypted")
            ref = enc[op.a] if op.a in enc else enc[op.b]
            if ref.pending != 1 or ref.packing is None:
                raise ValueError(f"layer {op.name}: cannot add a strided or non-feature-map value before a refresh")
            keys = []
            for name in (op.a, op.b):
                if name in enc:
                    e = enc[name]
                    if e.packing is None or (e.packing.layout, e.level, e.pending, e.channels) != (
                        ref.packing.layout, ref.level, 1, ref.channels
                    ):
                        raise ValueError(
                            f"layer {op.name}: residual operands differ in layout: "
                            f"{e.channels} ch c_n={e.packing.c_n if e.packing else None} level {e.level} vs "
                            f"{ref.channels} ch c_n={ref.packing.c_n} level {ref.level}"
                        )
                    keys.append(name)
                else:
                    if tuple(shapes[name]) != (ref.channels, ref.height, ref.width):
                        raise ValueError(f"layer {op.name}: operand {name!r} is {shapes[name]}, the other "
                                         f"{(ref.channels, ref.height, ref.width)}")
                    keys.append(upload(name, ref.level, 1, ref.packing))
            n = len(pack(np.zeros((ref.channels, ref.height, ref.width)), ref.packing))
            actions.append(ServerAdd(op.name, keys[0], keys[1], op.out, n))
            enc[op.out] = _Enc(ref.channels, ref.height, ref.width, ref.level, 1, ref.packing)
            layers.append(LayerReport(op.name, "add", OpCounts(adds=n), 0, ref.level))
        elif isinstance(op, ActOp):
            known(op.src, op)
            if op.kind != "relu":
                raise ValueError(f"layer {op.name}: activation {op.kind!r} needs the non-interactive mode; "
                                 f"the hybrid protocol refreshes with ReLU")
            if op.src in enc:
                e = enc[op.src]
                actions.append(Refresh(op.name, op.src, op.out, e.channels, e.pending, "relu", False, e.packing, e.linear))
                shapes[op.out] = (e.channels, e.height, e.width) if e.linear is None else (e.channels,)
            else:
                actions.append(ClientOp(op.name, op.src, op.out, "relu"))
                shapes[op.out] = shapes[op.src]
        elif isinstance(op, PadShortcutOp):
            known(op.src, op)
            if op.src not in shapes:
                raise ValueError(f"layer {op.name}: the option-A shortcut is done by the client on a refreshed value")
            c, h, w = shapes[op.src]
            actions.append(ClientOp(op.name, op.src, op.out, "pad", op.stride, op.c_out))
            shapes[op.out] = (op.c_out, -(-h // op.stride), -(-w // op.stride))
        elif isinstance(op, PoolOp):
            known(op.src, op)
            if op.src in enc:
                e = enc[op.src]
                actions.append(Refresh(op.name, op.src, op.out, e.channels, e.pending, "none", True, e.packing))
                shapes[op.out] = (e.channels,)
            else:
                actions.append(ClientOp(op.name, op.src, op.out, "pool"))
                shapes[op.out] = (shapes[op.src][0],)
        elif isinstance(op, LinearOp):
            known(op.src, op)
            if op.src not in shapes or len(shapes[op.src]) != 1:
                raise ValueError(f"layer {op.name}: a linear layer reads a pooled, refreshed vector")
            if op.weight.shape[1] != shapes[op.src][0]:
                raise ValueError(f"layer {op.name}: weight expects {op.weight.shape[1]} inputs, gets {shapes[op.src][0]}")
            plan = plan_linear(op.weight, params, has_bias=op.bias is not None, name=op.name)
            src = upload(op.src, 0, 1, None, plan)
            actions.append(ServerLinear(op.name, src, op.out, plan))
            enc[op.out] = _Enc(op.weight.shape[0], 1, 1, 1, 1, None, plan)
            layers.append(LayerReport(op.name, "linear", plan.predicted, len(plan.rotation_steps)))
        else:
            raise TypeError(f"unknown network op {type(op).__name__}")

    if net.output in enc:
        e = enc[net.output]
        actions.append(Refresh("output", net.output, "logits", e.channels, e.pending, "none", False, e.packing, e.linear))
    elif net.output in shapes:
        raise ValueError("the network output is never computed by the server")
    else:
        raise ValueError(f"network output {net.output!r} is not produced by any layer")
    return NetworkPlan(params, actions, "logits", _galois_steps(actions), layers)


def _galois_steps(actions: list[Action]) -> list[int]:
    steps: set[int] = set()
    for a in actions:
        if isinstance(a, (ServerConv, ServerLinear)):
            steps.update(a.plan.rotation_steps)
        elif isinstance(a, ServerPool):
            steps.update(a.steps)
    return sorted(steps)


def _plan_non_interactive(net: Network, params: CKKSParams) -> NetworkPlan:
    """Everything under encryption, no refresh: square activations within one modulus chain.

    One c_n for the whole network keeps every layer's output in the layout the next
    layer reads; global pooling is a rotate-and-sum, the linear layer reads its result.
    """
    need = levels_needed(net)
    if need > params.depth:
        raise ValueError(
            f"the network needs {need} multiplicative levels (one per conv, square activation and linear "
            f"layer), but N={params.poly_modulus_degree} with moduli {list(params.coeff_mod_bit_sizes)} has "
            f"{params.depth}; "
            + (f"use ckks_params(depth={need})" if need <= max_secure_depth(32768)
               else "no secure N holds that many: use the hybrid protocol")
        )
    c, h, w = net.input_shape
    convs = [op for op in net.ops if isinstance(op, ConvOp)]
    widest = max([c] + [max(op.weight.shape[:2]) for op in convs])
    from .geometry import next_pow2, packing_geometry

    p = next_pow2(h * w)
    c_n = min(params.slots // p, next_pow2(widest))
    layout = packing_geometry(c, c, h, w, params.slots, c_n)
    actions: list[Action] = [Encrypt("x", "x@0", 0, 1, layout)]
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
                raise ValueError(f"layer {op.name}: the non-interactive mode needs stride-1 convolutions, got {op.stride}")
            plan = plan_conv(op.weight, h, w, params, has_bias=op.bias is not None, name=op.name, level=lv, c_n=c_n)
            if plan.packing.n_in != 1 or plan.packing.n_out != 1:
                raise ValueError(f"layer {op.name}: the non-interactive mode keeps each feature map in one "
                                 f"ciphertext ({c_n} channels); got {op.weight.shape[1]}->{op.weight.shape[0]}")
            actions.append(ServerConv(op.name, src, op.out, plan))
            layers.append(LayerReport(op.name, "conv", plan.predicted, len(plan.rotation_steps), lv))
        elif isinstance(op, ActOp):
            if op.kind != "square":
                raise ValueError(f"layer {op.name}: {op.kind!r} cannot run without a refresh; the non-interactive "
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
                raise ValueError(f"layer {op.name}: in the non-interactive mode a linear layer reads a pooled value")
            plan = plan_linear(op.weight / (h * w), params, has_bias=op.bias is not None, name=op.name,
                               level=lv, lane_stride=p)
            actions.append(ServerLinear(op.name, src, op.out, plan, 1.0 / (h * w)))
            layers.append(LayerReport(op.name, "linear", plan.predicted, len(plan.rotation_steps), lv))
        else:
            raise ValueError(f"layer {op.name}: {type(op).__name__} is not supported in the non-interactive mode")
        alias[op.out] = op.out
        level[op.out] = lv + 1
    out = alias.get(net.output)
    last = actions[-1]
    if not isinstance(last, ServerLinear) or out != last.dst:
        raise ValueError("the non-interactive mode needs the network to end in its linear layer")
    actions.append(Refresh("output", out, "logits", last.plan.n_out, 1, "none", False, None, last.plan))
    return NetworkPlan(params, actions, "logits", _galois_steps(actions), layers, "non-interactive")


# --- parties ------------------------------------------------------------------
class Client:
    """Holds the secret key: encrypts inputs, refreshes, decrypts logits."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.bytes_sent = 0
        self.bytes_received = 0
        self.seconds = 0.0

    def setup_keys(self, plan: NetworkPlan) -> int:
        """Galois keys for every step the network uses; returns their size (sent once)."""
        self.backend.generate_galois_keys(plan.galois_steps)
        return self.backend.galois_key_bytes()

    def encrypt(self, a: Encrypt, value: np.ndarray) -> list[Any]:
        b = self.backend
        if a.linear is not None:
            vectors = [pack_linear_input(value, a.linear)]
        else:
            vectors = pack(value[:, :: a.subsample, :: a.subsample], a.packing)
        cts = [b.encrypt_plain(b.encode(v, a.level)) for v in vectors]
        self.bytes_sent += sum(b.ciphertext_bytes(c) for c in cts)
        return cts

    def refresh(self, a: Refresh, cts: list[Any]) -> np.ndarray:
        b = self.backend
        self.bytes_received += sum(b.ciphertext_bytes(c) for c in cts)
        if a.linear is not None:
            y = read_linear_output(b.decrypt(cts[0]), a.linear)
        else:
            y = unpack([b.decrypt(c) for c in cts], a.packing, a.channels)[:, :: a.subsample, :: a.subsample]
        if a.activation == "relu":
            y = np.maximum(y, 0.0)
        if a.pool:
            y = y.mean(axis=(1, 2))
        return y

    @staticmethod
    def local(a: ClientOp, x: np.ndarray) -> np.ndarray:
        if a.kind == "relu":
            return np.maximum(x, 0.0)
        if a.kind == "pool":
            return x.mean(axis=(1, 2))
        y = np.zeros((a.c_out,) + x[:, :: a.stride, :: a.stride].shape[1:])
        y[: x.shape[0]] = x[:, :: a.stride, :: a.stride]
        return y


class Server:
    """Evaluates every linear layer. Holds a public view of the keys: it cannot decrypt.

    `stream=True` encodes each layer's plaintexts just before it runs and frees them
    after, bounding memory by the largest layer instead of the whole network.
    """

    def __init__(self, backend: Backend, net: Network, plan: NetworkPlan, stream: bool = False):
        self.backend = backend
        self.stream = stream
        self.plan = plan
        self._weights = {op.name: (op.weight, op.bias) for op in net.ops if isinstance(op, (ConvOp, LinearOp))}
        self._compiled: dict[str, CompiledConv | CompiledLinear] = {}
        self._input_scale = self._scales(plan)
        self.encode_seconds = 0.0
        if not stream:
            for a in plan.actions:
                if isinstance(a, (ServerConv, ServerLinear)):
                    self._compiled[a.name] = self._compile(a)

    def _scales(self, plan: NetworkPlan) -> dict[str, float]:
        """The CKKS scale each layer's input arrives at (a square leaves s^2 / q, not s)."""
        scale: dict[str, float] = {}
        inputs: dict[str, float] = {}
        for a in plan.actions:
            if isinstance(a, Encrypt):
                scale[a.dst] = plan.params.scale
            elif isinstance(a, (ServerConv, ServerLinear, ServerPool)):
                inputs[a.name] = scale[a.dst] = scale[a.src]
            elif isinstance(a, ServerAdd):
                scale[a.dst] = scale[a.a]
            elif isinstance(a, ServerSquare):
                scale[a.dst] = scale[a.src] ** 2 / self.backend.rescale_divisor(a.level)
        return inputs

    def _compile(self, a: ServerConv | ServerLinear) -> CompiledConv | CompiledLinear:
        w, b = self._weights[a.name]
        t = time.perf_counter()
        saved = self.backend.counter.copy()
        s = self._input_scale[a.name]
        layer = (compile_conv(a.plan, w, b, self.backend, s) if isinstance(a, ServerConv)
                 else compile_linear(a.plan, w * a.weight_scale, b, self.backend, s))
        self.backend.counter = saved  # encoding is set-up, not evaluation
        self.encode_seconds += time.perf_counter() - t
        return layer

    def prepare(self, a: ServerConv | ServerLinear) -> None:
        """Encode a layer's plaintexts if they are not held yet (streaming mode)."""
        if a.name not in self._compiled:
            self._compiled[a.name] = self._compile(a)

    def release(self, a: ServerConv | ServerLinear) -> None:
        if self.stream:
            self._compiled.pop(a.name, None)

    def layer(self, a: ServerConv | ServerLinear) -> CompiledConv | CompiledLinear:
        return self._compiled[a.name]

    def conv(self, a: ServerConv, inputs: list[Any]) -> list[Any]:
        return run_conv(self.layer(a), inputs, self.backend)

    def add(self, a: ServerAdd, x: list[Any], y: list[Any]) -> list[Any]:
        out = []
        for u, v in zip(x, y):
            self.backend.add_inplace(u, v)
            out.append(u)
        return out

    def linear(self, a: ServerLinear, inputs: list[Any]) -> list[Any]:
        return [run_linear(self.layer(a), inputs[0], self.backend)]

    def square(self, a: ServerSquare, inputs: list[Any]) -> list[Any]:
        for ct in inputs:
            self.backend.square_inplace(ct)
            self.backend.rescale_inplace(ct)
        return inputs

    def pool(self, a: ServerPool, inputs: list[Any]) -> list[Any]:
        for ct in inputs:
            for step in a.steps:
                self.backend.add_inplace(ct, self.backend.rotate(ct, step))
        return inputs


@dataclass
class LayerRun:
    name: str
    kind: str
    predicted: OpCounts
    counts: OpCounts
    seconds: float


@dataclass
class NetworkRun:
    logits: np.ndarray
    layers: list[LayerRun]
    server_seconds: float
    client_seconds: float
    bytes_client_to_server: int
    bytes_server_to_client: int

    @property
    def counts(self) -> OpCounts:
        total = OpCounts()
        for r in self.layers:
            total = total + r.counts
        return total


def run_network(plan: NetworkPlan, client: Client, server: Server, x: np.ndarray,
                progress: Callable[[str], None] | None = None) -> NetworkRun:
    """Run one input through the plan; per-layer server counts and times, traffic each way."""
    clear: dict[str, np.ndarray] = {"x": np.asarray(x, dtype=np.float64)}
    held: dict[str, list[Any]] = {}
    runs: list[LayerRun] = []
    predicted = {r.name: r.predicted for r in plan.layers}
    sent0, recv0, client_s = client.bytes_sent, client.bytes_received, 0.0
    for a in plan.actions:
        t = time.perf_counter()
        if isinstance(a, Encrypt):
            held[a.dst] = client.encrypt(a, clear[a.src])
            client_s += time.perf_counter() - t
        elif isinstance(a, Refresh):
            clear[a.dst] = client.refresh(a, held.pop(a.src))
            client_s += time.perf_counter() - t
        elif isinstance(a, ClientOp):
            clear[a.dst] = client.local(a, clear[a.src])
            client_s += time.perf_counter() - t
        else:
            if isinstance(a, (ServerConv, ServerLinear)):
                server.prepare(a)  # encoding (streaming mode) stays outside the timed evaluation
                t = time.perf_counter()
            server.backend.reset_counter()
            if isinstance(a, ServerConv):
                held[a.dst] = server.conv(a, held[a.src])
                kind = "conv"
            elif isinstance(a, ServerLinear):
                held[a.dst] = server.linear(a, held[a.src])
                kind = "linear"
            elif isinstance(a, ServerSquare):
                held[a.dst] = server.square(a, held[a.src])
                kind = "square"
            elif isinstance(a, ServerPool):
                held[a.dst] = server.pool(a, held[a.src])
                kind = "pool"
            else:
                held[a.dst] = server.add(a, held[a.a], held[a.b])
                kind = "add"
            seconds = time.perf_counter() - t
            if isinstance(a, (ServerConv, ServerLinear)):
                server.release(a)
            runs.append(LayerRun(a.name, kind, predicted[a.name], server.backend.reset_counter(), seconds))
            if progress:
                progress(a.name)
    return NetworkRun(clear["logits"], runs, sum(r.seconds for r in runs), client_s,
                      client.bytes_sent - sent0, client.bytes_received - recv0)
