"""Encrypted inference of a whole model: lower, plan, key, compile, run, compare with torch.

`prepare_model` does the set-up (lowering, Galois keys, encoding unless streaming);
`run_images` is the timed part (each image through the protocol); `model_record`
compares with PyTorch (and the labels, when given) and gathers a `ModelRecord`.
`artemis infer`, the demo and the model benchmarks all go through these three.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from heconv.algorithms import get_algorithm
from heconv.backends import make_backend
from heconv.cost import UnitCosts, floor_seconds
from heconv.errors import InputError
from heconv.frontend import lower_model
from heconv.network import (
    Client,
    Network,
    NetworkPlan,
    NetworkRun,
    Server,
    ServerConv,
    levels_needed,
    plan_network,
    run_network,
)
from heconv.network.traffic import plan_traffic, predict_phases
from heconv.params import SECURE_DEGREES, CKKSParams, max_secure_depth, params_for_input
from heconv.traffic import Objective, Phases

from .bandwidth import DEFAULT_BANDWIDTH_BPS
from .memory import check_memory, peak_rss_bytes, plan_bytes, reset_peak_rss
from .unit_costs import measure_unit_costs

FLOOR_TARGET = 1.15
MEMORY_TARGET = 12 * 2**30


@dataclass
class PreparedModel:
    net: Network
    plan: NetworkPlan
    client: Client
    server: Server
    galois_key_bytes: int
    keygen_seconds: float
    compile_seconds: float

    def close(self) -> None:
        """Stop the server's worker processes, if any."""
        self.server.close()


def model_params(input_shape: tuple[int, int, int], net: Network, protocol: str = "hybrid",
                 poly_modulus_degree: int | None = None, toy: bool = False, scale_bits: int = 40) -> CKKSParams:
    """One level (hybrid) or as many as the network needs (non-interactive), on the smallest
    secure N that fits; a network deeper than N allows fails here, before any encryption."""
    depth = levels_needed(net) if protocol == "non-interactive" else 1
    if poly_modulus_degree is not None and not toy and poly_modulus_degree in SECURE_DEGREES:
        most = max_secure_depth(poly_modulus_degree)
        if depth > most:
            raise InputError(
                f"the network needs {depth} multiplicative levels, but N={poly_modulus_degree} holds at most "
                f"{most} at 128-bit security; use N=16384 (7 levels) or 32768 (19 levels)"
            )
    _, h, w = input_shape
    return params_for_input(h, w, poly_modulus_degree, depth, toy, scale_bits)


def prepare_model(model: nn.Module, input_shape: tuple[int, int, int], params: CKKSParams | None = None,
                  mode: str = "encrypted", stream: bool = False, seed: int = 0, protocol: str = "hybrid",
                  poly_modulus_degree: int | None = None, toy: bool = False, scale_bits: int = 40,
                  schedule: str = "output-rotation", workers: int = 1, algorithm: str = "slot",
                  upload: str = "seeded", bandwidth_bps: float = DEFAULT_BANDWIDTH_BPS,
                  objective: str = "end-to-end", choose_algorithm: bool = False,
                  value_bound: float | None = None) -> PreparedModel:
    """Lower the model, plan it (every conv with `schedule`; "auto": a baby step per layer; or by
    the coefficient `algorithm`, in-process), make the client's keys and the server's plaintexts.
    `workers` > 1: each conv whose algorithm splits (the slot engine, matvec) over up to that many
    processes, forked once the plaintexts are encoded (`close()` stops them). `upload`: how the client
    encrypts what it sends (heconv.traffic.UPLOADS: "seeded" with its secret key, or "public"). The coefficient chunking
    minimises `objective` (heconv.traffic.OBJECTIVES) at `bandwidth_bps` with those uploads.
    `choose_algorithm`: a conv under "auto" runs by the algorithm of the lowest predicted time
    (heconv.network.plan_network). `value_bound`: the largest |value| the client uploads, which lets a
    slot conv run at the chain's last level (heconv.network.plan_hybrid)."""
    reset_peak_rss()  # the record's peak memory is this model's
    net = lower_model(model, input_shape)
    if params is None:
        params = model_params(input_shape, net, protocol, poly_modulus_degree, toy, scale_bits)
    plan = plan_network(net, params, protocol, schedule, workers, algorithm, choose_algorithm,
                        Objective(bandwidth_bps, upload, objective), value_bound)
    backend = make_backend(mode, params, seed)
    sizes = [get_algorithm(a.algorithm).plaintexts(a.plan) for a in plan.actions if isinstance(a, ServerConv)]
    # the plaintexts (all, or streamed: the largest layer's), the plan's Galois keys and a few
    # live ciphertexts per worker
    held = max(sizes, default=0) if stream else sum(sizes)
    check_memory(f"the {protocol} plan of {type(model).__name__} at {input_shape}"
                 + (" (streamed: its largest layer)" if stream else ""),
                 plan_bytes(backend.plaintext_bytes(0), held, len(plan.galois_steps), 8, workers))
    client = Client(backend, upload)
    t = time.perf_counter()
    key_bytes = client.setup_keys(plan)
    keygen = time.perf_counter() - t
    t = time.perf_counter()
    server = Server(backend.public_view(), net, plan, stream=stream)
    return PreparedModel(net, plan, client, server, key_bytes, keygen, time.perf_counter() - t)


