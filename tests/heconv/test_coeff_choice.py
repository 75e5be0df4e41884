"""The coefficient chunking's choice: the least predicted end-to-end time at the link's bandwidth,
every candidate recorded, and the counts of the chosen plan still exactly as predicted."""

import json

import numpy as np
import pytest

from heconv.algorithms import get_algorithm
from heconv.algorithms.base import run_layer
from heconv.backends.plain import PlainBackend
from heconv.coeff import plan_coeff_conv
from heconv.coeff_choice import choose_chunking
from heconv.coeff_plan import CoeffPlan
from heconv.errors import InputError
from heconv.params import ckks_params
from heconv.traffic import Objective, ciphertext_bytes

P = ckks_params(depth=1)  # N = 8192, [60, 40, 60]: the hybrid protocol's chain
SLOW, FAST = Objective(1e8), Objective(1e9)  # 100 Mbit/s, 1 Gbit/s


def _winner(shape, objective):
    c_in, c_out, hw, k = shape
    return choose_chunking(c_in, c_out, hw, hw, k, P, objective=objective)[1].winner


def test_a_slow_link_gets_fewer_fuller_ciphertexts_on_a_fixed_shape():
    # 512 -> 512, 3x3 on 4x4 (ResNet18's layer4 at 32x32 input): 36 coefficients per channel's frame.
    # An output goes back extracted (c1 and a quarter of c0 or less), so fewer, fuller uploads (a whole
    # polynomial each) are what a slow link buys, with more, lighter outputs.
    slow, fast = _winner((512, 512, 4, 3), SLOW), _winner((512, 512, 4, 3), FAST)
    assert (slow.c_w, slow.n_in, slow.n_out) == (20, 26, 47)
    assert (fast.c_w, fast.n_in, fast.n_out) == (17, 31, 40)
    assert slow.n_in < fast.n_in and slow.c_w > fast.c_w  # fewer uploads, fuller
    assert slow.phases.upload_bytes + slow.phases.download_bytes < fast.phases.upload_bytes + fast.phases.download_bytes


@pytest.mark.parametrize("shape", [(64, 64, 16, 3), (512, 512, 4, 3), (256, 256, 8, 3), (128, 512, 8, 1),
                                   (512, 256, 32, 3), (16, 512, 8, 3)])
def test_a_slower_link_never_gets_more_bytes(shape):
    """cost = work + bytes/b: if x is best at b1 < b2 and y at b2, adding the two optimality inequalities
    gives (bytes(x) - bytes(y)) (1/b1 - 1/b2) <= 0, so bytes(x) <= bytes(y)."""
    sizes = []
    for bw in (1e7, 1e8, 1e9, 1e10):
        w = _winner(shape, Objective(bw))
        sizes.append(w.phases.upload_bytes + w.phases.download_bytes)
    assert sizes == sorted(sizes)


def test_the_plan_records_every_candidate_and_why_one_won():
    plan = plan_coeff_conv(np.ones((64, 64, 3, 3)), 16, 16, P, objective=SLOW)
    choice = plan.choice
    assert choice.objective == SLOW
    # one channel's frame is 18*18 = 324 coefficients and the halo 2*18 = 36: C_w = 1 .. (8192 - 36) // 324
    assert [c.c_w for c in choice.candidates] == list(range(1, 26))
    for c in choice.candidates:
        assert c.cost_s == pytest.approx(c.phases.end_to_end_s(1e8))
        assert c.phases.upload_bytes == c.n_in * ciphertext_bytes(P, P.depth, seeded=True)
        # extracted: c1 and a 16-byte header per output, the 64 * 16 * 16 read coefficients of c0 in all
        assert c.phases.download_bytes == c.n_out * (ciphertext_bytes(P, 1) // 2 + 16) + 8 * 64 * 16 * 16
    w = choice.winner
    assert w.cost_s == min(c.cost_s for c in choice.candidates)
    assert (plan.chunking.c_w, plan.n_in, plan.n_out) == (w.c_w, w.n_in, w.n_out) == (4, 16, 11)
    assert choice.reason.startswith("C_w=4, 16 in / 11 out ciphertexts: least predicted end-to-end time at 100 "
                                    "Mbit/s with seeded uploads")
    assert "of 25 candidate(s); runner-up C_w=" in choice.reason
    assert CoeffPlan.from_dict(json.loads(plan.to_json())) == plan


def test_server_time_alone_is_the_old_rule_one_channel_per_chunk():
    plan = plan_coeff_conv(np.ones((64, 64, 3, 3)), 16, 16, P, objective=Objective(kind="server"))
    assert (plan.chunking.c_w, plan.n_in, plan.n_out) == (1, 64, 3)
    assert "least predicted server time" in plan.choice.reason
    e2e = plan_coeff_conv(np.ones((64, 64, 3, 3)), 16, 16, P).choice.winner  # default: 1 Gbit/s, seeded
    old = plan.choice.winner
    assert e2e.phases.end_to_end_s(1e9) < old.phases.end_to_end_s(1e9)
    assert old.phases.server_s < e2e.phases.server_s  # the old rule's only figure


def test_public_uploads_weigh_twice_the_bytes():
    seeded = choose_chunking(64, 64, 16, 16, 3, P, objective=Objective(1e8, "seeded"))[1]
    public = choose_chunking(64, 64, 16, 16, 3, P, objective=Objective(1e8, "public"))[1]
    for s, p in zip(seeded.candidates, public.candidates):
        assert p.phases.upload_bytes == 2 * s.phases.upload_bytes - s.n_in * 128  # two polynomials, no seed
        assert p.phases.client_s > s.phases.client_s


@pytest.mark.parametrize("objective, c_w", [(SLOW, 12), (FAST, 8)])
def test_the_chosen_plan_counts_exactly_what_it_predicts(objective, c_w):
    w = np.random.default_rng(0).normal(0, 0.1, (512, 512, 3, 3))
    x = np.random.default_rng(1).uniform(-1, 1, (512, 4, 4))
    run = run_layer(get_algorithm("coefficient"), w, None, x, PlainBackend(P, track_values=False),
                    objective=objective)
    assert run.plan.chunking.c_w == c_w
    assert run.counts == run.plan.predicted


def test_a_slower_link_gets_a_chunking_with_fewer_bytes():
    """512->512 at 4x4: 1 Gbit/s takes C_w = 8 (64 in, 19 out), 100 Mbit/s C_w = 12 (43 in, 29 out): fewer
    uploads at one prime (a polynomial each, seeded), more outputs (c1 and a few read coefficients
    each), fewer bytes in all."""
    w = np.ones((512, 512, 3, 3))
    fast, slow = (plan_coeff_conv(w, 4, 4, P, objective=o).choice.winner for o in (FAST, SLOW))
    assert (fast.c_w, fast.n_in, fast.n_out) == (8, 64, 19) and (slow.c_w, slow.n_in, slow.n_out) == (12, 43, 29)
    total = [c.phases.upload_bytes + c.phases.download_bytes for c in (fast, slow)]
    assert total[1] < total[0]


def test_the_chosen_plan_convolves_correctly():
    import torch

    w = np.random.default_rng(0).normal(0, 0.1, (24, 20, 3, 3))
    x = np.random.default_rng(1).uniform(-1, 1, (20, 4, 4))
    run = run_layer(get_algorithm("coefficient"), w, None, x, PlainBackend(P), objective=SLOW)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), padding=1)[0].numpy()
    assert run.plan.chunking.c_w > 1 and run.counts == run.plan.predicted
    assert np.abs(run.output - ref).max() < 1e-6


