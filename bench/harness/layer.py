"""One measured convolution: weights, keys, encoding, encrypted run, error and floor.

`prepare_layer` does all the set-up (nothing of it is timed); `run_layer` is the timed
part; `layer_record` checks the result against torch.nn.functional.conv2d and gathers
the figures into a `LayerRecord`. `artemis layer` and the layer benchmarks both go
through these three, so the README's figures and the command's come from one path.
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from heconv.backends import Backend, OpCounts
from heconv.bounds import check_bound, output_gain
from heconv.conv import CompiledConv, ConvPlan, compile_conv, decrypt_output, plan_conv, run_conv
from heconv.cost import UnitCosts, floor_seconds
from heconv.errors import InputError
from heconv.frontend import lower_model
from heconv.geometry import pack
from heconv.network import ConvOp, ServerConv, plan_network
from heconv.parallel import ConvPool, ParallelRun
from heconv.parallel_plan import ParallelPlan, plan_parallel
from heconv.params import CKKSParams
from heconv.schedule import dense_rotations
from models.checkpoint import safe_torch_load

from .memory import check_memory, plan_bytes
from .unit_costs import measure_unit_costs
from .upload import upload_inputs

FLOOR_TARGET = 1.15  # recorded per case (meets_floor_target), not asserted
INPUT_BOUND = 1.0  # the random input is uniform in [-INPUT_BOUND, INPUT_BOUND]


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a .npy header, checked against the file's size before any data is read."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
            offset = f.tell()
    except (ValueError, OSError, EOFError) as e:
        raise InputError(f"weights file {path}: not a plain .npy array ({e})") from None
    if dtype.hasobject:
        raise InputError(f"weights file {path}: holds Python objects; expected a real float array")
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have = path.stat().st_size - offset
    if need != have:
        raise InputError(f"weights file {path}: its header claims {list(shape)} {dtype} ({need:,} bytes), "
                         f"the file holds {have:,} bytes")
    return tuple(shape), dtype


def load_weights(path: str | Path, shape: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A real, finite weight array from .npy or .pt (a tensor saved with torch.save), checked
    for shape (against the header, before the data is read) and type."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"weights file {path} does not exist")
    if path.suffix == ".npy":
        found, dtype = _npy_header(path)
        if shape is not None and found != tuple(shape):
            raise InputError(f"weights file {path}: shape {list(found)}, expected [C_out, C_in, k, k] = {list(shape)}")
        if dtype.kind not in "fiu":
            raise InputError(f"weights file {path}: dtype {dtype}; expected real numbers (float or int)")
        w = np.load(path, allow_pickle=False)
    elif path.suffix in (".pt", ".pth"):
        obj = safe_torch_load(path, "weights file")
        if not isinstance(obj, torch.Tensor):
            raise InputError(f"weights file {path}: expected one tensor, got {type(obj).__name__}")
        if obj.is_complex():
            raise InputError(f"weights file {path}: dtype {obj.dtype}; expected real numbers")
        w = obj.detach().double().numpy()
    else:
        raise InputError(f"weights file {path}: expected a .npy or .pt file")
    if shape is not None and tuple(w.shape) != tuple(shape):
        raise InputError(f"weights file {path}: shape {list(w.shape)}, expected [C_out, C_in, k, k] = {list(shape)}")
    w = np.asarray(w, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise InputError(f"weights file {path}: holds NaN or Inf values")
    return w


def torch_conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: int) -> np.ndarray:
    """Reference: torch.nn.functional.conv2d in float64, 'same' padding."""
    b = None if bias is None else torch.from_numpy(bias)
    k = weight.shape[2]
    return F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(weight), b, stride=stride, padding=k // 2)[0].numpy()


@dataclass
class PreparedLayer:
    """A layer ready to run: plan, encoded plaintexts, keys, encrypted input; with workers > 1,
    its split and the worker pool (forked after compile; `close()` stops it). `backend` is the
    server's public view (no secret key); `client` holds the keys, uploaded the input (`upload`,
    `upload_bytes` on the wire) and decrypts the output."""

    plan: ConvPlan
    compiled: CompiledConv
    backend: Backend
    x: np.ndarray
    inputs: list[Any]
    weight: np.ndarray
    bias: np.ndarray | None
    galois_key_bytes: int
    setup_counts: OpCounts
    seed: int = 0
    parallel: ParallelPlan | None = None
    pool: ConvPool | None = None
    client: Backend | None = None
    upload: str = "seeded"
    upload_bytes: int = 0

    @property
    def predicted(self) -> OpCounts:
        """What a run must count: the parallel split's counts when there is one."""
        return self.parallel.predicted if self.parallel else self.plan.predicted

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def prepare_layer(
    weight: np.ndarray,
    bias: np.ndarray | None,
    height: int,
    width: int,
    stride: int,
    backend: Backend,
    seed: int = 0,
    name: str = "conv",
    check_bounds: bool = True,
    schedule: str = "output-rotation",
    workers: int = 1,
    upload: str = "seeded",
) -> PreparedLayer:
    """Plan, generate exactly the plan's Galois keys, encode, encrypt a random input in [-1, 1].

    With `check_bounds`, a layer whose outputs could exceed what the parameters hold is
    refused before any key or ciphertext exists (heconv.bounds). `schedule`: the rotation
    schedule (heconv.schedule; "auto" picks the baby step from the weights). `workers` > 1:
    split over that many processes (at most the layer's (bo, g) groups), forked here once
    the plaintexts are encoded. `backend` is the client's (it makes the keys and uploads the
    input, `upload`: heconv.traffic.UPLOADS); the server runs on its public view.
    """
    plan = plan_conv(weight, height, width, backend.params, stride=stride, has_bias=bias is not None, name=name,
                     schedule=schedule)
    if check_bounds:
        bias_max = 0.0 if bias is None else float(np.abs(bias).max())
        check_bound(name, output_gain(weight) * INPUT_BOUND + bias_max, backend.params, plan.level)
    check_memory(f"layer {name} ({plan.spec.c_in}->{plan.spec.c_out}, {height}x{width}, {len(plan.terms)} plaintexts)",
                 plan_bytes(backend.plaintext_bytes(plan.level), len(plan.terms), len(plan.rotation_steps),
                            plan.packing.n_in + plan.packing.n_out, workers))
    client = backend
    client.reset_counter()
    client.generate_galois_keys(plan.rotation_steps)
    server = client.public_view()  # after the keys: the view shares them, not the secret key
    compiled = compile_conv(plan, weight, bias, server)
    x = np.random.default_rng(seed + 1).uniform(-INPUT_BOUND, INPUT_BOUND, (plan.spec.c_in, height, width))
    inputs, nbytes = upload_inputs(pack(x, plan.packing), lambda v: client.encode(v, plan.level), client, server,
                                   upload)
    split = plan_parallel(plan, workers) if workers != 1 else None
    setup = client.reset_counter() + server.reset_counter()
    pool = ConvPool(server, {name: (compiled, split)}) if split and split.workers > 1 else None
    return PreparedLayer(plan, compiled, server, x, inputs, np.asarray(weight, dtype=np.float64),
                         bias, client.galois_key_bytes(), setup, seed, split, pool, client, upload, nbytes)


