"""The two parties of the protocol. The client holds the secret key; the server holds a
public view of the keys and cannot decrypt.

The refresh is simulated in-process: the client decrypts, applies ReLU (and the stride
subsampling, re-packing or pooling that goes with it) and re-encrypts. In a deployed
protocol this step would be a two-party computation; here only its traffic is real.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..algorithms import decrypt_map, get_algorithm
from ..backends.base import Backend, Wire
from ..bounds import output_gain
from ..errors import InputError
from ..linear import compile_linear, pack_linear_input, read_linear_output, run_linear
from ..parallel import ConvPool, ParallelRun
from ..traffic import UPLOADS  # how the client encrypts its uploads (docs/design.md, "What crosses the network")
from .actions import (
    ClientOp,
    Encrypt,
    NetworkPlan,
    Refresh,
    ServerAdd,
    ServerConv,
    ServerLinear,
    ServerPool,
    ServerSquare,
    check_placements,
)
from .ir import ConvOp, LinearOp, Network


class Client:
    """Holds the secret key: encrypts inputs, refreshes, decrypts logits. What crosses the
    network is a `Wire` (serialized, its bytes counted) each way."""

    def __init__(self, backend: Backend, upload: str = "seeded"):
        if upload not in UPLOADS:
            raise InputError(f"upload must be one of {', '.join(UPLOADS)}, got {upload!r}")
        self.backend = backend
        self.upload = upload
        self.bytes_sent = 0
        self.bytes_received = 0
        self.ciphertexts_sent = 0
        self.ciphertexts_received = 0
        self.seconds = 0.0

    def setup_keys(self, plan: NetworkPlan) -> int:
        """Galois keys for every step the network uses; returns their size (sent once)."""
        self.backend.generate_galois_keys(plan.galois_steps)
        return self.backend.galois_key_bytes()

    def encrypt(self, a: Encrypt, value: np.ndarray) -> list[Wire]:
        """Pack, encode, encrypt and serialize an input (or a refreshed value) for the server."""
        b = self.backend
        if a.linear is not None:
            vectors = [pack_linear_input(value, a.linear)]
            encode = b.encode
        else:
            vectors = a.layout.pack(value[:, :: a.subsample, :: a.subsample])
            layout = a.layout

            def encode(v: np.ndarray, level: int) -> Any:
                return layout.encode(b, v, level)
        # one plaintext alive at a time
        wires = [b.encrypt_for_upload(encode(v, a.level), UPLOADS[self.upload]) for v in vectors]
        self.bytes_sent += sum(w.nbytes for w in wires)
        self.ciphertexts_sent += len(wires)
        return wires

    def refresh(self, a: Refresh, wires: list[Wire]) -> np.ndarray:
        """Load what the server sent, decrypt, apply ReLU (and pooling) in the clear."""
        b = self.backend
        self.bytes_received += sum(w.nbytes for w in wires)
        self.ciphertexts_received += len(wires)
        reads = a.layout.reads() if a.layout is not None else None  # its own plan's, not the sender's word
        cts = [b.from_wire(w) for w in wires] if reads is None else [b.from_wire(w, r) for w, r in zip(wires, reads)]
        if a.linear is not None:
            y = read_linear_output(b.decrypt(cts[0]), a.linear)
        else:
            y = decrypt_map(cts, a.layout, b)  # at the layout's stride
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

    A plan made with workers > 1 (plan_network(..., workers=N)) forks its worker
    processes here, once every layer is compiled (heconv.parallel.ConvPool); `close()`
    stops them (so does garbage collection, or the end of the program).
    """

    def __init__(self, backend: Backend, net: Network, plan: NetworkPlan, stream: bool = False):
        if stream and plan.workers > 1:
            raise InputError(f"stream=True encodes each layer after the worker processes are forked, so they would "
                             f"lack its plaintexts; run the {plan.workers}-worker plan without streaming, or plan "
                             f"with workers=1")
        check_placements(plan)  # a loaded or edited plan: each conv sound where it sits (e.g. a shared mask)
        self.backend = backend
        self.stream = stream
        self.plan = plan
        self.conv_pool: ConvPool | None = None
        self.last_parallel: ParallelRun | None = None
        self._weights = {op.name: (op.weight, op.bias) for op in net.ops if isinstance(op, (ConvOp, LinearOp))}
        self._compiled: dict[str, Any] = {}  # a conv's compiled layer (its algorithm's) or a CompiledLinear
        self._input_scale = self._scales(plan)
        self.encode_seconds = 0.0
        self.part_seconds: dict[str, dict[str, float]] = {}  # part ("mask") -> conv -> seconds, summed over runs
        if not stream:
            for a in plan.actions:
                if isinstance(a, (ServerConv, ServerLinear)):
                    self._compiled[a.name] = self._compile(a)
        split = {a.name: (self._compiled[a.name], a.parallel) for a in plan.actions
                 if isinstance(a, ServerConv) and a.parallel is not None and a.parallel.workers > 1}
        if split:
            self.conv_pool = ConvPool(backend, split)  # forked after compile: the children hold every plaintext

    def receive(self, wires: list[Wire]) -> list[Any]:
        """Load the client's upload (a seeded ciphertext expanded from its seed): the context suffices."""
        return [self.backend.from_wire(w) for w in wires]

    def send(self, cts: list[Any], reads: tuple[np.ndarray, ...] | None = None) -> list[Wire]:
        """Serialize ciphertexts for the client; with `reads` (per ciphertext, the coefficients its layout
        reads: `Layout.reads`), only those of each first polynomial go (`Backend.to_wire`)."""
        if reads is None:
            return [self.backend.to_wire(c) for c in cts]
        if len(reads) != len(cts):
            raise ValueError(f"send: {len(cts)} ciphertexts, the layout reads {len(reads)}")
        return [self.backend.to_wire(c, r) for c, r in zip(cts, reads)]

    def close(self) -> None:
        """Stop the worker processes, if any. Idempotent."""
        if self.conv_pool is not None:
            self.conv_pool.close()

    def gains(self) -> dict[str, tuple[float, float]]:
        """Per conv and linear layer: (max row L1 norm of its weights, max|bias|), for the bound check."""
        scale = {a.name: a.weight_scale for a in self.plan.actions if isinstance(a, ServerLinear)}
        return {name: (output_gain(w) * scale.get(name, 1.0), 0.0 if b is None else float(np.abs(b).max()))
                for name, (w, b) in self._weights.items()}

    def _scales(self, plan: NetworkPlan) -> dict[str, float]:
        """The CKKS scale each layer's input arrives at (a square leaves s^2 / q, not s)."""
        scale: dict[str, float] = {}
        inputs: dict[str, float] = {}
        for a in plan.actions:
            if isinstance(a, Encrypt):
                scale[a.dst] = plan.params.scale if a.layout is None else a.layout.scale(plan.params)
            elif isinstance(a, ServerConv):  # a conv without a rescale leaves its products' scale
                inputs[a.name] = scale[a.src]
                scale[a.dst] = get_algorithm(a.algorithm).output_scale(a.plan, scale[a.src])
            elif isinstance(a, (ServerLinear, ServerPool)):
                inputs[a.name] = scale[a.dst] = scale[a.src]
            elif isinstance(a, ServerAdd):
                scale[a.dst] = scale[a.a]
            elif isinstance(a, ServerSquare):
                scale[a.dst] = scale[a.src] ** 2 / self.backend.rescale_divisor(a.level)
        return inputs

    def _compile(self, a: ServerConv | ServerLinear) -> Any:
        w, b = self._weights[a.name]
        t = time.perf_counter()
        saved = self.backend.counter.copy()
        s = self._input_scale[a.name]
        if isinstance(a, ServerLinear):
            layer = compile_linear(a.plan, w * a.weight_scale, b, self.backend, s)
        else:
            layer = get_algorithm(a.algorithm).compile(a.plan, w, b, self.backend, s)
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

    def layer(self, a: ServerConv | ServerLinear) -> Any:
        return self._compiled[a.name]

    def conv(self, a: ServerConv, inputs: list[Any]) -> list[Any]:
        """Run a conv, on the worker pool when its plan splits it (the run's record in `last_parallel`);
        otherwise in-process by its algorithm, the parts it times apart summed per layer (`part_seconds`,
        e.g. the coefficient algorithm's masking in `mask_seconds`)."""
        if self.conv_pool is not None and a.name in self.conv_pool.layers:
            outputs = self.conv_pool.run(a.name, inputs)
            self.last_parallel = self.conv_pool.last
            return outputs
        outputs, parts = get_algorithm(a.algorithm).run_timed(self.layer(a), inputs, self.backend)
        for part, seconds in parts.items():
            layer = self.part_seconds.setdefault(part, {})
            layer[a.name] = layer.get(a.name, 0.0) + seconds
        return outputs

    def part_totals(self) -> dict[str, float]:
        """Per part, the seconds summed over every conv and run so far."""
        return {part: sum(layers.values()) for part, layers in self.part_seconds.items()}

    @property
    def mask_seconds(self) -> dict[str, float]:
        """Per conv, the seconds its algorithm spent masking outputs, summed over runs."""
        return self.part_seconds.get("mask", {})

    def pop_parallel(self) -> ParallelRun | None:
        """The record of the last parallel conv run, once."""
        run, self.last_parallel = self.last_parallel, None
        return run

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
