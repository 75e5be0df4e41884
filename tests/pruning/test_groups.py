import numpy as np
import pytest
import torch

import models
from heconv.frontend import conv_packings
from heconv.params import params_for_input
from pruning.groups import group_lasso, group_norms, groups_for_weight, model_groups, model_schedules
from pruning.summary import he_cost

SHAPE = (3, 16, 16)


@pytest.fixture(scope="module")
def resnet20():
    torch.manual_seed(0)
    return models.resnet20().eval()


def test_groups_follow_engine_packing(resnet20):
    params = params_for_input(*SHAPE[1:])
    groups = model_groups(resnet20, SHAPE, params)
    packings = conv_packings(resnet20, SHAPE, params)
    assert set(groups) == set(packings)
    for path, g in groups.items():
        p = packings[path]
        assert g.c_n == p.c_n
        k = g.shape[2]
        assert g.n_diag == p.n_out * p.c_n or g.shape[1] < p.c_n  # few input channels leave some diagonals empty
        assert g.n_pos == p.n_in * k * k


@pytest.mark.parametrize("kind", ["diagonal", "positional"])
def test_zeroing_one_group_saves_one_rotation(resnet20, kind):
    params = params_for_input(*SHAPE[1:])
    groups = model_groups(resnet20, SHAPE, params)
    base = he_cost(resnet20, SHAPE, params)["rotations"]
    path = "layers.1.1.conv1"  # 32 -> 32 at 8x8: c_n = 32
    g = groups[path]
    m = dict(resnet20.named_modules())[path]
    ids, saves = (g.diag_ids, g.diag_saves) if kind == "diagonal" else (g.pos_ids, g.pos_saves)
    target = int(torch.nonzero(saves)[3])  # a group whose removal saves a rotation
    with torch.no_grad():
        w = m.weight.clone()
        m.weight.view(-1)[ids == target] = 0.0
    try:
        assert base - he_cost(resnet20, SHAPE, params)["rotations"] == 1
    finally:
        with torch.no_grad():
            m.weight.copy_(w)


def _zero_one_saving_group(model, groups, path, kind, nth=3):
    g = groups[path]
    ids, saves = (g.diag_ids, g.diag_saves) if kind == "giant" else (g.pos_ids, g.pos_saves)
    target = int(torch.nonzero(saves)[nth])
    m = dict(model.named_modules())[path]
    with torch.no_grad():
        saved = m.weight.clone()
        m.weight.view(-1)[ids == target] = 0.0
    return m, saved


