"""What crosses the network: seeded symmetric uploads, and SEAL's own serialization as bytes."""

import os

import numpy as np
import pytest

from heconv.backends.plain import SEED_BYTES, PlainBackend
from heconv.params import ckks_params


def _seal(params):
    from heconv.backends.seal import SealBackend

    return SealBackend(params)


@pytest.mark.parametrize("degree", [8192, 16384])
def test_a_seeded_upload_is_about_half_a_public_key_one(degree, rng):
    """SEAL's seeded form sends c1 as its seed: half the polynomials, so about half the bytes."""
    b = _seal(ckks_params(depth=1, poly_modulus_degree=degree))
    plain = b.encode(rng.uniform(-1, 1, b.slots))
    seeded, public = b.encrypt_for_upload(plain), b.encrypt_for_upload(plain, seeded=False)
    assert seeded.nbytes == len(seeded.payload) and public.nbytes == len(public.payload)
    assert 0.45 < seeded.nbytes / public.nbytes < 0.55, (seeded.nbytes, public.nbytes)
    # both are SEAL's compressed serialization: below the raw 64-bit words of their polynomials
    words = degree * 2 * 8  # N residues for each of the 2 primes of level 0 ([60, 40] without the special one)
    assert seeded.nbytes < words + 100 and public.nbytes < 2 * words
    assert b.counter.encryptions == 2


def test_the_server_loads_a_seeded_upload_and_computes_on_it(backend, rng):
    """The public view expands the seed with the context alone; the client decrypts the result."""
    s = backend.slots
    x, w = rng.uniform(-1, 1, s), rng.uniform(-1, 1, s)
    backend.generate_galois_keys([1])
    server = backend.public_view()
    ct = server.from_wire(backend.encrypt_for_upload(backend.encode(x)))
    np.testing.assert_allclose(backend.decrypt(ct), x, atol=1e-6)
    y = server.multiply_plain(server.rotate(ct, 1), server.encode(w, 0, server.rescale_divisor(0)))
    server.rescale_inplace(y)
    back = server.to_wire(y)
    assert back.nbytes == backend.ciphertext_bytes(y) > 0
    np.testing.assert_allclose(backend.decrypt(backend.from_wire(back)), np.roll(x, -1) * w, atol=1e-5)
    assert (backend.counter.encryptions, server.counter.encryptions) == (1, 0)


def test_a_public_view_cannot_make_a_seeded_upload(backend, rng):
    server = backend.public_view()
    plain = server.encode(rng.uniform(-1, 1, server.slots))
    with pytest.raises(PermissionError, match="no secret key"):
        server.encrypt_for_upload(plain)
    assert server.encrypt_for_upload(plain, seeded=False).nbytes > 0  # the public key encrypts for anyone


def test_the_public_view_holds_nothing_made_of_the_secret_key(params):
    """No secret key, key generator, decryptor, or encryptor that can encrypt symmetrically."""
    import tenseal.sealapi as seal

    client = _seal(params)
    server = client.public_view()
    secret_kinds = (seal.SecretKey, seal.KeyGenerator, seal.Decryptor)
    assert any(isinstance(v, secret_kinds) for v in vars(client).values())
    assert not any(isinstance(v, secret_kinds) for v in vars(server).values())
    plain = client.encode(np.zeros(client.slots))
    encryptors = [v for v in vars(server).values() if isinstance(v, seal.Encryptor)]
    assert encryptors
    for e in encryptors:
        with pytest.raises((RuntimeError, ValueError)):
            e.encrypt_symmetric(plain)


def test_wire_bytes_are_seals_own_file_format(params, rng, tmp_path):
    b = _seal(params)
    ct = b.encrypt(rng.uniform(-1, 1, b.slots))
    path = tmp_path / "ct.seal"
    ct.save(str(path))
    assert b.to_wire(ct).payload == path.read_bytes()
    assert b.ciphertext_bytes(ct) == os.path.getsize(path)


def test_serialization_goes_through_memory_where_the_machine_has_it():
    from heconv.backends import seal

    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        assert seal._SCRATCH == "/dev/shm"
    with seal._scratch_file() as path:
        assert os.path.exists(path)
    assert not os.path.exists(path)


def test_the_cleartext_backend_models_a_seeded_upload(params):
    b = PlainBackend(params)
    plain = b.encode(np.zeros(b.slots))
    words = params.poly_modulus_degree * 2 * 8
    assert b.encrypt_for_upload(plain).nbytes == words + SEED_BYTES
    assert b.encrypt_for_upload(plain, seeded=False).nbytes == 2 * words
