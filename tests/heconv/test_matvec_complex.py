"""matvec's complex packing (heconv.algorithms.matvec.complex): against torch on odd shapes (odd block counts,
strided, folded, replicated, narrower than the kernel), exact counts in both backends, half the plaintexts of
the real packing on dense layers, its layouts, its pruning groups and a split over workers."""

import numpy as np
import pytest

from bench.harness.layer import torch_conv
from heconv.algorithms import decrypt_map, encrypt_map, get_algorithm, run_layer
from heconv.algorithms.layout import SlotLayout
from heconv.algorithms.matvec import ComplexLayout, plan_matvec
from heconv.algorithms.matvec.complex import crossing_place
from heconv.backends.plain import PlainBackend
from heconv.errors import InputError

from .helpers import kaiming

MATVEC = get_algorithm("matvec")

# (c_in, c_out, h, w, k, stride, options): one block each side; odd block counts (12 channels in blocks of 4:
# three real blocks, two ciphertexts); stride 2 multiplexed and at the even pixels of an odd map; a folded
# output; maps narrower than the kernel; 1x1 and 5x5 kernels; the reads that cross into the conjugate half.
CASES = [
    (3, 5, 6, 6, 3, 1, {}),
    (12, 12, 4, 4, 3, 1, {"c_n": 4}),
    (12, 20, 8, 8, 3, 2, {"c_n": 4}),
    (6, 4, 7, 5, 3, 2, {}),
    (40, 24, 4, 4, 3, 2, {}),
    (20, 36, 8, 8, 3, 1, {}),
    (5, 7, 2, 2, 3, 1, {}),
    (8, 12, 8, 8, 1, 2, {}),
    (3, 2, 2, 2, 5, 2, {}),
    (32, 8, 4, 4, 3, 1, {"out_frames": 8}),
    (256, 256, 2, 2, 3, 1, {}),
]


def _check(backend, case, seed=0, tol=1e-9):
    c_in, c_out, h, w, k, stride, options = case
    rng = np.random.default_rng(seed)
    weight, b = kaiming(rng, c_out, c_in, k), rng.normal(0, 0.1, c_out)
    x = rng.uniform(-1, 1, (c_in, h, w))
    r = run_layer(MATVEC, weight, b, x, backend, stride=stride, complex_pack=True, **options)
    assert r.plan.geometry.complex_pack
    ref = torch_conv(x, weight, b, stride)
    assert r.output.shape == ref.shape
    assert np.abs(r.output - ref).max() < tol
    assert r.counts == r.plan.predicted
    return r