@dataclass
class LayerRun:
    outputs: list[Any]
    counts: OpCounts
    wall_s: float
    cpu_s: float  # every worker's CPU time
    parallel: ParallelRun | None = None


def run_layer(prep: PreparedLayer) -> LayerRun:
    """The timed part: the compiled layer on the encrypted input, counted (on the workers when split)."""
    b = prep.backend
    b.reset_counter()
    t, c = time.perf_counter(), time.process_time()
    if prep.pool is not None:
        outputs = prep.pool.run(prep.plan.spec.name, prep.inputs)
        wall = time.perf_counter() - t
        return LayerRun(outputs, b.reset_counter(), wall, prep.pool.last.cpu_s, prep.pool.last)
    outputs = run_conv(prep.compiled, prep.inputs, b)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return LayerRun(outputs, b.reset_counter(), wall, cpu)


@dataclass
class LayerRecord:
    """The figures of one measured layer (`to_dict` is what the command prints and the
    benchmark records in extra_info)."""

    layer: str
    c_in: int
    c_out: int
    hw: int
    kernel: int
    stride: int
    backend: str
    poly_modulus_degree: int
    coeff_mod_bit_sizes: list[int]
    c_n: int
    channel_slots: int
    n_in: int
    n_out: int
    schedule: str
    baby_step: int
    schedule_candidates: list[dict]
    predicted: dict
    counts: dict
    counts_match_plan: bool
    dense_formula_rotations: int
    kept_diagonals: int
    diagonal_groups: int
    kept_positions: int
    positional_groups: int
    weight_sparsity: float
    galois_keys: int
    galois_key_bytes: int
    encoded_plaintexts: int
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
    workers: int = 1
    serial_predicted: dict | None = None  # the single-process plan's counts (predicted: the split's)
    extra_rotations: int = 0  # baby steps computed by more than one worker
    worker_counts: list[dict] | None = None
    worker_floor_s: list[float] | None = None
    transfer_bytes: int = 0
    transfer_s: float = 0.0
    parallel_floor_s: float | None = None  # the larger worker's floor + transfer_s
    latency_over_parallel_floor: float | None = None
    bytes_client_to_server: int = 0  # the input ciphertexts as uploaded (`upload`), serialized
    bytes_server_to_client: int = 0  # the output ciphertexts
    algorithm: str = "slot"
    upload: str = "seeded"  # how the client encrypted the input (heconv.traffic.UPLOADS)

    def to_dict(self) -> dict:
        out = asdict(self)
        c, p = self.counts, self.predicted
        out.update(rotations=c["rotations"], key_switches=c["key_switches"], pmuls=c["pmuls"], adds=c["adds"],
                   plain_adds=c["plain_adds"], rescales=c["rescales"], encryptions=c["encryptions"],
                   predicted_rotations=p["rotations"], predicted_pmuls=p["pmuls"], ciphertexts_in=self.n_in,
                   ciphertexts_out=self.n_out)
        return out


