"""The coefficient algorithm (docs/design.md): counts (counted == predicted == closed formula, both
backends), differential tests against torch conv2d, masks, alignment and errors."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from heconv.backends.plain import PlainBackend
from heconv.coeff import (
    compile_coeff_conv,
    decrypt_coeff_output,
    encrypt_coeff_input,
    evaluate_coeff_conv,
    mask_hiding_bits,
    plan_coeff_conv,
    run_coeff_conv,
)
from heconv.coeff_choice import coefficient_chunking
from heconv.coeff_pack import read_coefficients
from heconv.coeff_plan import CoeffPlan, dense_coefficient_counts
from heconv.geometry import coefficient_block_ids
from heconv.params import ckks_params

from .helpers import kaiming


def run_coeff(backend, weight, bias, x, stride=1, mask=True, align=None, frame_kernel=None):
    """Plan, compile and run one layer; return (plan, output, run counts, output ciphertexts)."""
    h, w = x.shape[1:]
    plan = plan_coeff_conv(weight, h, w, backend.params, stride=stride, has_bias=bias is not None, mask=mask,
                           align=align, frame_kernel=frame_kernel)
    layer = compile_coeff_conv(plan, weight, bias, backend)
    inputs = encrypt_coeff_input(x, plan, backend)
    backend.reset_counter()
    outputs = run_coeff_conv(layer, inputs, backend)
    counts = backend.reset_counter()
    return plan, decrypt_coeff_output(outputs, plan, backend), counts, outputs


def reference(x, w, b, stride):
    bias = None if b is None else torch.from_numpy(b)
    return F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), bias, stride=stride,
                    padding=w.shape[2] // 2)[0].numpy()


# (c_in, c_out, hw, k): C_in < one chunk, not a multiple of C_w, k = 1 and 5.
SHAPES = [(3, 16, 8, 3), (20, 24, 8, 3), (16, 32, 8, 1), (8, 8, 6, 5)]


@pytest.mark.parametrize("c_in, c_out, hw, k", SHAPES)
def test_dense_counts_equal_formula(backend, rng, c_in, c_out, hw, k):
    w = kaiming(rng, c_out, c_in, k)
    plan, y, counts, _ = run_coeff(backend, w, rng.normal(size=c_out), rng.uniform(-1, 1, (c_in, hw, hw)))
    ch = plan.chunking
    assert counts == plan.predicted == dense_coefficient_counts(ch, has_bias=True)
    assert counts.rotations == counts.key_switches == 0
    assert counts.pmuls == ch.groups * ch.chunks * ch.tiles
    assert counts.encryptions == plan.n_out and counts.encodes == 0  # one re-randomisation per output
    assert plan.rotation_steps == [] and not backend.galois_steps


@pytest.mark.parametrize("frac", [0.3, 0.8, 1.0])
def test_zero_blocks_cost_nothing(backend, frac):
    rng = np.random.default_rng(3)
    c_in, c_out, hw = 40, 48, 8
    ch = coefficient_chunking(c_in, c_out, hw, hw, 3, backend.params.poly_modulus_degree)
    ids, n = coefficient_block_ids((c_out, c_in, 3, 3), ch)
    w = kaiming(rng, c_out, c_in, 3)
    w[np.isin(ids, rng.choice(n, int(frac * n), replace=False))] = 0.0
    b = rng.normal(size=c_out)
    x = rng.uniform(-1, 1, (c_in, hw, hw))
    plan, y, counts, _ = run_coeff(backend, w, b, x)
    kept = len(np.unique(ids[w != 0]))
    full = len(np.unique(ids[w != 0] // ch.chunks))
    assert counts == plan.predicted
    assert counts.pmuls == kept * ch.tiles and counts.rescales == (full * ch.tiles if plan.rescale else 0)
    assert counts.encryptions == ch.groups * ch.tiles  # masks on the full outputs, the bias alone on the empty
    if backend.tracks_values and backend.name == "PlainBackend":
        assert np.abs(y - reference(x, w, b, 1)).max() < 1e-9


CASES = [  # (c_in, c_out, hw, k, stride, n): C_in not a multiple of C_w, k = 1/3/5, stride 2, spatial tiles
    (20, 12, 8, 3, 1, 8192), (7, 5, 8, 1, 2, 8192), (6, 4, 9, 5, 1, 8192), (5, 6, 10, 3, 2, 8192),
    (3, 4, 16, 3, 1, 256), (4, 3, 12, 5, 2, 128), (9, 5, 11, 3, 1, 64),
]


@pytest.mark.parametrize("c_in, c_out, hw, k, stride, n", CASES)
def test_matches_torch_plain(c_in, c_out, hw, k, stride, n):
    rng = np.random.default_rng(c_in * 100 + hw)
    params = ckks_params(depth=1, poly_modulus_degree=n, allow_insecure=n < 8192)
    w, b = kaiming(rng, c_out, c_in, k), rng.normal(size=c_out)
    x = rng.uniform(-1, 1, (c_in, hw, hw))
    plan, y, counts, _ = run_coeff(PlainBackend(params), w, b, x, stride)
    assert counts == plan.predicted
    assert y.shape == (c_out, -(-hw // stride), -(-hw // stride))
    assert np.abs(y - reference(x, w, b, stride)).max() < 1e-9
    if n < 8192:
        assert plan.chunking.tiles > 1


@pytest.mark.parametrize("c_in, c_out, hw, k, stride, n", [(20, 12, 8, 3, 1, 8192), (3, 4, 16, 3, 1, 256),
                                                           (4, 3, 12, 5, 2, 128)])
def test_matches_torch_encrypted(c_in, c_out, hw, k, stride, n):
    from heconv.backends.seal import SealBackend

    rng = np.random.default_rng(5)
    params = ckks_params(depth=1, poly_modulus_degree=n, allow_insecure=n < 8192)
    w, b = kaiming(rng, c_out, c_in, k), rng.normal(size=c_out)
    x = rng.uniform(-1, 1, (c_in, hw, hw))
    plan, y, counts, _ = run_coeff(SealBackend(params), w, b, x, stride)
    assert counts == plan.predicted
    assert np.abs(y - reference(x, w, b, stride)).max() < 1e-3


@pytest.mark.slow
def test_resnet18_layer_encrypted_against_torch_and_plain_counts():
    """The README's example shape, 64->64 3x3 on 16x16 at N = 8192, encrypted: same counts as plain."""
    from heconv.backends.seal import SealBackend

    rng = np.random.default_rng(0)
    params = ckks_params(depth=1)
    w, x = kaiming(rng, 64, 64, 3), rng.uniform(-1, 1, (64, 16, 16))
    plan, y, counts, _ = run_coeff(SealBackend(params), w, None, x)
    _, _, plain_counts, _ = run_coeff(PlainBackend(params), w, None, x)
    assert counts == plain_counts == plan.predicted
    assert np.abs(y - reference(x, w, None, 1)).max() < 1e-3


