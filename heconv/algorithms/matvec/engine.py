"""Compile and run a matvec plan (heconv.algorithms.matvec.plan): the plaintexts Rot_{-g*B}(diag[bo, bi, k])
encoded once, then baby steps per input, multiply-adds per (output, giant step), giant rotations, one rescale
per output. The run executes the plan and never changes it, so its counts equal `plan.predicted`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...backends.base import Backend
from ...checks import check_compile, check_run_inputs
from ...conv import rotate_inputs
from .complex import ciphertext_diagonal_vectors, real_plan
from .geometry import output_slots
from .plan import MatvecPlan


@dataclass
class CompiledMatvec:
    """A plan with its plaintexts on one backend. terms: (bo, g, bi, j, plaintext) of each kept diagonal
    k = g*B + j, in run order (output bo, then its giant steps g ascending, then input bi and k), the order
    `run_order` gives and a split's shares index; outputs: per output, the bias (or, for an empty output,
    what it encrypts)."""

    plan: MatvecPlan
    terms: list[tuple[int, int, int, int, Any]]
    outputs: list[Any]


def run_order(plan: MatvecPlan) -> list[tuple[int, int, int, int]]:
    """(bo, g, bi, k) of every kept diagonal in run order.

    >>> from heconv.params import ckks_params
    >>> from heconv.algorithms.matvec.plan import plan_matvec
    >>> p = plan_matvec(np.ones((2, 2, 1, 1)), 1, 1, ckks_params(depth=1), baby_step=1, complex_pack=False)  # k = 0, 1
    >>> run_order(p)
    [(0, 0, 0, 0), (0, 1, 0, 1)]
    """
    big_b, out = plan.baby_step, []
    for bo, row in enumerate(plan.diagonals):
        for gs in plan.giants[bo]:
            out += [(bo, gs, bi, k) for bi, ks in enumerate(row) for k in ks if k // big_b == gs]
    return out


def bias_vector(bias: np.ndarray | None, bo: int, plan: MatvecPlan) -> np.ndarray:
    """Output ciphertext bo's bias in the output layout: each channel's bias on its output pixels, tiled to S
    with the output's period (complex packing: real block 2*bo's plus i times 2*bo + 1's).

    >>> from heconv.params import ckks_params
    >>> from heconv.algorithms.matvec.plan import plan_matvec
    >>> params = ckks_params(depth=1, poly_modulus_degree=16, allow_insecure=True)
    >>> p = plan_matvec(np.ones((2, 1, 1, 1)), 2, 2, params, complex_pack=False)
    >>> bias_vector(np.array([1., 2.]), 0, p)[:8].tolist()           # P = 4, c_n = 2
    [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    >>> bias_vector(np.array([1., 2.]), 0, plan_matvec(np.ones((2, 1, 1, 1)), 2, 2, params, complex_pack=True))[:2]
    array([1.+2.j, 1.+2.j])
    """
    g = plan.geometry
    if g.complex_pack:
        real = real_plan(plan)
        return bias_vector(bias, 2 * bo, real) + 1j * bias_vector(bias, 2 * bo + 1, real)
    block = np.zeros(g.out_period)
    if bias is not None:
        for q in range(g.parities):
            slots = output_slots(g, q)
            for f in range(g.out_frames):
                o = bo * g.out_channels_per_ct + q * g.out_frames + f
                if o < len(bias):
                    block[f * g.channel_slots + slots] = bias[o]
    return np.tile(block, g.slots // g.out_period)


def compile_matvec(plan: MatvecPlan, weight: np.ndarray, bias: np.ndarray | None, backend: Backend,
                   input_scale: float | None = None) -> CompiledMatvec:
    """Encode the plan's plaintexts at the input level, scaled by the prime the rescale divides by (the
    output comes back at the input scale); the bias at the output level. Without a rescale the weights
    are at 2^weight_scale_bits and the bias at the products' scale. Touches no ciphertext."""
    g = plan.geometry
    w, b = check_compile(plan, weight, bias, backend)
    big_b = plan.baby_step
    if plan.rescale:
        w_scale, out_scale = backend.rescale_divisor(plan.level), input_scale or plan.params.scale
    else:
        w_scale = 2.0 ** plan.weight_scale_bits
        out_scale = (input_scale or 2.0 ** plan.input_scale_bits) * w_scale
    terms: list[tuple[int, int, int, int, Any]] = []
    vectors: dict[tuple[int, int], dict[int, np.ndarray]] = {}  # output bo's, while its terms are encoded
    for bo, gs, bi, k in run_order(plan):
        v = None
        if backend.tracks_values:
            if (bo, bi) not in vectors:
                vectors = {key: vs for key, vs in vectors.items() if key[0] == bo}
                ks = list(plan.diagonals[bo][bi])
                vectors[(bo, bi)] = dict(zip(ks, ciphertext_diagonal_vectors(w, g, bo, bi, ks)))
            # pre-rotated right by g*B: the giant step brings it back
            vec = vectors[(bo, bi)][k]
            v = np.roll(np.tile(vec, g.slots // len(vec)), gs * big_b)
        terms.append((bo, gs, bi, k % big_b, backend.encode(v, plan.level, w_scale)))
    empty = set(plan.empty_outputs)
    outputs = [backend.encode(bias_vector(b, bo, plan) if backend.tracks_values else None, plan.output_level,
                              out_scale) if (plan.has_bias or bo in empty) else None
               for bo in range(g.n_out)]
    return CompiledMatvec(plan, terms, outputs)


def accumulate(layer: CompiledMatvec, rotated: Mapping[int, Mapping[int, Any]], start: int, end: int,
               backend: Backend) -> dict[int, Any]:
    """Sum terms[start:end] (whole (bo, g) groups): each group's multiply-adds, giant-step rotated, added
    into a partial Y[bo]. Returns {bo: partial Y[bo]}, neither rescaled nor biased."""
    big_b, terms = layer.plan.baby_step, layer.terms
    partial: dict[int, Any] = {}
    i = start
    while i < end:
        bo, gs, bi, j, plain = terms[i]
        q = backend.multiply_plain(rotated[bi][j], plain)
        i += 1
        while i < end and terms[i][:2] == (bo, gs):
            _, _, bi, j, plain = terms[i]
            backend.add_inplace(q, backend.multiply_plain(rotated[bi][j], plain))
            i += 1
        if gs:
            q = backend.rotate(q, gs * big_b)
        if bo in partial:
            backend.add_inplace(partial[bo], q)
        else:
            partial[bo] = q
    return partial


def finish_output(layer: CompiledMatvec, bo: int, y: Any, backend: Backend) -> None:
    """Complete output bo in place: its rescale (where the plan rescales), the fold's rotate-and-adds
    (after the rescale: at one prime fewer), then its bias (if any)."""
    if layer.plan.rescale:
        backend.rescale_inplace(y)
    for step in layer.plan.geometry.fold_steps:
        backend.add_inplace(y, backend.rotate(y, step))
    if layer.outputs[bo] is not None:
        backend.add_plain_inplace(y, layer.outputs[bo])


def run_matvec(layer: CompiledMatvec, inputs: list[Any], backend: Backend) -> list[Any]:
    """Evaluate the layer on n_in input ciphertexts; returns n_out output ciphertexts in the output layout
    (a stride-2 output multiplexed at the strided resolution)."""
    plan = layer.plan
    check_run_inputs(plan, inputs, plan.geometry.n_in, plan.geometry.c_n, backend)
    # Baby steps: once per input and distinct j, shared by every output.
    rotated = rotate_inputs(dict(enumerate(inputs)), plan.input_shifts, backend)
    partial = accumulate(layer, rotated, 0, len(layer.terms), backend)
    outputs: list[Any] = []
    for bo in range(plan.geometry.n_out):
        if bo not in partial:
            outputs.append(backend.encrypt_plain(layer.outputs[bo]))
            continue
        finish_output(layer, bo, partial[bo], backend)
        outputs.append(partial[bo])
    return outputs
