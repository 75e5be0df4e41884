import numpy as np
import pytest

from heconv.linear import compile_linear, pack_linear_input, plan_linear, read_linear_output, run_linear


def _run(backend, w, b, v):
    plan = plan_linear(w, backend.params, has_bias=b is not None)
    backend.generate_galois_keys(plan.rotation_steps)
    layer = compile_linear(plan, w, b, backend)
    ct = backend.encrypt(pack_linear_input(v, plan))
    backend.reset_counter()
    out = run_linear(layer, ct, backend)
    counts = backend.reset_counter()
    return plan, read_linear_output(backend.decrypt(out), plan), counts


@pytest.mark.parametrize("n_out, n_in", [(10, 512), (10, 64), (3, 5), (100, 2048), (16, 4096), (10, 2048)])
def test_linear_matches_numpy_and_counts(backend, rng, n_out, n_in):
    w, b, v = rng.normal(size=(n_out, n_in)), rng.normal(size=n_out), rng.uniform(-1, 1, n_in)
    plan, y, counts = _run(backend, w, b, v)
    np.testing.assert_allclose(y, w @ v + b, atol=1e-4 * np.sqrt(n_in))
    assert counts == plan.predicted and counts.key_switches == counts.rotations
    s, n_o, n_i = backend.slots, plan.n_o, plan.n_i
    if n_i * n_o >= s:  # docs/design.md, "Other layers"
        assert counts.rotations == (n_i * n_o // s - 1) + int(np.log2(s // n_o))


def test_zero_diagonal_is_skipped(params, rng):
    w = rng.normal(size=(100, 2048))  # n_o = 128, n_i = 2048, L = 2 lanes, T = 64
    base = plan_linear(w, params)
    # Hybrid diagonal t of every lane: W[i mod n_o, (i + s*T + t) mod n_i] for i < n_i, s < 2.
    t = 5
    i = np.arange(2048)
    for s in range(2):
        rows, cols = i % 128, (i + s * 64 + t) % 2048
        keep = rows < 100
        w[rows[keep], cols[keep]] = 0.0
    p = plan_linear(w, params)
    assert base.predicted.rotations - p.predicted.rotations == 1
    assert base.predicted.pmuls - p.predicted.pmuls == 1
    assert t not in p.kept


def test_linear_errors(params):
    with pytest.raises(ValueError, match=r"layer fc: linear weight must have shape \[n_out, n_in\]"):
        plan_linear(np.ones((2, 3, 4)), params)
    with pytest.raises(ValueError, match="more than the 4096 slots"):
        plan_linear(np.ones((10, 5000)), params)
    plan = plan_linear(np.ones((10, 64)), params)
    with pytest.raises(ValueError, match="expected 64 inputs, got 63"):
        pack_linear_input(np.ones(63), plan)
