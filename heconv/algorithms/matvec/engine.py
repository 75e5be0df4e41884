"""Compile and run a matvec plan (heconv.algorithms.matvec.plan): the plaintexts Rot_{-g*B}(diag[bo, bi, k])
encoded once, then baby steps per input, multiply-adds per (output, giant step), giant rotations, one rescale
per output. The run executes the plan and never changes it, so its counts equal `plan.predicted`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...backends.base import Backend
from ...checks import check_compile, check_run_inputs
from .geometry import diagonal_vectors, output_slots
from .plan import MatvecPlan


@dataclass
class CompiledMatvec:
    """A plan with its plaintexts on one backend, in run order: steps[bo] = [(g, [(bi, j, plaintext), ...])]
    for each kept giant step g of output bo; and, per output, the bias (or, for an empty output, what it
    encrypts)."""

    plan: MatvecPlan
    steps: list[list[tuple[int, list[tuple[int, int, Any]]]]]
    outputs: list[Any]


def bias_vector(bias: np.ndarray | None, bo: int, plan: MatvecPlan) -> np.ndarray:
    """Output block bo's bias in the output layout: each channel's bias on its output pixels, tiled to S.

    >>> from heconv.params import ckks_params
    >>> from heconv.algorithms.matvec.plan import plan_matvec
    >>> p = plan_matvec(np.ones((2, 1, 1, 1)), 2, 2, ckks_params(depth=1, poly_modulus_degree=16, allow_insecure=True))
    >>> bias_vector(np.array([1., 2.]), 0, p)[:8].tolist()           # P = 4, c_n = 2
    [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    """
    g = plan.geometry
    block = np.zeros(g.period)
    if bias is not None:
        for q in range(g.parities):
            slots = output_slots(g, q)
            for f in range(g.c_n):
                o = bo * g.out_channels_per_ct + q * g.c_n + f
                if o < len(bias):
                    block[f * g.channel_slots + slots] = bias[o]
    return np.tile(block, g.slots // g.period)


def compile_matvec(plan: MatvecPlan, weight: np.ndarray, bias: np.ndarray | None, backend: Backend,
                   input_scale: float | None = None) -> CompiledMatvec:
    """Encode the plan's plaintexts at the input level, scaled by the prime the rescale divides by (the
    output comes back at the input scale); the bias at the output level. Without a rescale the weights
    are at 2^weight_scale_bits and the bias at the products' scale. Touches no ciphertext."""
    g = plan.geometry
    w, b = check_compile(plan, weight, bias, backend)
    reps, big_b = g.slots // g.period, plan.baby_step
    if plan.rescale:
        w_scale, out_scale = backend.rescale_divisor(plan.level), input_scale or plan.params.scale
    else:
        w_scale = 2.0 ** plan.weight_scale_bits
        out_scale = (input_scale or 2.0 ** plan.input_scale_bits) * w_scale
    steps: list[list[tuple[int, list[tuple[int, int, Any]]]]] = []
    for bo, row in enumerate(plan.diagonals):
        by_giant: dict[int, list[tuple[int, int, Any]]] = {gs: [] for gs in plan.giants[bo]}
        for bi, ks in enumerate(row):
            vectors = diagonal_vectors(w, g, bo, bi, list(ks)) if backend.tracks_values and ks else None
            for r, k in enumerate(ks):
                v = None
                if vectors is not None:  # pre-rotated right by g*B: the giant step brings it back
                    v = np.roll(np.tile(vectors[r], reps), (k // big_b) * big_b)
                by_giant[k // big_b].append((bi, k % big_b, backend.encode(v, plan.level, w_scale)))
        steps.append(list(by_giant.items()))
    empty = set(plan.empty_outputs)
    outputs = [backend.encode(bias_vector(b, bo, plan) if backend.tracks_values else None, plan.output_level,
                              out_scale) if (plan.has_bias or bo in empty) else None
               for bo in range(g.n_out)]
    return CompiledMatvec(plan, steps, outputs)


def run_matvec(layer: CompiledMatvec, inputs: list[Any], backend: Backend) -> list[Any]:
    """Evaluate the layer on n_in input ciphertexts; returns n_out output ciphertexts in the output layout
    (a stride-2 output multiplexed at the strided resolution)."""
    plan = layer.plan
    g, big_b = plan.geometry, plan.baby_step
    check_run_inputs(plan, inputs, g.n_in, g.c_n, backend)
    # Baby steps: once per input and distinct j, shared by every output.
    rotated = [{0: x, **{j: backend.rotate(x, j) for j in plan.input_shifts[bi]}} for bi, x in enumerate(inputs)]
    outputs: list[Any] = []
    for bo, giants in enumerate(layer.steps):
        if not giants:
            outputs.append(backend.encrypt_plain(layer.outputs[bo]))
            continue
        y = None
        for gs, terms in giants:
            q = None
            for bi, j, plain in terms:
                prod = backend.multiply_plain(rotated[bi][j], plain)
                if q is None:
                    q = prod
                else:
                    backend.add_inplace(q, prod)
            if gs:
                q = backend.rotate(q, gs * big_b)
            if y is None:
                y = q
            else:
                backend.add_inplace(y, q)
        if plan.rescale:
            backend.rescale_inplace(y)
        if layer.outputs[bo] is not None:
            backend.add_plain_inplace(y, layer.outputs[bo])
        outputs.append(y)
    return outputs