def run_images(prep: PreparedModel, images: np.ndarray, progress: Callable[[str], None] | None = None,
               check_bounds: bool = True) -> list[NetworkRun]:
    """The timed part: every image through the protocol."""
    return [run_network(prep.plan, prep.client, prep.server, x, progress, check_bounds) for x in images]


@dataclass
class ModelRecord:
    """The figures of one measured model (`to_dict` is what `artemis infer` prints and the
    model benchmarks record); per image where the name says so."""

    images: int
    layers: list[dict]
    counts: dict
    predicted: dict
    counts_match_plan: bool
    rotations: int
    predicted_rotations: int
    key_switches: int
    pmuls: int
    pmuls_level0: float  # the plan's, weighted by the primes each works on (heconv.network.NetworkPlan)
    cmuls: int
    adds: int
    rescales: int
    galois_keys: int
    galois_key_bytes: int
    server_s: float
    server_cpu_s: float | None
    floor_s: float | None
    server_over_floor: float | None
    meets_floor_target: bool | None
    client_s: float  # client_upload_s + client_refresh_s
    upload_bytes: int  # client -> server: SEAL's serialization of every ciphertext sent (cleartext: modelled)
    download_bytes: int  # server -> client
    keygen_s: float
    encode_s: float
    top1_agreement: float | None
    max_abs_error: float | None
    max_abs_reference: float
    predictions: list[int] | None
    reference_predictions: list[int]
    accuracy: float | None
    reference_accuracy: float | None
    unit_costs_s: dict | None
    peak_rss_bytes: int
    under_memory_target: bool
    poly_modulus_degree: int
    coeff_mod_bit_sizes: list[int]
    stream: bool
    protocol: str
    workers: int = 1
    transfer_s: float = 0.0  # serialization between workers, on the critical path, per image
    transfer_bytes: int = 0
    serial_floor_s: float | None = None  # the floor on one core (floor_s: the parallel one when workers > 1)
    algorithm: str = "slot"
    mask_s: float = 0.0  # coefficient algorithm: server time spent masking, per image (inside server_s)
    # coefficient algorithm: the least hiding per unread coefficient over the convs
    # (heconv.coeff_mask; 128: not sent, c1 re-randomised); None when nothing is masked
    hiding_bits_per_coefficient: float | None = None
    ciphertexts_in: int = 0  # per image, client -> server
    ciphertexts_out: int = 0  # per image, server -> client
    server_min_s: float | None = None  # the least and the median server time over the images (server_s: the mean)
    server_median_s: float | None = None
    # the phases of an inference, per image: client_s = client_upload_s + client_refresh_s;
    # end_to_end_s = client_s + server_s + server_io_s + network_s at bandwidth_bps
    upload: str = "seeded"  # how the client encrypted its uploads (heconv.network.parties.UPLOADS)
    client_upload_s: float = 0.0  # packing, encoding, encryption and serialization, every re-encryption included
    client_refresh_s: float = 0.0  # loading what came back, decryption, ReLU, re-packing, pooling
    server_io_s: float = 0.0  # the server loading the uploads and serializing what goes back
    bandwidth_bps: float = DEFAULT_BANDWIDTH_BPS
    network_s: float = 0.0  # every byte each way at bandwidth_bps (no latency)
    end_to_end_s: float = 0.0
    # the plan's prediction of the same phases (heconv.network.traffic; bytes: SEAL's uncompressed words,
    # server: counts x the planning unit costs) and what the coefficient chunking minimised
    predicted_phases: dict | None = None
    predicted_end_to_end_s: float | None = None
    chunking_objective: str | None = None
    value_bound: float | None = None  # the plan's bound on what the client uploads (heconv.network.plan_network)

    @property
    def bytes_client_to_server(self) -> int:
        return self.upload_bytes

    @property
    def bytes_server_to_client(self) -> int:
        return self.download_bytes

    def to_dict(self) -> dict:
        # the traffic under its older names too: the report and stored runs read those
        return {**asdict(self), "bytes_client_to_server": self.upload_bytes,
                "bytes_server_to_client": self.download_bytes}


