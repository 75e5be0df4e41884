"""The coefficient algorithm's output mask (heconv/coeff_mask.py): the hiding it states, and that the
uniform mask hides the unread coefficients while the read ones still decrypt, encrypted and in clear."""

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
from heconv.coeff_mask import SECURITY_BITS, mask_hiding_bits, mask_range_bits, output_primes
from heconv.params import ckks_params, params_for_input

from .helpers import kaiming
from .test_coeff import reference


def test_default_hides_at_least_40_bits_and_a_weak_configuration_does_not():
    """The issue's goal: >= 40 bits per masked coefficient with the default parameters (a random dense
    64->64 layer on 16x16, N = 8192); a plan whose output keeps two primes gets the interval mask,
    which the bound shows to be weak (12 bits on this layer, as every masked layer had before)."""
    rng = np.random.default_rng(0)
    w = kaiming(rng, 64, 64, 3)
    bound = output_gain(w) * 1.0  # inputs in [-1, 1]
    params = params_for_input(16, 16)
    plan = plan_coeff_conv(w, 16, 16, params)
    assert params.coeff_mod_bit_sizes == (60, 40, 60) and output_primes(params, plan.output_level) == 1
    assert mask_hiding_bits(plan.params, plan.output_level, bound) == SECURITY_BITS >= 40
    weak = ckks_params(depth=2)  # [60, 40, 40, 60]: from level 0, after the rescale [60, 40] is left
    assert mask_hiding_bits(weak, plan_coeff_conv(w, 16, 16, weak).output_level, bound) == SECURITY_BITS
    bits = mask_hiding_bits(weak, plan_coeff_conv(w, 16, 16, weak, rescale=True).output_level, bound)
    assert bits < 40 and bits == pytest.approx(57 - 40 - np.log2(bound))
    assert mask_range_bits(weak, 1) == 57 and mask_range_bits(params, 1) == 60


def _masked_and_bare(backend, w, x, stride=1, rescale=False):
    """One layer run twice on the same inputs, masked (by the server's public view) and bare."""
    client, server = backend, backend.public_view()
    plan = plan_coeff_conv(w, x.shape[1], x.shape[2], client.params, stride=stride, rescale=rescale)
    layer = compile_coeff_conv(plan, w, None, server)
    inputs = encrypt_coeff_input(x, plan, client)
    bare = evaluate_coeff_conv(layer, inputs, server)
    masked = run_coeff_conv(layer, inputs, server, np.random.default_rng(3))
    return plan, layer, bare, masked


@pytest.mark.parametrize("depth", [1, 2])
def test_encrypted_mask_hides_unread_and_keeps_read_coefficients(depth):
    """Depth 1: the unread coefficients decode uniform over the prime, the read ones as without the
    mask. Depth 2 from level 0 with a rescale (two primes left): the interval mask, still decryptable."""
    from heconv.backends.seal import SealBackend

    rng = np.random.default_rng(1)
    params = ckks_params(depth=depth)
    w, x = kaiming(rng, 6, 5, 3), rng.uniform(-1, 1, (5, 8, 8))
    client = SealBackend(params)
    plan, layer, bare, masked = _masked_and_bare(client, w, x, rescale=depth == 2)
    read = layer.needed[0]
    for a, m in zip(bare, masked):
        a, m = client.decode_coefficients(a), client.decode_coefficients(m)
        assert np.abs(a[read] - m[read]).max() < 1e-7
        # uniform on [-q/2, q/2) (q ~ 2^60): mean |value| q/4; on [-R, R] (R = 2^57): R/2
        expected = 2.0 ** (mask_range_bits(params, plan.output_level) - (2 if depth == 1 else 1)) / params.scale
        assert 0.9 < np.abs(m[~read]).mean() / expected < 1.1
    # without a rescale the input sits at 2^20, so a public-key encryption's noise (~2^7) shows: ~1e-4
    tol = 1e-6 if plan.rescale else 1e-3
    assert np.abs(decrypt_coeff_output(masked, plan, client) - reference(x, w, None, 1)).max() < tol
    with pytest.raises(PermissionError):
        client.public_view().decode_coefficients(masked[0])


def test_plain_mask_matches_the_encrypted_one_in_distribution():
    """The cleartext backend stands in for the uniform mask: unread values uniform on [-q/2, q/2) / scale,
    read ones untouched, the same counts as SEAL (an encode, an encryption and an addition)."""
    rng = np.random.default_rng(2)
    params = ckks_params(depth=1)
    w, x = kaiming(rng, 4, 3, 3), rng.uniform(-1, 1, (3, 8, 8))
    plan, layer, bare, masked = _masked_and_bare(PlainBackend(params), w, x, stride=2)
    read = layer.needed[0]
    for a, m in zip(bare, masked):
        assert np.array_equal(a.values[read], m.values[read])
        assert 0.45 < np.abs(m.values[~read]).mean() / 2.0 ** 19 < 0.55
    assert plan.predicted.encodes == plan.predicted.encryptions == plan.n_out


def test_uniform_mask_refuses_slot_ciphertexts():
    b = PlainBackend(ckks_params(depth=1))
    with pytest.raises(ValueError, match="slot-encoded"):
        b.add_uniform_mask(b.encrypt(np.zeros(4096)), np.zeros(8192, dtype=bool))