@pytest.mark.parametrize("kwargs, message", [
    ({"upload": "secret"}, "upload must be one of seeded, public, got 'secret'"),
    ({"kind": "fastest"}, "objective must be one of end-to-end, server, got 'fastest'"),
    ({"bandwidth_bps": 0.0}, "bandwidth must be > 0 bits per second, got 0.0"),
])
def test_a_bad_objective_is_an_input_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        Objective(**kwargs)


def test_an_identity_shortcut_prices_its_upload_in_the_output_layout():
    plain = choose_chunking(64, 64, 16, 16, 3, P, objective=SLOW)[1]
    shortcut = choose_chunking(64, 64, 16, 16, 3, P, objective=SLOW, output_uploads=1)[1]
    for a, b in zip(plain.candidates, shortcut.candidates):
        assert b.phases.upload_bytes == a.phases.upload_bytes + a.n_out * ciphertext_bytes(P, 1, seeded=True)
        assert b.phases.download_bytes == a.phases.download_bytes
    assert shortcut.winner.n_out <= plain.winner.n_out


def test_the_hybrid_planner_tells_each_conv_its_residual_uploads():
    import torch

    import models
    from heconv.frontend import lower_model
    from heconv.network import ServerConv, plan_network

    torch.manual_seed(0)
    net = lower_model(models.build_model("resnet18", 3, 10).eval(), (3, 16, 16))
    plan = plan_network(net, P, algorithm="coefficient", objective=SLOW)
    convs = {a.name: a.plan for a in plan.actions if isinstance(a, ServerConv)}
    identity, first = convs["layers.0.0.conv2"].choice.winner, convs["layers.0.0.conv1"].choice.winner
    # the same shape; conv2's output is added to the uploaded block input, conv1's is not
    assert identity.phases.upload_bytes == (identity.n_in * ciphertext_bytes(P, P.depth, True)
                                            + identity.n_out * ciphertext_bytes(P, 1, True))
    assert first.phases.upload_bytes == first.n_in * ciphertext_bytes(P, P.depth, True)
    # a projection shortcut: conv2 (planned first) prices the aligned shortcut's uploads; the sum goes back once
    pair, shortcut = convs["layers.1.0.conv2"], convs["layers.1.0.shortcut.0"]
    assert len(shortcut.choice.candidates) == 1 and shortcut.chunking.output_layout == pair.chunking.output_layout
    w = pair.choice.winner
    assert w.phases.upload_bytes == (pair.n_in + shortcut.n_in) * ciphertext_bytes(P, P.depth, True)
    assert w.phases.download_bytes == pair.n_out * (ciphertext_bytes(P, 1) // 2 + 16) + 8 * 128 * 8 * 8  # extracted
    server_rule = plan_network(net, P, algorithm="coefficient", objective=Objective(kind="server"))
    alone = next(a.plan for a in server_rule.actions if getattr(a, "name", "") == "layers.1.0.conv2").choice.winner
    # the earlier rule: each conv alone
    assert alone.phases.upload_bytes == alone.n_in * ciphertext_bytes(P, P.depth, True)


@pytest.mark.parametrize("stride", [1, 2])
def test_the_chosen_download_is_what_the_layout_reads(stride):
    """The chooser's bytes down equal the extracted downloads of the chosen plan's output layout, strided too."""
    from heconv.coeff_pack import read_coefficients
    from heconv.traffic import extracted_bytes

    plan = plan_coeff_conv(np.ones((128, 64, 3, 3)), 16, 16, P, stride=stride)
    reads = read_coefficients(plan.chunking, 128, stride)
    assert plan.choice.winner.phases.download_bytes == sum(extracted_bytes(P, P.depth, int(r.sum())) for r in reads)
