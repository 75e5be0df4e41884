"""Will the values fit? The magnitude bound CKKS leaves, and the bound a layer's outputs
can reach, checked from the plan and the weights before anything is encrypted.

A product of a ciphertext at scale 2^s with a plaintext at scale ~2^s sits at scale
~2^(2s) in the modulus of its level; its value v decrypts correctly only while
|v| * 2^(2s) < Q_level / 2. Past that it wraps around the modulus and decrypts to
garbage with no error from the library. A conv's outputs (and every partial sum of
them) are bounded by max_o sum |W[o]| * max|x| + max|b|.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .params import CKKSParams


def level_bits(params: CKKSParams, level: int) -> int:
    """Bits of the data modulus left after `level` rescales.

    >>> from heconv.params import ckks_params
    >>> level_bits(ckks_params(depth=1), 0), level_bits(ckks_params(depth=3), 2)
    (100, 100)
    """
    if not 0 <= level <= params.depth:
        raise ValueError(f"level {level} outside the chain (depth {params.depth})")
    return sum(params.coeff_mod_bit_sizes[:-1]) - params.scale_bits * level


def headroom(params: CKKSParams, level: int, product: bool = True, scale_bits: int | None = None) -> float:
    """The largest magnitude a value may reach at `level`: in a product (scale 2^2s) or a
    sum of fresh or rescaled ciphertexts (scale 2^s), or at scale 2^scale_bits when given.

    >>> from heconv.params import ckks_params
    >>> headroom(ckks_params(depth=1), 0), headroom(ckks_params(depth=1), 1, product=False)
    (524288.0, 524288.0)
    >>> headroom(ckks_params(depth=1), 1, scale_bits=50)     # 60 bits left, a value at 2^50
    512.0
    """
    if scale_bits is None:
        scale_bits = params.scale_bits * (2 if product else 1)
    return 2.0 ** (level_bits(params, level) - scale_bits - 1)


# The split of a last-level product's scale 2^T between input (2^a) and weights (2^(T - a)), from the
# measured error of a 64->64 3x3 slot conv at 16x16, N = 8192, [60, 40, 60], Kaiming weights, inputs in
# [-1, 1] (tests/heconv/measure_last_level.py): max |error| ~ 1.6e-3 * 2^(20 - w) + 2.4e-3 * 2^(26 - a), the
# weights' encoding error and the key switches' noise on the input. Their sum is least near a - w = 7:
# 1.4e-4 at T = 54 (30 / 24), 1.5e-3 at 50 (30 / 20), 1.7e-3 at 48 (28 / 20), 2.6e-2 at 40 (24 / 16).
LAST_LEVEL_MAX_BITS = 54  # more buys little precision and costs headroom
LAST_LEVEL_MIN_BITS = 46  # below, about 4e-3 of error on that layer: the conv rescales at level 0 instead


def last_level_split(params: CKKSParams, bound: float) -> tuple[int, int] | None:
    """(input bits, weight bits) for a product summed at the chain's last level without a rescale, with
    values up to `bound` in absolute value: the largest total T <= LAST_LEVEL_MAX_BITS that leaves them
    room (`headroom` at scale 2^T), split for the least error; None where T < LAST_LEVEL_MIN_BITS.

    >>> from heconv.params import ckks_params
    >>> p = ckks_params(depth=1)                    # the last level keeps the 60-bit prime
    >>> last_level_split(p, 20.0), last_level_split(p, 400.0), last_level_split(p, 5000.0), last_level_split(p, 2e4)
    ((30, 24), (28, 22), (26, 20), None)
    """
    if not np.isfinite(bound) or bound < 0:
        return None
    room_bits = level_bits(params, params.depth) - 1
    total = min(LAST_LEVEL_MAX_BITS, room_bits - int(np.floor(np.log2(max(bound, 1e-300)))) - 1)
    while total >= LAST_LEVEL_MIN_BITS and bound >= 2.0 ** (room_bits - total):
        total -= 1
    if total < LAST_LEVEL_MIN_BITS:
        return None
    a = (total + 7) // 2
    return a, total - a


def output_gain(weight: np.ndarray) -> float:
    """max over outputs of the L1 norm of its weights: |y_o| <= gain * max|x| (+ |b_o|).

    >>> output_gain(np.array([[1.0, -2.0], [0.5, 0.5]]))
    3.0
    """
    w = np.asarray(weight, dtype=np.float64)
    return float(np.abs(w.reshape(w.shape[0], -1)).sum(axis=1).max()) if w.size else 0.0


def conv_output_bound(weight: np.ndarray, bias: np.ndarray | None, input_bound: float) -> float:
    """The largest |output| of a conv (or linear layer) whose inputs stay within `input_bound`:
    output_gain * input_bound + max|bias|.

    >>> conv_output_bound(np.array([[1.0, -2.0], [0.5, 0.5]]), np.array([0.1, -0.4]), 2.0)
    6.4
    """
    bias_max = 0.0 if bias is None or not np.size(bias) else float(np.abs(bias).max())
    return output_gain(weight) * input_bound + bias_max


def check_bound(layer: str, bound: float, params: CKKSParams, level: int, product: bool = True,
                scale_bits: int | None = None) -> None:
    """Raise ValueError naming the layer, the bound and what to change when `bound` does not fit."""
    room = headroom(params, level, product, scale_bits)
    if not np.isfinite(bound) or bound >= room:
        scale = params.scale_bits if scale_bits is None else scale_bits
        if scale_bits is not None:  # a split chosen from the planner's value bound (last_level_split)
            raise InputError(
                f"layer {layer}: values may reach {bound:.3g}, beyond the {room:.3g} that scale 2^{scale} leaves "
                f"in the {level_bits(params, level)}-bit modulus at level {level}: an input exceeds the plan's "
                "--value-bound; plan with a larger one (or none), or --no-bound-check runs anyway")
        raise InputError(
            f"layer {layer}: values may reach {bound:.3g}, beyond the {room:.3g} that scale 2^{scale} "
            f"leaves in the {level_bits(params, level)}-bit modulus at level {level}; decryption would give garbage. "
            "Use smaller weights or inputs, a larger modulus (larger first prime), or fewer --scale-bits "
            "(less precision); --no-bound-check runs anyway"
        )
