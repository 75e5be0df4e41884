"""Plots that say what they show (issue 21): chosen steps marked, the budget line labelled, '1 seed',
the dense point drawn on top; no degenerate one-seed interval in the text."""

import bench.report.plots as plots
from bench.report.experiments import experiments_section


def _rows(seeds=(0,)):
    rows = []
    for seed in seeds:
        for method, steps in (("dense", [(826, 88.0)]), ("hunter", [(826, 88.0), (700, 87.5), (500, 85.0)]),
                              ("artemis-diagonal", [(826, 88.2), (600, 87.8), (430, 87.3), (300, 84.0)])):
            for i, (rot, acc) in enumerate(steps):
                rows.append({"run_id": f"prune/{method}/s{seed}", "model": "resnet20", "dataset": "fashion-mnist",
                             "input_size": "16", "poly_modulus_degree": "8192", "method": method, "lambda_p": 0.0,
                             "lambda_d": 0.3 if method == "artemis-diagonal" else 0.0, "seed": seed, "step": i,
                             "rotations": rot, "test_accuracy": acc, "val_accuracy": acc, "accuracy": str(acc),
                             "fraction": 0.1 * i, "accepted": 1, "encrypted_server_s": None,
                             "chosen": int(i == len(steps) - 2 or len(steps) == 1)})
    return rows


def _figures(monkeypatch):
    figs = []
    monkeypatch.setattr(plots, "_png", lambda fig: figs.append(fig) or b"")
    monkeypatch.setattr(plots, "atomic_write", lambda path, data: None)
    return figs


def test_experiments_figure_labels(monkeypatch, tmp_path):
    figs = _figures(monkeypatch)
    plots.experiments_figure(_rows(), tmp_path / "x.png")
    ax = figs[0].axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "dense (1 seed)" in labels and "hunter (1 seed)" in labels and not any("1 seeds" in x for x in labels)
    assert "budget: dense validation accuracy - 1 point" in labels and "chosen step (per seed)" in labels
    stars = [line for line in ax.lines if line.get_marker() == "*"]
    assert sorted(x for line in stars for x in line.get_xdata()) == [430, 700, 826]  # every chosen step, marked
    figs.clear()
    plots.experiments_figure(_rows((0, 1)), tmp_path / "x.png")
    assert "dense (2 seeds)" in figs[0].axes[0].get_legend_handles_labels()[1]


def test_pareto_figure_marks_chosen_and_draws_dense_on_top(monkeypatch, tmp_path):
    figs = _figures(monkeypatch)
    plots.pareto_figure([{k: str(v) for k, v in r.items()} for r in _rows()], tmp_path / "p.png")
    ax = figs[0].axes[0]
    by_label = {line.get_label(): line for line in ax.lines}
    assert by_label["dense"].get_zorder() > by_label["hunter"].get_zorder()
    assert [line.get_label() for line in ax.lines].count("chosen step") == 1
    stars = [line for line in ax.lines if line.get_marker() == "*"]
    assert sorted(x for line in stars for x in line.get_xdata()) == [430, 700, 826]


def test_one_seed_has_no_interval():
    text = "\n".join(experiments_section(_rows()))
    assert "(1 seed: [0])" in text and "1 seeds" not in text
    assert "(1 seed, no interval)" in text and "(88.00-88.00)" not in text
    assert "Made from results/experiments.csv" not in text