def layer_record(prep: PreparedLayer, run: LayerRun, unit: UnitCosts | None = None,
                 runs: list[LayerRun] | None = None, latency_s: float | None = None) -> LayerRecord:
    """Decrypt `run`'s output, compare with torch, compute the floor. `runs` (all timed
    rounds, default just `run`) decide counts_match_plan; `latency_s` defaults to run's."""
    b, plan = prep.backend, prep.plan
    runs = runs or [run]
    client = prep.client or b
    y = decrypt_output(run.outputs, plan, client)
    client.reset_counter()
    ref = torch_conv(prep.x, prep.weight, prep.bias, plan.spec.stride)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # before the unit costs' operand pools
    if unit is None:
        unit = measure_unit_costs(client, level=plan.level)  # the client can make the keys a timing needs
    latency = run.wall_s if latency_s is None else latency_s
    floor = floor_seconds(run.counts, unit)
    w = prep.weight
    par, split = run.parallel, prep.parallel
    workers = _parallel_fields(par, split, runs, unit, latency)
    return LayerRecord(
        layer=plan.spec.name, c_in=plan.spec.c_in, c_out=plan.spec.c_out, hw=plan.spec.height,
        kernel=plan.spec.kernel, stride=plan.spec.stride, backend=b.name,
        poly_modulus_degree=plan.params.poly_modulus_degree, coeff_mod_bit_sizes=list(plan.params.coeff_mod_bit_sizes),
        c_n=plan.packing.c_n, channel_slots=plan.packing.channel_slots, n_in=plan.packing.n_in,
        n_out=plan.packing.n_out, schedule=plan.schedule_name, baby_step=plan.baby_step,
        schedule_candidates=[asdict(c) for c in plan.candidates],
        predicted=prep.predicted.to_dict(), counts=run.counts.to_dict(),
        counts_match_plan=all(r.counts == prep.predicted for r in runs) and workers.pop("workers_match"),
        dense_formula_rotations=dense_rotations(plan.packing, plan.spec.kernel, plan.baby_step),
        kept_diagonals=sum(len(d) for d in plan.diagonals), diagonal_groups=plan.packing.n_out * plan.packing.c_n,
        kept_positions=sum(len(p) for p in plan.positions), positional_groups=plan.packing.n_in * plan.spec.kernel ** 2,
        weight_sparsity=float((w == 0).mean()), galois_keys=len(b.galois_steps), galois_key_bytes=prep.galois_key_bytes,
        encoded_plaintexts=prep.setup_counts.encodes, latency_s=latency,
        cpu_s=float(np.mean([r.cpu_s for r in runs])), floor_s=floor,
        latency_over_floor=latency / floor if floor > 0 else None,
        meets_floor_target=latency <= FLOOR_TARGET * floor, unit_costs_s=unit.to_dict(),
        max_abs_error=float(np.abs(y - ref).max()), max_abs_reference=float(np.abs(ref).max()),
        peak_rss_bytes=peak, seed=prep.seed,
        serial_predicted=plan.predicted.to_dict(), **workers,
        bytes_client_to_server=prep.upload_bytes, upload=prep.upload,
        bytes_server_to_client=sum(b.ciphertext_bytes(c) for c in run.outputs),
    )


