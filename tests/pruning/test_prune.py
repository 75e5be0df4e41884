import numpy as np
import pytest
import torch

import models
from bench.results import save_checkpoint, upsert_csv
from heconv.params import params_for_input
from models.checkpoint import read_checkpoint as load_training_checkpoint
from pruning.data import Dataset, Split
from pruning.groups import groups_for_weight, model_groups
from pruning.iterative import iterative_prune
from pruning.masks import apply_masks, effective_weight, fold_masks
from pruning.method_base import smallest_groups_mask
from pruning.methods import METHODS, method_masks
from pruning.train import TrainConfig, evaluate, train


def _tiny_data(n=96, size=8, channels=1, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(0, 0.3, (n, channels, size, size)).astype(np.float32)
    x[np.arange(n), 0, y, y] += 3.0  # a learnable cue

    def split(a, b):
        return Split(x[a:b], y[a:b].astype(np.int64))

    return Dataset("tiny", split(0, 64), split(64, 80), split(80, 96), classes, channels, size, [0.0], [1.0])


def _small_cnn(seed=0):
    torch.manual_seed(seed)
    return models.SmallCNN(1, 3)


def test_hunter_prunes_whole_plaintexts():
    torch.manual_seed(0)
    w = torch.randn(8, 8, 3, 3)
    g = groups_for_weight((8, 8, 3, 3), c_n=8)
    mask = smallest_groups_mask(w, g.plain_ids, g.n_plain, 0.5)
    flat = mask.reshape(-1)
    for pid in range(g.n_plain):
        vals = flat[g.plain_ids == pid]
        assert len(vals) == 8 and (vals.min() == vals.max())  # all c_n weights go together
    assert float(1 - mask.mean()) == pytest.approx(0.5)


@pytest.mark.parametrize("method", METHODS)
def test_masks_survive_finetuning_and_export(tmp_path, method):
    data = _tiny_data()
    model = _small_cnn()
    shape = (1, 8, 8)
    groups = model_groups(model, shape, params_for_input(*shape[1:]), algorithm="coefficient")
    masks = method_masks(model, groups, method, 0.5)
    apply_masks(model, masks)
    train(model, data, TrainConfig(epochs=2, lr=0.05, batch_size=16))
    modules = dict(model.named_modules())
    for path, mask in masks.items():
        w = effective_weight(modules[path])
        assert torch.all(w[mask == 0] == 0)
        assert hasattr(modules[path], "weight_orig")  # kept beside the weight, torch.nn.utils.prune style
    if method != "dense":
        assert any(float((m == 0).float().mean()) > 0.2 for m in masks.values())
    save_checkpoint(model, tmp_path / "m.pt", {"method": method})
    state, meta = load_training_checkpoint(tmp_path / "m.pt")
    assert meta == {"method": method} and not any(k.endswith("_orig") for k in state)
    for path, mask in masks.items():
        assert torch.all(state[f"{path}.weight"][mask == 0] == 0)
    folded = fold_masks(model)
    x = torch.from_numpy(data.test.x)
    assert torch.allclose(folded.eval()(x), model.eval()(x), atol=1e-6)


def test_unstructured_is_global_magnitude():
    model = _small_cnn()
    groups = model_groups(model, (1, 8, 8), params_for_input(8, 8))
    masks = method_masks(model, groups, "unstructured", 0.6)
    total = sum(m.numel() for m in masks.values())
    zeros = sum(int((m == 0).sum()) for m in masks.values())
    assert zeros == round(0.6 * total)


def test_iterative_prune_stops_at_the_drop():
    data = _tiny_data(n=96)
    model = _small_cnn()
    train(model, data, TrainConfig(epochs=8, lr=0.05, batch_size=16))
    shape = (1, 8, 8)
    params = params_for_input(*shape[1:])
    groups = model_groups(model, shape, params)
    result = iterative_prune(model, data, groups, "artemis-diagonal", params, max_drop=0.0,
                             fractions=(0.5, 0.9, 1.0), finetune=TrainConfig(epochs=1, lr=0.01, batch_size=16))
    steps = result.steps
    assert steps[0].fraction == 0.0 and steps[0].accepted
    assert all(s.accepted == (s.accuracy_drop <= 0.0) for s in steps)
    # The loop stops at the first rejected step: every earlier one was accepted.
    assert all(s.accepted for s in steps[:-1])
    assert not steps[-1].accepted or len(steps) == 4
    assert [s.rotations for s in steps] == sorted([s.rotations for s in steps], reverse=True)
    chosen = result.chosen
    vx, vy = data.tensors("val")
    assert evaluate(model, vx, vy) == pytest.approx(chosen.accuracy)


def test_fraction_one_removes_every_rotation_group():
    model = _small_cnn()
    shape = (1, 8, 8)
    params = params_for_input(*shape[1:])
    groups = model_groups(model, shape, params)
    apply_masks(model, method_masks(model, groups, "artemis-both", 1.0))
    from pruning.summary import he_cost

    assert he_cost(model, shape, params)["pmuls"] == 1  # only the fc's single hybrid diagonal is left


def test_upsert_csv(tmp_path):
    path = tmp_path / "r.csv"
    row = {"model": "m", "dataset": "d", "input_size": 8, "method": "hunter", "step": 0, "accuracy": 90.0}
    upsert_csv(path, [row, {**row, "step": 1}])
    upsert_csv(path, [{**row, "method": "dense"}])
    upsert_csv(path, [{**row, "accuracy": 80.0}])
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and sum(",hunter," in x for x in lines) == 1 and ",80.0," in lines[-1]
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="columns"):
        upsert_csv(path, [row])


def test_a_model_outside_the_budget_is_fine_tuned_before_it_is_judged(monkeypatch):
    """A Lasso-trained model may start below the budget: step 1 fine-tunes it even when the
    threshold zeroes nothing new, and only a rejected step after that stops the loop."""
    import pruning.iterative as it

    data = _tiny_data(n=96)
    model = _small_cnn()
    shape = (1, 8, 8)
    params = params_for_input(*shape[1:])
    groups = model_groups(model, shape, params)
    g = groups["conv1"]
    with torch.no_grad():  # one group the "Lasso" already zeroed: the first threshold zeroes nothing new
        model.conv1.weight.view(-1)[g.diag_ids == 1] = 0.0
    calls = []
    monkeypatch.setattr(it, "train", lambda *a, **k: calls.append(1))
    result = it.iterative_prune(model, data, groups, "artemis-diagonal", params, max_drop=1.0,
                                fractions=(0.01, 0.5), reference=200.0, patience=1)  # every step is rejected
    assert result.steps[1].sparsity == result.steps[0].sparsity  # nothing new was zeroed ...
    assert not result.steps[0].accepted and len(result.steps) == 2 and len(calls) == 1  # ... yet it was fine-tuned


def test_patience_stops_after_that_many_rejected_steps_in_a_row(monkeypatch):
    import pruning.iterative as it

    data = _tiny_data(n=96)
    model = _small_cnn()
    shape = (1, 8, 8)
    params = params_for_input(*shape[1:])
    groups = model_groups(model, shape, params)
    monkeypatch.setattr(it, "train", lambda *a, **k: None)
    result = it.iterative_prune(model, data, groups, "artemis-diagonal", params, max_drop=1.0,
                                fractions=(0.1, 0.2, 0.3, 0.4, 0.5), reference=200.0, patience=3)
    assert len(result.steps) == 4 and not any(s.accepted for s in result.steps)
    assert result.chosen.step == 0
    with pytest.raises(ValueError, match="patience"):
        it.iterative_prune(model, data, groups, "artemis-diagonal", params, patience=0)
