"""The canonical embedding (heconv/backends/embedding.py): the half-length transforms against the
definition, slot i = m(zeta^(3^i)), and against the full-length FFT; round trips, batches."""

import numpy as np
import pytest

from heconv.backends.embedding import (
    _evaluations,
    _tables,
    coefficients_to_slots,
    negacyclic_product,
    slots_to_coefficients,
)


@pytest.mark.parametrize("n", [2, 4, 16, 64])
def test_slots_are_the_polynomial_at_the_powers_of_three(n):
    c = np.random.default_rng(n).normal(size=n)
    zeta = np.exp(1j * np.pi / n)
    points = zeta ** np.array([pow(3, i, 2 * n) for i in range(n // 2)])
    direct = np.array([np.polyval(c[::-1], x) for x in points])
    assert np.abs(coefficients_to_slots(c) - direct).max() < 1e-12


def test_half_length_matches_the_full_length_fft_at_8192_and_round_trips():
    rng = np.random.default_rng(0)
    c = rng.normal(size=(3, 8192))
    full = _evaluations(c)[..., _tables(8192)[1]]
    z = coefficients_to_slots(c)
    assert z.shape == (3, 4096) and np.abs(z - full).max() < 1e-9
    assert np.abs(slots_to_coefficients(z) - c).max() < 1e-12
    assert np.abs(slots_to_coefficients(z[1]) - c[1]).max() < 1e-12


def test_slot_products_are_negacyclic_products():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 32))
    prod = slots_to_coefficients(coefficients_to_slots(a) * coefficients_to_slots(b))
    assert np.abs(prod - negacyclic_product(a, b)).max() < 1e-10
    with pytest.raises(ValueError, match="power of two"):
        coefficients_to_slots(np.zeros(6))
