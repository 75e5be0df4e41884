import numpy as np
import pytest

from heconv.conv import diagonal_weights
from heconv.geometry import (
    diagonal_index,
    kernel_offsets,
    next_pow2,
    pack,
    packing_geometry,
    positional_index,
    unpack,
    valid_pixel_masks,
)


@pytest.mark.parametrize(
    "c_in, c_out, hw, slots, expect",
    [
        # (P, c_n, n_in, n_out, replicas)
        (3, 16, 8, 4096, (64, 16, 1, 1, 4)),  # C < c_n: replicated
        (16, 16, 8, 4096, (64, 16, 1, 1, 4)),
        (64, 64, 16, 4096, (256, 16, 4, 4, 1)),  # C > c_n: several ciphertexts
        (64, 128, 16, 4096, (256, 16, 4, 8, 1)),
        (512, 512, 2, 4096, (4, 512, 1, 1, 2)),
        (1, 8, 28, 4096, (1024, 4, 1, 2, 1)),  # 784 pixels pad to 1024
    ],
)
def test_packing_geometry(c_in, c_out, hw, slots, expect):
    g = packing_geometry(c_in, c_out, hw, hw, slots)
    assert (g.channel_slots, g.c_n, g.n_in, g.n_out, g.replicas) == expect
    assert g.c_n * g.channel_slots * g.replicas == slots


def test_image_too_big_for_slots():
    with pytest.raises(ValueError, match=r"64x128 channel needs P = 8192 slots.*S = 4096"):
        packing_geometry(3, 16, 64, 128, 4096)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_packing_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="positive integer"):
        packing_geometry(bad, 4, 4, 4, 4096)


def test_next_pow2():
    assert [next_pow2(n) for n in (1, 2, 3, 4, 5, 1023, 1024, 1025)] == [1, 2, 4, 4, 8, 1024, 1024, 2048]


def test_pack_unpack_roundtrip(rng):
    for c, hw, slots in [(3, 5, 256), (20, 4, 256), (7, 3, 64)]:
        g = packing_geometry(c, c, hw, hw, slots)
        x = rng.normal(size=(c, hw, hw))
        vecs = pack(x, g)
        assert len(vecs) == g.n_in and all(v.shape == (slots,) for v in vecs)
        np.testing.assert_array_equal(unpack(vecs, g, c), x)
        # Replicas are exact copies, padding slots are zero.
        block = vecs[0][: g.c_n * g.channel_slots]
        np.testing.assert_array_equal(vecs[0], np.tile(block, g.replicas))
        assert np.all(block.reshape(g.c_n, g.channel_slots)[:, hw * hw :] == 0)


def test_masks_match_zero_padding():
    m = valid_pixel_masks(3, 3, 3, 16)
    # Position (-1, -1) reads (y-1, x-1): valid for y, x >= 1.
    assert m[0, :9].reshape(3, 3).tolist() == [[0, 0, 0], [0, 1, 1], [0, 1, 1]]
    assert m[4, :9].sum() == 9 and m[:, 9:].sum() == 0
    assert kernel_offsets(3)[4] == (0, 0)


def test_group_indices_match_engine_layout(rng):
    """geometry's group ids (used by pruning) agree with the engine's plaintext layout."""
    c_out, c_in, k = 12, 10, 3
    g = packing_geometry(c_in, c_out, 8, 8, 256)  # P = 64, c_n = 4
    w = rng.normal(size=(c_out, c_in, k, k))
    wd = diagonal_weights(w, g)  # [bo, bi, d, c, pos]
    bo, d = diagonal_index(c_out, c_in, g.c_n)
    bi, pos = positional_index(c_out, c_in, k, g.c_n)
    for o in range(c_out):
        for i in range(c_in):
            for p in range(k * k):
                c = i % g.c_n
                assert wd[bo[o, i], bi[o, i, 0, 0], d[o, i], c, p] == w[o, i].ravel()[p]
                assert pos[o, i].ravel()[p] == p
