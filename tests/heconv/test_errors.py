"""Bad input: a ValueError that names the layer and the constraint, and nothing half-done."""

import numpy as np
import pytest

from heconv.backends.plain import PlainBackend
from heconv.conv import compile_conv, encrypt_input, plan_conv, run_conv


def test_even_kernel(params):
    with pytest.raises(ValueError, match=r"layer stem: kernel size must be odd.*2x2"):
        plan_conv(np.ones((4, 4, 2, 2)), 8, 8, params, name="stem")


def test_wrong_weight_shape(params):
    with pytest.raises(ValueError, match=r"layer l1: weight must have shape \[C_out, C_in, k, k\], got \[4, 4, 3\]"):
        plan_conv(np.ones((4, 4, 3)), 8, 8, params, name="l1")
    plan = plan_conv(np.ones((4, 4, 3, 3)), 8, 8, params, name="l1")
    b = PlainBackend(params)
    with pytest.raises(ValueError,
                       match=r"layer l1: weight has shape \[4, 2, 3, 3\], the plan was made for \[4, 4, 3, 3\]"):
        compile_conv(plan, np.ones((4, 2, 3, 3)), None, b)
    assert b.counter.encodes == 0  # nothing encoded before the check failed


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(params, bad):
    w = np.ones((4, 4, 3, 3))
    w[1, 2, 0, 0] = bad
    with pytest.raises(ValueError, match=r"layer c: weight \[4, 4, 3, 3\] holds 1 NaN or Inf"):
        plan_conv(w, 8, 8, params, name="c")


def test_image_too_big(params):
    with pytest.raises(ValueError, match=r"layer big \(3->16, 3x3, 128x128\).*needs P = 16384 slots.*S = 4096"):
        plan_conv(np.ones((16, 3, 3, 3)), 128, 128, params, name="big")


def test_bias_shape(params):
    plan = plan_conv(np.ones((4, 4, 3, 3)), 8, 8, params, has_bias=True, name="b")
    with pytest.raises(ValueError, match=r"layer b: bias must have shape \[4\], got \[5\]"):
        compile_conv(plan, np.ones((4, 4, 3, 3)), np.ones(5), PlainBackend(params))


def test_bad_stride(params):
    with pytest.raises(ValueError, match="layer s: stride must be 1 or 2, got 3"):
        plan_conv(np.ones((4, 4, 3, 3)), 8, 8, params, stride=3, name="s")


def test_run_checks_inputs_and_keys(params, rng):
    w = rng.normal(size=(32, 32, 3, 3))
    plan = plan_conv(w, 16, 16, params, name="r")  # n_in = 2
    b = PlainBackend(params)
    layer = compile_conv(plan, w, None, b)
    xs = encrypt_input(rng.uniform(-1, 1, (32, 16, 16)), plan.packing, b)
    with pytest.raises(ValueError, match="layer r: the backend lacks Galois keys"):
        run_conv(layer, xs, b)
    b.generate_galois_keys(plan.rotation_steps)
    with pytest.raises(ValueError, match=r"layer r: expected 2 input ciphertexts \(c_n = 16\), got 1"):
        run_conv(layer, xs[:1], b)


def test_params_mismatch(params):
    from heconv.params import ckks_params

    plan = plan_conv(np.ones((4, 4, 3, 3)), 8, 8, params, name="p")
    other = PlainBackend(ckks_params(depth=2))
    with pytest.raises(ValueError, match="layer p: backend parameters"):
        compile_conv(plan, np.ones((4, 4, 3, 3)), None, other)
