"""Pruning groups that follow the schedule (docs/design.md, "Rotation schedules"): zeroing one giant-step
group (bo, g) or baby-step group (bi, j, pos) saves exactly the rotation it names."""

import numpy as np
import pytest

from heconv.conv import plan_conv
from heconv.geometry import group_ids, packing_geometry, schedule_group_ids

from .helpers import kaiming

C_IN, C_OUT, K, HW = 32, 32, 3, 16  # c_n = 16: n_in = n_out = 2


@pytest.mark.parametrize("shape, c_n", [((32, 32, 3, 3), 16), ((6, 10, 5, 5), 8), ((16, 3, 1, 1), 4)])
def test_baby_step_one_gives_the_diagonal_and_positional_groups(shape, c_n):
    g, s = group_ids(shape, c_n), schedule_group_ids(shape, c_n, 1)
    np.testing.assert_array_equal(s.giant, g.diagonal)
    np.testing.assert_array_equal(s.baby, g.positional)
    assert (s.n_giant, s.n_baby) == (g.n_diagonal, g.n_positional)


@pytest.mark.parametrize("b", [1, 2, 4, 8, 16])
def test_groups_partition_the_plaintexts(b):
    """Each plaintext M[bo, bi, d, pos] lies in exactly one giant and one baby group, and the
    group counts are n_out * c_n / B and n_in * B * k * k."""
    s = schedule_group_ids((C_OUT, C_IN, K, K), 16, b)
    plain = group_ids((C_OUT, C_IN, K, K), 16).plaintext
    for ids in (s.giant, s.baby):
        pairs = np.unique(np.stack([plain.ravel(), ids.ravel()]), axis=1)
        assert pairs.shape[1] == len(np.unique(plain))  # one group per plaintext
    assert (s.n_giant, s.n_baby) == (2 * 16 // b, 2 * b * K * K)
    assert len(np.unique(s.giant)) == s.n_giant and len(np.unique(s.baby)) == s.n_baby


@pytest.mark.parametrize("b", [1, 2, 4, 16])
def test_zeroing_one_group_of_each_kind_saves_one_rotation(params, rng, b):
    w = kaiming(rng, C_OUT, C_IN, K)
    geometry = packing_geometry(C_IN, C_OUT, HW, HW, params.slots)
    c_n, n_in, n_out = geometry.c_n, geometry.n_in, geometry.n_out
    schedule = f"bsgs:{b}"
    base = plan_conv(w, HW, HW, params, schedule=schedule).predicted
    s = schedule_group_ids(w.shape, c_n, b)
    centre = K * K // 2

    def without(ids, gid):
        v = w.copy()
        v[ids == gid] = 0.0
        return plan_conv(v, HW, HW, params, schedule=schedule).predicted

    # Giant-step group (bo, g): g != 0 saves its rotation and n_in * B * k*k plaintexts.
    n_g = c_n // b
    for bo, g in [(1, 1), (0, n_g - 1)]:
        if n_g == 1:
            continue  # B = c_n: no giant step to save
        p = without(s.giant, bo * n_g + g)
        assert base.rotations - p.rotations == 1 and s.giant_saves([bo * n_g + g])[0]
        assert base.pmuls - p.pmuls == n_in * b * K * K
    # g = 0 saves plaintexts only.
    p = without(s.giant, 1 * n_g + 0)
    assert base.rotations == p.rotations and base.pmuls - p.pmuls == n_in * b * K * K
    # Baby-step group (bi, j, pos): (j, pos) != (0, centre) saves its rotation and n_out * c_n / B plaintexts.
    for bi, j, pos in [(0, 0, 2), (1, b - 1, 7), (1, b - 1, centre)]:
        gid = (bi * b + j) * K * K + pos
        if (j, pos) == (0, centre):
            continue
        p = without(s.baby, gid)
        assert base.rotations - p.rotations == 1 and s.baby_saves([gid])[0]
        assert base.pmuls - p.pmuls == n_out * n_g
    # (j, pos) = (0, centre) multiplies the unrotated input: no rotation to save.
    gid = (1 * b + 0) * K * K + centre
    p = without(s.baby, gid)
    assert base.rotations == p.rotations and not s.baby_saves([gid])[0]
    assert base.pmuls - p.pmuls == n_out * n_g


def test_groups_of_a_schedule_save_nothing_under_another(params, rng):
    """A baby-step group of B = 4 is scattered under B = 1: no whole diagonal or position vanishes."""
    w = kaiming(rng, C_OUT, C_IN, K)
    s = schedule_group_ids(w.shape, 16, 4)
    v = w.copy()
    v[s.baby == (0 * 4 + 3) * K * K + 2] = 0.0
    assert plan_conv(v, HW, HW, params).predicted.rotations == plan_conv(w, HW, HW, params).predicted.rotations
    assert (plan_conv(v, HW, HW, params, schedule="bsgs:4").predicted.rotations
            == plan_conv(w, HW, HW, params, schedule="bsgs:4").predicted.rotations - 1)


def test_bad_baby_step():
    with pytest.raises(ValueError, match="the baby step B = 3 must be a power of two dividing c_n = 16"):
        schedule_group_ids((4, 4, 3, 3), 16, 3)
    with pytest.raises(ValueError, match="B = 32 must be a power of two dividing c_n = 16"):
        schedule_group_ids((4, 4, 3, 3), 16, 32)
