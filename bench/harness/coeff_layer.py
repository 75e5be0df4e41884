"""One measured convolution under the coefficient algorithm (heconv.coeff), and the slot
engine's output-rotation run of the same layer in the same process for comparison.

Like bench.harness.layer: `prepare_coeff_layer` is the set-up (nothing timed),
`run_coeff_layer` the timed part (the masks timed apart as well as inside it), and
`coeff_layer_record` checks against torch.nn.functional.conv2d and gathers the figures.
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from heconv.backends import Backend, OpCounts
from heconv.bounds import check_bound, output_gain
from heconv.coeff import (
    CompiledCoeffConv,
    compile_coeff_conv,
    decrypt_coeff_output,
    evaluate_coeff_conv,
    mask_hiding_bits,
    mask_outputs,
    mask_range_bits,
    plan_coeff_conv,
)
from heconv.coeff_mask import mask_kind
from heconv.coeff_pack import pack_coeff_input
from heconv.coeff_plan import CoeffPlan, dense_coefficient_counts
from heconv.cost import UnitCosts, floor_seconds
from heconv.traffic import Objective

from .layer import FLOOR_TARGET, INPUT_BOUND, torch_conv
from .memory import check_memory, plan_bytes
from .unit_costs import measure_unit_costs
from .upload import upload_inputs


@dataclass
class PreparedCoeffLayer:
    """A coefficient layer ready to run: plan, encoded kernel polynomials, encrypted input. `backend` is
    the server's public view (no secret key); `client` uploaded the input and decrypts the output."""

    plan: CoeffPlan
    compiled: CompiledCoeffConv
    backend: Backend
    x: np.ndarray
    inputs: list[Any]
    weight: np.ndarray
    bias: np.ndarray | None
    setup_counts: OpCounts
    seed: int = 0
    client: Backend | None = None
    upload_bytes: int = 0  # the input on the wire

    def close(self) -> None:
        """Nothing to stop (the coefficient algorithm runs in-process); for symmetry with PreparedLayer."""


def prepare_coeff_layer(weight: np.ndarray, bias: np.ndarray | None, height: int, width: int, stride: int,
                        backend: Backend, seed: int = 0, name: str = "conv", check_bounds: bool = True,
                        mask: bool = True, objective: Objective | None = None) -> PreparedCoeffLayer:
    """Plan (the chunking minimising `objective`, default end to end at the default bandwidth with seeded
    uploads), encode on the server's public view of `backend`, and upload a random input in [-1, 1] (the same
    input `prepare_layer` draws for `seed`) from `backend`, the client, as the objective's uploads."""
    objective = objective or Objective()
    plan = plan_coeff_conv(weight, height, width, backend.params, stride=stride, has_bias=bias is not None, name=name,
                           mask=mask, objective=objective)
    if check_bounds:
        bias_max = 0.0 if bias is None else float(np.abs(bias).max())
        check_bound(name, output_gain(weight) * INPUT_BOUND + bias_max, backend.params, plan.level)
    check_memory(f"layer {name} ({plan.spec.c_in}->{plan.spec.c_out}, {height}x{width}, {plan.plaintexts} plaintexts)",
                 plan_bytes(backend.plaintext_bytes(plan.level), plan.plaintexts))
    client = backend
    client.reset_counter()
    server = client.public_view()
    compiled = compile_coeff_conv(plan, weight, bias, server)
    x = np.random.default_rng(seed + 1).uniform(-INPUT_BOUND, INPUT_BOUND, (plan.spec.c_in, height, width))
    inputs, nbytes = upload_inputs(pack_coeff_input(x, plan.chunking),
                                   lambda v: client.encode_coefficients(v, plan.level), client, server,
                                   objective.upload)
    setup = client.reset_counter() + server.reset_counter()
    return PreparedCoeffLayer(plan, compiled, server, x, inputs, np.asarray(weight, dtype=np.float64), bias, setup,
                              seed, client, nbytes)


@dataclass
class CoeffLayerRun:
    outputs: list[Any]
    counts: OpCounts
    wall_s: float
    cpu_s: float
    mask_s: float  # wall time of the masking, inside wall_s


def run_coeff_layer(prep: PreparedCoeffLayer) -> CoeffLayerRun:
    """The timed part: products, sums, rescales, bias and (with the plan's mask) the masks, counted."""
    b = prep.backend
    b.reset_counter()
    t, c = time.perf_counter(), time.process_time()
    outputs = evaluate_coeff_conv(prep.compiled, prep.inputs, b)
    m = time.perf_counter()
    if prep.plan.mask:
        mask_outputs(prep.compiled, outputs, b)
    end = time.perf_counter()
    return CoeffLayerRun(outputs, b.reset_counter(), end - t, time.process_time() - c, end - m)