def _hiding_bits(prep: PreparedModel) -> float | None:
    """The least hiding over the convs whose algorithm masks their outputs (`ConvAlgorithm.hiding_bits`;
    bound: each conv's gain, for inputs within [-1, 1]; only the interval mask depends on it); None without any."""
    gains = prep.server.gains()
    bits = [get_algorithm(a.algorithm).hiding_bits(a.plan, gains[a.name][0]) for a in prep.plan.actions
            if isinstance(a, ServerConv)]
    bits = [b for b in bits if b is not None]
    return min(bits) if bits else None


def model_record(prep: PreparedModel, model: nn.Module, images: np.ndarray, runs: list[NetworkRun],
                 unit: UnitCosts | None = None, labels: np.ndarray | None = None,
                 cpu_s: float | None = None, bandwidth_bps: float = DEFAULT_BANDWIDTH_BPS) -> ModelRecord:
    """Compare `runs` (one per image) with PyTorch in float64, compute floors per level, and the
    end-to-end time with the traffic at `bandwidth_bps` bits per second."""
    with torch.no_grad():  # a float64 copy: the caller's model keeps its dtype
        ref = copy.deepcopy(model).double()(torch.from_numpy(np.asarray(images, dtype=np.float64))).numpy()
    logits = np.stack([r.logits for r in runs])
    last = runs[-1]
    level_of = {r.name: r.level for r in prep.plan.layers}
    report_of = {r.name: r for r in prep.plan.layers}
    depth = prep.plan.params.depth
    tracked = prep.client.backend.tracks_values
    units: dict[int, UnitCosts] = {}
    if tracked:
        # Unit costs at every level a layer runs at: deeper levels have fewer primes and cost less.
        for lv in sorted({min(level_of[r.name], depth) for r in last.layers}):
            units[lv] = unit if (unit is not None and lv == 0) else measure_unit_costs(prep.server.backend, level=lv)
    layers = []
    for i, lr in enumerate(last.layers):
        u = units.get(min(level_of[lr.name], depth))
        par = [r.layers[i].parallel for r in runs if r.layers[i].parallel is not None]
        transfer = float(np.mean([p.transfer_s for p in par])) if par else 0.0
        serial = floor_seconds(lr.counts, u) if u else None
        layers.append({
            "layer": lr.name, "kind": lr.kind, "level": level_of[lr.name],
            "algorithm": report_of[lr.name].algorithm, "schedule": report_of[lr.name].schedule,
            "baby_step": report_of[lr.name].baby_step, "reason": report_of[lr.name].reason,
            "predicted_rotations": lr.predicted.rotations, "rotations": lr.counts.rotations,
            "key_switches": lr.counts.key_switches, "pmuls": lr.counts.pmuls, "adds": lr.counts.adds,
            "server_s": float(np.mean([r.layers[i].seconds for r in runs])),
            "workers": par[-1].workers if par else 1, "transfer_s": transfer,
            "transfer_bytes": par[-1].transfer_bytes if par else 0, "serial_floor_s": serial,
            # the parallel floor: the larger worker's op floor plus the measured transfer
            "floor_s": (max(par[-1].floors(u)) + transfer if par else serial) if u else None,
            "counts_match_plan": all(r.layers[i].counts == lr.predicted for r in runs),
        })
    counts = last.counts
    server = float(np.mean([r.server_seconds for r in runs]))
    floor = sum(layer["floor_s"] for layer in layers) if units else None
    client = float(np.mean([r.client_seconds for r in runs]))
    io = float(np.mean([r.server_io_seconds for r in runs]))
    up = int(np.mean([r.bytes_client_to_server for r in runs]))
    down = int(np.mean([r.bytes_server_to_client for r in runs]))
    measured = Phases(client_s=client, server_s=server, server_io_s=io, upload_bytes=up, download_bytes=down)
    peak = peak_rss_bytes()
    labels = None if labels is None else np.asarray(labels)
    phases = predict_phases(prep.plan, prep.client.upload)
    return ModelRecord(
        images=len(runs), layers=layers, counts=counts.to_dict(), predicted=prep.plan.predicted.to_dict(),
        counts_match_plan=all(layer["counts_match_plan"] for layer in layers),
        rotations=counts.rotations, predicted_rotations=prep.plan.predicted.rotations,
        key_switches=counts.key_switches, pmuls=counts.pmuls, pmuls_level0=prep.plan.pmuls_level0,
        cmuls=counts.cmuls, adds=counts.adds,
        rescales=counts.rescales, galois_keys=len(prep.plan.galois_steps), galois_key_bytes=prep.galois_key_bytes,
        server_s=server, server_cpu_s=cpu_s, floor_s=floor,
        server_over_floor=server / floor if floor else None,
        meets_floor_target=server <= FLOOR_TARGET * floor if floor else None,
        client_s=client, upload_bytes=up, download_bytes=down,
        keygen_s=prep.keygen_seconds, encode_s=prep.server.encode_seconds,
        top1_agreement=float(np.mean(logits.argmax(1) == ref.argmax(1))) if tracked else None,
        max_abs_error=float(np.abs(logits - ref).max()) if tracked else None,
        max_abs_reference=float(np.abs(ref).max()),
        predictions=logits.argmax(1).tolist() if tracked else None,
        reference_predictions=ref.argmax(1).tolist(),
        accuracy=float(np.mean(logits.argmax(1) == labels)) if tracked and labels is not None else None,
        reference_accuracy=float(np.mean(ref.argmax(1) == labels)) if labels is not None else None,
        unit_costs_s={str(lv): u.to_dict() for lv, u in units.items()} or None,
        peak_rss_bytes=peak, under_memory_target=peak < MEMORY_TARGET,
        poly_modulus_degree=prep.plan.params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(prep.plan.params.coeff_mod_bit_sizes), stream=prep.server.stream,
        protocol=prep.plan.protocol, workers=prep.plan.workers,
        transfer_s=sum(layer["transfer_s"] for layer in layers),
        transfer_bytes=sum(layer["transfer_bytes"] for layer in layers),
        serial_floor_s=sum(layer["serial_floor_s"] for layer in layers) if units else None,
        algorithm=prep.plan.algorithm,
        mask_s=sum(r.part_seconds.get("mask", 0.0) for r in runs) / max(1, len(runs)),  # the timed runs' own
        hiding_bits_per_coefficient=_hiding_bits(prep),
        ciphertexts_in=int(np.mean([r.ciphertexts_client_to_server for r in runs])),
        ciphertexts_out=int(np.mean([r.ciphertexts_server_to_client for r in runs])),
        server_min_s=float(np.min([r.server_seconds for r in runs])),
        server_median_s=float(np.median([r.server_seconds for r in runs])),
        upload=prep.client.upload, client_upload_s=float(np.mean([r.client_upload_seconds for r in runs])),
        client_refresh_s=float(np.mean([r.client_refresh_seconds for r in runs])), server_io_s=io,
        bandwidth_bps=bandwidth_bps, network_s=measured.transfer_s(bandwidth_bps),
        end_to_end_s=measured.end_to_end_s(bandwidth_bps),
        predicted_phases={**phases.to_dict(), **plan_traffic(prep.plan, prep.client.upload)},
        predicted_end_to_end_s=phases.end_to_end_s(bandwidth_bps), chunking_objective=_objective(prep.plan),
        value_bound=prep.plan.value_bound,
    )


