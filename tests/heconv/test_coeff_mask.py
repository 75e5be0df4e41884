"""What the coefficient algorithm's server does to its outputs (heconv/coeff_mask.py): the hiding it
states; that only the read coefficients of c0 go back, and they decrypt as without the mask; that c1 is
re-randomised; encrypted and in clear, with the same counts and bytes."""

import numpy as np
import pytest

from heconv.backends.plain import PlainBackend
from heconv.bounds import output_gain
from heconv.coeff import (
    compile_coeff_conv,
    decrypt_coeff_output,
    encrypt_coeff_input,
    evaluate_coeff_conv,
    plan_coeff_conv,
    run_coeff_conv,
)
from heconv.coeff_mask import SECURITY_BITS, mask_hiding_bits, output_primes
from heconv.coeff_pack import read_coefficients
from heconv.params import ckks_params, params_for_input
from heconv.traffic import extracted_bytes

from .helpers import kaiming
from .test_coeff import reference


def test_default_hides_at_least_40_bits_at_every_level():
    """The issue's goal: >= 40 bits per masked coefficient with the default parameters (a random dense
    64->64 layer on 16x16, N = 8192), and now also where the output keeps two primes (the interval
    mask that stood there hid 12 bits): an unread coefficient is not sent at all."""
    rng = np.random.default_rng(0)
    w = kaiming(rng, 64, 64, 3)
    bound = output_gain(w) * 1.0  # inputs in [-1, 1]
    params = params_for_input(16, 16)
    plan = plan_coeff_conv(w, 16, 16, params)
    assert params.coeff_mod_bit_sizes == (60, 40, 60) and output_primes(params, plan.output_level) == 1
    assert mask_hiding_bits(plan.params, plan.output_level, bound) == SECURITY_BITS >= 40
    two = ckks_params(depth=2)  # [60, 40, 40, 60]: from level 0, after the rescale [60, 40] is left
    level = plan_coeff_conv(w, 16, 16, two, rescale=True).output_level
    assert output_primes(two, level) == 2 and mask_hiding_bits(two, level, bound) == SECURITY_BITS


def _masked_and_bare(backend, w, x, stride=1, rescale=False):
    """One layer run twice on the same inputs, masked (by the server's public view) and bare."""
    client, server = backend, backend.public_view()
    plan = plan_coeff_conv(w, x.shape[1], x.shape[2], client.params, stride=stride, rescale=rescale)
    layer = compile_coeff_conv(plan, w, None, server)
    inputs = encrypt_coeff_input(x, plan, client)
    bare = evaluate_coeff_conv(layer, inputs, server)
    masked = run_coeff_conv(layer, inputs, server)
    return plan, layer, bare, masked, server


@pytest.mark.parametrize("depth", [1, 2])
def test_encrypted_download_sends_the_read_coefficients_alone(depth):
    """SEAL, one prime left (depth 1) and two (depth 2, rescaled): the download weighs c1 and the read
    part of c0 exactly; the client decrypts the read coefficients as without the mask and gets the
    layer's output; c1 differs from the bare product's nearly everywhere (re-randomised); the server's
    view cannot decrypt."""
    from heconv.backends.seal import SealBackend, _polynomials, _serialized

    rng = np.random.default_rng(1)
    params = ckks_params(depth=depth)
    w, x = kaiming(rng, 6, 5, 3), rng.uniform(-1, 1, (5, 8, 8))
    client = SealBackend(params)
    plan, layer, bare, masked, server = _masked_and_bare(client, w, x, stride=2, rescale=depth == 2)
    reads = read_coefficients(plan.chunking, 6, 2)
    assert plan.predicted.encryptions == plan.n_out and plan.predicted.encodes == 0
    for a, m, r in zip(bare, masked, reads):
        wire = server.to_wire(m, r)
        assert wire.nbytes == len(wire.payload) == extracted_bytes(params, params.depth, int(r.sum()))  # one prime
        got, want = client.decode_coefficients(client.from_wire(wire)), client.decode_coefficients(a)
        assert np.abs(got[r] - want[r]).max() < 1e-3
        c1_bare, c1_masked = _polynomials(_serialized(a))[1], _polynomials(_serialized(m))[1]
        assert (c1_bare != c1_masked).mean() > 0.99
    with pytest.raises(ValueError, match="read coefficients"):  # the client's plan reads other coefficients
        client.from_wire(wire, ~r)
    # without a rescale the input sits at 2^20, so a public-key encryption's noise (~2^7) shows: ~1e-4
    tol = 1e-6 if plan.rescale else 1e-3
    back = [client.from_wire(server.to_wire(m, r)) for m, r in zip(masked, reads)]
    assert np.abs(decrypt_coeff_output(back, plan, client) - reference(x, w, None, 2)).max() < tol
    with pytest.raises(PermissionError):
        server.decode_coefficients(masked[0])


def test_plain_download_matches_the_encrypted_one():
    """The cleartext backend: the same counts as SEAL (an encryption and an addition per output, no
    encode), the same bytes, and what the client decodes is the read values, NaN where nothing was sent
    (so that reading there shows); a receiver whose plan reads other coefficients refuses the wire."""
    rng = np.random.default_rng(2)
    params = ckks_params(depth=1)
    w, x = kaiming(rng, 4, 3, 3), rng.uniform(-1, 1, (3, 8, 8))
    plan, layer, bare, masked, server = _masked_and_bare(PlainBackend(params), w, x, stride=2)
    assert plan.predicted.encryptions == plan.n_out and plan.predicted.encodes == 0
    for a, m, r in zip(bare, masked, read_coefficients(plan.chunking, 4, 2)):
        wire = server.to_wire(m, r)
        assert wire.nbytes == extracted_bytes(params, params.depth, int(r.sum()))
        assert np.array_equal(wire.payload.values[r], a.values[r]) and np.isnan(wire.payload.values[~r]).all()
        with pytest.raises(ValueError, match="other coefficients"):
            server.from_wire(wire, ~r)


def test_extracted_download_refuses_slot_ciphertexts():
    b = PlainBackend(ckks_params(depth=1))
    with pytest.raises(ValueError, match="coefficient-encoded"):
        b.to_wire(b.encrypt(np.zeros(4096)), np.zeros(8192, dtype=bool))