def _parallel_fields(par: ParallelRun | None, split: ParallelPlan | None, runs: list[LayerRun], unit: UnitCosts,
                     latency: float) -> dict:
    """The record's per-worker figures (workers_match: every run's per-worker counts equal the split's)."""
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


@dataclass
class ModelLayer:
    """One conv of a real model as the engine runs it: BN folded, at its own input size."""

    name: str
    weight: np.ndarray
    bias: np.ndarray | None
    height: int
    width: int
    stride: int

    @property
    def shape_key(self) -> tuple[int, int, int, int, int]:
        """(c_in, c_out, kernel, height, stride): layers with the same key run the same packing."""
        c_out, c_in, k, _ = self.weight.shape
        return (c_in, c_out, k, self.height, self.stride)


def model_layers(model, input_shape: tuple[int, int, int], params: CKKSParams) -> list[ModelLayer]:
    """Every conv of `model` in execution order, lowered (BN folded) with its input size.

    >>> import torch, models
    >>> from heconv.params import params_for_input
    >>> torch.manual_seed(0) and None
    >>> ls = model_layers(models.build_model("resnet20", 1, 10).eval(), (1, 8, 8), params_for_input(8, 8))
    >>> [(l.name, l.shape_key) for l in ls[:2]]
    [('conv1', (1, 16, 3, 8, 1)), ('layers.0.0.conv1', (16, 16, 3, 8, 1))]
    """
    net = lower_model(model, input_shape)
    ops = {op.name: op for op in net.ops if isinstance(op, ConvOp)}
    out = []
    for a in plan_network(net, params).actions:
        if isinstance(a, ServerConv):
            op = ops[a.name]
            out.append(ModelLayer(a.name, np.asarray(op.weight, dtype=np.float64), op.bias, a.plan.spec.height,
                                  a.plan.spec.width, a.plan.spec.stride))
    return out


def representative_layers(layers: list[ModelLayer]) -> list[ModelLayer]:
    """The first layer of each distinct shape (c_in, c_out, kernel, height, stride), in order."""
    seen: dict[tuple, ModelLayer] = {}
    for layer in layers:
        seen.setdefault(layer.shape_key, layer)
    return list(seen.values())
