"""matvec on worker processes (heconv.algorithms.matvec.parallel through heconv.parallel.ConvPool):
identical decryptions, exact counts per worker, every term once."""

import numpy as np
import pytest

from heconv.algorithms import encrypt_map, get_algorithm
from heconv.algorithms.matvec.engine import run_order
from heconv.algorithms.matvec.parallel import split_matvec
from heconv.backends.base import OpCounts
from heconv.parallel import ConvPool

MATVEC = get_algorithm("matvec")


def _layer(backend, c_in, c_out, hw, stride, seed, **options):
    """Quarter-integer weights and inputs: float sums are exact, so regrouped sums are bit-identical."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-2, 3, (c_out, c_in, 3, 3)) / 4.0
    x = rng.integers(-4, 5, (c_in, hw, hw)) / 4.0
    bias = rng.integers(-4, 5, c_out) / 8.0
    plan = MATVEC.plan(w, hw, hw, backend.params, stride=stride, has_bias=True, **options)
    backend.generate_galois_keys(MATVEC.rotation_steps(plan))
    layer = MATVEC.compile(plan, w, bias, backend)
    return plan, layer, encrypt_map(x, MATVEC.input_layout(plan), backend)


# c_in, c_out, hw, stride: one output ciphertext split between workers (its giant steps); several outputs;
# a multiplexed stride-2 output; a folded one (32->64 on 8x8: one output ciphertext, four copies).
CASES = [(512, 512, 2, 1), (64, 64, 16, 1), (64, 128, 16, 2), (16, 16, 8, 1), (32, 64, 8, 2)]


@pytest.mark.parametrize("c_in, c_out, hw, stride", CASES)
def test_two_workers_decrypt_identically_and_count_the_split(backend, c_in, c_out, hw, stride):
    plan, layer, inputs = _layer(backend, c_in, c_out, hw, stride, c_in + c_out)
    backend.reset_counter()
    serial = [backend.decrypt(c) for c in MATVEC.run(layer, inputs, backend)]
    assert backend.reset_counter() - OpCounts(decryptions=len(serial)) == plan.predicted
    split = MATVEC.split(plan, 2)
    assert split.workers == 2 and split.algorithm == "matvec"
    with ConvPool(backend, {"conv": (layer, split)}) as pool:
        out = pool.run("conv", inputs)
        counts = backend.reset_counter()
        assert [backend.decrypt(c).tolist() for c in out] == [s.tolist() for s in serial]
        assert pool.last.worker_counts() == split.worker_counts()
        assert counts == pool.last.total == split.predicted
        extra = OpCounts(rotations=split.extra_rotations, key_switches=split.extra_rotations)
        assert split.predicted - extra == plan.predicted


def test_rotated_copies_of_several_inputs_split_over_three_workers(backend):
    """Three input ciphertexts (c_n = 4 of 12 channels) read as 64 rotated copies each, split over three
    workers: the serial decryptions, and torch's output."""
    from bench.harness.layer import torch_conv

    plan, layer, inputs = _layer(backend, 12, 12, 4, 1, 9, c_n=4, copies=64, out_frames=4)
    assert plan.geometry.copies == 64 and plan.geometry.n_in == 3
    serial = [backend.decrypt(c) for c in MATVEC.run(layer, inputs, backend)]
    split = MATVEC.split(plan, 3)
    with ConvPool(backend, {"conv": (layer, split)}) as pool:
        out = [backend.decrypt(c) for c in pool.run("conv", inputs)]
    assert [v.tolist() for v in out] == [v.tolist() for v in serial]
    rng = np.random.default_rng(9)  # _layer's draws, in its order
    w = rng.integers(-2, 3, (12, 12, 3, 3)) / 4.0
    x = rng.integers(-4, 5, (12, 4, 4)) / 4.0
    bias = rng.integers(-4, 5, 12) / 8.0
    got = MATVEC.output_layout(plan).unpack(out)
    assert np.abs(got - torch_conv(x, w, bias, 1)).max() < 1e-3


def test_an_empty_output_block_is_its_encrypted_bias(params):
    rng = np.random.default_rng(5)
    w = rng.normal(size=(64, 16, 3, 3))
    w[16:32] = 0.0  # output block 1 of 4 (c_n = 16 channels each): no nonzero diagonal
    plan = MATVEC.plan(w, 16, 16, params, has_bias=True)
    assert plan.empty_outputs == [1]
    split = MATVEC.split(plan, 2)
    assert split.merge.encryptions == 1 and all(1 not in s.outputs for s in split.shares)


@pytest.mark.parametrize("workers", [1, 2, 3, 5])
def test_split_covers_every_term_once_and_predicts_each_worker(params, workers):
    rng = np.random.default_rng(3)
    w = rng.normal(size=(64, 48, 3, 3))
    w[:, :, 0, 0] = 0.0
    plan = MATVEC.plan(w, 16, 16, params, has_bias=True, baby_step=8)
    split = split_matvec(plan, workers, "matvec")
    assert split.workers == workers
    shares = split.shares
    assert shares[0].start == 0 and shares[-1].end == len(run_order(plan))
    assert [s.start for s in shares[1:]] == [s.end for s in shares[:-1]]
    # the shares' pmuls are the plan's; their rotations exceed it by the recomputed baby steps only
    assert sum(s.predicted.pmuls for s in shares) == plan.predicted.pmuls
    assert split.predicted.rotations == plan.predicted.rotations + split.extra_rotations
    if workers == 1:
        assert split.predicted == plan.predicted and split.extra_rotations == 0
