"""Mid-run resume: a training or a pruning run stopped after epoch (step) k and resumed from the
state it handed out ends with exactly the weights and records of an uninterrupted run."""

import io

import pytest
import torch

import pruning.iterative as it
from heconv.errors import InputError
from heconv.params import params_for_input
from pruning.groups import model_groups
from pruning.iterative import iterative_prune
from pruning.masks import effective_weight
from pruning.train import TrainConfig, train
from tests.pruning.test_prune import _small_cnn, _tiny_data

SHAPE = (1, 8, 8)


class Killed(Exception):
    pass


def _stop_after(k: int, kept: list):
    """A save_state that keeps a round trip of the k-th state through torch.save/torch.load(weights_only=True)
    (what the sweep does with it), then stops the run as a kill would."""
    calls = []

    def save(state: dict) -> None:
        calls.append(1)
        if len(calls) == k:
            buf = io.BytesIO()
            torch.save(state, buf)
            kept.append(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
            raise Killed
    return save


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("cfg, lasso", [
    (TrainConfig(epochs=4, lr=0.05, batch_size=16, seed=3), True),  # cosine, proximal Lasso
    (TrainConfig(epochs=6, lr=0.05, batch_size=16, lr_schedule="plateau", converge=30.0, window=1, plateaus=4),
     False),  # plateau: rate cuts and the best epoch's weights
    (TrainConfig(epochs=2.5, lr=0.05, batch_size=16), False),  # a fractional last epoch
])
def test_a_training_resumed_after_epoch_k_ends_as_an_uninterrupted_one(cfg, lasso):
    data = _tiny_data()
    if lasso:
        cfg = TrainConfig(**{**cfg.__dict__, "lambda_d": 0.5, "lambda_p": 0.2})
    groups = model_groups(_small_cnn(), SHAPE, params_for_input(*SHAPE[1:])) if lasso else None
    plain = _small_cnn()
    want = train(plain, data, cfg, groups)
    hooked = _small_cnn()
    states = []
    assert train(hooked, data, cfg, groups, save_state=states.append) == want  # saving changes nothing
    _same_weights(hooked, plain)
    assert len(states) == len(want) - 1  # one after every epoch that another follows
    for k in sorted({1, len(want) // 2, len(want) - 1}):  # the first, a middle and the last state
        kept: list = []
        with pytest.raises(Killed):
            train(_small_cnn(), data, cfg, groups, save_state=_stop_after(k, kept))
        resumed = _small_cnn()  # a fresh process: the model as the cell builds it, the state from disk
        seen = []
        got = train(resumed, data, cfg, groups, progress=lambda d, t, i, seen=seen: seen.append(i), resume=kept[0])
        assert got == want and seen[0]["resumed"] == k
        _same_weights(resumed, plain)
    if cfg.lr_schedule == "plateau":
        assert any("plateau" in h for h in want)  # the rate was cut: the resumed runs went through a cut


def test_a_held_scale_lasso_training_resumed_ends_as_an_uninterrupted_one():
    """proximal-held (on a model with BatchNorm): the scales held travel in the resume state, so the resumed
    run holds the start's, not the resumed weights' own to float precision."""
    from models import build_model

    data = _tiny_data()
    cfg = TrainConfig(epochs=3, lr=0.05, batch_size=16, seed=1, lambda_d=1.0, lasso="proximal-held")

    def net():
        torch.manual_seed(0)
        return build_model("resnet20", 1, 10)

    groups = model_groups(net(), SHAPE, params_for_input(*SHAPE[1:]))
    plain = net()
    want = train(plain, data, cfg, groups)
    kept: list = []
    with pytest.raises(Killed):
        train(net(), data, cfg, groups, save_state=_stop_after(1, kept))
    assert set(kept[0]["held"]) == set(groups)  # every conv of ResNet-20 feeds a BatchNorm
    resumed = net()
    assert train(resumed, data, cfg, groups, resume=kept[0]) == want
    _same_weights(resumed, plain)


def test_the_held_scale_lasso_is_refused_on_a_model_without_batchnorm():
    groups = model_groups(_small_cnn(), SHAPE, params_for_input(*SHAPE[1:]))
    with pytest.raises(InputError, match="proximal-held.*has none"):
        train(_small_cnn(), _tiny_data(), TrainConfig(epochs=1, batch_size=16, lambda_d=1.0, lasso="proximal-held"),
              groups)


def test_a_resume_state_of_another_training_is_refused():
    data = _tiny_data()
    kept: list = []
    with pytest.raises(Killed):
        train(_small_cnn(), data, TrainConfig(epochs=3, batch_size=16), save_state=_stop_after(1, kept))
    with pytest.raises(ValueError, match="resume state is not one of this training"):
        train(_small_cnn(), data, TrainConfig(epochs=4, batch_size=16), resume=kept[0])


def _small_cnn_at(state: dict) -> torch.nn.Module:
    model = _small_cnn()
    model.load_state_dict(state)
    return model


def _trained():
    data = _tiny_data()
    model = _small_cnn()
    train(model, data, TrainConfig(epochs=6, lr=0.05, batch_size=16))
    return data, model.state_dict()


@pytest.mark.parametrize("mixed", [False, True])
def test_a_pruning_resumed_after_step_k_ends_as_an_uninterrupted_one(mixed, monkeypatch):
    data, start = _trained()
    params = params_for_input(*SHAPE[1:])
    fractions = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
    ft = TrainConfig(epochs=0.5, lr=0.01, batch_size=16)
    real = it.evaluate
    max_drop, reference = 100.0, None  # every step accepted: the chosen step is the last one
    if mixed:  # the tiny model's accuracy barely moves: a validation reading that follows the weights
        # (10 points off on an odd digest of them) rejects some steps, so that the chosen step lags behind
        max_drop, reference = 0.0, real(_small_cnn_at(start), *data.tensors("val"))

        def evaluate(model, x, y):
            odd = int(sum(float(effective_weight(m).detach().abs().sum()) for m in model.modules()
                          if isinstance(m, torch.nn.Conv2d)) * 1e4) % 2
            return real(model, x, y) - 10.0 * odd
        monkeypatch.setattr(it, "evaluate", evaluate)

    def run(**kw):
        model = _small_cnn_at(start)
        groups = model_groups(model, SHAPE, params)
        result = iterative_prune(model, data, groups, "artemis-diagonal", params, max_drop, fractions, ft,
                                 reference=reference, patience=5,
                                 recovery=TrainConfig(epochs=1, lr=0.01, batch_size=16), **kw)
        return result, model

    want, plain = run()
    states: list = []
    got, hooked = run(save_state=states.append)
    assert got == want and len(states) == len(want.steps) - 2  # none after the last step
    _same_weights(hooked, plain)
    if mixed:
        assert {s.accepted for s in want.steps[1:]} == {True, False}
        assert any(st["best"] is not None for st in states)  # a state with the chosen step behind the last one
        assert any(st["rejected"] for st in states)
    for k in sorted({1, len(want.steps) // 2, len(want.steps) - 2}):
        kept: list = []
        with pytest.raises(Killed):
            run(save_state=_stop_after(k, kept))
        seen: list = []
        got, resumed = run(resume=kept[0], progress=lambda d, t, i, seen=seen: seen.append(i))
        assert got == want, k
        assert seen[0] == {"resumed": k}
        _same_weights(resumed, plain)


def test_a_pruning_state_of_another_method_is_refused():
    data, start = _trained()
    params = params_for_input(*SHAPE[1:])
    model = _small_cnn()
    model.load_state_dict(start)
    groups = model_groups(model, SHAPE, params)
    kept: list = []
    ft = TrainConfig(epochs=0.25, lr=0.01, batch_size=16)
    with pytest.raises(Killed):
        iterative_prune(model, data, groups, "artemis-diagonal", params, 100.0, (0.3, 0.6), ft,
                        save_state=_stop_after(1, kept))
    with pytest.raises(ValueError, match="resume state is not one of this run"):
        iterative_prune(model, data, groups, "hunter", params, 100.0, (0.3, 0.6), ft, resume=kept[0])


def test_a_pruning_step_reports_within_its_fine_tune():
    """Each batch of a step's fine-tune reports a fraction of that step, so a sweep worker's pause
    (bench.experiments.pause) is heard within the step, not only at its end."""
    data, start = _trained()
    params = params_for_input(*SHAPE[1:])
    model = _small_cnn_at(start)
    seen: list = []
    iterative_prune(model, data, model_groups(model, SHAPE, params), "artemis-diagonal", params, 100.0,
                    (0.1, 0.3), TrainConfig(epochs=0.5, lr=0.01, batch_size=16), patience=5,
                    recovery=TrainConfig(epochs=1, lr=0.01, batch_size=16),
                    progress=lambda done, total, info: seen.append((done, "accuracy" in info)))
    steps = [d for d, finished in seen if finished]
    within = [d for d, finished in seen if not finished]
    assert steps == [1, 2] and all(0 < d <= 2 for d in within)
    assert any(0 < d < 1 for d in within) and any(1 < d < 2 for d in within)  # in each step's fine-tune
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # never backwards
