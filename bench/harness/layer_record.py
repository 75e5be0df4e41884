"""The one record of a measured layer, for every registered algorithm (issue 22): what `artemis layer`
prints and the layer and peers suites store in extra_info.

The common fields are the same for every algorithm (shape, parameters, counts against the plan, the
floor, the error against torch, the traffic each way, the workers); what only one algorithm has (the slot
engine's packing and schedule candidates, the coefficient chunking and its mask, ...) it supplies itself
through `ConvAlgorithm.figures`, and `to_dict` lays those beside the common keys. The keys and their
meanings are those the stored runs (results/benchmarks/*.json) hold, so the report reads old runs too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from heconv.algorithms import Layout, decrypt_map
from heconv.backends import Backend, Wire
from heconv.bounds import output_gain
from heconv.cost import UnitCosts, floor_seconds
from heconv.parallel_plan import ParallelPlan

from .layer import FLOOR_TARGET, INPUT_BOUND, LayerRun, PreparedLayer, run_layer, torch_conv
from .memory import peak_rss_bytes
from .unit_costs import measure_unit_costs


@dataclass
class LayerRecord:
    """The figures of one measured layer (`to_dict` is what the command prints and the
    benchmarks record in extra_info). `figures`: the algorithm's own (ConvAlgorithm.figures),
    also readable as attributes (`record.c_n`)."""

    layer: str
    c_in: int
    c_out: int
    hw: int
    kernel: int
    stride: int
    backend: str
    poly_modulus_degree: int
    coeff_mod_bit_sizes: list[int]
    algorithm: str  # the registered name that ran
    schedule: str  # what ran, in the algorithm's words (ConvAlgorithm.label): "bsgs:2", "coefficient", ...
    baby_step: int | None
    n_in: int  # input ciphertexts
    n_out: int  # output ciphertexts
    input_layout: str  # the Layout classes the input and output sit in
    output_layout: str
    output_shape: list[int]
    predicted: dict
    counts: dict
    counts_match_plan: bool
    weight_sparsity: float
    galois_keys: int
    galois_key_bytes: int
    encoded_plaintexts: int  # the weight plaintexts the server encoded (the input's left out)
    latency_s: float
    cpu_s: float
    floor_s: float
    latency_over_floor: float | None
    meets_floor_target: bool
    unit_costs_s: dict
    max_abs_error: float
    max_abs_reference: float
    peak_rss_bytes: int
    seed: int
    bytes_client_to_server: int = 0  # the input ciphertexts as uploaded (`upload`), serialized
    bytes_server_to_client: int = 0  # the output ciphertexts
    upload: str = "seeded"  # how the client encrypted the input (heconv.traffic.UPLOADS)
    workers: int = 1
    workers_requested: int = 1
    serial_predicted: dict | None = None  # the single-process plan's counts (predicted: the split's)
    extra_rotations: int = 0  # baby steps computed by more than one worker
    worker_counts: list[dict] | None = None
    worker_floor_s: list[float] | None = None
    transfer_bytes: int = 0
    transfer_s: float = 0.0
    # the multiplications weighted by the primes at the input's level, in level-0 multiplications
    pmuls_level0: float | None = None
    parallel_floor_s: float | None = None  # the larger worker's floor + transfer_s
    latency_over_parallel_floor: float | None = None
    # --schedule auto across algorithms (heconv.algorithms.choice): every candidate with its predicted
    # seconds (the chosen one first) and why; None when the algorithm was given
    algorithm_candidates: list[dict] | None = None
    algorithm_reason: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        figures = self.__dict__.get("figures") or {}
        if key in figures:
            return figures[key]
        raise AttributeError(f"{type(self).__name__} has no field or figure {key!r}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(out.pop("figures"))
        p = self.predicted
        out.update(self.counts)  # every count at the top level too (rotations, pmuls, ...), as the stored runs
        out.update(predicted_rotations=p["rotations"], predicted_pmuls=p["pmuls"], ciphertexts_in=self.n_in,
                   ciphertexts_out=self.n_out)
        return out


def layer_record(prep: PreparedLayer, run: LayerRun, unit: UnitCosts | None = None,
                 runs: list[LayerRun] | None = None, latency_s: float | None = None) -> LayerRecord:
    """Send `run`'s output to the client as the protocol does (extracted where the layout reads some
    coefficients alone), decrypt it, compare with torch, compute the floor. `runs` (all timed
    rounds, default just `run`) decide counts_match_plan and the mean CPU and part times;
    `latency_s` defaults to run's. `unit`: level-0 unit costs, priced at the layer's input level
    (`UnitCosts.at_work`); None measures them at the plan's level."""
    b, plan, alg = prep.backend, prep.plan, prep.alg
    spec = plan.spec
    runs = runs or [run]
    client = prep.client or b
    layout = alg.output_layout(plan)
    sent = _downloads(b, run.outputs, layout)
    y = decrypt_map([client.from_wire(w, w.read) for w in sent], layout, client)
    client.reset_counter()
    ref = torch_conv(prep.x, prep.weight, prep.bias, spec.stride)
    peak = peak_rss_bytes()  # since prepare_layer, before the unit costs' operand pools
    if unit is None:
        unit = measure_unit_costs(client, level=plan.level)  # the client can make the keys a timing needs
    else:  # level-0 costs (the suites measure them once per session), priced at the layer's own level
        unit = unit.at_work(plan.params.level_work(alg.input_level(plan)))
    latency = run.wall_s if latency_s is None else latency_s
    floor = floor_seconds(run.counts, unit)
    w = prep.weight
    workers = _parallel_fields(run, prep.parallel, runs, unit, latency)
    parts = {f"{p}_s": float(np.mean([r.parts.get(p, 0.0) for r in runs])) for p in alg.timed_parts}
    choice = prep.choice
    return LayerRecord(
        layer=spec.name, c_in=spec.c_in, c_out=spec.c_out, hw=spec.height, kernel=spec.kernel, stride=spec.stride,
        backend=b.name, poly_modulus_degree=plan.params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(plan.params.coeff_mod_bit_sizes), algorithm=prep.algorithm,
        schedule=alg.label(plan), baby_step=alg.baby_step(plan), n_in=len(prep.inputs), n_out=len(run.outputs),
        input_layout=alg.input_layout(plan).kind, output_layout=layout.kind,
        output_shape=list(y.shape), predicted=prep.predicted.to_dict(), counts=run.counts.to_dict(),
        counts_match_plan=all(r.counts == prep.predicted for r in runs) and workers.pop("workers_match"),
        weight_sparsity=float((w == 0).mean()), galois_keys=len(b.galois_steps),
        galois_key_bytes=prep.galois_key_bytes,
        encoded_plaintexts=prep.setup_counts.encodes - len(prep.inputs), latency_s=latency,
        cpu_s=float(np.mean([r.cpu_s for r in runs])), floor_s=floor,
        latency_over_floor=latency / floor if floor > 0 else None,
        meets_floor_target=latency <= FLOOR_TARGET * floor, unit_costs_s=unit.to_dict(),
        max_abs_error=float(np.abs(y - ref).max()), max_abs_reference=float(np.abs(ref).max()),
        peak_rss_bytes=peak, seed=prep.seed, bytes_client_to_server=prep.upload_bytes,
        bytes_server_to_client=sum(w.nbytes for w in sent), upload=prep.upload,
        workers_requested=prep.workers_requested, serial_predicted=alg.predicted(plan).to_dict(), **workers,
        pmuls_level0=run.counts.pmuls * plan.params.level_work(alg.input_level(plan)),
        algorithm_candidates=None if choice is None else [asdict(c) for c in choice.candidates],
        algorithm_reason=None if choice is None else choice.reason,
        # the algorithm's own figures; a mask hides partial sums up to the conv's gain on inputs in [-1, 1]
        figures={**alg.figures(plan, output_gain(w) * INPUT_BOUND), **parts},
    )


