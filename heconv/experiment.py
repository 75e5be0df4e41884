"""One measured convolution: weights, keys, encoding, encrypted run, error and floor.

`prepare_layer` does all the set-up (nothing of it is timed); `measure_layer` runs the
compiled layer, checks the result against torch.nn.functional.conv2d and returns the
figures `artemis layer` prints and the benchmarks record.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .backend import Backend, OpCounts
from .conv import (
    CompiledConv,
    ConvPlan,
    compile_conv,
    decrypt_output,
    dense_rotations,
    encrypt_input,
    plan_conv,
    run_conv,
)
from .cost import UnitCosts, floor_seconds, measure_unit_costs
from .geometry import diagonal_index, next_pow2, packing_geometry, positional_index
from .params import CKKSParams, ckks_params


def random_conv_weights(
    c_out: int,
    c_in: int,
    kernel: int,
    slots: int,
    height: int,
    width: int,
    prune_diagonals: float = 0.0,
    prune_positions: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Kaiming-normal weights with a random fraction of diagonal / positional groups zeroed.

    The groups are the engine's (DESIGN.md section 4), from the same packing geometry.

    >>> w = random_conv_weights(16, 16, 3, 4096, 8, 8, prune_diagonals=0.5, seed=1)
    >>> w.shape, float((w == 0).mean())
    ((16, 16, 3, 3), 0.5)
    """
    for name, frac in (("prune_diagonals", prune_diagonals), ("prune_positions", prune_positions)):
        if not 0.0 <= frac <= 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1], got {frac}")
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, np.sqrt(2.0 / (c_in * kernel * kernel)), (c_out, c_in, kernel, kernel))
    g = packing_geometry(c_in, c_out, height, width, slots)
    bo, d = diagonal_index(c_out, c_in, g.c_n)
    diag_id = (bo * g.c_n + d)[:, :, None, None]
    n_diag = g.n_out * g.c_n
    dead = rng.permutation(n_diag)[: int(round(prune_diagonals * n_diag))]
    w[np.broadcast_to(np.isin(diag_id, dead), w.shape)] = 0.0
    bi, pos = positional_index(c_out, c_in, kernel, g.c_n)
    n_pos = g.n_in * kernel * kernel
    dead = rng.permutation(n_pos)[: int(round(prune_positions * n_pos))]
    w[np.isin(bi * kernel * kernel + pos, dead)] = 0.0
    return w


def zero_random_diagonals(weight: np.ndarray, c_n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Zero a random `fraction` of the diagonal groups (bo, d) of a [C_out, C_in, k, k] weight.

    >>> w = zero_random_diagonals(np.ones((4, 4, 1, 1)), 4, 0.5, np.random.default_rng(0))
    >>> int((w == 0).sum())
    8
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction of diagonal groups must be in [0, 1], got {fraction}")
    c_out, c_in = weight.shape[:2]
    bo, d = diagonal_index(c_out, c_in, c_n)
    ids = bo * c_n + d
    groups = np.unique(ids)
    dead = rng.choice(groups, int(round(fraction * len(groups))), replace=False)
    out = np.array(weight, dtype=np.float64, copy=True)
    out[np.isin(ids, dead)] = 0.0
    return out


def prune_model_diagonals(model, input_shape: tuple[int, int, int], params: CKKSParams, fraction: float, seed: int = 0) -> None:
    """Zero a random fraction of every conv's diagonal groups in place (synthetic sparsity).

    The groups come from the engine's own packing of each layer (`conv_packings`).
    """
    import torch

    from .lower import conv_packings

    rng = np.random.default_rng(seed)
    modules = dict(model.named_modules())
    for path, packing in conv_packings(model, input_shape, params).items():
        conv = modules[path]
        w = zero_random_diagonals(conv.weight.detach().double().numpy(), packing.c_n, fraction, rng)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w).to(conv.weight.dtype))


def load_weights(path: str | Path, shape: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A weight array from .npy or .pt (a tensor saved with torch.save), checked for shape."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {path} does not exist")
    if path.suffix == ".npy":
        try:
            w = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise ValueError(f"weights file {path}: not a plain .npy array ({e})") from None
    elif path.suffix in (".pt", ".pth"):
        import torch

        from .infer import safe_torch_load

        obj = safe_torch_load(path, "weights file")
        if not isinstance(obj, torch.Tensor):
            raise ValueError(f"weights file {path}: expected one tensor, got {type(obj).__name__}")
        w = obj.detach().double().numpy()
    else:
        raise ValueError(f"weights file {path}: expected a .npy or .pt file")
    if shape is not None and tuple(w.shape) != tuple(shape):
        raise ValueError(f"weights file {path}: shape {list(w.shape)}, expected [C_out, C_in, k, k] = {list(shape)}")
    return np.asarray(w, dtype=np.float64)