@dataclass
class CoeffLayerRecord:
    """The figures of one coefficient layer (`to_dict`: what `artemis layer --algorithm coefficient`
    prints and the layer benchmarks record)."""

    layer: str
    c_in: int
    c_out: int
    hw: int
    kernel: int
    stride: int
    backend: str
    poly_modulus_degree: int
    coeff_mod_bit_sizes: list[int]
    chunking: dict
    c_w: int
    chunks: int
    group: int
    tiles: int
    n_in: int
    n_out: int
    kept_blocks: int
    block_groups: int
    predicted: dict
    counts: dict
    dense_formula: dict
    counts_match_plan: bool
    weight_sparsity: float
    encoded_plaintexts: int
    latency_s: float
    cpu_s: float
    mask: bool
    mask_s: float
    mask_kind: str | None  # heconv.coeff_mask: "uniform" (mod the one prime left) or "interval"; None unmasked
    mask_range_bits: int
    hiding_bits_per_coefficient: float | None  # statistical, per unread coefficient (128: distance 0)
    floor_s: float
    latency_over_floor: float | None
    meets_floor_target: bool
    unit_costs_s: dict
    max_abs_error: float
    max_abs_reference: float
    bytes_client_to_server: int
    bytes_server_to_client: int
    peak_rss_bytes: int
    seed: int
    algorithm: str = "coefficient"
    schedule: str = "coefficient"
    galois_keys: int = 0
    galois_key_bytes: int = 0
    workers: int = 1
    upload: str = "seeded"  # how the client encrypted the input (heconv.traffic.UPLOADS)
    bandwidth_bps: float | None = None  # the chunking's objective: its link rate and what it minimised
    chunking_objective: str | None = None
    chunk_choice: dict | None = None  # every chunking considered, with its predicted phases, and why one won
    predicted_phases: dict | None = None  # the chosen chunking's
    predicted_end_to_end_s: float | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        c, p = self.counts, self.predicted
        out.update(rotations=c["rotations"], key_switches=c["key_switches"], pmuls=c["pmuls"], adds=c["adds"],
                   plain_adds=c["plain_adds"], rescales=c["rescales"], encryptions=c["encryptions"],
                   encodes=c["encodes"], predicted_rotations=p["rotations"], predicted_pmuls=p["pmuls"],
                   ciphertexts_in=self.n_in, ciphertexts_out=self.n_out)
        return out


def coeff_layer_record(prep: PreparedCoeffLayer, run: CoeffLayerRun, unit: UnitCosts | None = None,
                       runs: list[CoeffLayerRun] | None = None, latency_s: float | None = None) -> CoeffLayerRecord:
    """Decrypt `run`'s output, compare with torch, compute the floor and the traffic."""
    b, plan = prep.backend, prep.plan
    runs = runs or [run]
    client = prep.client or b
    y = decrypt_coeff_output(run.outputs, plan, client)
    client.reset_counter()
    ref = torch_conv(prep.x, prep.weight, prep.bias, plan.spec.stride)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if unit is None:
        unit = measure_unit_costs(client, level=plan.level)  # the client can make the keys a timing needs
    latency = run.wall_s if latency_s is None else latency_s
    floor = floor_seconds(run.counts, unit)
    ch, w = plan.chunking, prep.weight
    bound = output_gain(w) * INPUT_BOUND  # partial sums of the unread coefficients: at most this
    return CoeffLayerRecord(
        layer=plan.spec.name, c_in=plan.spec.c_in, c_out=plan.spec.c_out, hw=plan.spec.height,
        kernel=plan.spec.kernel, stride=plan.spec.stride, backend=b.name,
        poly_modulus_degree=plan.params.poly_modulus_degree, coeff_mod_bit_sizes=list(plan.params.coeff_mod_bit_sizes),
        chunking=ch.to_dict(), c_w=ch.c_w, chunks=ch.chunks, group=ch.group, tiles=ch.tiles, n_in=plan.n_in,
        n_out=plan.n_out, kept_blocks=plan.plaintexts, block_groups=ch.groups * ch.chunks,
        predicted=plan.predicted.to_dict(), counts=run.counts.to_dict(),
        dense_formula=dense_coefficient_counts(ch, plan.has_bias, plan.mask).to_dict(),
        counts_match_plan=all(r.counts == plan.predicted for r in runs), weight_sparsity=float((w == 0).mean()),
        encoded_plaintexts=prep.setup_counts.encodes - len(prep.inputs), latency_s=latency,
        cpu_s=float(np.mean([r.cpu_s for r in runs])), mask=plan.mask,
        mask_s=float(np.mean([r.mask_s for r in runs])),
        mask_kind=mask_kind(plan.params, plan.level + 1) if plan.mask else None,
        mask_range_bits=mask_range_bits(plan.params, plan.level + 1),
        hiding_bits_per_coefficient=mask_hiding_bits(plan.params, plan.level + 1, bound) if plan.mask else None,
        floor_s=floor, latency_over_floor=latency / floor if floor > 0 else None,
        meets_floor_target=latency <= FLOOR_TARGET * floor, unit_costs_s=unit.to_dict(),
        max_abs_error=float(np.abs(y - ref).max()), max_abs_reference=float(np.abs(ref).max()),
        bytes_client_to_server=prep.upload_bytes,
        bytes_server_to_client=sum(b.ciphertext_bytes(c) for c in run.outputs), peak_rss_bytes=peak, seed=prep.seed,
        **_choice_fields(plan),
    )


def _choice_fields(plan: CoeffPlan) -> dict:
    """The record's view of the plan's chunking choice (nothing when the plan recorded none)."""
    choice = plan.choice
    if choice is None:
        return {}
    o, w = choice.objective, choice.winner
    return {"upload": o.upload, "bandwidth_bps": o.bandwidth_bps, "chunking_objective": o.kind,
            "chunk_choice": choice.to_dict(), "predicted_phases": w.phases.to_dict(),
            "predicted_end_to_end_s": w.phases.end_to_end_s(o.bandwidth_bps)}


def measure_coeff_layer(prep: PreparedCoeffLayer, unit: UnitCosts | None = None) -> CoeffLayerRecord:
    """Run the prepared layer once (timed) and gather its record."""
    return coeff_layer_record(prep, run_coeff_layer(prep), unit)
