"""Fully connected layer by Gazelle's hybrid diagonal method, zero diagonals skipped.

Sizes are padded to powers of two: n_o >= outputs, n_i >= max(inputs, n_o). The S slots
hold L = S / n_i interleaved lanes (slot i*L + s is element i of lane s); A = min(L, n_o)
lanes are active, each handling T = n_o / A of the n_o hybrid diagonals:

    input   V[i*L + s]  = v[(i + s*T) mod n_i]                      (client packs this)
    plain   P_t[i*L + s] = W[i mod n_o, (i + s*T + t) mod n_i]      (s < A)
    acc     = sum over kept t of  Rot(V, t*L) * P_t
    reduce  lanes (steps 1, 2, .., A/2) then rows (steps n_o*L, .., n_i*L/2)

Output r lands in slot r*L. Rotations: (T - 1) + log2(A) + log2(n_i / n_o), which is
DESIGN.md's (n_i*n_o/S - 1) + log2(S/n_o) when n_i*n_o >= S.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .backends.base import Backend, OpCounts
from .basics import next_pow2
from .params import CKKSParams


@dataclass(frozen=True)
class LinearPlan:
    """Everything `run_linear` does, decided from the weights alone."""

    name: str
    n_in: int
    n_out: int
    n_i: int
    n_o: int
    slots: int
    lanes: int
    active_lanes: int
    steps_per_lane: int
    kept: list[int]
    reduce_steps: list[int]
    rotation_steps: list[int]
    has_bias: bool
    level: int
    params: CKKSParams
    predicted: OpCounts = field(default_factory=OpCounts)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CompiledLinear:
    plan: LinearPlan
    weights: list[Any]
    bias: Any


def _padded(weight: np.ndarray, n_o: int, n_i: int) -> np.ndarray:
    w = np.zeros((n_o, n_i))
    w[: weight.shape[0], : weight.shape[1]] = weight
    return w


def _diagonals(weight: np.ndarray, plan: LinearPlan) -> np.ndarray:
    """P_t for every t as one array [T, S]."""
    n_i, n_o, big_l, a, t_n = plan.n_i, plan.n_o, plan.lanes, plan.active_lanes, plan.steps_per_lane
    w = _padded(weight, n_o, n_i)
    i = np.arange(n_i)[:, None]
    s = np.arange(big_l)[None, :]
    out = np.zeros((t_n, n_i, big_l))
    for t in range(t_n):
        out[t] = w[i % n_o, (i + s * t_n + t) % n_i]
    out[:, :, a:] = 0.0
    return out.reshape(t_n, plan.slots)


def plan_linear(weight: np.ndarray, params: CKKSParams, has_bias: bool = False, name: str = "fc", level: int = 0,
                lane_stride: int | None = None) -> LinearPlan:
    """Plan y = W v for W [n_out, n_in].

    `lane_stride` reads an input already laid out by the engine rather than packed by
    the client: element i in slot i*lane_stride (i < S/lane_stride, lane 0 only), as
    global pooling leaves channel sums. Then n_i = S/lane_stride and one lane is active.

    >>> from heconv.params import ckks_params
    >>> p = plan_linear(np.ones((10, 512)), ckks_params(depth=1))
    >>> (p.n_o, p.n_i, p.lanes, p.steps_per_lane, p.predicted.rotations)   # 1 + log2(4096/16)
    (16, 512, 8, 2, 9)
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"layer {name}: linear weight must have shape [n_out, n_in], got {list(w.shape)}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"layer {name}: linear weight {list(w.shape)} holds NaN or Inf values")
    if not 0 <= level < params.depth:
        raise ValueError(f"layer {name}: input at level {level} cannot be rescaled (depth {params.depth})")
    n_out, n_in = w.shape
    n_o = next_pow2(n_out)
    if lane_stride is None:
        n_i = next_pow2(max(n_in, n_o))
        if n_i > params.slots:
            raise ValueError(f"layer {name}: {n_in} inputs pad to {n_i}, more than the {params.slots} slots")
        lanes = params.slots // n_i
        a = min(lanes, n_o)
    else:
        lanes, n_i, a = lane_stride, params.slots // lane_stride, 1
        if n_in > n_i or n_o > n_i:
            raise ValueError(f"layer {name}: {n_in} inputs / {n_o} padded outputs do not fit the "
                             f"{n_i} elements of stride {lane_stride}")
    shape = LinearPlan(name, n_in, n_out, n_i, n_o, params.slots, lanes, a, n_o // a, [], [], [], has_bias, level,
                       params)
    diag = _diagonals(w, shape)
    kept = [int(t) for t in np.nonzero(np.any(diag != 0, axis=1))[0]]
    if not kept:
        return dataclasses.replace(shape, predicted=OpCounts(encryptions=1))
    reduce_steps = [1 << k for k in range(int(np.log2(a)))] + [
        n_o * lanes * (1 << k) for k in range(int(np.log2(n_i // n_o)))
    ]
    rot = sum(1 for t in kept if t) + len(reduce_steps)
    adds = len(kept) - 1 + len(reduce_steps)
    return dataclasses.replace(
        shape, kept=kept, reduce_steps=reduce_steps,
        rotation_steps=sorted({t * lanes for t in kept if t} | set(reduce_steps)),
        predicted=OpCounts(rotations=rot, key_switches=rot, pmuls=len(kept), adds=adds, plain_adds=int(has_bias),
                           rescales=1),
    )


def compile_linear(plan: LinearPlan, weight: np.ndarray, bias: np.ndarray | None, backend: Backend,
                   input_scale: float | None = None) -> CompiledLinear:
    """Encode the kept diagonals (at the input level) and the bias (one level down)."""
    w = np.asarray(weight, dtype=np.float64)
    if w.shape != (plan.n_out, plan.n_in):
        raise ValueError(f"layer {plan.name}: weight {list(w.shape)}, the plan was made for {[plan.n_out, plan.n_in]}")
    if (bias is not None) != plan.has_bias:
        raise ValueError(f"layer {plan.name}: the plan was made {'with' if plan.has_bias else 'without'} a bias")
    if bias is not None and np.shape(bias) != (plan.n_out,):
        raise ValueError(f"layer {plan.name}: bias must have shape [{plan.n_out}], got {list(np.shape(bias))}")
    diag = _diagonals(w, plan)
    divisor = backend.rescale_divisor(plan.level)
    weights = [backend.encode(diag[t], plan.level, divisor) for t in plan.kept]
    b = None
    if bias is not None or not plan.kept:
        vec = np.zeros(plan.slots)
        if bias is not None:
            vec[np.arange(plan.n_out) * plan.lanes] = bias
        b = backend.encode(vec, plan.level + 1, input_scale or plan.params.scale)
    return CompiledLinear(plan, weights, b)


def pack_linear_input(v: np.ndarray, plan: LinearPlan) -> np.ndarray:
    """Client side: V[i*L + s] = v[(i + s*T) mod n_i] (v zero-padded to n_i)."""
    v = np.asarray(v, dtype=np.float64).ravel()
    if v.size != plan.n_in:
        raise ValueError(f"layer {plan.name}: expected {plan.n_in} inputs, got {v.size}")
    vp = np.zeros(plan.n_i)
    vp[: v.size] = v
    i = np.arange(plan.n_i)[:, None]
    s = np.arange(plan.lanes)[None, :]
    return vp[(i + s * plan.steps_per_lane) % plan.n_i].ravel()


def read_linear_output(values: np.ndarray, plan: LinearPlan) -> np.ndarray:
    """Client side: output r sits in slot r*L."""
    return np.asarray(values)[np.arange(plan.n_out) * plan.lanes]


def run_linear(layer: CompiledLinear, ct: Any, backend: Backend) -> Any:
    plan = layer.plan
    if backend.level(ct) != plan.level:
        raise ValueError(f"layer {plan.name}: input at level {backend.level(ct)}, the plan expects {plan.level}")
    if not plan.kept:
        return backend.encrypt_plain(layer.bias)
    acc = None
    for t, w in zip(plan.kept, layer.weights):
        x = backend.rotate(ct, t * plan.lanes) if t else ct
        prod = backend.multiply_plain(x, w)
        if acc is None:
            acc = prod
        else:
            backend.add_inplace(acc, prod)
    for step in plan.reduce_steps:
        backend.add_inplace(acc, backend.rotate(acc, step))
    backend.rescale_inplace(acc)
    if layer.bias is not None:
        backend.add_plain_inplace(acc, layer.bias)
    return acc
