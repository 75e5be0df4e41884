"""The canonical embedding: how CKKS slots and polynomial coefficients correspond.

A CKKS plaintext is a polynomial m(X) in R = Z[X]/(X^N + 1); SEAL's slot i holds
m(zeta^(3^i mod 2N)) / scale, zeta = exp(i*pi/N), for i < N/2 (the other N/2 evaluations are
their conjugates). A coefficient vector is therefore encoded by encoding its N/2 complex
evaluations (`coefficients_to_slots`), and read back by inverting them
(`slots_to_coefficients`). Slot-wise products are negacyclic convolutions of coefficients
(`negacyclic_product`), which is what the coefficient convolution (docs/design.md) rests on.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=8)
def _tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(twist exp(i*pi*k/N) for k < N, index t = (3^i mod 2N - 1) / 2 of slot i's odd power zeta^(2t+1))."""
    if n < 2 or n & (n - 1):
        raise ValueError(f"the ring dimension N must be a power of two >= 2, got {n}")
    twist = np.exp(1j * np.pi * np.arange(n) / n)
    powers = np.empty(n // 2, dtype=np.int64)
    g = 1
    for i in range(n // 2):
        powers[i] = (g - 1) // 2
        g = g * 3 % (2 * n)
    return twist, powers


def _evaluations(coeffs: np.ndarray) -> np.ndarray:
    """m(zeta^(2t+1)) for t < N: an FFT of the twisted coefficients."""
    n = coeffs.shape[-1]
    twist, _ = _tables(n)
    return np.fft.ifft(coeffs * twist, axis=-1) * n


def coefficients_to_slots(coeffs: np.ndarray) -> np.ndarray:
    """The N/2 complex slot values whose encoding has these N real coefficients.

    >>> z = coefficients_to_slots(np.array([0., 1., 0., 0.]))   # m(X) = X: slot i = zeta^(3^i)
    >>> np.round(z, 6).tolist() == np.round(np.exp(1j * np.pi * np.array([1, 3]) / 4), 6).tolist()
    True
    """
    c = np.asarray(coeffs, dtype=np.float64)
    _, powers = _tables(c.shape[-1])
    return _evaluations(c)[..., powers]


def slots_to_coefficients(slots: np.ndarray) -> np.ndarray:
    """Inverse of `coefficients_to_slots`: the N real coefficients of N/2 complex slots.

    >>> c = np.array([1., -2., 0.5, 3., 0., 0., 1., 4.])
    >>> np.allclose(slots_to_coefficients(coefficients_to_slots(c)), c)
    True
    """
    z = np.asarray(slots, dtype=np.complex128)
    n = 2 * z.shape[-1]
    twist, powers = _tables(n)
    values = np.empty(z.shape[:-1] + (n,), dtype=np.complex128)
    values[..., powers] = z
    values[..., n - 1 - powers] = np.conj(z)  # zeta^-(2t+1) = zeta^(2(N-1-t)+1)
    return (np.fft.fft(values, axis=-1) / n / twist).real


def negacyclic_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a(X) * b(X) mod X^N + 1 (floating point, by the twisted FFT).

    >>> negacyclic_product(np.array([0., 0., 0., 1.]), np.array([0., 2., 0., 0.])).round(9).tolist()  # X^3 * 2X = -2
    [-2.0, 0.0, 0.0, 0.0]
    """
    n = a.shape[-1]
    twist, _ = _tables(n)
    return (np.fft.fft(_evaluations(a) * _evaluations(b), axis=-1) / n / twist).real