def torch_conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: int) -> np.ndarray:
    """Reference: torch.nn.functional.conv2d in float64, 'same' padding."""
    import torch
    import torch.nn.functional as F

    b = None if bias is None else torch.from_numpy(bias)
    k = weight.shape[2]
    return F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(weight), b, stride=stride, padding=k // 2)[0].numpy()


@dataclass
class PreparedLayer:
    """A layer ready to run: plan, encoded plaintexts, keys, encrypted input."""

    plan: ConvPlan
    compiled: CompiledConv
    backend: Backend
    x: np.ndarray
    inputs: list[Any]
    weight: np.ndarray
    bias: np.ndarray | None
    galois_key_bytes: int
    setup_counts: OpCounts


def prepare_layer(
    weight: np.ndarray,
    bias: np.ndarray | None,
    height: int,
    width: int,
    stride: int,
    backend: Backend,
    seed: int = 0,
    name: str = "conv",
) -> PreparedLayer:
    """Plan, generate exactly the plan's Galois keys, encode, encrypt a random input in [-1, 1]."""
    plan = plan_conv(weight, height, width, backend.params, stride=stride, has_bias=bias is not None, name=name)
    backend.reset_counter()
    backend.generate_galois_keys(plan.rotation_steps)
    compiled = compile_conv(plan, weight, bias, backend)
    x = np.random.default_rng(seed + 1).uniform(-1.0, 1.0, (plan.spec.c_in, height, width))
    inputs = encrypt_input(x, plan.packing, backend)
    return PreparedLayer(plan, compiled, backend, x, inputs, np.asarray(weight, dtype=np.float64),
                         bias, backend.galois_key_bytes(), backend.reset_counter())


def layer_params(hw: int, poly_modulus_degree: int | None = None, toy: bool = False) -> CKKSParams:
    """One-level CKKS parameters; by default the smallest secure N whose slots hold a channel."""
    return ckks_params(depth=1, poly_modulus_degree=poly_modulus_degree, min_slots=next_pow2(hw * hw), allow_insecure=toy)


def measure_layer(prep: PreparedLayer, unit: UnitCosts | None = None) -> dict:
    """Run the prepared layer once (timed), decrypt, compare with torch, compute the floor."""
    b, plan = prep.backend, prep.plan
    b.reset_counter()
    t = time.perf_counter()
    outputs = run_conv(prep.compiled, prep.inputs, b)
    latency = time.perf_counter() - t
    counts = b.reset_counter()
    y = decrypt_output(outputs, plan, b)
    b.reset_counter()
    ref = torch_conv(prep.x, prep.weight, prep.bias, plan.spec.stride)
    if unit is None:
        unit = measure_unit_costs(b, level=plan.level)
    floor = floor_seconds(counts, unit)
    return {
        "layer": plan.spec.name,
        "c_in": plan.spec.c_in,
        "c_out": plan.spec.c_out,
        "hw": plan.spec.height,
        "kernel": plan.spec.kernel,
        "stride": plan.spec.stride,
        "backend": b.name,
        "poly_modulus_degree": plan.params.poly_modulus_degree,
        "coeff_mod_bit_sizes": list(plan.params.coeff_mod_bit_sizes),
        "c_n": plan.packing.c_n,
        "channel_slots": plan.packing.channel_slots,
        "n_in": plan.packing.n_in,
        "n_out": plan.packing.n_out,
        "predicted_rotations": plan.predicted.rotations,
        "dense_formula_rotations": dense_rotations(plan.packing, plan.spec.kernel),
        "rotations": counts.rotations,
        "key_switches": counts.key_switches,
        "galois_keys": len(b.galois_steps),
        "galois_key_bytes": prep.galois_key_bytes,
        "pmuls": counts.pmuls,
        "predicted_pmuls": plan.predicted.pmuls,
        "adds": counts.adds,
        "plain_adds": counts.plain_adds,
        "rescales": counts.rescales,
        "encryptions": counts.encryptions,
        "encoded_plaintexts": prep.setup_counts.encodes,
        "counts_match_plan": counts == plan.predicted,
        "latency_s": latency,
        "floor_s": floor,
        "latency_over_floor": latency / floor if floor > 0 else None,
        "unit_costs_s": unit.to_dict(),
        "max_abs_error": float(np.abs(y - ref).max()),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


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
    >>> torch.manual_seed(0) and None
    >>> ls = model_layers(models.build_model("resnet20", 1, 10).eval(), (1, 8, 8), ckks_params(depth=1))
    >>> [(l.name, l.shape_key) for l in ls[:2]]
    [('conv1', (1, 16, 3, 8, 1)), ('layers.0.0.conv1', (16, 16, 3, 8, 1))]
    """
    from .lower import lower_model
    from .network import ConvOp, ServerConv, plan_network

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
