"""Pruning by a global threshold on unit scores, and the baselines' units."""

import pytest
import torch

import models
from heconv.params import params_for_input
from pruning.groups import groups_for_weight, model_groups
from pruning.masks import apply_masks
from pruning.method_base import rms_scores
from pruning.methods import METHODS, current_weights, get_method, method_threshold_masks
from pruning.summary import he_cost


def _model_and_groups():
    torch.manual_seed(0)
    model = models.SmallCNN(1, 3)
    shape = (1, 8, 8)
    return model, model_groups(model, shape, params_for_input(8, 8), algorithm="coefficient"), shape


@pytest.mark.parametrize("method", [m for m in METHODS if m != "dense"])
def test_threshold_zeroes_exactly_the_units_at_or_below_it(method):
    model, groups, _ = _model_and_groups()
    pm = get_method(method)
    weights = current_weights(model, groups)
    cuts = pm.thresholds(weights, groups, (0.2, 0.5, 0.8))
    assert list(cuts) == sorted(cuts) and len(cuts) == 3
    masks = pm.threshold_masks(weights, groups, cuts[1])
    for u in pm.units(weights, groups):
        flat = masks[u.path].reshape(-1)
        for unit in torch.nonzero(u.scores <= cuts[1]).flatten()[:5]:
            assert torch.all(flat[u.ids == unit] == 0)
    pruned = sum(int((m == 0).sum()) for m in masks.values())
    more = sum(int((m == 0).sum()) for m in pm.threshold_masks(weights, groups, cuts[2]).values())
    assert 0 < pruned <= more


def test_threshold_is_global_across_layers():
    # Shrink one conv's weights: a global threshold prunes it first, a per-conv fraction does not.
    model, groups, _ = _model_and_groups()
    small = list(groups)[0]
    with torch.no_grad():
        dict(model.named_modules())[small].weight.mul_(0.01)
    pm = get_method("artemis-diagonal")
    w = current_weights(model, groups)
    cut = pm.thresholds(w, groups, (0.3,))[0]
    masks = pm.threshold_masks(w, groups, cut)
    assert float((masks[small] == 0).float().mean()) > 0.8
    assert all(float((m == 0).float().mean()) < 0.5 for p, m in masks.items() if p != small)
    per_conv = pm.masks(w, groups, 0.3)
    assert float((per_conv[small] == 0).float().mean()) < 0.5


def test_rms_normalises_by_group_size():
    w = torch.ones(6)
    assert rms_scores(w, torch.tensor([0, 0, 0, 0, 1, 1]), 2).tolist() == pytest.approx([1.0, 1.0])


def test_hunter_prunes_rotation_groups_and_plaintexts():
    """The strong hunter reading saves rotations; the plaintext-only reading almost never does."""
    model, groups, shape = _model_and_groups()
    params = params_for_input(8, 8)
    dense = he_cost(model, shape, params)
    pm = get_method("hunter")
    kinds = {u.kind for u in pm.units(current_weights(model, groups), groups)}
    assert kinds == {"plaintext", "diagonal", "positional"}
    costs = {}
    for method in ("hunter", "hunter-plaintext"):
        m, g, _ = _model_and_groups()
        cut = get_method(method).thresholds(current_weights(m, g), g, (0.5,))[0]
        apply_masks(m, method_threshold_masks(m, g, method, cut))
        costs[method] = he_cost(m, shape, params)
    assert costs["hunter"]["rotations"] < dense["rotations"]
    assert costs["hunter"]["rotations"] < costs["hunter-plaintext"]["rotations"]
    assert costs["hunter"]["pmuls"] < dense["pmuls"]


def test_lasso_of_each_method():
    assert get_method("artemis-diagonal").lasso == ("d",) and get_method("diagonal-no-lasso").lasso == ()
    assert get_method("artemis-both").lasso == ("p", "d") and get_method("hunter").lasso == ()
    g = groups_for_weight((4, 4, 3, 3), c_n=4)
    assert get_method("diagonal-no-lasso").units({"conv": torch.ones(4, 4, 3, 3)}, {"conv": g})[0].n == g.n_diag


