"""bench.harness.unit_costs: streamed unit costs leave the backend as it was and time what a layer does."""

import numpy as np
import pytest

from bench.harness.unit_costs import (
    PRIMITIVES,
    OperandPool,
    PoolSizes,
    galois_key_bytes_in_memory,
    last_level_cache_bytes,
    measure_unit_costs,
    measure_unit_costs_both,
    plaintext_bytes,
    time_stream,
)
from heconv.backends.plain import PlainBackend
from heconv.params import ckks_params

SMALL = PoolSizes(plaintexts=8, ciphertexts=4, keys=4)


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
    last = measure_unit_costs(b, level=1, reps=2)  # the chain's last level: nothing to rescale, so 0
    assert last.rescale == 0.0 and last.pmul > 0
    with pytest.raises(ValueError, match="outside the chain"):
        measure_unit_costs(b, level=2)


def test_rotation_costs_more_than_pmul_on_seal(params):
    """Sanity of the measurement itself, not a speed target: a key switch is far
    dearer than a plaintext multiplication (12-32x on the machines measured so far)."""
    from heconv.backends.seal import SealBackend

    b = SealBackend(params)
    b.generate_galois_keys([1])
    u = measure_unit_costs(b, reps=5)
    assert u.rotation > 3 * u.pmul > 0
    assert np.isfinite(list(u.to_dict().values())).all()


def test_seal_keys_are_the_same_objects_afterwards(params):
    """Extra keys are made on a copy: the backend keeps its own key object, steps and counter."""
    from heconv.backends.seal import SealBackend

    b = SealBackend(params)
    b.generate_galois_keys([5])
    keys, before = b.galois_keys, b.counter.copy()
    m = measure_unit_costs_both(b, reps=3, sizes=SMALL)
    assert b.galois_keys is keys and b.galois_steps == frozenset({5}) and b.counter == before
    assert m.sizes == SMALL and set(m.timings) == set(PRIMITIVES) and all(len(t) == 3 for t in m.timings.values())
    assert m.cpu.rotation > m.cpu.pmul > 0 and m.wall.rotation > m.wall.pmul > 0


def test_streams_cycle_through_distinct_operands(params):
    b = PlainBackend(params)
    pool = OperandPool(b, sizes=SMALL)
    assert len(pool.plaintexts) == 8 and len(pool.ciphertexts) == 4
    assert len(pool.key_steps) == 4 and b.galois_steps == frozenset()
    pmul = pool.stream("pmul")
    assert pmul.rounds == 8
    pts = [pmul.setup()[1] for _ in range(8)]
    assert len({id(p) for p in pts}) == 8 and pmul.setup()[1] is pts[0]
    rot = pool.stream("rotation")
    assert [rot.setup()[1] for _ in range(5)] == [1, 2, 3, 4, 1]
    # add's second operand is a fresh product (made untimed, as the layer's pmul makes it).
    add = pool.stream("add")
    a1, a2 = add.setup(), add.setup()
    assert a1[1] is not a2[1] and a1[0] is not a2[0]
    assert pool.backend.counter.pmuls > 0 and b.counter.pmuls == 0
    with pytest.raises(ValueError, match="unknown primitive"):
        pool.stream("bootstrap")


def test_a_public_view_cycles_through_its_own_keys(params):
    b = PlainBackend(params)
    b.generate_galois_keys([3, 7])
    pool = OperandPool(b.public_view(), sizes=SMALL)
    assert pool.key_steps == [3, 7]
    with pytest.raises(ValueError, match="no Galois key"):
        OperandPool(PlainBackend(params).public_view(), sizes=SMALL)


def test_enough_keys_are_used_as_they_are(params):
    b = PlainBackend(params)
    b.generate_galois_keys(range(10, 20))
    assert OperandPool(b, sizes=SMALL).key_steps == list(range(10, 20))


def test_deeper_levels_and_both_clocks():
    b = PlainBackend(ckks_params(depth=2, poly_modulus_degree=8192))
    pool = OperandPool(b, level=1, sizes=SMALL)
    assert all(b.level(c) == 1 for c in pool.ciphertexts)
    assert all(b.level(p) == 1 for p in pool.plaintexts) and b.level(pool.biases[0]) == 2
    t = time_stream(pool.stream("rescale"), 5)
    assert t.calls == 5 and t.wall_median > 0 and t.cpu_mean >= 0
    assert measure_unit_costs(b, level=1, reps=2, clock="cpu").pmul >= 0
    with pytest.raises(ValueError, match="clock"):
        measure_unit_costs(b, clock="gpu")


def test_pool_sizes_follow_the_cache(params):
    b = PlainBackend(params)
    assert plaintext_bytes(b, 0) == 8192 * 2 * 8
    assert galois_key_bytes_in_memory(b) == 2 * 2 * 3 * 8192 * 8  # about 0.79 MB, about 0.73 MB serialized
    s = PoolSizes.for_backend(b, 0, 32 << 20)
    assert s.plaintexts * plaintext_bytes(b, 0) >= 2 * (32 << 20)
    assert s.keys * galois_key_bytes_in_memory(b) >= 1.5 * (32 << 20)
    assert PoolSizes.for_backend(b, 0, 1 << 20) == PoolSizes(plaintexts=16, ciphertexts=4, keys=4)
    assert last_level_cache_bytes() >= 1 << 20
