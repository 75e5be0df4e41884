"""One measured convolution under any registered algorithm: weights, keys, encoding, encrypted run.

`prepare_layer` does all the set-up (nothing of it is timed); `run_layer` is the timed
part; `bench.harness.layer_record.layer_record` checks the result against
torch.nn.functional.conv2d and gathers the figures into a `LayerRecord`. `artemis layer`,
the layer benchmarks and the peers suite all go through these three, for every algorithm,
so the README's figures and the command's come from one path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from heconv.algorithms import ALGORITHMS, DEFAULT_ALGORITHM, ConvAlgorithm, get_algorithm
from heconv.algorithms.base import NetworkContext
from heconv.algorithms.choice import AlgorithmChoice, auto_algorithms
from heconv.algorithms.choice import choose_algorithm as pick_algorithm
from heconv.backends import Backend, OpCounts
from heconv.bounds import check_bound, conv_output_bound
from heconv.errors import InputError
from heconv.frontend import lower_model
from heconv.network import ConvOp, ServerConv, plan_network
from heconv.parallel import ConvPool, ParallelRun
from heconv.parallel_plan import ParallelPlan
from heconv.params import CKKSParams
from models.checkpoint import safe_torch_load

from .memory import check_memory, plan_bytes, reset_peak_rss
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
    """A layer ready to run under any registered algorithm (heconv.algorithms): plan, encoded plaintexts,
    keys, encrypted input; with workers > 1 and an algorithm that splits, its split and the worker pool
    (forked after compile; `close()` stops it). `backend` is the server's public view (no secret key);
    `client` holds the keys, uploaded the input (`upload`, `upload_bytes` on the wire) and decrypts the
    output. `choice`: the choice among algorithms that picked this one (--schedule auto), else None."""

    plan: Any
    compiled: Any
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
    algorithm: str = DEFAULT_ALGORITHM
    choice: AlgorithmChoice | None = None
    workers_requested: int = 1

    @property
    def alg(self) -> ConvAlgorithm:
        return get_algorithm(self.algorithm)

    @property
    def predicted(self) -> OpCounts:
        """What a run must count: the parallel split's counts when there is one."""
        return self.parallel.predicted if self.parallel else self.alg.predicted(self.plan)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def plan_layer(weight: np.ndarray, has_bias: bool, height: int, width: int, stride: int, params: CKKSParams,
               name: str = "conv", schedule: str = "output-rotation", workers: int = 1,
               algorithm: str = DEFAULT_ALGORITHM, choose_algorithm: bool = False,
               options: dict[str, Any] | None = None,
               output_bound: float | None = None) -> tuple[str, Any, AlgorithmChoice | None]:
    """(algorithm, plan, choice) of one conv: `algorithm`'s plan (`schedule` where it takes one; `options`,
    default its `network_options` of a lone conv), or, with `choose_algorithm` and schedule "auto" under an
    algorithm that takes schedules, the choice `artemis infer` makes per conv (heconv.algorithms.choice):
    the registered algorithm of the lowest predicted time on `workers` processes among those that keep the
    protocol's traffic, each with its own best schedule. `output_bound`: the largest |output| (a lone
    conv's NetworkContext.output_bound), which lets the slot engine and matvec run at the last level."""

    def plan_with(n: str, opts: dict[str, Any] | None = None):
        alg = get_algorithm(n)
        context = NetworkContext(output_bound=output_bound, params=params)
        opts = dict(alg.network_options(context) if opts is None else opts)
        if alg.takes_schedule:
            opts["schedule"] = schedule
        return alg.plan(weight, height, width, params, stride=stride, has_bias=has_bias, name=name, **opts)

    if choose_algorithm and schedule == "auto" and get_algorithm(algorithm).takes_schedule:
        c = pick_algorithm(ALGORITHMS, auto_algorithms(ALGORITHMS, "hybrid"), plan_with, workers)
        return c.algorithm, c.plan, c
    return algorithm, plan_with(algorithm, options), None


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
    algorithm: str = DEFAULT_ALGORITHM,
    choose_algorithm: bool = False,
    options: dict[str, Any] | None = None,
    value_bound: float | None = None,
) -> PreparedLayer:
    """Plan (`plan_layer`), generate exactly the plan's Galois keys, encode, encrypt a random input in [-1, 1].

    With `check_bounds`, a layer whose outputs could exceed what the parameters hold is
    refused before any key or ciphertext exists (heconv.bounds). `schedule`: the rotation
    schedule (heconv.schedule; "auto" picks the baby step from the weights). `workers` > 1:
    split over that many processes (at most the layer's (bo, g) groups) when the algorithm splits,
    forked here once the plaintexts are encoded. `backend` is the client's (it makes the keys and
    uploads the input in the algorithm's input layout, `upload`: heconv.traffic.UPLOADS); the server
    runs on its public view. `value_bound`: a bound on the input's values (at least the random input's
    INPUT_BOUND) for the plan (heconv.network.plan_network's), which may put the conv at the last level.
    """
    reset_peak_rss()  # the record's peak memory is this layer's
    bound = None if value_bound is None else conv_output_bound(weight, bias, max(value_bound, INPUT_BOUND))
    algorithm, plan, choice = plan_layer(weight, bias is not None, height, width, stride, backend.params, name,
                                         schedule, workers, algorithm, choose_algorithm, options, bound)
    alg = get_algorithm(algorithm)
    if check_bounds:
        check_bound(name, alg.output_layout(plan).modulus_factor * conv_output_bound(weight, bias, INPUT_BOUND),
                    backend.params, *alg.bound_point(plan))
    lay_in, lay_out, steps = alg.input_layout(plan), alg.output_layout(plan), alg.rotation_steps(plan)
    check_memory(f"layer {name} ({plan.spec.c_in}->{plan.spec.c_out}, {height}x{width}, {alg.plaintexts(plan)} "
                 "plaintexts)", plan_bytes(backend.plaintext_bytes(plan.level), alg.plaintexts(plan), len(steps),
                                           lay_in.ciphertexts + lay_out.ciphertexts, workers))
    client = backend
    client.reset_counter()
    client.generate_galois_keys(steps)
    server = client.public_view()  # after the keys: the view shares them, not the secret key
    compiled = alg.compile(plan, weight, bias, server)
    x = np.random.default_rng(seed + 1).uniform(-INPUT_BOUND, INPUT_BOUND, (plan.spec.c_in, height, width))
    level = alg.input_level(plan)
    inputs, nbytes = upload_inputs(lay_in.pack(x), lambda v: lay_in.encode(client, v, level), client, server,
                                   upload)
    split = alg.split(plan, workers) if workers != 1 and alg.parallel else None
    setup = client.reset_counter() + server.reset_counter()
    pool = ConvPool(server, {name: (compiled, split)}) if split and split.workers > 1 else None
    return PreparedLayer(plan, compiled, server, x, inputs, np.asarray(weight, dtype=np.float64),
                         bias, client.galois_key_bytes(), setup, seed, split, pool, client, upload, nbytes, algorithm,
                         choice, workers)


@dataclass
class LayerRun:
    outputs: list[Any]
    counts: OpCounts
    wall_s: float
    cpu_s: float  # every worker's CPU time
    parallel: ParallelRun | None = None
    parts: dict[str, float] = field(default_factory=dict)  # the parts `run_timed` timed apart, inside wall_s


def run_layer(prep: PreparedLayer) -> LayerRun:
    """The timed part: the compiled layer on the encrypted input, counted (on the workers when split)."""
    b = prep.backend
    b.reset_counter()
    t, c = time.perf_counter(), time.process_time()
    if prep.pool is not None:
        outputs = prep.pool.run(prep.plan.spec.name, prep.inputs)
        wall = time.perf_counter() - t
        return LayerRun(outputs, b.reset_counter(), wall, prep.pool.last.cpu_s, prep.pool.last)
    outputs, parts = prep.alg.run_timed(prep.compiled, prep.inputs, b)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return LayerRun(outputs, b.reset_counter(), wall, cpu, parts=parts)


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
