import pytest

from heconv.params import MAX_BITS_128, check_security, ckks_params, estimated_galois_key_bytes


def test_table_matches_seal():
    from heconv.backends.seal import seal_max_bits_128

    for n, bits in MAX_BITS_128.items():
        assert seal_max_bits_128(n) == bits


def test_smallest_secure_n_that_fits():
    assert ckks_params(depth=1).poly_modulus_degree == 8192
    assert ckks_params(depth=1, min_slots=8192).poly_modulus_degree == 16384
    assert ckks_params(depth=3).poly_modulus_degree == 16384  # 60+3*40+60 = 240 > 218
    assert ckks_params(depth=3).coeff_mod_bit_sizes == (60, 40, 40, 40, 60)


def test_depth_picks_n_at_the_boundaries():
    # 60 + 40*d + 60 bits against 218 / 438 / 881.
    expect = {2: 8192, 3: 16384, 7: 16384, 8: 32768, 19: 32768}
    assert {d: ckks_params(depth=d).poly_modulus_degree for d in expect} == expect
    with pytest.raises(ValueError, match="no secure CKKS ring dimension"):
        ckks_params(depth=20)


@pytest.mark.parametrize("n, bits", [(8192, (60, 40, 40, 40, 60)), (4096, (60, 40, 60)), (2048, (27,))])
def test_insecure_parameters_refused(n, bits):
    with pytest.raises(ValueError, match="128-bit security|not one of the supported secure degrees"):
        check_security(n, bits, allow_insecure=False)


def test_toy_flag_allows_insecure():
    p = ckks_params(depth=1, poly_modulus_degree=4096, allow_insecure=True)
    assert p.allow_insecure and p.total_bits == 160
    with pytest.raises(ValueError, match="below 128-bit security"):
        ckks_params(depth=3, poly_modulus_degree=8192)


def test_seal_backend_refuses_insecure_and_accepts_toy():
    from heconv.backends.seal import SealBackend
    from heconv.params import CKKSParams

    with pytest.raises(ValueError, match="below 128-bit security"):
        SealBackend(CKKSParams(8192, (60, 40, 40, 40, 60)))
    toy = SealBackend(CKKSParams(4096, (40, 20, 40), scale_bits=20, allow_insecure=True))
    assert toy.slots == 2048


def test_galois_key_size_estimate_close_to_seal(params):
    from heconv.backends.seal import SealBackend

    b = SealBackend(params)
    b.generate_galois_keys([1, 2, 3, 5])
    real = b.galois_key_bytes()
    assert abs(real - 4 * estimated_galois_key_bytes(params)) / real < 0.05
