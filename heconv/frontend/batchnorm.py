"""BatchNorm folding: an eval-mode BatchNorm after a conv becomes part of the conv's weights."""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def fold_batchnorm(
    weight: np.ndarray,
    bias: np.ndarray | None,
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray]:
    """Fold BatchNorm(eval) into the conv before it: BN(conv(x)) == conv'(x).

    >>> w, b = fold_batchnorm(np.ones((1, 1, 1, 1)), None, np.array([2.]), np.array([1.]),
    ...                       np.array([0.5]), np.array([4.]), eps=0.0)
    >>> float(w.ravel()[0]), float(b[0])     # 2*(x - 0.5)/2 + 1 = x + 0.5
    (1.0, 0.5)
    """
    w = np.asarray(weight, dtype=np.float64)
    c_o = w.shape[0]
    for n, v in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
        if np.shape(v) != (c_o,):
            raise InputError(f"fold_batchnorm: {n} must have shape [{c_o}], got {list(np.shape(v))}")
    if np.any(np.asarray(var) + eps <= 0):
        raise InputError("fold_batchnorm: var + eps must be positive")
    factor = np.asarray(gamma, dtype=np.float64) / np.sqrt(np.asarray(var, dtype=np.float64) + eps)
    b = np.zeros(c_o) if bias is None else np.asarray(bias, dtype=np.float64)
    return w * factor[:, None, None, None], (b - mean) * factor + beta
