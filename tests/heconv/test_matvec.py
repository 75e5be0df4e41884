"""matvec (heconv.algorithms.matvec): against torch on odd shapes, exact counts in both backends, the
multiplexed strided output, shared diagonals on small maps, skipped zero diagonals and its groups."""

import numpy as np
import pytest

from bench.harness.layer import torch_conv
from heconv.algorithms import encrypt_map, get_algorithm, run_layer
from heconv.algorithms.matvec import matvec_geometry, plan_matvec
from heconv.backends.plain import PlainBackend
from heconv.conv import plan_conv
from heconv.errors import InputError

from .helpers import kaiming

MATVEC = get_algorithm("matvec")

# (c_in, c_out, h, w, k, stride): C_in != C_out, stride 2 (even: multiplexed; odd: at the even pixels),
# maps as small as or narrower than the kernel, replicated blocks, several blocks each side, 1x1, 5x5.
SHAPES = [
    (3, 5, 6, 6, 3, 1),
    (4, 6, 8, 8, 3, 2),
    (6, 4, 7, 5, 3, 2),
    (5, 7, 2, 2, 3, 1),
    (4, 4, 1, 3, 3, 1),
    (3, 2, 2, 2, 5, 2),
    (40, 24, 4, 4, 3, 2),
    (20, 36, 8, 8, 3, 1),
    (8, 12, 8, 8, 1, 2),
    (70, 70, 2, 2, 3, 1),
]


def _check(backend, shape, seed=0, bias=True, **options):
    c_in, c_out, h, w, k, stride = shape
    rng = np.random.default_rng(seed)
    weight, b = kaiming(rng, c_out, c_in, k), (rng.normal(0, 0.1, c_out) if bias else None)
    x = rng.uniform(-1, 1, (c_in, h, w))
    r = run_layer(MATVEC, weight, b, x, backend, stride=stride, **options)
    ref = torch_conv(x, weight, b, stride)
    assert r.output.shape == ref.shape
    assert np.abs(r.output - ref).max() < (1e-9 if isinstance(backend, PlainBackend) else 1e-3)
    assert r.counts == r.plan.predicted
    assert r.counts.key_switches == r.counts.rotations
    return r


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_torch_and_counts_plain(params, shape):
    _check(PlainBackend(params), shape)


@pytest.mark.parametrize("shape", [SHAPES[1], SHAPES[2], SHAPES[3], SHAPES[4], SHAPES[6], SHAPES[7]],
                         ids=lambda s: "x".join(map(str, s)))
def test_matches_torch_and_counts_seal(params, shape):
    from heconv.backends.seal import SealBackend

    r = _check(SealBackend(params), shape, seed=1)
    assert len(r.plan.rotation_steps) == len(set(r.plan.rotation_steps))


@pytest.mark.parametrize("baby_step", [1, 3, 7, 64])
def test_any_baby_step_gives_the_same_output(params, baby_step):
    r = _check(PlainBackend(params), (6, 10, 4, 4, 3, 2), baby_step=baby_step)
    assert r.plan.baby_step == baby_step


def test_512_on_2x2_needs_at_most_2048_multiplications(params):
    """Issue 22's goal, by the plan's predicted counts (same in count mode): 2,048 shifts, not 4,608; and
    1,024 diagonals where the input's two replicas are rotated apart (63 rotations against 94)."""
    w = np.ones((512, 512, 3, 3))
    plain = plan_matvec(w, 2, 2, params, copies=1, complex_pack=False)
    assert plain.predicted.pmuls == 2048 <= plan_conv(w, 2, 2, params, schedule="auto").predicted.pmuls - 2560
    plan = plan_matvec(w, 2, 2, params, complex_pack=False)
    assert (plan.geometry.copies, plan.predicted.pmuls, plan.predicted.rotations) == (2, 1024, 63)
    assert plain.predicted.rotations == 94
    backend = PlainBackend(params, track_values=False)
    backend.generate_galois_keys(plan.rotation_steps)
    layer = MATVEC.compile(plan, w, None, backend)
    x = [backend.encrypt(None)]
    backend.reset_counter()
    MATVEC.run(layer, x, backend)
    assert backend.reset_counter() == plan.predicted


