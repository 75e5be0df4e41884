"""Encrypted convolution against torch.nn.functional.conv2d."""

import numpy as np
import pytest

from bench.harness.layer import torch_conv
from heconv.backends.plain import PlainBackend
from heconv.frontend import fold_batchnorm

from .helpers import kaiming, run_layer

# (c_in, c_out, hw, k, stride)
FAST = [
    (3, 16, 8, 3, 1),  # C < c_n, replicated blocks
    (16, 16, 8, 3, 1),  # C = c_n
    (32, 32, 16, 3, 1),  # C > c_n: two ciphertexts each side
    (16, 32, 8, 1, 1),  # 1x1
    (16, 32, 8, 3, 2),  # stride 2
    (16, 32, 8, 1, 2),  # 1x1 stride-2 shortcut
    (4, 6, 7, 5, 1),  # 5x5, odd image, 49 pixels padded to 64
    (2, 3, 9, 7, 1),  # 7x7
    (64, 128, 8, 3, 1),  # 64 -> 128
]
SLOW = [(64, 128, 16, 3, 2), (64, 64, 16, 3, 1), (128, 128, 8, 3, 1)]


def _check(params, shape, seed=0):
    from heconv.backends.seal import SealBackend

    c_in, c_out, hw, k, stride = shape
    rng = np.random.default_rng(seed)
    w, b = kaiming(rng, c_out, c_in, k), rng.normal(0, 0.1, c_out)
    x = rng.uniform(-1, 1, (c_in, hw, hw))
    ref = torch_conv(x, w, b, stride)
    plan, y_seal, c_seal = run_layer(SealBackend(params), w, b, x, stride)
    _, y_plain, c_plain = run_layer(PlainBackend(params), w, b, x, stride)
    assert y_seal.shape == ref.shape
    assert np.abs(y_seal - ref).max() < 1e-3
    assert np.abs(y_plain - ref).max() < 1e-9
    assert c_seal == c_plain == plan.predicted


@pytest.mark.parametrize("shape", FAST, ids=lambda s: "{}-{}-{}x{}-k{}-s{}".format(s[0], s[1], s[2], s[2], s[3], s[4]))
def test_encrypted_matches_torch(params, shape):
    _check(params, shape)


@pytest.mark.slow
@pytest.mark.parametrize("shape", SLOW, ids=lambda s: "{}-{}-{}x{}-k{}-s{}".format(s[0], s[1], s[2], s[2], s[3], s[4]))
def test_encrypted_matches_torch_resnet18_shapes(params, shape):
    _check(params, shape)


@pytest.mark.slow
def test_encrypted_at_n16384():
    from heconv.params import ckks_params

    params = ckks_params(depth=1, min_slots=8192)
    assert params.poly_modulus_degree == 16384
    _check(params, (3, 16, 32, 3, 1))  # 32x32 input: P = 1024, c_n = 8 -> 16


def test_non_square_image(params, rng):
    from heconv.backends.seal import SealBackend

    w = kaiming(rng, 8, 4, 3)
    x = rng.uniform(-1, 1, (4, 6, 10))
    _, y, _ = run_layer(SealBackend(params), w, None, x)
    assert np.abs(y - torch_conv(x, w, None, 1)).max() < 1e-3


def test_fold_batchnorm_matches_torch(rng):
    import torch

    conv = torch.nn.Conv2d(4, 6, 3, padding=1, bias=True).double()
    bn = torch.nn.BatchNorm2d(6).double().eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    x = torch.from_numpy(rng.uniform(-1, 1, (1, 4, 8, 8)))
    with torch.no_grad():
        ref = bn(conv(x))[0].numpy()
    w, b = fold_batchnorm(conv.weight.detach().numpy(), conv.bias.detach().numpy(), bn.weight.detach().numpy(),
                          bn.bias.detach().numpy(), bn.running_mean.numpy(), bn.running_var.numpy(), bn.eps)
    np.testing.assert_allclose(torch_conv(x[0].numpy(), w, b, 1), ref, atol=1e-10)
    with pytest.raises(ValueError, match="gamma must have shape"):
        fold_batchnorm(w, b, np.ones(5), np.ones(6), np.ones(6), np.ones(6))