@pytest.mark.parametrize("schedule", ["bsgs:2", "bsgs:4", "input-rotation", "auto-per-layer"])
@pytest.mark.parametrize("kind", ["giant", "baby"])
def test_schedule_groups_save_one_rotation(resnet20, schedule, kind):
    """Groups made for a schedule save exactly one rotation of the engine run with that schedule."""
    params = params_for_input(*SHAPE[1:])
    if schedule == "auto-per-layer":
        schedule = model_schedules(resnet20, SHAPE, params)
        assert set(schedule.values()) == {"output-rotation", "bsgs:2"}
    groups = model_groups(resnet20, SHAPE, params, schedule)
    path = "layers.1.1.conv1"  # 32 -> 32 at 8x8: c_n = 32
    g = groups[path]
    b = {"bsgs:2": 2, "bsgs:4": 4, "input-rotation": 32}.get(schedule if isinstance(schedule, str) else "bsgs:2")
    assert g.baby_step == b and (g.n_diag, g.n_pos) == (32 // b, b * 9)
    if kind == "giant" and b == 32:
        assert g.diag_saves.sum() == 0  # input rotation: no giant step to save
        return
    base = he_cost(resnet20, SHAPE, params, schedule)["rotations"]
    m, saved = _zero_one_saving_group(resnet20, groups, path, kind, nth=0 if kind == "giant" else 3)
    try:
        assert base - he_cost(resnet20, SHAPE, params, schedule)["rotations"] == 1
    finally:
        with torch.no_grad():
            m.weight.copy_(saved)


def test_schedule_groups_errors(resnet20):
    params = params_for_input(*SHAPE[1:])
    with pytest.raises(ValueError, match="layer conv1: pruning groups need a fixed schedule, not 'auto'"):
        model_groups(resnet20, SHAPE, params, "auto")
    with pytest.raises(ValueError, match=r"schedule names layers that are not convs of the model: \['nope'\]"):
        model_groups(resnet20, SHAPE, params, {"nope": "bsgs:2"})
    with pytest.raises(ValueError, match="layer conv1: schedule 'bsgs:32': the baby step B must divide c_n = 16"):
        model_groups(resnet20, SHAPE, params, "bsgs:32")
    groups = model_groups(resnet20, SHAPE, params, {"conv1": 4})
    assert groups["conv1"].baby_step == 4 and groups["layers.0.0.conv1"].baby_step == 1


def test_penalty_matches_slow_reference():
    torch.manual_seed(1)
    w = torch.randn(6, 5, 3, 3)
    g = groups_for_weight(tuple(w.shape), c_n=4)
    conv = torch.nn.Conv2d(5, 6, 3, padding=1, bias=False)
    conv.weight.data = w.clone()
    model = torch.nn.Sequential(conv)
    fast = group_lasso(model, {"0": g}, lambda_p=0.3, lambda_d=0.7)
    # Slow: loop over every weight, group it by hand from docs/pruning.md's definitions.
    diag, pos = {}, {}
    for o in range(6):
        for i in range(5):
            for ky in range(3):
                for kx in range(3):
                    v = float(w[o, i, ky, kx]) ** 2
                    key_d = (o // 4, (i % 4 - o % 4) % 4)
                    key_p = (i // 4, ky * 3 + kx)
                    diag[key_d] = diag.get(key_d, 0.0) + v
                    pos[key_p] = pos.get(key_p, 0.0) + v
    slow = 0.7 * sum(np.sqrt(v) for v in diag.values()) + 0.3 * sum(np.sqrt(v) for v in pos.values())
    assert float(fast.detach()) == pytest.approx(slow, rel=1e-5)
    assert g.n_diag == len(diag) and g.n_pos == len(pos)


def test_rotation_weighting_skips_free_groups():
    w = torch.zeros(4, 4, 3, 3)
    w[0, 0, 1, 1] = 1.0  # d = 0, centre position: zeroing it saves no rotation
    conv = torch.nn.Conv2d(4, 4, 3, padding=1, bias=False)
    conv.weight.data = w
    g = groups_for_weight((4, 4, 3, 3), c_n=4)
    model = torch.nn.Sequential(conv)
    plain = group_lasso(model, {"0": g}, 1.0, 1.0, rotation_weighted=False)
    weighted = group_lasso(model, {"0": g}, 1.0, 1.0, rotation_weighted=True)
    assert float(plain.detach()) == pytest.approx(2.0, abs=1e-6)
    assert float(weighted.detach()) == pytest.approx(0.0, abs=1e-6)


def test_gradient_drives_groups_to_zero():
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(4, 4, 3, padding=1, bias=False)
    g = groups_for_weight((4, 4, 3, 3), c_n=4)
    model = torch.nn.Sequential(conv)
    before = group_norms(conv.weight.detach(), g.diag_ids, g.n_diag)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(20):
        opt.zero_grad()
        group_lasso(model, {"0": g}, 0.0, 1.0).backward()
        opt.step()
    after = group_norms(conv.weight.detach(), g.diag_ids, g.n_diag)
    # Each step shrinks every group by lr along its own direction: norm falls by 0.01 per step.
    np.testing.assert_allclose((before - after).numpy(), 0.2, atol=1e-4)


def test_an_algorithms_own_groups_come_from_the_registry(resnet20):
    """model_groups(..., algorithm=name): every conv also holds that algorithm's group_ids (here matvec's
    diagonals, giant and baby steps); zeroing one diagonal group drops one plaintext multiplication."""
    params = params_for_input(*SHAPE[1:])
    assert all(not g.extra for g in model_groups(resnet20, SHAPE, params).values())
    groups = model_groups(resnet20, SHAPE, params, algorithm="matvec")
    path = "layers.2.1.conv1"  # 64 -> 64 at 4x4
    for g in groups.values():
        assert set(g.extra) == {"diagonal", "giant", "baby"}
        for ids, n in g.extra.values():
            assert ids.numel() == int(np.prod(g.shape)) and 0 <= int(ids.min()) and int(ids.max()) < n
    ids, _ = groups[path].extra["diagonal"]
    cost = he_cost(resnet20, SHAPE, params, algorithm="matvec")["pmuls"]
    m = dict(resnet20.named_modules())[path]
    with torch.no_grad():
        m.weight.view(-1)[ids == int(ids[0])] = 0.0
    try:
        assert he_cost(resnet20, SHAPE, params, algorithm="matvec")["pmuls"] == cost - 1
    finally:
        torch.manual_seed(0)
        resnet20.load_state_dict(models.resnet20().eval().state_dict())
