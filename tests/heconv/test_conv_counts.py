"""Exact operation counts: counted == predicted == the formula of docs/design.md, in both backends."""

import numpy as np
import pytest

from heconv.backends.plain import PlainBackend
from heconv.conv import ConvPlan, plan_conv
from heconv.geometry import diagonal_index, packing_geometry, positional_index
from heconv.schedule import dense_rotations

from .helpers import expected_rotations, kaiming, run_layer, zero_groups

# (c_in, c_out, hw, k): C < c_n, C = c_n, C > c_n, k = 1, non-square channel counts.
SHAPES = [(3, 16, 8, 3), (16, 16, 8, 3), (32, 32, 16, 3), (16, 32, 8, 1), (64, 128, 8, 3), (8, 8, 6, 5)]


@pytest.mark.parametrize("c_in, c_out, hw, k", SHAPES)
def test_dense_counts_equal_formula(backend, rng, c_in, c_out, hw, k):
    w = kaiming(rng, c_out, c_in, k)
    x = rng.uniform(-1, 1, (c_in, hw, hw))
    plan, _, counts = run_layer(backend, w, None, x)
    g = plan.packing
    formula = g.n_in * (k * k - 1) + g.n_out * (g.c_n - 1)
    assert counts.rotations == plan.predicted.rotations == dense_rotations(g, k) == formula
    assert counts.key_switches == counts.rotations
    assert counts.pmuls == plan.predicted.pmuls == g.n_in * g.n_out * g.c_n * k * k
    assert counts == plan.predicted
    assert len(backend.galois_steps) == len(plan.rotation_steps)


def test_design_example_64_to_64():
    """docs/design.md, "The convolution": dense 3x3 64->64 on 16x16 at N = 8192: R = 92, pmul = 2304."""
    from heconv.params import ckks_params

    plan = plan_conv(np.ones((64, 64, 3, 3)), 16, 16, ckks_params(depth=1))
    p = plan.predicted
    assert (plan.packing.c_n, p.rotations, p.pmuls, p.rescales) == (16, 92, 2304, 4)
    assert plan.predicted.adds == 2304 - 4 * 16 + 4 * 15


@pytest.mark.parametrize(
    "frac_diag, frac_pos, frac_plain",
    [(0.5, 0, 0), (0.9, 0, 0), (0, 0.5, 0), (0.4, 0.4, 0), (0, 0, 0.5), (0, 0, 0.97)],
    ids=["diag50", "diag90", "pos50", "both", "plain50", "plain97"],
)
def test_pruned_counts(backend, frac_diag, frac_pos, frac_plain):
    rng = np.random.default_rng(7)
    c_in, c_out, hw = 32, 48, 16
    g = packing_geometry(c_in, c_out, hw, hw, backend.slots)
    w = zero_groups(kaiming(rng, c_out, c_in, 3), g.c_n, rng, frac_diag, frac_pos, frac_plain)
    x = rng.uniform(-1, 1, (c_in, hw, hw))
    plan, _, counts = run_layer(backend, w, rng.normal(size=c_out), x)
    assert counts == plan.predicted
    assert counts.rotations == counts.key_switches == expected_rotations(w, g.c_n, hw)
    # The multiplications are exactly the nonzero c_n-weight plaintexts.
    assert counts.pmuls == len(plan.terms)
    if frac_diag or frac_pos:
        assert counts.rotations < dense_rotations(g, 3)
    if frac_plain == 0.5:
        # Scattered plaintexts save multiplications but (almost) no rotation: Hunter's weakness.
        assert counts.rotations == dense_rotations(g, 3)


def test_zeroing_one_group_saves_exactly_one_rotation(rng, params):
    c_in, c_out, k, hw = 32, 32, 3, 16
    w = kaiming(rng, c_out, c_in, k)
    g = packing_geometry(c_in, c_out, hw, hw, params.slots)
    base = plan_conv(w, hw, hw, params).predicted
    bo, d = diagonal_index(c_out, c_in, g.c_n)
    one_diag = w.copy()
    one_diag[(bo == 1) & (d == 5)] = 0.0
    p = plan_conv(one_diag, hw, hw, params).predicted
    assert base.rotations - p.rotations == 1
    assert base.pmuls - p.pmuls == g.n_in * k * k
    bi, pos = positional_index(c_out, c_in, k, g.c_n)
    one_pos = w.copy()
    one_pos[(bi == 0) & (pos == 2)] = 0.0
    p = plan_conv(one_pos, hw, hw, params).predicted
    assert base.rotations - p.rotations == 1
    assert base.pmuls - p.pmuls == g.n_out * g.c_n
    # The centre position and the zero diagonal cost no rotation: only multiplications go.
    centre = w.copy()
    centre[(bi == 0) & (pos == 4)] = 0.0
    assert plan_conv(centre, hw, hw, params).predicted.rotations == base.rotations


def test_fully_pruned_output_block_encrypts_bias(backend, rng):
    c_in, c_out, hw = 16, 48, 16
    g = packing_geometry(c_in, c_out, hw, hw, backend.slots)
    assert g.c_n == 16 and g.n_out == 3
    w = kaiming(rng, c_out, c_in, 3)
    dead = slice(g.c_n, 2 * g.c_n)
    w[dead] = 0.0  # output block 1 has no weight left
    b = rng.normal(size=c_out)
    plan, y, counts = run_layer(backend, w, b, rng.uniform(-1, 1, (c_in, hw, hw)))
    assert plan.empty_outputs == [1]
    assert counts == plan.predicted and counts.encryptions == 1 and counts.rescales == 2
    np.testing.assert_allclose(y[dead], np.broadcast_to(b[dead, None, None], y[dead].shape), atol=1e-4)


def test_small_images_alias_positions(params):
    """On 2x2, 3x3 positions (0, 1) and (1, -1) both shift by one slot: one rotation."""
    plan = plan_conv(np.ones((512, 512, 3, 3)), 2, 2, params)
    g = plan.packing
    assert dense_rotations(g, 3) == 8 + 511
    assert plan.input_shifts == [sorted({1, 2, 3, g.slots - 1, g.slots - 2, g.slots - 3})]
    assert plan.predicted.rotations == 6 + 511
    # On a 1x1 image only the centre position reads a pixel.
    assert plan_conv(np.ones((4, 4, 3, 3)), 1, 1, params).positions == [[4]]


def test_plan_is_pure_and_serializable(params, rng):
    w = kaiming(rng, 24, 8, 3)
    w[:, :, 0, 0] = 0.0
    plan = plan_conv(w, 8, 8, params, has_bias=True, name="layer1.0.conv1")
    again = ConvPlan.from_dict(__import__("json").loads(plan.to_json()))
    assert again == plan
    assert plan_conv(w, 8, 8, params, has_bias=True, name="layer1.0.conv1") == plan


def test_plain_backend_counts_resnet18_shapes_fast(params):
    """The cleartext backend runs real ResNet18 shapes; counts match the plan exactly."""
    rng = np.random.default_rng(3)
    for c_in, c_out, hw, k in [(64, 64, 16, 3), (128, 128, 8, 3), (256, 256, 4, 3), (64, 128, 16, 1)]:
        w = kaiming(rng, c_out, c_in, k)
        b = PlainBackend(params)
        plan, y, counts = run_layer(b, w, None, rng.uniform(-1, 1, (c_in, hw, hw)))
        assert counts == plan.predicted
        assert counts.rotations == dense_rotations(plan.packing, k)
