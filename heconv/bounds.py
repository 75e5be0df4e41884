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


def headroom(params: CKKSParams, level: int, product: bool = True) -> float:
    """The largest magnitude a value may reach at `level`: in a product (scale 2^2s) or a
    sum of fresh or rescaled ciphertexts (scale 2^s).

    >>> from heconv.params import ckks_params
    >>> headroom(ckks_params(depth=1), 0), headroom(ckks_params(depth=1), 1, product=False)
    (524288.0, 524288.0)
    """
    scale_bits = params.scale_bits * (2 if product else 1)
    return 2.0 ** (level_bits(params, level) - scale_bits - 1)


def output_gain(weight: np.ndarray) -> float:
    """max over outputs of the L1 norm of its weights: |y_o| <= gain * max|x| (+ |b_o|).

    >>> output_gain(np.array([[1.0, -2.0], [0.5, 0.5]]))
    3.0
    """
    w = np.asarray(weight, dtype=np.float64)
    return float(np.abs(w.reshape(w.shape[0], -1)).sum(axis=1).max()) if w.size else 0.0


def check_bound(layer: str, bound: float, params: CKKSParams, level: int, product: bool = True) -> None:
    """Raise ValueError naming the layer, the bound and what to change when `bound` does not fit."""
    room = headroom(params, level, product)
    if not np.isfinite(bound) or bound >= room:
        raise InputError(
            f"layer {layer}: values may reach {bound:.3g}, beyond the {room:.3g} that scale 2^{params.scale_bits} "
            f"leaves in the {level_bits(params, level)}-bit modulus at level {level}; decryption would give garbage. "
            "Use smaller weights or inputs, a larger modulus (larger first prime), or fewer --scale-bits "
            "(less precision); --no-bound-check runs anyway"
        )