def _objective(plan: NetworkPlan) -> str | None:
    """What the convs' traffic-aware plans minimised (the coefficient chunking), in words; None where no plan
    made such a choice."""
    objectives = [get_algorithm(a.algorithm).traffic_objective(a.plan) for a in plan.actions
                  if isinstance(a, ServerConv)]
    o = next((o for o in objectives if o is not None), None)
    if o is None:
        return None
    return (f"end to end at {o.bandwidth_bps / 1e6:g} Mbit/s, {o.upload} uploads" if o.kind == "end-to-end"
            else "server time alone")



def measure_model(prep: PreparedModel, model: nn.Module, images: np.ndarray, unit: UnitCosts | None = None,
                  labels: np.ndarray | None = None, progress: Callable[[str], None] | None = None,
                  check_bounds: bool = True, bandwidth_bps: float = DEFAULT_BANDWIDTH_BPS) -> ModelRecord:
    """Run every image (timed) and gather the record (end to end at `bandwidth_bps`)."""
    c = time.process_time()
    runs = run_images(prep, images, progress, check_bounds)
    children = sum(lr.parallel.children_cpu_s for r in runs for lr in r.layers if lr.parallel is not None)
    cpu = (time.process_time() - c + children) / max(1, len(runs))  # the worker processes' CPU included
    return model_record(prep, model, images, runs, unit, labels, cpu, bandwidth_bps)


def measure_checkpoint(model: nn.Module, input_shape: tuple[int, int, int], params: CKKSParams, images: np.ndarray,
                       labels: np.ndarray | None = None, **prepare: Any) -> dict:
    """Prepare `model` (`prepare`: prepare_model's options), measure it on `images`, close it, and return
    the record as a dict. Nothing of the prepared plan outlives the call: its plaintexts (about 8 GiB
    for a dense ResNet18 at 16x16) are freed before a caller prepares the next model or schedule."""
    prep = prepare_model(model, input_shape, params, **prepare)
    try:
        return measure_model(prep, model, images, labels=labels).to_dict()
    finally:
        prep.close()