def test_a_single_output_with_room_is_folded(params):
    """ResNet18's 256->512 stride 2 on 4x4 (one output ciphertext, half its frames unused): 512 channels in
    128 frames of 4 parities, computed on 2,048 diagonals (T_out) and folded once; unfolded, 3,072."""
    w = np.ones((512, 256, 3, 3))
    plan = plan_matvec(w, 4, 4, params, stride=2, complex_pack=False)
    flat = plan_matvec(w, 4, 4, params, stride=2, out_frames=256, complex_pack=False)
    assert (plan.geometry.out_frames, plan.geometry.fold, plan.predicted.pmuls) == (128, 2, 2048)
    assert (flat.geometry.fold, flat.predicted.pmuls) == (1, 3072)
    assert 2048 in plan.rotation_steps and MATVEC.output_layout(plan).ciphertexts == 1
    best = min(plan.candidates, key=lambda c: c.predicted_s)
    assert best.predicted_s < min(c.predicted_s for c in flat.candidates)


@pytest.mark.parametrize("out_frames", [16, 8, 4])
def test_every_fold_matches_torch(params, out_frames):
    """(12, 12, 8x8, stride 2), c_n = 16 frames: kept, or cut to 8 or 4 (fold 1, 2, 4); same output, exact
    counts. Fewer than 3 frames of 4 parities cannot hold 12 channels."""
    r = _check(PlainBackend(params), (12, 12, 8, 8, 3, 2), seed=out_frames, c_n=16, out_frames=out_frames,
               copies=1)
    assert r.plan.geometry.fold == 16 // out_frames
    with pytest.raises(InputError, match="out_frames 2 x 4 parities hold fewer than the 12 output channels"):
        plan_matvec(np.ones((12, 12, 3, 3)), 8, 8, params, stride=2, c_n=16, out_frames=2, complex_pack=False)


@pytest.mark.parametrize("shape, options", [
    ((64, 8, 16, 16, 3, 1), {}),  # four input ciphertexts into one folded output (c_n = 16 -> 8 frames)
    ((40, 6, 16, 16, 3, 2), {"level": 1, "rescale": False, "input_scale_bits": 30, "weight_scale_bits": 24}),
], ids=["inputs-4", "last-level"])
def test_a_fold_leaves_copies_of_the_output_in_every_slot(params, shape, options):
    """Every T_out block of the output ciphertext holds the output: the unused slots hold copies, nothing else."""
    r = _check(PlainBackend(params), shape, seed=2, **options)
    g = r.plan.geometry
    assert g.fold > 1
    backend = PlainBackend(params)
    rng = np.random.default_rng(2)
    c_in, c_out, h, w, k, stride = shape
    weight, b = kaiming(rng, c_out, c_in, k), rng.normal(0, 0.1, c_out)
    backend.generate_galois_keys(MATVEC.rotation_steps(r.plan))
    layer = MATVEC.compile(r.plan, weight, b, backend)
    x = rng.uniform(-1, 1, (c_in, h, w))
    out = MATVEC.run(layer, encrypt_map(x, MATVEC.input_layout(r.plan), backend, MATVEC.input_level(r.plan)), backend)
    v = backend.decrypt(out[0]).real
    copies = v.reshape(-1, g.out_period)
    assert np.abs(copies - copies[0]).max() < 1e-9 and np.abs(copies[0]).max() > 0.1


