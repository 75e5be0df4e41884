import numpy as np
import pytest

from heconv.backends.base import OpCounts
from bench.harness.unit_costs import measure_unit_costs
from heconv.cost import UnitCosts, floor_seconds
from heconv.backends.plain import PlainBackend


def test_floor_is_linear_in_counts():
    u = UnitCosts(rotation=3.0, pmul=2.0, add=1.0, plain_add=0.5, rescale=7.0, encrypt=11.0, encode=100.0)
    c = OpCounts(rotations=5, key_switches=5, pmuls=4, adds=3, plain_adds=2, rescales=1, encryptions=1, encodes=9)
    assert floor_seconds(c, u) == 5 * 3 + 4 * 2 + 3 * 1 + 2 * 0.5 + 7 + 11
    # Key switches, not logical rotations, carry the rotation cost.
    assert floor_seconds(OpCounts(rotations=1, key_switches=2), u) == 6.0


def test_measure_unit_costs_leaves_backend_as_it_was(backend):
    backend.generate_galois_keys([16, 32])
    before = backend.counter.copy()
    u = measure_unit_costs(backend, reps=3)
    assert backend.counter == before and backend.galois_steps == frozenset({16, 32})
    assert all(v > 0 for v in u.to_dict().values())


def test_measure_unit_costs_without_keys(params):
    b = PlainBackend(params)
    measure_unit_costs(b, reps=2)
    assert b.galois_steps == frozenset()
    with pytest.raises(ValueError, match="cannot be rescaled"):
        measure_unit_costs(b, level=1)


def test_rotation_costs_more_than_pmul_on_seal(params):
    """Sanity of the measurement itself, not a speed target: a key switch is far
    dearer than a plaintext multiplication (DESIGN.md: 12-32x)."""
    from heconv.backends.seal import SealBackend

    b = SealBackend(params)
    b.generate_galois_keys([1])
    u = measure_unit_costs(b, reps=5)
    assert u.rotation > 3 * u.pmul > 0
    assert np.isfinite(list(u.to_dict().values())).all()