def test_mask_hides_the_partial_sums_and_keeps_the_outputs():
    """What goes back holds the coefficients the client reads and nothing of the partial sums around
    them (the bare product has them); the server's public view (no secret key) re-randomises."""
    params = ckks_params(depth=1)
    rng = np.random.default_rng(2)
    w, x = kaiming(rng, 4, 3, 3), rng.uniform(-1, 1, (3, 8, 8))
    client = PlainBackend(params)
    server = client.public_view()
    plan = plan_coeff_conv(w, 8, 8, params, stride=2)
    layer = compile_coeff_conv(plan, w, None, server)
    inputs = encrypt_coeff_input(x, plan, client)
    bare = [client.decode_coefficients(c) for c in evaluate_coeff_conv(layer, inputs, server)]
    reads = read_coefficients(plan.chunking, 4, 2)
    sent = [client.from_wire(server.to_wire(c, r)) for c, r in zip(run_coeff_conv(layer, inputs, server), reads)]
    for a, m, read in zip(bare, [client.decode_coefficients(c) for c in sent], reads):
        assert np.array_equal(a[read], m[read])
        assert np.isnan(m[~read]).all() and np.abs(a[~read]).max() > 0.1  # partial sums of the weights stay behind
    assert np.abs(decrypt_coeff_output(sent, plan, client) - reference(x, w, None, 2)).max() < 1e-9
    assert reads[0].sum() == 4 * 4 * 4  # stride 2: only the subsampled pixels of the 4 channels are read
    assert server.counter.encryptions == plan.n_out  # one fresh encryption of zero each
    assert mask_hiding_bits(params, 1, 1.0) == 128.0  # not sent (tests/heconv/test_coeff_mask.py)


