import numpy as np
import pytest

from heconv.backends.base import galois_element, key_switch_plan, naf, normalize_step


def test_naf_sums_back():
    for n in range(-300, 300):
        parts = naf(n)
        assert sum(parts) == n
        assert all(abs(p) & (abs(p) - 1) == 0 for p in parts)


def test_key_switch_plan():
    assert key_switch_plan(5, frozenset({5}), 4096) == [5]
    assert key_switch_plan(-1, frozenset({4095}), 4096) == [4095]
    assert key_switch_plan(4096, frozenset(), 4096) == []
    with pytest.raises(ValueError, match="no Galois key for step 6"):
        key_switch_plan(6, frozenset({1}), 4096)


def test_galois_element_is_seal_convention():
    assert galois_element(1, 8192) == 3 and galois_element(2, 8192) == 9
    assert normalize_step(-256, 4096) == 3840


def test_primitives_agree(backend, rng):
    s = backend.slots
    x, w = rng.uniform(-1, 1, s), rng.uniform(-1, 1, s)
    backend.generate_galois_keys([3, -256])
    ct = backend.encrypt(x)
    np.testing.assert_allclose(backend.decrypt(backend.rotate(ct, 3)), np.roll(x, -3), atol=1e-5)
    np.testing.assert_allclose(backend.decrypt(backend.rotate(ct, -256)), np.roll(x, 256), atol=1e-5)
    prod = backend.multiply_plain(ct, backend.encode(w, 0, backend.rescale_divisor(0)))
    backend.add_inplace(prod, backend.multiply_plain(ct, backend.encode(w, 0, backend.rescale_divisor(0))))
    backend.rescale_inplace(prod)
    assert backend.level(prod) == 1
    assert backend.scale(prod) == pytest.approx(backend.params.scale, rel=1e-9)
    backend.add_plain_inplace(prod, backend.encode(np.ones(s), 1))
    np.testing.assert_allclose(backend.decrypt(prod), 2 * x * w + 1, atol=1e-5)
    c = backend.counter
    assert (c.rotations, c.key_switches, c.pmuls, c.adds, c.plain_adds, c.rescales) == (2, 2, 2, 1, 1, 1)
    assert (c.encodes, c.encryptions, c.decryptions) == (4, 1, 3)


def test_decomposed_rotation_counts_each_key_switch(backend, rng):
    """Without a key of its own, step 7 = 8 - 1 costs two key switches (SEAL's NAF)."""
    x = rng.uniform(-1, 1, backend.slots)
    backend.generate_galois_keys([1, -1, 2, 4, 8])
    ct = backend.encrypt(x)
    y = backend.rotate(ct, 7)
    np.testing.assert_allclose(backend.decrypt(y), np.roll(x, -7), atol=1e-5)
    assert (backend.counter.rotations, backend.counter.key_switches) == (1, 2)
    with pytest.raises(ValueError, match="no Galois key for step 3"):
        backend.generate_galois_keys([1])
        backend.rotate(ct, 3)


def test_level_mismatch_is_refused(backend, rng):
    s = backend.slots
    ct = backend.encrypt(rng.uniform(-1, 1, s))
    with pytest.raises((ValueError, RuntimeError)):
        backend.multiply_plain(ct, backend.encode(np.ones(s), 1))


def test_public_view_cannot_decrypt(params, rng):
    from heconv.backends.seal import SealBackend

    client = SealBackend(params)
    client.generate_galois_keys([1])
    server = client.public_view()
    assert client.has_secret_key and not server.has_secret_key
    ct = client.encrypt(rng.uniform(-1, 1, client.slots))
    rotated = server.rotate(ct, 1)  # the server evaluates with the client's public keys
    with pytest.raises(PermissionError, match="no secret key"):
        server.decrypt(rotated)
    with pytest.raises(PermissionError):
        server.generate_galois_keys([2])
    assert server.counter.rotations == 1 and client.counter.rotations == 0
    np.testing.assert_allclose(client.decrypt(rotated)[:4], client.decrypt(ct)[1:5], atol=1e-5)