# The reads that cross into the next copy (i + d >= T) land in the last U slots of a period: only where the
# last frame is used (c_out = c_n and H*W = P), as in the last three shapes.
@pytest.mark.parametrize("shape", [(24, 20, 2, 2, 3, 1), (70, 70, 2, 2, 3, 1), (20, 12, 4, 4, 3, 1),
                                   (6, 8, 4, 4, 3, 2), (16, 8, 4, 4, 5, 2), (8, 4, 4, 4, 1, 1),
                                   (32, 32, 2, 2, 3, 1), (8, 8, 4, 4, 3, 1), (16, 32, 4, 4, 3, 2)],
                         ids=lambda s: "x".join(map(str, s)))
def test_rotated_copies_match_torch_with_exact_counts(params, shape):
    """An input with R replicas read as R copies rotated apart: the same output as torch, counted ==
    predicted, its diagonals k mod U: at most U = T/R and at least 1/R of the plain replication's."""
    c_in, c_out, h, w, k, stride = shape
    least = matvec_geometry(c_in, c_out, h, w, k, stride, params.slots)
    replicas = params.slots // least.period
    r = _check(PlainBackend(params), shape, seed=5, copies=replicas, out_frames=least.c_n)
    plain = plan_matvec(np.ones((c_out, c_in, k, k)), h, w, params, stride=stride, copies=1, out_frames=least.c_n)
    assert -(-plain.plaintexts // replicas) <= r.plan.plaintexts <= min(plain.plaintexts, r.plan.geometry.diag_period)


def test_rotated_copies_with_several_input_blocks(params):
    """c_n = 4 of 12 channels: three input ciphertexts, each read as 64 rotated copies, into three outputs."""
    r = _check(PlainBackend(params), (12, 12, 4, 4, 3, 1), seed=7, c_n=4, copies=64, out_frames=4)
    assert (r.plan.geometry.n_in, r.plan.geometry.n_out, r.plan.geometry.copies) == (3, 3, 64)


def test_rotated_copies_round_trip_and_refuse_a_wrong_count(params):
    from heconv.algorithms.matvec import MatvecPlan, RotatedCopiesLayout

    plan = plan_matvec(np.ones((32, 32, 3, 3)), 2, 2, params)
    assert plan.geometry.copies == 32 and MatvecPlan.from_dict(plan.to_dict()) == plan
    with pytest.raises(InputError, match="RotatedCopiesLayout: 2 copies of a map with 4 replicas"):
        RotatedCopiesLayout(16, 1, 2, 2, 2, copies=2).pack(np.zeros((2, 1, 2)))


def test_rotated_copies_match_torch_encrypted(params):
    from heconv.backends.seal import SealBackend

    r = _check(SealBackend(params), (32, 32, 2, 2, 3, 1), seed=6)  # every read crossing a copy included
    assert r.plan.geometry.copies == 32 and r.counts.rotations == r.plan.predicted.rotations


def test_copies_other_than_the_replicas_are_refused(params):
    with pytest.raises(InputError, match="matvec copies must be 1 or the input's 2 replicas"):
        plan_matvec(np.ones((512, 512, 3, 3)), 2, 2, params, copies=4)


def test_a_folded_layer_matches_torch_encrypted(params):
    from heconv.backends.seal import SealBackend

    r = _check(SealBackend(params), (16, 32, 16, 16, 3, 2), seed=4, complex_pack=False)  # ResNet-20's 16->32, stride 2
    assert r.plan.geometry.fold == 2 and r.counts.rotations == r.plan.predicted.rotations


def test_strided_output_at_the_strided_resolution(params):
    """64->128 stride 2 on 16x16: 2 output ciphertexts (the slot engine: 8), 4 output channels per frame."""
    w = np.ones((128, 64, 3, 3))
    plan = plan_matvec(w, 16, 16, params, stride=2, complex_pack=False)
    out = MATVEC.output_layout(plan)
    assert (plan.geometry.n_out, out.ciphertexts, out.shape) == (2, 2, (128, 8, 8))
    assert plan_conv(w, 16, 16, params, stride=2).packing.n_out == 8
    # 16 frame shifts (dy - a, dx - b) per channel difference: 256 diagonals per pair of blocks.
    assert plan.predicted.pmuls == 2 * 4 * 16 * 16 < plan_conv(w, 16, 16, params, stride=2).predicted.pmuls
    assert matvec_geometry(6, 4, 7, 5, 3, 2, params.slots).parities == 1  # odd maps: no multiplexing


def test_baby_step_is_the_cheapest_predicted(params):
    plan = plan_matvec(np.ones((64, 64, 3, 3)), 16, 16, params, complex_pack=False)
    best = min(plan.candidates, key=lambda c: c.predicted_s)
    assert plan.baby_step == best.baby_step and len(plan.candidates) == 13  # B = 1 .. T = 4096
    assert plan.predicted.rotations == best.rotations <= plan_conv(np.ones((64, 64, 3, 3)), 16, 16, params,
                                                                    schedule="auto").predicted.rotations


def test_zero_diagonals_are_skipped_and_groups_save_what_they_say(params):
    rng = np.random.default_rng(3)
    shape = (16, 16, 3, 3)
    w = kaiming(rng, *shape[:3])
    dense = plan_matvec(w, 8, 8, params)
    groups = MATVEC.group_ids(dense, shape)
    # Zero a third of the diagonal groups: each saves exactly one multiplication.
    ids = groups["diagonal"].ids
    live = np.unique(ids)
    dead = rng.choice(live, len(live) // 3, replace=False)
    pruned = np.where(np.isin(ids, dead), 0.0, w)
    same = {"baby_step": dense.baby_step, "out_frames": dense.geometry.out_frames,
            "copies": dense.geometry.copies}  # the dense plan's packing
    p = plan_matvec(pruned, 8, 8, params, **same)
    assert p.predicted.pmuls == dense.predicted.pmuls - len(dead)
    # Zero one nonzero giant step group: one rotation fewer.
    giant = groups["giant"].ids
    g = next(v for v in np.unique(giant) if groups["giant"].saving[v])
    g0 = next(v for v in np.unique(giant) if not groups["giant"].saving[v])
    p = plan_matvec(np.where(giant == g0, 0.0, w), 8, 8, params, **same)
    assert p.predicted.rotations == dense.predicted.rotations  # giant step 0: no rotation to save
    p = plan_matvec(np.where(giant == g, 0.0, w), 8, 8, params, **same)
    assert p.predicted.rotations == dense.predicted.rotations - 1
    r = run_layer(MATVEC, pruned, None, rng.uniform(-1, 1, (16, 8, 8)), PlainBackend(params), **same)
    assert r.counts == r.plan.predicted


def test_all_zero_output_block_encrypts_the_bias(params):
    w = np.zeros((8, 4, 3, 3))
    w[:4] = 1.0  # outputs 4..7 (the second block when c_n = 4) are all zero
    x = np.ones((4, 4, 4))
    r = run_layer(MATVEC, w, np.arange(8.0), x, PlainBackend(params), c_n=4)
    assert r.plan.empty_outputs == [1] and r.counts.encryptions == 1
    assert np.allclose(r.output, torch_conv(x, w, np.arange(8.0), 1))


def test_plan_errors_name_the_layer(params):
    with pytest.raises(ValueError, match="layer c7: stride must be 1 or 2"):
        plan_matvec(np.ones((2, 2, 3, 3)), 4, 4, params, stride=3, name="c7")
    with pytest.raises(ValueError, match=r"layer c7: matvec baby step must be in \[1, "):
        plan_matvec(np.ones((2, 2, 3, 3)), 4, 4, params, baby_step=0, name="c7")


def test_plan_is_frozen(params):
    plan = plan_matvec(np.ones((2, 2, 3, 3)), 4, 4, params)
    with pytest.raises(AttributeError):
        plan.baby_step = 2
    assert hash(plan.diagonals) is not None
    import json

    from heconv.algorithms.matvec import MatvecPlan
    assert MatvecPlan.from_dict(json.loads(plan.to_json())) == plan