def test_aligned_convs_add():
    """A 1x1 shortcut framed as a 3x3 and aligned with a 3x3 conv: the outputs add coefficient-wise."""
    params = ckks_params(depth=1)
    rng = np.random.default_rng(4)
    b = PlainBackend(params)
    w3, w1 = kaiming(rng, 32, 32, 3), kaiming(rng, 32, 16, 1)
    x3, x1 = rng.uniform(-1, 1, (32, 8, 8)), rng.uniform(-1, 1, (16, 8, 8))
    p3, _, _, y3 = run_coeff(b, w3, None, x3)
    p1, _, _, y1 = run_coeff(b, w1, None, x1, align=p3.chunking, frame_kernel=3)
    assert p1.chunking.output_layout == p3.chunking.output_layout and p1.chunking.chunks != p3.chunking.chunks
    for u, v in zip(y3, y1):
        b.add_inplace(u, v)
    got = decrypt_coeff_output(y3, p3, b)
    assert np.abs(got - reference(x3, w3, None, 1) - reference(x1, w1, None, 1)).max() < 1e-9


def test_plan_round_trips_through_json():
    rng = np.random.default_rng(1)
    w = kaiming(rng, 8, 5, 3)
    w[:, :2] = 0.0
    plan = plan_coeff_conv(w, 6, 6, ckks_params(depth=1, poly_modulus_degree=64, allow_insecure=True), has_bias=True)
    assert CoeffPlan.from_dict(json.loads(plan.to_json())) == plan


def test_errors_name_the_layer():
    params = ckks_params(depth=1)
    with pytest.raises(ValueError, match="layer c1: stride must be 1 or 2, got 3"):
        plan_coeff_conv(np.ones((2, 2, 3, 3)), 8, 8, params, stride=3, name="c1")
    with pytest.raises(ValueError, match="layer c2: kernel size must be odd"):
        plan_coeff_conv(np.ones((2, 2, 2, 2)), 8, 8, params, name="c2")
    plan = plan_coeff_conv(np.ones((2, 2, 3, 3)), 8, 8, params, name="c3")
    with pytest.raises(ValueError, match=r"layer c3: weight has shape \[2, 3, 3, 3\], the plan was made for"):
        compile_coeff_conv(plan, np.ones((2, 3, 3, 3)), None, PlainBackend(params))
    layer = compile_coeff_conv(plan, np.ones((2, 2, 3, 3)), None, PlainBackend(params))
    with pytest.raises(ValueError, match=r"layer c3: expected 1 input ciphertexts \(1 chunks x 1 tiles\), got 0"):
        run_coeff_conv(layer, [], PlainBackend(params))
    with pytest.raises(ValueError, match="N = 8 a power of 2|no 3x3 frame fits"):
        coefficient_chunking(1, 1, 4, 4, 3, 8)


def test_backends_refuse_to_mix_encodings():
    b = PlainBackend(ckks_params(depth=1))
    ct = b.encrypt_plain(b.encode_coefficients(np.zeros(8192)))
    with pytest.raises(ValueError, match="coefficient-encoded"):
        b.rotate(ct, 1)
    with pytest.raises(ValueError, match="coefficient-encoded, the other slot-encoded"):
        b.multiply_plain(ct, b.encode(np.zeros(4096)))
    with pytest.raises(PermissionError):
        b.public_view().decode_coefficients(ct)
