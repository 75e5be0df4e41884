"""HE convolution with a baby-step/giant-step rotation schedule, as plan -> compile -> run.

With baby step B (heconv.schedule; B = 1 is the output-rotation method) and d = g*B + j:

    Q[bo, g] = sum over kept j, bi, pos:  Rot(X[bi], j*P + sigma(pos)) * Rot(M[bo, bi, d, pos], j*P)
    Y[bo]    = sum over kept g:           Rot(Q[bo, g], g*B*P)

`plan_conv` decides everything from the weights alone (which plaintexts are nonzero,
the schedule, which rotations run, the predicted counts) and touches no backend.
`compile_conv` encodes the plaintexts once (pre-rotated by j*P), at the level where they
are used. `run_conv` executes the plan on ciphertexts and never changes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backends.base import Backend, OpCounts, normalize_step
from .checks import check_compile, check_plan_level, check_run_inputs, check_weight
from .conv_plan import ConvPlan, ConvSpec, Term
from .cost import DEFAULT_UNIT_COSTS, UnitCosts
from .errors import InputError
from .geometry import Packing, kernel_offsets, pack, packing_geometry, position_shift, unpack, valid_pixel_masks
from .params import CKKSParams
from .schedule import (
    SCHEDULE_FORMS,
    ScheduleCandidate,
    best_schedule,
    check_schedule,
    rank_schedules,
    resolve_schedule,
    schedule_rotations,
)

SCHEDULES = SCHEDULE_FORMS


@dataclass
class CompiledConv:
    """A plan with its plaintexts encoded on one backend (weights, bias)."""

    plan: ConvPlan
    weights: list[Any]
    outputs: list[Any]




def diagonal_weights(weight: np.ndarray, packing: Packing) -> np.ndarray:
    """Weights rearranged as Wd[bo, bi, d, c, pos] = W[bo*c_n + (c-d) mod c_n, bi*c_n + c, pos].

    Wd[bo, bi, d, :, pos] are the c_n weights of plaintext M[bo, bi, d, pos].

    >>> g = packing_geometry(2, 2, 1, 1, 2)
    >>> w = np.array([[1., 2.], [3., 4.]]).reshape(2, 2, 1, 1)
    >>> diagonal_weights(w, g)[0, 0, :, :, 0].tolist()   # d=0: W[0,0], W[1,1]; d=1: W[1,0], W[0,1]
    [[1.0, 4.0], [3.0, 2.0]]
    """
    c_o, c_i, k, _ = weight.shape
    c_n, n_in, n_out = packing.c_n, packing.n_in, packing.n_out
    wp = np.zeros((n_out * c_n, n_in * c_n, k * k))
    wp[:c_o, :c_i] = weight.reshape(c_o, c_i, k * k)
    wr = wp.reshape(n_out, c_n, n_in, c_n, k * k).transpose(0, 2, 1, 3, 4)  # [bo, bi, o, c, pos]
    c = np.arange(c_n)
    o_local = (c[None, :] - c[:, None]) % c_n  # [d, c]
    return wr[:, :, o_local, np.broadcast_to(c, (c_n, c_n)), :]


def plan_conv(
    weight: np.ndarray,
    height: int,
    width: int,
    params: CKKSParams,
    stride: int = 1,
    has_bias: bool = False,
    name: str = "conv",
    level: int | None = None,
    schedule: str = "output-rotation",
    c_n: int | None = None,
    unit_costs: UnitCosts | None = None,
    rescale: bool = True,
    input_scale_bits: int | None = None,
    weight_scale_bits: int | None = None,
) -> ConvPlan:
    """Plan one convolution from its weights; all-zero groups cost nothing.

    `schedule`: "output-rotation" (B = 1), "input-rotation" (B = c_n), "bsgs:B", or
    "auto": the B with the lowest predicted time from the kept terms, with `unit_costs`
    (default heconv.cost.DEFAULT_UNIT_COSTS, at the level's work; nothing is measured here).

    `rescale` False: the input at 2^input_scale_bits and the weights at 2^weight_scale_bits (both
    required; heconv.bounds.last_level_split chooses them), the products summed and left unrescaled at
    `level` (default: the chain's last, one prime, where a rotation and a multiplication cost about
    half of level 0's). `level` defaults to 0 with a rescale.

    >>> from heconv.params import ckks_params
    >>> p = plan_conv(np.ones((64, 64, 3, 3)), 16, 16, ckks_params(depth=1))
    >>> p.packing.c_n, p.predicted.rotations, p.predicted.pmuls   # 4*8 + 4*15, 64*64*9/16
    (16, 92, 2304)
    >>> p = plan_conv(np.ones((128, 128, 3, 3)), 8, 8, ckks_params(depth=1), schedule="auto")
    >>> p.schedule_name, p.predicted.rotations, [c.rotations for c in p.candidates][:3]   # 2*17 + 2*31
    ('bsgs:2', 96, [142, 96, 100])
    """
    w, _ = check_weight(name, weight, None)
    c_o, c_i, k, _ = w.shape
    level = check_plan_level(name, stride, level, params, rescale, input_scale_bits, weight_scale_bits)
    check_schedule(schedule, name)
    try:
        packing = packing_geometry(c_i, c_o, height, width, params.slots, c_n)
    except ValueError as e:
        raise InputError(f"layer {name} ({c_i}->{c_o}, {k}x{k}, {height}x{width}): {e}") from None

    offsets = kernel_offsets(k)
    shifts = [normalize_step(position_shift(dy, dx, width), packing.slots) for dy, dx in offsets]
    in_image = valid_pixel_masks(k, height, width, packing.channel_slots).any(axis=1)
    nonzero = np.any(diagonal_weights(w, packing) != 0, axis=3) & in_image  # [bo, bi, d, pos]

    baby = resolve_schedule(schedule, packing.c_n, name)
    candidates: list[ScheduleCandidate] = []
    if baby is None:
        unit = (unit_costs or DEFAULT_UNIT_COSTS).at_work(params.level_work(level))
        candidates = rank_schedules(nonzero, shifts, packing, has_bias, unit)
        baby = best_schedule(candidates).baby_step
    rot = schedule_rotations(nonzero, shifts, packing, baby)
    p, slots = packing.channel_slots, packing.slots

    # Run order: grouped by (bo, d), hence by (bo, g = d // B): each Q[bo, g] in one sweep.
    terms = [
        Term(int(bo), int(bi), int(d), int(pos), (int(d) % baby * p + shifts[pos]) % slots)
        for bo, d, bi, pos in zip(*np.nonzero(nonzero.transpose(0, 2, 1, 3)))
    ]
    positions = [sorted({int(p) for p in np.nonzero(nonzero[:, bi].any(axis=(0, 1)))[0]}) for bi in range(packing.n_in)]
    diagonals = [[int(d) for d in np.nonzero(nonzero[bo].any(axis=(0, 2)))[0]] for bo in range(packing.n_out)]
    plan = ConvPlan(
        spec=ConvSpec(name, c_i, c_o, k, height, width, stride),
        packing=packing,
        params=params,
        schedule=schedule,
        level=level,
        has_bias=has_bias,
        positions=positions,
        input_shifts=rot.input_shifts,
        diagonals=diagonals,
        terms=terms,
        rotation_steps=rot.steps,
        baby_step=baby,
        giants=rot.giants,
        candidates=candidates,
        rescale=rescale,
        input_scale_bits=None if rescale else input_scale_bits,
        weight_scale_bits=None if rescale else weight_scale_bits,
    )
    return dataclasses.replace(plan, predicted=predicted_counts(plan))


def predicted_counts(plan: ConvPlan) -> OpCounts:
    """The cost model of the plan's schedule (baby step B), as a function of the plan.

        R = sum_bi |distinct nonzero baby-step shifts j*P + sigma(pos) of bi|
          + sum_bo |kept giant steps g of bo, g != 0|

    (B = 1: kept non-centre positions plus kept diagonals d != 0.) Multiplications are
    the nonzero plaintexts; products and giant-step sums are accumulated by additions;
    one rescale per nonempty output ciphertext (none without a rescale).
    """
    b = plan.baby_step
    terms_per: dict[tuple[int, int], int] = {}
    for t in plan.terms:
        terms_per[(t.bo, t.d // b)] = terms_per.get((t.bo, t.d // b), 0) + 1
    rot = sum(len(s) for s in plan.input_shifts) + sum(sum(1 for g in gs if g) for gs in plan.giants)
    adds = sum(n - 1 for n in terms_per.values()) + sum(len(gs) - 1 for gs in plan.giants if gs)
    full = plan.packing.n_out - len(plan.empty_outputs)
    return OpCounts(
        rotations=rot,
        key_switches=rot,
        pmuls=len(plan.terms),
        adds=adds,
        plain_adds=full if plan.has_bias else 0,
        rescales=full if plan.rescale else 0,
        encryptions=len(plan.empty_outputs),
    )


def _term_vectors(wd: np.ndarray, masks: np.ndarray, terms: list[Term], packing: Packing, baby_step: int = 1,
                  chunk: int = 256):
    """Slot vectors of the plaintexts Rot(M[bo, bi, d, pos], j*P), j = d mod B, `chunk` at a time.

    The pre-rotation is a left rotation of the slot vector (np.roll by -j*P): free at compile time.
    """
    slots = np.arange(packing.slots)
    for start in range(0, len(terms), chunk):
        part = terms[start : start + chunk]
        bo, bi, d, pos = (np.array([getattr(t, f) for t in part]) for f in ("bo", "bi", "d", "pos"))
        blocks = wd[bo, bi, d, :, pos][:, :, None] * masks[pos][:, None, :]  # [n, c_n, P]
        vectors = np.tile(blocks.reshape(len(part), -1), (1, packing.replicas))
        if baby_step > 1:
            shift = (d % baby_step) * packing.channel_slots
            vectors = vectors[np.arange(len(part))[:, None], (slots[None, :] + shift[:, None]) % packing.slots]
        yield from vectors


def _bias_vector(bias: np.ndarray | None, bo: int, packing: Packing) -> np.ndarray:
    block = np.zeros((packing.c_n, packing.channel_slots))
    if bias is not None:
        ch = bias[bo * packing.c_n : (bo + 1) * packing.c_n]
        block[: len(ch), : packing.height * packing.width] = ch[:, None]
    return np.tile(block.ravel(), packing.replicas)


def compile_conv(
    plan: ConvPlan,
    weight: np.ndarray,
    bias: np.ndarray | None,
    backend: Backend,
    input_scale: float | None = None,
) -> CompiledConv:
    """Encode the plan's plaintexts on `backend`. Touches no ciphertext.

    Weights are encoded at the input level with scale equal to the prime the rescale
    will divide by, so the output comes back at exactly the input scale (the default
    scale unless `input_scale` says otherwise); the bias is encoded at that scale.
    Without a rescale the weights are at 2^weight_scale_bits and the bias at the products'
    scale (the input's times the weights'), at the input level.
    """
    s = plan.spec
    w, b = check_compile(plan, weight, bias, backend)
    wd = diagonal_weights(w, plan.packing) if backend.tracks_values else None
    masks = valid_pixel_masks(s.kernel, s.height, s.width, plan.packing.channel_slots)
    if plan.rescale:
        w_scale = backend.rescale_divisor(plan.level)
        out_scale = input_scale or plan.params.scale
    else:
        w_scale = 2.0 ** plan.weight_scale_bits
        out_scale = (input_scale or 2.0 ** plan.input_scale_bits) * w_scale
    vectors = (_term_vectors(wd, masks, plan.terms, plan.packing, plan.baby_step) if backend.tracks_values
               else [None] * len(plan.terms))
    weights = [backend.encode(v, plan.level, w_scale) for v in vectors]
    empty = set(plan.empty_outputs)
    outputs = [
        backend.encode(_bias_vector(b, bo, plan.packing), plan.output_level, out_scale)
        if (plan.has_bias or bo in empty)
        else None
        for bo in range(plan.packing.n_out)
    ]
    return CompiledConv(plan, weights, outputs)


def check_inputs(layer: CompiledConv, inputs: list[Any], backend: Backend) -> None:
    """The n_in input ciphertexts at the plan's level, and a Galois key for every step the plan uses."""
    check_run_inputs(layer.plan, inputs, layer.plan.packing.n_in, layer.plan.packing.c_n, backend)


def rotate_inputs(inputs: Mapping[int, Any], shifts: Sequence[Sequence[int]],
                  backend: Backend) -> dict[int, dict[int, Any]]:
    """Baby steps: {bi: {shift: Rot(X[bi], shift)}} for the listed shifts of each given input (shift 0: X itself)."""
    rotated: dict[int, dict[int, Any]] = {}
    for bi, x in inputs.items():
        r = {0: x}
        for step in shifts[bi]:
            r[step] = backend.rotate(x, step)
        rotated[bi] = r
    return rotated


def accumulate_terms(layer: CompiledConv, rotated: Mapping[int, Mapping[int, Any]], start: int, end: int,
                     backend: Backend) -> dict[int, Any]:
    """Sum the terms[start:end] (whole (bo, g) groups, in run order): Q[bo, g] by multiply-adds, giant-step
    rotated, added into a partial Y[bo]. Returns {bo: partial Y[bo]}, not rescaled."""
    plan = layer.plan
    giant, b = plan.packing.channel_slots * plan.baby_step, plan.baby_step
    partial: dict[int, Any] = {}
    i = start
    terms, weights = plan.terms, layer.weights
    while i < end:
        bo, g = terms[i].bo, terms[i].d // b
        q = backend.multiply_plain(rotated[terms[i].bi][terms[i].shift], weights[i])
        i += 1
        while i < end and terms[i].bo == bo and terms[i].d // b == g:
            t = terms[i]
            backend.add_inplace(q, backend.multiply_plain(rotated[t.bi][t.shift], weights[i]))
            i += 1
        if g:  # giant step
            q = backend.rotate(q, g * giant)
        if bo not in partial:
            partial[bo] = q
        else:
            backend.add_inplace(partial[bo], q)
    return partial


def finish_output(layer: CompiledConv, bo: int, y: Any, backend: Backend) -> None:
    """Complete output ciphertext bo in place: one rescale (where the plan rescales), then the bias (if any)."""
    if layer.plan.rescale:
        backend.rescale_inplace(y)
    if layer.outputs[bo] is not None:
        backend.add_plain_inplace(y, layer.outputs[bo])


def run_conv(layer: CompiledConv, inputs: list[Any], backend: Backend) -> list[Any]:
    """Evaluate the layer on n_in input ciphertexts; returns n_out output ciphertexts.

    Stride 2 is computed at input resolution: the client subsamples at refresh.
    (heconv.parallel runs the same arithmetic split across worker processes.)
    """
    check_inputs(layer, inputs, backend)
    plan = layer.plan
    # Baby steps: once per input ciphertext and distinct shift, shared by all outputs.
    rotated = rotate_inputs(dict(enumerate(inputs)), plan.input_shifts, backend)
    partial = accumulate_terms(layer, rotated, 0, len(plan.terms), backend)
    outputs: list[Any] = [None] * plan.packing.n_out
    for bo in range(plan.packing.n_out):
        if bo not in partial:
            outputs[bo] = backend.encrypt_plain(layer.outputs[bo])
            continue
        outputs[bo] = partial[bo]
        finish_output(layer, bo, outputs[bo], backend)
    return outputs


def encrypt_input(x: np.ndarray, packing: Packing, backend: Backend) -> list[Any]:
    """Client side: pack a [C, H, W] feature map and encrypt each block at level 0 and the parameters'
    scale, where a plan with a rescale reads it. A last-level plan reads its input at its own level and
    scale: `heconv.algorithms.encrypt_map` with the algorithm's input layout and input level does both."""
    return [backend.encrypt(v) for v in pack(np.asarray(x, dtype=np.float64), packing)]


def decrypt_output(cts: list[Any], plan: ConvPlan, backend: Backend) -> np.ndarray:
    """Client side: decrypt, unpack [C_out, H, W] and apply the stride by subsampling."""
    y = unpack([backend.decrypt(c) for c in cts], plan.packing, plan.spec.c_out)
    return y[:, :: plan.spec.stride, :: plan.spec.stride]
