"""pruning.rescale: a Lasso model back at its reference's weight scale, with the function unchanged."""

import pytest
import torch
from torch import nn

from heconv.errors import InputError
from heconv.frontend import conv_batchnorm_pairs
from models import build_model
from pruning.methods import family_members, get_method
from pruning.rescale import match_weight_scale


def _rms(w: torch.Tensor) -> float:
    return float(w.detach().double().pow(2).mean().sqrt())


def _shrunk_copy(model: nn.Module, seed: int = 1) -> nn.Module:
    """`model` with every conv shrunk by a different factor and BN compensating (what the Lasso leaves)."""
    torch.manual_seed(seed)
    other = build_model("resnet20", 1, 10)
    other.load_state_dict(model.state_dict())
    modules = dict(other.named_modules())
    with torch.no_grad():
        for conv, bn in conv_batchnorm_pairs(other):
            c = float(torch.empty(()).uniform_(0.2, 0.4))
            modules[conv].weight.mul_(c)
            modules[bn].running_mean.mul_(c)
            modules[bn].running_var.mul_(c * c)
    return other


def _trained_like(name: str = "resnet20") -> nn.Module:
    torch.manual_seed(0)
    m = build_model(name, 1, 10)
    with torch.no_grad():  # BN statistics and affine parameters that are not the identity
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    return m.eval()


def test_every_conv_of_the_resnets_is_followed_by_its_batchnorm():
    for name in ("resnet18", "resnet20"):
        m = build_model(name, 1, 10)
        convs = [p for p, mod in m.named_modules() if isinstance(mod, nn.Conv2d)]
        assert sorted(c for c, _ in conv_batchnorm_pairs(m)) == sorted(convs)


def test_the_reference_scale_is_restored_and_the_function_kept():
    ref = _trained_like()
    lasso = _shrunk_copy(ref).eval()
    x = torch.randn(4, 1, 16, 16)
    before = lasso(x)
    factors = match_weight_scale(lasso, ref)
    modules, ref_modules = dict(lasso.named_modules()), dict(ref.named_modules())
    assert len(factors) == len(conv_batchnorm_pairs(ref))
    assert all(2.4 < f < 5.1 for f in factors.values())  # 1/0.4 .. 1/0.2
    for path in factors:
        assert _rms(modules[path].weight) == pytest.approx(_rms(ref_modules[path].weight), rel=1e-6)
    assert torch.allclose(lasso(x), before, atol=1e-4)
    lasso.train()  # batch statistics scale alike (up to BN's eps, which weighs more on the shrunk model)
    assert torch.allclose(lasso(x), _shrunk_copy(ref).train()(x), atol=1e-2)