def test_a_zero_kernel_block_saves_the_coefficient_engine_one_multiplication_per_tile():
    model, groups, shape = _model_and_groups()
    params = params_for_input(8, 8)
    dense = he_cost(model, shape, params, algorithm="coefficient")
    path = list(groups)[1]
    g = groups[path]
    mask = torch.ones(g.shape)
    mask.view(-1)[g.block_ids == 0] = 0.0
    apply_masks(model, {path: mask})
    pruned = he_cost(model, shape, params, algorithm="coefficient")
    from heconv.frontend.lower import conv_plans

    tiles = conv_plans(model.eval(), shape, params, "coefficient")[path].chunking.tiles
    assert dense["pmuls"] - pruned["pmuls"] == tiles
    with pytest.raises(ValueError, match="algorithm="):
        get_method("coefficient-block").units(current_weights(model, groups),
                                              model_groups(model, shape, params))


@pytest.mark.parametrize("method", ["artemis-diagonal", "hunter"])
def test_every_all_zero_group_lies_under_the_lowest_threshold(method):
    # Groups the Lasso zeroed, in convs of different widths: all must be masked by the first step.
    model, groups, _ = _model_and_groups()
    modules = dict(model.named_modules())
    with torch.no_grad():
        for path, g in groups.items():
            modules[path].weight.view(-1)[g.diag_ids == 1] = 0.0
    pm = get_method(method)
    w = current_weights(model, groups)
    cut = pm.thresholds(w, groups, (0.01,))[0]
    masks = pm.threshold_masks(w, groups, cut)
    for path, g in groups.items():
        assert torch.all(masks[path].view(-1)[g.diag_ids == 1] == 0), path


@pytest.mark.parametrize("method", ["hunter", "hunter-rms-per-rot-all", "diagonal-no-lasso"])
def test_thresholds_step_through_rotation_groups(method):
    """Each fraction is a quantile of the method's rotation-saving groups alone (finite scores), whatever
    else it prunes; fraction 1 takes every unit."""
    import numpy as np

    model, groups, _ = _model_and_groups()
    pm = get_method(method)
    weights = current_weights(model, groups)
    units = pm.units(weights, groups)
    base = np.concatenate([u.scores.double().numpy()[u.saves.numpy() > 0] for u in units if u.saves is not None])
    base = base[np.isfinite(base)]
    cuts = pm.thresholds(weights, groups, (0.25, 0.5, 1.0))
    assert cuts[:2] == tuple(float(np.quantile(base, f, method="lower")) for f in (0.25, 0.5))
    assert np.isfinite(cuts[:2]).all()
    allscores = np.concatenate([u.scores.double().numpy() for u in units])
    assert cuts[2] == allscores.max()
    masks = pm.threshold_masks(weights, groups, cuts[2])
    assert all(float(m.sum()) == 0 for m in masks.values())


def test_same_as_names_registered_methods():
    marked = {m: get_method(m).same_as for m in METHODS if get_method(m).same_as}
    assert marked == {"hunter-rms-per-rot-all": "hunter-rms-per-rot-groups"}
    assert all(other in METHODS for other in marked.values())


@pytest.mark.parametrize("method", ["hunter-rms-per-rot-all"])
def test_a_method_marked_same_as_another_prunes_as_it(method):
    """Under one global threshold hunter-rms-per-rot-all prunes as hunter-rms-per-rot-groups at every
    fraction short of 1 (non-zero plaintexts save no rotation and score infinite), after an earlier step
    as on the fresh model."""
    torch.manual_seed(0)
    model, shape = models.SmallCNN(1, 3), (1, 8, 8)
    groups = model_groups(model, shape, params_for_input(8, 8))
    a, b = get_method(method), get_method(get_method(method).same_as)
    for frac in (0.1, 0.3, 0.6, 0.9, 0.99):
        w = current_weights(model, groups)
        cut_a, cut_b = a.thresholds(w, groups, (frac,))[0], b.thresholds(w, groups, (frac,))[0]
        assert cut_a == cut_b
        ma, mb = a.threshold_masks(w, groups, cut_a), b.threshold_masks(w, groups, cut_b)
        assert all(torch.equal(ma[p], mb[p]) for p in ma), frac
        assert any(float((m == 0).sum()) for m in ma.values())
        apply_masks(model, ma)  # the next fraction starts from this step's model, as the loop does
    assert get_method("hunter").same_as is None and get_method("hunter-rms-groups").same_as is None