def _parallel_fields(run: LayerRun, split: ParallelPlan | None, runs: list[LayerRun], unit: UnitCosts,
                     latency: float) -> dict:
    """The record's per-worker figures (workers_match: every run's per-worker counts equal the split's)."""
    par = run.parallel
    if par is None or split is None:
        return {"workers_match": True}
    transfer = float(np.mean([r.parallel.transfer_s for r in runs if r.parallel is not None]))
    floor = max(par.floors(unit)) + transfer
    return {
        "workers_match": all(r.parallel is not None and r.parallel.worker_counts() == split.worker_counts()
                             for r in runs),
        "workers": par.workers, "extra_rotations": split.extra_rotations,
        "worker_counts": [c.to_dict() for c in par.worker_counts()], "worker_floor_s": par.floors(unit),
        "transfer_bytes": par.transfer_bytes, "transfer_s": transfer,
        "parallel_floor_s": floor, "latency_over_parallel_floor": latency / floor if floor > 0 else None,
    }


def measure_layer(prep: PreparedLayer, unit: UnitCosts | None = None) -> LayerRecord:
    """Run the prepared layer once (timed) and gather its record."""
    return layer_record(prep, run_layer(prep), unit)


def _downloads(backend: Backend, outputs: list[Any], layout: Layout) -> list[Wire]:
    """The outputs as they cross the network: whole, or extracted where the layout reads some
    coefficients alone (`Layout.reads`, `Backend.to_wire`); their bytes measured (SEAL) or modelled."""
    reads = layout.reads()
    if reads is None:
        return [backend.to_wire(c) for c in outputs]
    if len(reads) != len(outputs):
        raise ValueError(f"{len(outputs)} outputs, the layout reads {len(reads)}")
    return [backend.to_wire(c, r) for c, r in zip(outputs, reads)]
