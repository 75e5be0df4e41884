"""The proximal step makes whole groups exactly zero; the subgradient does not."""

import copy

import numpy as np
import pytest
import torch

import models
from heconv.params import params_for_input
from pruning.data import Dataset, Split
from pruning.groups import group_norms, model_groups
from pruning.proximal import group_soft_threshold, proximal_step, zero_group_fractions
from pruning.train import TrainConfig, train


def _tiny_data(n=96, size=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(0, 0.3, (n, 1, size, size)).astype(np.float32)
    x[np.arange(n), 0, y, y] += 3.0

    def split(a, b):
        return Split(x[a:b], y[a:b].astype(np.int64))

    return Dataset("tiny", split(0, 64), split(64, 80), split(80, 96), classes, 1, size, [0.0], [1.0])


def _trained(lasso: str, lam: float):
    torch.manual_seed(0)
    model = models.SmallCNN(1, 3)
    groups = model_groups(model, (1, 8, 8), params_for_input(8, 8))
    cfg = TrainConfig(epochs=3, lr=0.05, batch_size=16, lambda_d=lam, lasso=lasso, relative_lasso=False)
    history = train(model, _tiny_data(), cfg, groups)
    return model, groups, history


def _diag_norms(model, groups):
    modules = dict(model.named_modules())
    return {p: group_norms(modules[p].weight.detach(), g.diag_ids, g.n_diag) for p, g in groups.items()}


def test_proximal_zeroes_the_chosen_groups_and_subgradient_does_not():
    # Rotation-weighted: the chosen groups are those whose removal saves a rotation (d != 0).
    model, groups, history = _trained("proximal", 5.0)
    for path, norms in _diag_norms(model, groups).items():
        saves = groups[path].diag_saves.bool()
        assert torch.all(norms[saves] <= 1e-7), path  # exactly zero (the norm's epsilon is 1e-8)
        assert torch.all(norms[~saves] > 1e-3), path  # the d = 0 groups save nothing and are left alone
    assert history[-1]["zero_diagonal_groups"] > 0.5
    assert {"penalty", "zero_diagonal_groups", "zero_positional_groups"} <= set(history[-1])

    model, groups, history = _trained("subgradient", 5.0)
    assert all(float(n.min()) > 1e-6 for n in _diag_norms(model, groups).values())
    assert history[-1]["zero_diagonal_groups"] == 0.0


def test_soft_threshold_is_the_group_prox():
    w = torch.tensor([3.0, 4.0, 0.3, 0.4])
    out = group_soft_threshold(w, torch.tensor([0, 0, 1, 1]), 2, torch.tensor([1.0, 1.0]))
    assert out[:2].tolist() == pytest.approx([2.4, 3.2]) and out[2:].tolist() == [0.0, 0.0]


def test_relative_threshold_ignores_the_layer_scale():
    torch.manual_seed(0)
    a = models.SmallCNN(1, 3)
    b = copy.deepcopy(a)
    with torch.no_grad():
        for p in b.parameters():
            p.mul_(10.0)  # BatchNorm makes this scale free; the relative step must not care
    groups = model_groups(a, (1, 8, 8), params_for_input(8, 8))
    for m in (a, b):
        for _ in range(10):
            proximal_step(m, groups, 0.05, lambda_d=4.0, relative=True)
    assert zero_group_fractions(a, groups) == zero_group_fractions(b, groups)
    assert zero_group_fractions(a, groups)["zero_diagonal_groups"] > 0
    for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.allclose(pb, 10.0 * pa, rtol=1e-4, atol=1e-6)


def test_bad_arguments():
    model = models.SmallCNN(1, 3)
    groups = model_groups(model, (1, 8, 8), params_for_input(8, 8))
    with pytest.raises(ValueError, match="non-negative"):
        proximal_step(model, groups, -0.1, lambda_d=1.0)
    with pytest.raises(ValueError, match="lasso"):
        TrainConfig(lasso="ista")