def test_a_near_dead_channel_keeps_its_output_exactly():
    """A channel whose running variance is near BN's eps (what a Lasso leaves of a dying channel): scaling
    the variance alone would change its eval output by about 100%."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2)).eval()
    ref = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2))
    with torch.no_grad():
        m[1].running_var.copy_(torch.tensor([2.5e-6, 1.0]))
        ref[0].weight.copy_(4.64 * m[0].weight)
    x = torch.randn(3, 1, 6, 6)
    before = m(x)
    match_weight_scale(m, ref)
    assert torch.allclose(m(x), before, rtol=1e-5, atol=1e-6)


def test_a_conv_without_batchnorm_and_a_zero_conv_are_left_alone():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Conv2d(2, 2, 1)).eval()
    ref = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Conv2d(2, 2, 1))
    w3 = m[3].weight.clone()
    with torch.no_grad():
        m[0].weight.zero_()
        m[0].bias.zero_()
    assert match_weight_scale(m, ref) == {}
    assert torch.equal(m[3].weight, w3)


def test_a_reference_of_another_shape_is_refused():
    with pytest.raises(InputError, match="the reference has no conv"):
        match_weight_scale(build_model("resnet20", 1, 10), build_model("resnet20", 3, 10))


def test_the_rescaled_member_is_in_the_artemis_family():
    m = get_method("artemis-diagonal-rescaled")
    assert m.rescale and m.lasso == ("d",) and m.family == "artemis-diagonal"
    assert not get_method("artemis-diagonal").rescale
    assert family_members("artemis-diagonal") == ("artemis-diagonal", "artemis-diagonal-rescaled",
                                                  "artemis-diagonal-held")


def test_the_held_lasso_keeps_every_conv_at_its_start_scale_where_the_plain_one_shrinks_it():
    """Real tiny warm-started Lasso cells: "proximal-held" ends with each conv's RMS weight where the dense
    model left it, "proximal" (the same lambda and steps) with it shrunk; the held member's sweep cell
    trains with "proximal-held" from the same plain model."""
    from bench.experiments.cells import TrainCell, run_train_cell
    from bench.experiments.sweep import SweepGrid
    from models.checkpoint import checkpoint_from_bytes

    plain = TrainCell("resnet20", "digits", 8, 300, epochs=1, converge=None, test_images=60)
    ref = run_train_cell(plain)
    scales = {}
    for lasso in ("proximal", "proximal-held"):
        cell = TrainCell("resnet20", "digits", 8, 300, epochs=1, converge=None, test_images=60, lambda_d=2.0,
                         lasso_epochs=1, lasso_lr=0.05, lasso=lasso)
        model = build_model("resnet20", 1, 10)
        model.load_state_dict(checkpoint_from_bytes(run_train_cell(cell, parent=ref)["state"], cell.run_id)[0])
        modules = dict(model.named_modules())
        scales[lasso] = {c: _rms(modules[c].weight) for c, _ in conv_batchnorm_pairs(model)}
    dense = build_model("resnet20", 1, 10)
    dense.load_state_dict(checkpoint_from_bytes(ref["state"], plain.run_id)[0])
    modules = dict(dense.named_modules())
    start = {c: _rms(modules[c].weight) for c, _ in conv_batchnorm_pairs(dense)}
    assert scales["proximal-held"] == pytest.approx(start, rel=1e-4)
    assert all(scales["proximal"][c] < 0.95 * start[c] for c in start)

    grid = SweepGrid(models=("resnet20",), methods=("artemis-diagonal", "artemis-diagonal-held"), lambdas_d=(0.7,))
    held, own = sorted(grid.prune_cells(), key=lambda c: c.method == "artemis-diagonal")
    assert held.method == "artemis-diagonal-held" and held.train.lasso == "proximal-held"
    assert own.train.lasso == "proximal" and held.train.parent.run_id == own.train.parent.run_id
    assert "/proximal-held/lp0/ld0.7/" in held.train.run_id and held.train.run_id != own.train.run_id


def test_a_prune_cell_of_the_rescaled_member_starts_at_the_reference_scale():
    """A real tiny warm-started Lasso cell: the rescaled member records one factor per conv, and the
    starting model (step 0, before any pruning or fine-tuning) is the unscaled one's to within noise."""
    from bench.experiments.cells import PruneCell, TrainCell, run_prune_cell, run_train_cell

    plain = TrainCell("resnet20", "digits", 8, 300, epochs=1, converge=None, test_images=60)
    lasso = TrainCell("resnet20", "digits", 8, 300, epochs=1, converge=None, test_images=60, lambda_d=2.0,
                      lasso_epochs=1, lasso_lr=0.05)
    ref = run_train_cell(plain)
    trained = run_train_cell(lasso, parent=ref)
    outs = {}
    for method in ("artemis-diagonal", "artemis-diagonal-rescaled"):
        cell = PruneCell(lasso, plain, method, max_drop=50.0, fractions=(0.5,), finetune_epochs=0.1,
                         recovery_epochs=0.1)
        outs[method] = run_prune_cell(cell, trained, ref)
    factors = outs["artemis-diagonal-rescaled"]["scale_factors"]
    assert outs["artemis-diagonal"]["scale_factors"] is None
    assert len(factors) == 19 and any(abs(f - 1) > 0.01 for f in factors.values())
    s0 = [o["steps"][0] for o in outs.values()]
    assert s0[0]["rotations"] == s0[1]["rotations"]
    assert abs(s0[0]["val_accuracy"] - s0[1]["val_accuracy"]) <= 100 / 30  # one validation image of 30
