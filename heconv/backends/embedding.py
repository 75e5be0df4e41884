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


@lru_cache(maxsize=8)
def _half_tables(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the half-length transform: (twist exp(i*pi*j/N) for j < N/2, each slot's even power index
    t' (slot i is m(zeta^(4t'+1)), or its conjugate), whether slot i is the conjugate).

    A slot's power 2t+1 has t even, or else its conjugate's, 2(N-1-t)+1, has: N - 1 is odd."""
    twist, powers = _tables(n)
    conj = powers % 2 == 1
    even = np.where(conj, n - 1 - powers, powers) // 2
    return twist[: n // 2], even, conj


def _even_evaluations(coeffs: np.ndarray) -> np.ndarray:
    """m(zeta^(4t'+1)) for t' < N/2, by one FFT of half the length: with h = N/2,
    m(X) = sum_j (c_j + c_(j+h) X^h) X^j and X^h = i at those points, so they are the DFT of
    (c_j + i c_(j+h)) zeta^j."""
    n = coeffs.shape[-1]
    h = n // 2
    twist, _, _ = _half_tables(n)
    return np.fft.ifft((coeffs[..., :h] + 1j * coeffs[..., h:]) * twist, axis=-1) * h


def coefficients_to_slots(coeffs: np.ndarray) -> np.ndarray:
    """The N/2 complex slot values whose encoding has these N real coefficients.

    >>> z = coefficients_to_slots(np.array([0., 1., 0., 0.]))   # m(X) = X: slot i = zeta^(3^i)
    >>> np.round(z, 6).tolist() == np.round(np.exp(1j * np.pi * np.array([1, 3]) / 4), 6).tolist()
    True
    """
    c = np.asarray(coeffs, dtype=np.float64)
    _, even, conj = _half_tables(c.shape[-1])
    z = _even_evaluations(c)[..., even]
    return np.where(conj, np.conj(z), z)


def slots_to_coefficients(slots: np.ndarray) -> np.ndarray:
    """Inverse of `coefficients_to_slots`: the N real coefficients of N/2 complex slots.

    >>> c = np.array([1., -2., 0.5, 3., 0., 0., 1., 4.])
    >>> np.allclose(slots_to_coefficients(coefficients_to_slots(c)), c)
    True
    """
    z = np.asarray(slots, dtype=np.complex128)
    h = z.shape[-1]
    twist, even, conj = _half_tables(2 * h)
    values = np.empty(z.shape, dtype=np.complex128)
    values[..., even] = np.where(conj, np.conj(z), z)  # every even power once
    a = np.fft.fft(values, axis=-1) / h / twist
    return np.concatenate([a.real, a.imag], axis=-1)


def _evaluations(coeffs: np.ndarray) -> np.ndarray:
    """m(zeta^(2t+1)) for t < N: an FFT of the twisted coefficients."""
    n = coeffs.shape[-1]
    twist, _ = _tables(n)
    return np.fft.ifft(coeffs * twist, axis=-1) * n


def negacyclic_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a(X) * b(X) mod X^N + 1 (floating point, by the twisted FFT).

    >>> negacyclic_product(np.array([0., 0., 0., 1.]), np.array([0., 2., 0., 0.])).round(9).tolist()  # X^3 * 2X = -2
    [-2.0, 0.0, 0.0, 0.0]
    """
    n = a.shape[-1]
    twist, _ = _tables(n)
    return (np.fft.fft(_evaluations(a) * _evaluations(b), axis=-1) / n / twist).real
