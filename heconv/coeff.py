"""HE convolution by coefficient encoding (Cheetah-style, docs/design.md, "The coefficient algorithm"), as plan ->
compile -> run, with no rotation at all.

A chunk of C_w input channels (each in a frame with its k - 1 halo) is one polynomial x;
output channel o's flipped kernel block is one polynomial w_o; the coefficients of x * w_o
at O + i*frame_w + j are the 'same' convolution; the kernels of `group` output channels share
one plaintext, each shifted to its own window. Per (output group, tile): one plaintext
multiplication per kept input chunk and their sum, at the chain's last level (one prime) with the
scale split between input and weights, so nothing is rescaled (`rescale=True`: at level 0, then one
rescale; heconv.coeff_plan.CoeffPlan). The other coefficients of an output are partial sums of the
weights: they never go back (an output is sent as c1 and the read part of c0), and by default
(`mask=True`) each output's c1 is re-randomised by a fresh public-key encryption of zero
(`heconv.coeff_mask`; `mask_hiding_bits` states what that hides).

`plan_coeff_conv` decides everything from the weights (which blocks are nonzero, the
chunking) and touches no backend; `compile_coeff_conv` encodes the kernel polynomials
once; `run_coeff_conv` executes the plan and never changes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .backends.base import Backend
from .checks import check_compile, check_stride_level, check_weight
from .coeff_choice import choose_chunking
from .coeff_mask import mask_hiding_bits, mask_kind, mask_outputs  # noqa: F401  (re-exported)
from .coeff_pack import kernel_polynomial, needed_coefficients, pack_coeff_input, pack_coeff_output, unpack_coeff_output
from .coeff_plan import CoeffPlan, coefficient_counts
from .conv_plan import ConvSpec
from .cost import UnitCosts, WireCosts
from .errors import InputError
from .geometry import CoeffChunking
from .params import CKKSParams
from .traffic import Objective


def plan_coeff_conv(
    weight: np.ndarray,
    height: int,
    width: int,
    params: CKKSParams,
    stride: int = 1,
    has_bias: bool = False,
    name: str = "conv",
    level: int | None = None,
    mask: bool = True,
    frame_kernel: int | None = None,
    align: CoeffChunking | None = None,
    unit_costs: UnitCosts | None = None,
    objective: Objective | None = None,
    wire_costs: WireCosts | None = None,
    output_uploads: int = 0,
    partner: tuple[int, int] | None = None,
    rescale: bool = False,
    shared_mask: bool = False,
    covered: tuple[int, ...] = (),
) -> CoeffPlan:
    """Plan one convolution by coefficient encoding; all-zero kernel blocks (o, chunk) cost nothing.

    The chunking is the dense shape's with the least predicted cost under `objective` (default:
    end to end at the default bandwidth, seeded uploads; heconv.coeff_choice), so the pruning
    groups are fixed before training; the plan records every candidate and why one won
    (`plan.choice`). `frame_kernel` and `align` (the other conv's chunking) make two convs'
    outputs addable (a 1x1 shortcut framed as a 3x3); `output_uploads`: values the client uploads
    in the output layout (an identity shortcut's operand), and `partner`: (C_in, kernel) of the conv
    to be aligned with this one, both priced in the choice (heconv.coeff_choice), with its
    re-randomisations unless `shared_mask` (only their sum reaches the client: this conv's cover it).
    `covered`: output groups left as they are because the partner planned first re-randomises their
    sum (`CoeffPlan.covered`; sound only inside its network plan, which
    `heconv.network.check_placements` verifies). `level`: the input's (default: the chain's last
    without `rescale`, else 0).

    >>> from heconv.params import ckks_params
    >>> p = plan_coeff_conv(np.ones((64, 64, 3, 3)), 16, 16, ckks_params(depth=1))
    >>> p.chunking.c_w, p.chunking.group, p.predicted.rotations, p.predicted.pmuls, p.n_in, p.n_out
    (3, 8, 0, 176, 22, 8)
    >>> p.level, p.output_level, p.input_scale_bits, p.predicted.rescales   # one prime, no rescale
    (1, 1, 20, 0)
    >>> len(p.choice.candidates), p.choice.winner.c_w                    # C_w = 1..25 considered
    (25, 3)
    """
    w, _ = check_weight(name, weight, None)
    c_o, c_i, k, _ = w.shape
    if level is None:
        level = 0 if rescale else params.depth
    if rescale:
        check_stride_level(name, stride, level, params)
    else:
        check_stride_level(name, stride, 0, params)
        if not 0 <= level <= params.depth:
            raise InputError(f"layer {name}: input at level {level} is outside the chain (0..{params.depth})")
    # the partner's re-randomisations are left to this conv's where only their sum goes back
    partner_masks = not (shared_mask and mask)
    try:
        ch, choice = choose_chunking(c_i, c_o, height, width, k, params, level, frame_kernel, align, mask, objective,
                                     unit_costs, wire_costs, output_uploads, partner, rescale, partner_masks,
                                     len(covered), stride)
    except ValueError as e:
        raise InputError(f"layer {name} ({c_i}->{c_o}, {k}x{k}, {height}x{width}): {e}") from None
    nonzero = np.zeros((ch.groups * ch.group, ch.chunks * ch.c_w), dtype=bool)
    nonzero[:c_o, :c_i] = np.any(w.reshape(c_o, c_i, k * k) != 0, axis=2)
    kept = nonzero.reshape(ch.groups, ch.group, ch.chunks, ch.c_w).any(axis=(1, 3))
    blocks = [[int(b) for b in np.nonzero(kept[g])[0]] for g in range(ch.groups)]
    return CoeffPlan(spec=ConvSpec(name, c_i, c_o, k, height, width, stride), chunking=ch, params=params, level=level,
                     has_bias=has_bias, mask=mask, blocks=blocks,
                     predicted=coefficient_counts(blocks, ch.tiles, has_bias, mask, rescale, tuple(covered)),
                     choice=choice, rescale=rescale, covered=tuple(covered))


@dataclass
class CompiledCoeffConv:
    """A plan with its plaintexts encoded on one backend: weights[g][b] for the kept blocks, the bias
    (or, for an empty output, what it encrypts) per output group, and the coefficients each tile's
    client reads (every member of a group; `heconv.coeff_pack.read_coefficients` trims the last)."""

    plan: CoeffPlan
    weights: list[dict[int, Any]]
    outputs: list[Any]
    needed: list[np.ndarray]


def compile_coeff_conv(plan: CoeffPlan, weight: np.ndarray, bias: np.ndarray | None, backend: Backend,
                       input_scale: float | None = None) -> CompiledCoeffConv:
    """Encode the kernel polynomials at the input level and the bias at the output level. Touches no
    ciphertext. With a rescale the weights are scaled by the prime it divides by (the output comes back
    at the input scale); without, by 2^s over the input scale (the output is at 2^s).
    `input_scale`: the input's, when not the plan's 2^input_scale_bits."""
    s = plan.spec
    w, b = check_compile(plan, weight, bias, backend)
    ch, values = plan.chunking, backend.tracks_values
    if plan.rescale:
        w_scale = backend.rescale_divisor(plan.level)
        out_scale = input_scale or plan.params.scale
    else:
        w_scale = plan.params.scale / (input_scale or 2.0 ** plan.input_scale_bits)
        out_scale = plan.params.scale
    zero = np.zeros(ch.n)
    weights = [{blk: backend.encode_coefficients(kernel_polynomial(w, g, blk, ch) if values else zero, plan.level,
                                                 w_scale) for blk in blocks} for g, blocks in enumerate(plan.blocks)]
    empty = set(plan.empty_outputs)
    bias_map = np.zeros((s.c_out, ch.height, ch.width)) + (0.0 if b is None else b[:, None, None])
    packed = pack_coeff_output(bias_map, ch) if values and (plan.has_bias or empty) else None
    outputs = []
    for g in range(ch.groups):
        if not plan.has_bias and g not in empty:
            outputs.append(None)
            continue
        vec = packed[g * ch.tiles] if packed is not None else zero  # every tile reads the same coefficients
        outputs.append(backend.encode_coefficients(vec, plan.output_level, out_scale))
    return CompiledCoeffConv(plan, weights, outputs, needed_coefficients(ch, s.stride))


def check_coeff_inputs(layer: CompiledCoeffConv, inputs: list[Any], backend: Backend) -> None:
    """chunks * tiles input ciphertexts at the plan's level."""
    plan = layer.plan
    if len(inputs) != plan.n_in:
        raise ValueError(f"layer {plan.spec.name}: expected {plan.n_in} input ciphertexts ({plan.chunking.chunks} "
                         f"chunks x {plan.chunking.tiles} tiles), got {len(inputs)}")
    for i, ct in enumerate(inputs):
        if backend.level(ct) != plan.level:
            raise ValueError(f"layer {plan.spec.name}: input ciphertext {i} is at level {backend.level(ct)}, "
                             f"the plan expects {plan.level}")


def evaluate_coeff_conv(layer: CompiledCoeffConv, inputs: list[Any], backend: Backend) -> list[Any]:
    """Products, sums, rescales (where the plan rescales) and bias of every output ciphertext
    (g * tiles + t); no mask."""
    check_coeff_inputs(layer, inputs, backend)
    plan = layer.plan
    chunks, tiles = plan.chunking.chunks, plan.chunking.tiles
    outputs: list[Any] = []
    for g, blocks in enumerate(plan.blocks):
        for t in range(tiles):
            if not blocks:
                outputs.append(backend.encrypt_plain(layer.outputs[g]))
                continue
            y = backend.multiply_plain(inputs[t * chunks + blocks[0]], layer.weights[g][blocks[0]])
            for blk in blocks[1:]:
                backend.add_inplace(y, backend.multiply_plain(inputs[t * chunks + blk], layer.weights[g][blk]))
            if plan.rescale:
                backend.rescale_inplace(y)
            if layer.outputs[g] is not None:
                backend.add_plain_inplace(y, layer.outputs[g])
            outputs.append(y)
    return outputs


def run_coeff_conv(layer: CompiledCoeffConv, inputs: list[Any], backend: Backend) -> list[Any]:
    """Evaluate the layer on chunks * tiles input ciphertexts; returns groups * tiles outputs,
    re-randomised when the plan masks (heconv.coeff_mask). Stride 2 is computed at input resolution:
    the client subsamples."""
    outputs = evaluate_coeff_conv(layer, inputs, backend)
    if layer.plan.mask:
        mask_outputs(layer, outputs, backend)
    return outputs


def encrypt_coeff_input(x: np.ndarray, plan: CoeffPlan, backend: Backend) -> list[Any]:
    """Client side: pack a [C, H, W] feature map into coefficients and encrypt each chunk of each tile,
    at the plan's input level and scale."""
    scale = 2.0 ** plan.input_scale_bits
    return [backend.encrypt_plain(backend.encode_coefficients(v, plan.level, scale))
            for v in pack_coeff_input(x, plan.chunking)]


def read_coeff_output(cts: list[Any], chunking: CoeffChunking, channels: int, stride: int,
                      backend: Backend) -> np.ndarray:
    """Client side: decrypt, read the output coefficients [channels, H, W], subsample by the stride."""
    y = unpack_coeff_output([backend.decode_coefficients(c) for c in cts], chunking, channels)
    return y[:, ::stride, ::stride]


def decrypt_coeff_output(cts: list[Any], plan: CoeffPlan, backend: Backend) -> np.ndarray:
    """Client side: the layer's output [C_out, H/s, W/s]."""
    return read_coeff_output(cts, plan.chunking, plan.spec.c_out, plan.spec.stride, backend)