def _id(case) -> str:
    return "x".join(map(str, case[:6])) + "".join(f"-{k}{v}" for k, v in case[6].items())


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_complex_packing_matches_torch_with_exact_counts(params, case):
    r = _check(PlainBackend(params), case)
    g = r.plan.geometry
    assert (g.n_in, g.n_out) == (-(-g.blocks_in // 2), -(-g.blocks_out // 2))
    assert g.fold_steps[-1] == g.period  # the last rotate-and-add folds the conjugate half


@pytest.mark.parametrize("case", [CASES[1], CASES[2], CASES[9], CASES[10]], ids=_id)
def test_complex_packing_matches_torch_encrypted(params, case):
    from heconv.backends.seal import SealBackend

    r = _check(SealBackend(params), case, seed=3, tol=1e-3)
    assert r.counts.key_switches == r.counts.rotations


def test_a_dense_layer_takes_half_the_plaintexts_of_the_real_packing(params):
    """256->256 on 4x4: 256 x 9 shifts on one real ciphertext; two blocks of 128 in one complex
    ciphertext share their 128 x 9 diagonals."""
    w = np.ones((256, 256, 3, 3))
    real = plan_matvec(w, 4, 4, params, complex_pack=False)
    cx = plan_matvec(w, 4, 4, params, complex_pack=True)
    assert (real.predicted.pmuls, cx.predicted.pmuls) == (2304, 1152)
    assert (cx.geometry.c_n, cx.geometry.n_in, cx.geometry.n_out) == (128, 1, 1)
    auto = plan_matvec(w, 4, 4, params)
    assert auto.geometry.complex_pack and auto.predicted == cx.predicted  # predicted faster: chosen


def test_crossing_reads_swap_the_halves():
    """Diagonal d reads Z at position p where p + d < T and the conjugate where it crosses: A and B swap."""
    a, b = np.full((2, 4), 1.0), np.full((2, 4), 2.0)
    assert crossing_place(a, b, [0, 3], 4).tolist() == [[1, 1, 1, 1, 2, 2, 2, 2], [1, 2, 2, 2, 2, 1, 1, 1]]


def test_layouts_round_trip_and_carry_the_conjugate(params):
    inner = SlotLayout(params.slots, 4, 4, 128, 256)
    x = np.random.default_rng(0).normal(size=(256, 4, 4))
    lay = ComplexLayout(inner, period=2048)
    v = lay.pack(x)
    assert len(v) == 1 and np.allclose(v[0][2048:], np.conj(v[0][:2048]))
    assert np.allclose(lay.unpack(v), x)
    backend = PlainBackend(params)
    assert np.allclose(decrypt_map(encrypt_map(x, lay, backend), lay, backend), x)
    out = ComplexLayout(inner)
    assert out.ciphertexts == 1 and np.allclose(out.unpack(out.pack(x)), x) and out.placement != inner.placement


def test_refusals_name_the_layer(params):
    with pytest.raises(InputError, match="layer c3: matvec complex packing runs with a rescale"):
        plan_matvec(np.ones((4, 4, 3, 3)), 4, 4, params, complex_pack=True, rescale=False, name="c3",
                    input_scale_bits=20, weight_scale_bits=20)
    with pytest.raises(InputError, match=r"layer c3 \(256->256, 3x3, 4x4\): matvec: complex packing needs T = 4096"):
        plan_matvec(np.ones((256, 256, 3, 3)), 4, 4, params, complex_pack=True, c_n=256, name="c3")


def test_no_complex_packing_beside_a_residual_partner():
    from heconv.algorithms.base import NetworkContext

    assert MATVEC.network_options(NetworkContext(partner_kernel=3))["complex_pack"] is False
    assert "complex_pack" not in MATVEC.network_options(NetworkContext())


def test_groups_save_what_they_say_under_complex_packing(params):
    """A diagonal group is a (ciphertext pair, diagonal): zeroing all its weights (in all four real pairs)
    saves one multiplication."""
    rng = np.random.default_rng(4)
    shape = (16, 16, 3, 3)
    w = kaiming(rng, *shape[:3])
    dense = plan_matvec(w, 8, 8, params, complex_pack=True, c_n=4)
    assert dense.geometry.n_in == 2
    ids = MATVEC.group_ids(dense, shape)["diagonal"].ids
    dead = rng.choice(np.unique(ids), 20, replace=False)
    pruned = np.where(np.isin(ids, dead), 0.0, w)
    same = {"baby_step": dense.baby_step, "out_frames": dense.geometry.out_frames, "c_n": 4, "complex_pack": True}
    assert plan_matvec(pruned, 8, 8, params, **same).predicted.pmuls == dense.predicted.pmuls - 20
    x = rng.uniform(-1, 1, (16, 8, 8))
    r = run_layer(MATVEC, pruned, None, x, PlainBackend(params), **same)
    assert r.counts == r.plan.predicted and np.abs(r.output - torch_conv(x, pruned, None, 1)).max() < 1e-9


def test_a_complex_plan_splits_over_three_workers(backend):
    """Two complex input ciphertexts, two outputs, over three workers: torch's output, every count."""
    from heconv.parallel import ConvPool

    rng = np.random.default_rng(8)
    w, x, bias = kaiming(rng, 16, 16, 3), rng.uniform(-1, 1, (16, 8, 8)), rng.normal(0, 0.1, 16)
    plan = MATVEC.plan(w, 8, 8, backend.params, has_bias=True, complex_pack=True, c_n=4)
    assert (plan.geometry.n_in, plan.geometry.n_out) == (2, 2)
    backend.generate_galois_keys(MATVEC.rotation_steps(plan))
    layer = MATVEC.compile(plan, w, bias, backend)
    inputs = encrypt_map(x, MATVEC.input_layout(plan), backend)
    split = MATVEC.split(plan, 3)
    backend.reset_counter()
    with ConvPool(backend, {"conv": (layer, split)}) as pool:
        out = pool.run("conv", inputs)
        assert backend.reset_counter() == pool.last.total == split.predicted
        assert pool.last.worker_counts() == split.worker_counts()
    y = decrypt_map(out, MATVEC.output_layout(plan), backend)
    assert np.abs(y - torch_conv(x, w, bias, 1)).max() < 1e-3


@pytest.mark.parametrize("shape", [(16, 6, 4, 4, 1), (40, 24, 4, 4, 2), (4, 10, 4, 4, 2), (64, 64, 8, 8, 1)])
def test_a_chosen_complex_plan_replays_from_its_options(params, shape):
    """The dense plan's c_n, out_frames and baby step plan the same packing again (pruning's replans), even
    where its frames hold the output only two blocks to a ciphertext."""
    c_in, c_out, h, w, stride = shape
    weight = kaiming(np.random.default_rng(2), c_out, c_in, 3)
    dense = plan_matvec(weight, h, w, params, stride=stride, complex_pack=True)
    g = dense.geometry
    again = plan_matvec(weight, h, w, params, stride=stride, c_n=g.c_n, out_frames=g.out_frames,
                        baby_step=dense.baby_step, complex_pack=True)
    assert again.geometry == g and again.predicted == dense.predicted
    auto = plan_matvec(weight, h, w, params, stride=stride, c_n=g.c_n, out_frames=g.out_frames,
                       baby_step=dense.baby_step)  # complex_pack None: the frames fit the complex packing
    assert auto.geometry.complex_pack


def test_rotated_copies_asked_for_keep_the_real_packing(params):
    w = np.ones((16, 128, 3, 3))
    assert plan_matvec(w, 4, 4, params, copies=2).geometry.copies == 2
    with pytest.raises(InputError, match="layer c1: matvec complex packing takes no rotated copies"):
        plan_matvec(w, 4, 4, params, copies=2, complex_pack=True, name="c1")


def test_an_add_of_an_add_keeps_the_real_packing():
    """z = c1(h) + c2(h) + c3(h): c3's output is summed with an encrypted add result (its layout fixed), so
    c3 is planned without complex packing (and without a fold); the network matches torch."""
    import torch
    from torch import nn

    from heconv.frontend import lower_model
    from heconv.network import Client, Server, ServerConv, plan_network, run_network
    from heconv.params import params_for_input

    class ThreeConvs(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.c3 = (nn.Conv2d(64, 64, 3, padding=1) for _ in range(3))

        def forward(self, h):
            return self.c1(h) + self.c2(h) + self.c3(h)

    torch.manual_seed(0)
    model = ThreeConvs().double().eval()
    net = lower_model(model, (64, 8, 8))
    params = params_for_input(8, 8)
    plan = plan_network(net, params, schedule="auto", algorithm="matvec")
    c3 = next(a for a in plan.actions if isinstance(a, ServerConv) and a.name == "c3")
    assert not c3.plan.geometry.complex_pack and c3.plan.geometry.fold == 1
    backend = PlainBackend(params)
    client = Client(backend)
    client.setup_keys(plan)
    x = np.random.default_rng(0).uniform(-1, 1, (64, 8, 8))
    run = run_network(plan, client, Server(backend.public_view(), net, plan), x)
    ref = model(torch.from_numpy(x)[None]).detach().numpy()[0]
    assert np.abs(run.logits - ref).max() < 1e-9


def test_bounds_checks_take_the_complex_slots_modulus(params):
    """A complex slot carries two real values: its modulus reaches sqrt(2) times their bound. A layer whose
    real outputs fit the level-0 headroom (2^19 here) at 0.8 of it is refused packed complex, not real."""
    import math

    from bench.harness.layer import prepare_layer
    from heconv.algorithms import SlotLayout

    assert ComplexLayout(SlotLayout(16, 1, 1, 2, 4)).modulus_factor == math.sqrt(2)
    assert SlotLayout(16, 1, 1, 2, 4).modulus_factor == 1.0
    w = np.full((4, 4, 3, 3), 0.8 * 2**19 / 36)  # each output's L1 norm: 0.8 x 2^19, inputs in [-1, 1]
    prep = prepare_layer(w, None, 4, 4, 1, PlainBackend(params, track_values=False), algorithm="matvec",
                         options={"complex_pack": False})
    assert not prep.plan.geometry.complex_pack
    prep.close()
    with pytest.raises(InputError, match="layer conv: values may reach 5.93e\\+05, beyond the 5.24e\\+05"):
        prepare_layer(w, None, 4, 4, 1, PlainBackend(params, track_values=False), algorithm="matvec",
                      options={"complex_pack": True})
