"""Run one input through a network plan: the runner only executes the plan's actions."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..basics import OpCounts
from ..parallel import ParallelRun
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
)
from .bounds import check_segment
from .parties import Client, Server


@dataclass
class LayerRun:
    name: str
    kind: str
    predicted: OpCounts
    counts: OpCounts
    seconds: float
    parallel: ParallelRun | None = None  # per worker, with the transfer cost, when the conv ran on several


@dataclass
class NetworkRun:
    """One input through the protocol. `server_seconds`: the layers' evaluation; the server's
    network work (loading uploads, serializing what goes back) is `server_io_seconds`.
    `client_seconds` = `client_upload_seconds` (packing, encoding, encryption, serialization,
    re-encryption at every refresh included) + `client_refresh_seconds` (loading what comes
    back, decryption, ReLU, re-packing, pooling). `part_seconds`: the parts of `server_seconds`
    the algorithms time apart (`Server.part_seconds`), this run's alone."""

    logits: np.ndarray
    layers: list[LayerRun]
    server_seconds: float
    client_seconds: float
    bytes_client_to_server: int
    bytes_server_to_client: int
    ciphertexts_client_to_server: int = 0
    ciphertexts_server_to_client: int = 0
    client_upload_seconds: float = 0.0
    client_refresh_seconds: float = 0.0
    server_io_seconds: float = 0.0
    part_seconds: dict[str, float] = field(default_factory=dict)  # this run's parts timed apart ("mask")

    @property
    def counts(self) -> OpCounts:
        return sum((r.counts for r in self.layers), OpCounts())


# Server actions: (kind, how to evaluate it on the held ciphertexts).
SERVER_STEPS: dict[type, tuple[str, Callable[[Server, Any, dict], list[Any]]]] = {
    ServerConv: ("conv", lambda srv, a, held: srv.conv(a, held[a.src])),
    ServerLinear: ("linear", lambda srv, a, held: srv.linear(a, held[a.src])),
    ServerSquare: ("square", lambda srv, a, held: srv.square(a, held[a.src])),
    ServerPool: ("pool", lambda srv, a, held: srv.pool(a, held[a.src])),
    ServerAdd: ("add", lambda srv, a, held: srv.add(a, held[a.a], held[a.b])),
}
_ENCODED = (ServerConv, ServerLinear)  # layers whose plaintexts the server holds (or streams)


def run_network(plan: NetworkPlan, client: Client, server: Server, x: np.ndarray,
                progress: Callable[[str], None] | None = None, check_bounds: bool = True) -> NetworkRun:
    """Run one input through the plan; per-layer server counts and times, traffic each way.

    With `check_bounds`, each stretch from an encryption to the next refresh is checked
    before its first ciphertext exists (heconv.network.bounds): a layer whose values
    could wrap around the modulus raises ValueError instead of decrypting to garbage.
    """
    clear: dict[str, np.ndarray] = {"x": np.asarray(x, dtype=np.float64)}
    gains = server.gains() if check_bounds else {}
    maxima: dict[str, float] = {}  # max|value| of each cleartext value, computed once

    def check(start: int) -> None:
        if check_bounds:
            for k, v in clear.items():
                if k not in maxima:
                    maxima[k] = float(np.abs(v).max()) if v.size else 0.0
            check_segment(plan, start, maxima, gains)

    held: dict[str, list[Any]] = {}
    runs: list[LayerRun] = []
    predicted = {r.name: r.predicted for r in plan.layers}
    sent0, recv0 = client.bytes_sent, client.bytes_received
    cts0 = (client.ciphertexts_sent, client.ciphertexts_received)
    upload_s = refresh_s = io_s = 0.0
    parts0 = server.part_totals()
    check(0)
    for i, a in enumerate(plan.actions):
        t = time.perf_counter()
        if isinstance(a, Encrypt):
            wires = client.encrypt(a, clear[a.src])
            t1 = time.perf_counter()
            held[a.dst] = server.receive(wires)
            upload_s, io_s = upload_s + t1 - t, io_s + time.perf_counter() - t1
            continue
        if isinstance(a, Refresh):
            wires = server.send(held.pop(a.src), None if a.layout is None else a.layout.reads())
            t1 = time.perf_counter()
            clear[a.dst] = client.refresh(a, wires)
            io_s, refresh_s = io_s + t1 - t, refresh_s + time.perf_counter() - t1
            check(i + 1)  # the guard is the harness's, not protocol work: outside the client's time
            continue
        if isinstance(a, ClientOp):
            clear[a.dst] = client.local(a, clear[a.src])
            refresh_s += time.perf_counter() - t
            continue
        kind, step = SERVER_STEPS[type(a)]
        if isinstance(a, _ENCODED):
            server.prepare(a)  # encoding (streaming mode) stays outside the timed evaluation
            t = time.perf_counter()
        server.backend.reset_counter()
        held[a.dst] = step(server, a, held)
        seconds = time.perf_counter() - t
        if isinstance(a, _ENCODED):
            server.release(a)
        runs.append(LayerRun(a.name, kind, predicted[a.name], server.backend.reset_counter(), seconds,
                             server.pop_parallel()))
        if progress:
            progress(a.name)
    return NetworkRun(clear["logits"], runs, sum(r.seconds for r in runs), upload_s + refresh_s,
                      client.bytes_sent - sent0, client.bytes_received - recv0,
                      client.ciphertexts_sent - cts0[0], client.ciphertexts_received - cts0[1],
                      upload_s, refresh_s, io_s,
                      {k: v - parts0.get(k, 0.0) for k, v in server.part_totals().items()})
