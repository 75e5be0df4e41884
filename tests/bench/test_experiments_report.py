"""The verdicts: points chosen on validation only, lambdas and Hunter variants chosen on
validation, t-intervals on log ratios over seeds, cut-off runs flagged, claims in words."""

import math
import random

import pytest

from bench.report.experiments import (
    claim_verdict,
    experiments_section,
    experiments_summary,
    log_t_interval,
    model_results,
    ratio,
    run_point,
)


def _run(method, seed, points, lambda_d=0.0, budget=89.0, cut_off=False):
    """Rows of one run as the store exports them: points are (rotations, val accuracy, test accuracy)
    per step; a step is accepted when its val accuracy is within the budget, and the chosen step is
    the accepted one with the fewest rotations (what pruning.iterative records)."""
    rid = f"prune/{method}/ld{lambda_d}/s{seed}"
    accepted = [i for i, (_, v, _) in enumerate(points) if v >= budget]
    chosen = min(accepted, key=lambda i: points[i][0]) if accepted else 0
    return [{"run_id": rid, "model": "resnet20", "dataset": "fashion-mnist", "input_size": 16,
             "poly_modulus_degree": 8192, "method": method, "lambda_p": 0.0, "lambda_d": lambda_d, "seed": seed,
             "step": i, "rotations": r, "val_accuracy": v, "test_accuracy": t if i == chosen else "",
             "accepted": int(v >= budget), "chosen": int(i == chosen), "finetune_epochs": float(i),
             "cut_off": int(cut_off), "encrypted_server_s": None} for i, (r, v, t) in enumerate(points)]


def _rows(hunter_scale=1.0, seeds=(0, 1, 2), jitter=0.0):
    rows = []
    for seed in seeds:
        j = 1 + jitter * (seed - 1)
        rows += _run("dense", seed, [(1000, 90.0, 90.0)])
        # hunter is within the 89.0 budget at 600 * scale rotations, artemis at 300 (lambda 1) or 500 (lambda 2)
        rows += _run("hunter", seed, [(1000, 90.0, 90.0), (600 * hunter_scale * j, 89.0, 89.0), (200, 80.0, 80.0)])
        rows += _run("artemis-diagonal", seed, [(1000, 90.0, 90.0), (300, 89.0, 89.0), (100, 80.0, 80.0)], 1.0)
        rows += _run("artemis-diagonal", seed, [(1000, 90.0, 90.0), (500, 89.5, 89.5), (400, 70.0, 70.0)], 2.0)
    return rows


def test_ratio_per_seed_with_t_interval_and_lambda_chosen_on_validation():
    results = model_results(_rows(jitter=0.1))
    assert results["artemis-diagonal"].lambdas == (0.0, 1.0)
    assert results["artemis-diagonal"].rotations == {0: 300, 1: 300, 2: 300}
    r = ratio(results, "hunter", "artemis-diagonal")
    per = [540 / 300, 600 / 300, 660 / 300]
    assert r["per_seed"] == pytest.approx(dict(enumerate(per))) and r["seeds"] == 3
    logs = [math.log(p) for p in per]
    mean, sd = sum(logs) / 3, math.sqrt(sum((x - sum(logs) / 3) ** 2 for x in logs) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, df 2)
    assert r["value"] == pytest.approx(math.exp(mean))
    assert r["interval"] == pytest.approx((math.exp(mean - half), math.exp(mean + half)))
    assert ratio(results, "diagonal-no-lasso", "artemis-diagonal") is None
    # the report gives each seed's ratio beside the interval
    line = next(x for x in experiments_section(_rows(jitter=0.1)) if x.startswith("| hunter / artemis-diagonal"))
    assert "| 0: 1.80, 1: 2.00, 2: 2.20 |" in line


def test_t_interval_on_a_known_case():
    g, lo, hi = log_t_interval([1.0, 2.0, 4.0])  # logs 0, ln 2, 2 ln 2: mean ln 2, sd ln 2
    half = 4.302652729911275 * math.log(2) / math.sqrt(3)
    assert (g, lo, hi) == pytest.approx((2.0, 2 * math.exp(-half), 2 * math.exp(half)))
    assert claim_verdict({"value": g, "interval": (lo, hi), "seeds": 3}) == "is undecided"
    assert claim_verdict({"value": 1.1, "interval": (1.0, 1.19), "seeds": 5}) == "does not hold"
    assert claim_verdict({"value": 1.5, "interval": (1.2, 1.9), "seeds": 5}) == "holds"


def test_selection_never_reads_test():
    """Shuffling or corrupting every test figure changes no choice: points, lambdas, variants and ratios."""
    rows = _rows(jitter=0.1)
    rows += _run("hunter-rms-all", 0, [(1000, 90.0, 99.0), (700, 89.2, 10.0)])  # awful on test, worse on val
    for s in (1, 2):
        rows += _run("hunter-rms-all", s, [(1000, 90.0, 99.0), (700, 89.2, 10.0)])
    base = model_results(rows)
    rng = random.Random(0)
    shuffled = [dict(r, test_accuracy=rng.uniform(0, 100) if r["test_accuracy"] != "" else "") for r in rows]
    other = model_results(shuffled)
    assert {k: (v.method, v.lambdas, v.rotations) for k, v in base.items()} == \
           {k: (v.method, v.lambdas, v.rotations) for k, v in other.items()}
    assert base["hunter"].method == "hunter"  # 600 rotations beat 700 on validation, whatever test says


def test_no_step_within_the_budget_has_no_point_and_no_interpolation():
    p = run_point(_run("artemis-diagonal", 0, [(1000, 85.0, 85.0), (500, 84.0, 84.0)]))
    assert p["rotations"] is None
    # within the budget at 600, not at 200: the point is 600, not a value interpolated toward 200
    assert run_point(_run("hunter", 0, [(1000, 90.0, 90.0), (600, 89.0, 89.0), (200, 88.0, 88.0)]))["rotations"] == 600


def test_a_cut_off_run_is_flagged():
    rows = _rows()
    rows = [dict(r, cut_off=1) if r["method"] == "artemis-diagonal" and r["lambda_d"] == 1.0 else r for r in rows]
    md = "\n".join(experiments_section(rows))
    assert "Cut off by the end of the schedule (their points are bounds): artemis-diagonal" in md
    assert "| 3 of 3 |" in md
    assert experiments_summary(rows)["resnet20/fashion-mnist/16/8192"]["methods"]["artemis-diagonal"]["cut_off"] \
        == [0, 1, 2]


def test_claims_in_words():
    md = "\n".join(experiments_section(_rows(hunter_scale=0.55, jitter=0.01)))  # hunter ~330 vs artemis 300: 1.1x
    assert "1.10x" in md and "the claim does not hold" in md
    md = "\n".join(experiments_section(_rows(jitter=0.01)))
    assert "the claim holds" in md and "3 seeds" in md


def test_fewer_than_three_seeds_give_a_ratio_but_no_verdict():
    text = "\n".join(experiments_section(_rows(seeds=(0, 1))))
    assert "2.00x" in text  # hunter 600 over artemis 300 on each seed
    assert "the claim is not judged on 2 seed(s) (a verdict needs at least 3)" in text


def test_the_best_hunter_variant_is_never_weaker_than_diagonal_no_lasso_on_validation():
    """A real tiny grid: diagonal-no-lasso is a member of Hunter's family, so the variant chosen on
    validation needs at most its rotations."""
    import torch

    from bench.experiments.cells import PruneCell, TrainCell, run_prune_cell, run_train_cell

    t = TrainCell("small-cnn", "digits", 8, 400, epochs=2, converge=None, test_images=100)
    trained = run_train_cell(t)
    rows = []
    for method in ("dense", "hunter", "hunter-rms-all", "diagonal-no-lasso"):
        cell = PruneCell(t, t, method, max_drop=5.0, fractions=(0.2, 0.5, 0.8), finetune_epochs=0.25,
                         recovery_epochs=0.25)
        out = run_prune_cell(cell, trained, trained)
        for s in out["steps"]:
            rows.append({**s, "run_id": cell.run_id, "model": "small-cnn", "dataset": "digits", "input_size": 8,
                         "poly_modulus_degree": 8192, "method": method, "lambda_p": 0.0, "lambda_d": 0.0, "seed": 0,
                         "test_accuracy": s["test_accuracy"] if s["test_accuracy"] is not None else "",
                         "cut_off": int(out["cut_off"]), "encrypted_server_s": None})
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = model_results(rows)
    hunter, plain = results["hunter"], results["diagonal-no-lasso"]
    assert hunter.method in ("hunter", "hunter-rms-all", "diagonal-no-lasso")
    assert plain.rotations[0] is not None and hunter.rotations[0] is not None
    assert hunter.rotations[0] <= plain.rotations[0]


def test_two_configurations_of_one_cell_are_refused():
    rows = _rows() + [dict(r, run_id=r["run_id"] + "/other") for r in _run("hunter", 0, [(1000, 90.0, 90.0)])]
    with pytest.raises(ValueError, match="two runs of seed 0"):
        model_results(rows)


def test_a_seed_with_no_point_counts_as_dense_and_is_named():
    rows = [r for r in _rows() if not (r["method"] == "artemis-diagonal" and (r["seed"] == 2 or r["lambda_d"] == 2.0))]
    rows += _run("artemis-diagonal", 2, [(1000, 85.0, 85.0), (300, 84.0, 84.0)], 1.0)  # never within the budget
    r = ratio(model_results(rows), "hunter", "artemis-diagonal")
    assert r["seeds"] == 3 and r["as_dense"] == [2] and r["per_seed"][2] == pytest.approx(600 / 1000)
    assert "seeds [2] with no step within the budget count as dense" in "\n".join(experiments_section(rows))


def test_every_hunter_variant_and_the_ablation_stay_in_the_report():
    rows = _rows()
    for s in (0, 1, 2):
        rows += _run("hunter-rms-all", s, [(1000, 90.0, 90.0), (400, 89.1, 89.0)])  # beats hunter (600)
        rows += _run("diagonal-no-lasso", s, [(1000, 90.0, 90.0), (500, 89.2, 89.0)])
    results = model_results(rows)
    assert results["hunter"].method == "hunter-rms-all"
    assert [m.method for m in results["hunter"].members] == ["hunter-rms-all", "diagonal-no-lasso", "hunter"]
    md = "\n".join(experiments_section(rows))
    assert "| diagonal-no-lasso | 0 / 0 | 3 of 3 |" in md and "| hunter | 0 / 0 | 3 of 3 | 600 |" in md


def test_choices_are_made_on_the_seeds_every_candidate_ran_and_confirmation_seeds_are_named():
    """Seeds 3-4 run only for the chosen lambda (a staged grid): they must not move the choice, and
    they appear in the ratio as confirmation seeds."""
    rows = _rows()
    # on seeds 3 and 4 the chosen lambda (1) has no step within the budget: were they to vote (a
    # share of 3 in 5), lambda 2 (3 in 3, seeds 0-2) would win
    for seed in (3, 4):
        rows += _run("dense", seed, [(1000, 90.0, 90.0)])
        rows += _run("hunter", seed, [(1000, 90.0, 90.0), (600, 89.0, 89.0)])
        rows += _run("artemis-diagonal", seed, [(1000, 88.0, 88.0), (900, 87.0, 87.0)], 1.0)
    results = model_results(rows)
    assert results["artemis-diagonal"].lambdas == (0.0, 1.0)
    assert results["artemis-diagonal"].chosen_on == [0, 1, 2]
    assert results["artemis-diagonal"].seeds == [0, 1, 2, 3, 4]
    r = ratio(results, "hunter", "artemis-diagonal")
    assert r["seeds"] == 5 and r["confirmation"] == [3, 4]
    assert r["per_seed"][3] == pytest.approx(600 / 1000) and r["as_dense"] == [3, 4]  # no point: counts as dense
    assert "seeds [3, 4] did not run every candidate, cast no vote and confirm" in "\n".join(experiments_section(rows))


def test_one_models_rows_of_two_protocols_are_refused():
    rows = _rows()
    rows = [dict(r, subset=20000 if r["seed"] else 6000) for r in rows]
    with pytest.raises(ValueError, match="resnet20's rows mix subset 20000 and 6000"):
        experiments_section(rows)


def test_the_readme_states_the_claims_verdict_and_the_encrypted_ratios():
    from bench.report.readme import render_readme_block

    rows = _rows(jitter=0.1)
    for r in rows:  # the chosen steps ran encrypted: server time proportional to rotations, auto 20% faster;
        if r["chosen"]:  # auto across algorithms: half the time plus a part pruning does not cut
            r["encrypted_server_s"] = r["rotations"] / 100
            r["encrypted_auto_server_s"] = r["rotations"] / 120
            r["encrypted_algorithms_server_s"] = r["rotations"] / 200 + 1.0
    summary = experiments_summary(rows)
    r = summary["resnet20/fashion-mnist/16/8192"]["ratios"]["hunter / artemis-diagonal"]
    assert r["claim"] == "holds" and r["better_at_all"] == "yes (lower bound above 1)"
    assert r["encrypted"]["fixed"]["server_time"] == pytest.approx(r["value"])
    assert r["encrypted"]["auto"]["seeds"] == [0, 1, 2]
    assert "rotations" not in r["encrypted"]["auto"]  # the recorded rotations are the fixed schedule's
    assert 1.0 < r["encrypted"]["algorithms"]["server_time"] < r["encrypted"]["fixed"]["server_time"]
    block = render_readme_block({"experiments": {"results/experiments.sqlite": summary}})
    line = next(x for x in block.splitlines() if x.startswith("- ") and "hunter / artemis-diagonal" in x)
    assert "the 1.2x claim holds" in line and "encrypted, slot auto schedule: server time" in line
    assert "encrypted, auto across algorithms: server time" in line and "x (3 seeds)" in line
    assert "claim" not in next(x for x in block.splitlines() if "dense / artemis-diagonal" in x)
    assert "Pruning verdicts from `results/experiments.sqlite`" in block


def test_the_bytes_each_way_weigh_in_at_a_link_rate():
    """A reading that is fast on the server but sends much more (the coefficient algorithm) is cheaper by
    server time and dearer end to end at a slow link: the cost table and the ratios say both."""
    rows = _rows()
    for r in rows:
        if r["chosen"]:  # fixed: 1 s per 100 rotations, 10 MB; coefficient: 0.1 s and 250 MB whatever was pruned
            r["encrypted_server_s"], r["encrypted_bytes"] = r["rotations"] / 100, 10e6
            r["encrypted_coefficient_server_s"], r["encrypted_coefficient_bytes"] = 0.1, 250e6
    md = experiments_section(rows)
    table = [x for x in md if x.startswith("| dense | ") and ("schedule |" in x or "encoding |" in x)]
    assert table == ["| dense | fixed schedule | 0, 1, 2 | 10.00 | 10.0 | 10.08 | 10.80 |",
                     "| dense | coefficient encoding | 0, 1, 2 | 0.10 | 250.0 | 2.10 | 20.10 |"]
    fastest = next(x for x in md if x.startswith("Fastest"))
    coefficient = ("hunter under coefficient encoding ({} s), tied with artemis-diagonal under coefficient encoding, "
                   "dense under coefficient encoding")  # every model alike there: none is named the winner alone
    assert fastest == (f"Fastest by server time alone: {coefficient.format('0.10')}; with transfer at 1 Gbit/s: "
                       f"{coefficient.format('2.10')}; with transfer at 100 Mbit/s: artemis-diagonal under fixed "
                       "schedule (3.80 s).")
    enc = experiments_summary(rows)["resnet20/fashion-mnist/16/8192"]["ratios"]["dense / artemis-diagonal"]["encrypted"]
    assert enc["fixed"]["with_transfer"] == pytest.approx((10 + 0.08) / (3 + 0.08))
    assert enc["coefficient"]["server_time"] == pytest.approx(1.0) and enc["coefficient"]["with_transfer"] == 1.0
    # a row measured on fewer seeds is listed, not ranked against means over other seeds
    fewer = [dict(r, encrypted_coefficient_server_s=None) if r["method"] == "dense" and r["seed"] == 2 else r
             for r in rows]
    line = next(x for x in experiments_section(fewer) if x.startswith("Fastest"))
    assert "dense under coefficient" not in line and line.endswith("Rows on other seeds than 0, 1, 2 are not ranked.")
    assert "| dense | coefficient encoding | 0, 1 | 0.10 |" in "\n".join(experiments_section(fewer))
    # a database measured before the bytes were in the view: server time alone, and no cost table
    old = [{k: v for k, v in r.items() if not k.endswith("_bytes")} for r in rows]
    assert "with_transfer" not in experiments_summary(old)["resnet20/fashion-mnist/16/8192"]["ratios"][
        "dense / artemis-diagonal"]["encrypted"]["fixed"]
    assert not any(x.startswith("Fastest") for x in experiments_section(old))


def test_a_second_database_has_verdicts_of_its_own(tmp_path):
    """A replicate (its models trained apart) is reported beside the main database, never merged into it:
    each source its heading, plot, README lines and seeds."""
    from bench.report import write_report
    from bench.report.readme import render_readme_block

    from .test_report import _fixture

    main = _rows()
    # the replicate ran one of Hunter's variants, diagonal-no-lasso, which then stands for Hunter
    replicate = [{**r, "method": "diagonal-no-lasso"} if r["method"] == "hunter" else r
                 for r in _rows(hunter_scale=0.5, seeds=(0, 1, 2, 3))]
    model = write_report([_fixture(tmp_path)], tmp_path / "out",
                         experiments={"main.sqlite": main, "replicate.sqlite": replicate})
    assert list(model["experiments"]) == ["main.sqlite", "replicate.sqlite"]
    key = "resnet20/fashion-mnist/16/8192"
    ratios = {s: model["experiments"][s][key]["ratios"]["hunter / artemis-diagonal"] for s in model["experiments"]}
    assert ratios["main.sqlite"]["seeds"] == 3 and ratios["replicate.sqlite"]["seeds"] == 4
    assert ratios["replicate.sqlite"]["value"] < ratios["main.sqlite"]["value"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Pruning verdicts: `main.sqlite`" in md and "## Pruning verdicts: `replicate.sqlite`" in md
    assert "(experiments_pareto.png)" in md and "(experiments_pareto-replicate.png)" in md
    assert (tmp_path / "out" / "experiments_pareto-replicate.png").is_file()
    block = render_readme_block(model).splitlines()
    first, second = block.index(next(x for x in block if x.startswith("Pruning verdicts from `main.sqlite`"))), \
        block.index(next(x for x in block if x.startswith("The same from `replicate.sqlite`")))
    value = f"{ratios['replicate.sqlite']['value']:.2f}x"
    stand_in = "hunter (diagonal-no-lasso, the best of 1 variant run) / artemis-diagonal"
    assert first < second and value in next(x for x in block[second:] if stand_in in x)
    assert any("hunter / artemis-diagonal" in x for x in block[first:second])
    # the claims table opens the report and the block, one row per database
    assert md.index("## The seed paper's claims") < md.index("## Verdict")
    claims = [x for x in block[:first] if x.startswith("| HE-aware training")]
    assert len(claims) == 2 and "`main.sqlite`" in claims[0] and "`replicate.sqlite`" in claims[1]


def test_the_rescaled_lasso_member_stands_for_artemis_diagonal_where_validation_prefers_it():
    rows = _rows()
    for seed in (0, 1, 2):  # the rescaled member reaches 200 rotations within the budget, at lambda_d 2
        rows += _run("artemis-diagonal-rescaled", seed, [(1000, 90.0, 90.0), (200, 89.2, 89.2)], 2.0)
    results = model_results(rows)
    art = results["artemis-diagonal"]
    assert (art.method, art.lambdas) == ("artemis-diagonal-rescaled", (0.0, 2.0))
    assert art.rotations == {0: 200, 1: 200, 2: 200}
    assert [m.method for m in art.members] == ["artemis-diagonal-rescaled", "artemis-diagonal"]
    assert ratio(results, "hunter", "artemis-diagonal")["value"] == pytest.approx(3.0)
    md = "\n".join(experiments_section(rows))
    assert "artemis-diagonal's variants (validation decides; the first is `artemis-diagonal` above)" in md
    assert "| artemis-diagonal-rescaled | 0 / 2 | 3 of 3 | 200 |" in md
    assert "for artemis-diagonal its variant chosen on validation: artemis-diagonal-rescaled" in md


def test_the_report_reads_the_main_database_then_each_side_experiment(tmp_path):
    """By default: results/experiments.sqlite, then every folder whose database `results verdicts` published
    (its verdicts.md beside it); the demo's folder, a smoke run with no verdicts.md, stays out."""
    from bench.cli.report import default_databases

    for folder, files in {"b-side": ("experiments.sqlite", "verdicts.md"), "a-side": ("experiments.sqlite",
                          "verdicts.md"), "demo": ("experiments.sqlite", "demo.md")}.items():
        (tmp_path / folder).mkdir()
        for f in files:
            (tmp_path / folder / f).write_text("")
    assert default_databases(tmp_path) == [tmp_path / "experiments.sqlite", tmp_path / "a-side/experiments.sqlite",
                                           tmp_path / "b-side/experiments.sqlite"]


@pytest.mark.parametrize("agree", [True, False])
def test_a_variant_that_pruned_as_another_is_counted_once(agree):
    """hunter-rms-per-rot-all prunes as hunter-rms-per-rot-groups under one threshold: where their runs agree
    the family ran 4 variants, 3 distinct; where they do not (say, per-conv fractions), 4."""
    rows = _rows()
    for s in (0, 1, 2):
        rows += _run("hunter-rms-per-rot-groups", s, [(1000, 90.0, 90.0), (550, 89.1, 89.0)])
        rows += _run("hunter-rms-per-rot-all", s, [(1000, 90.0, 90.0), (550 if agree else 560, 89.1, 89.0)])
        rows += _run("diagonal-no-lasso", s, [(1000, 90.0, 90.0), (700, 89.2, 89.0)])
    r = ratio(model_results(rows), "hunter", "artemis-diagonal")
    assert (r["num_variants"], r["num_distinct"]) == (4, 3 if agree else 4)
    md = "\n".join(experiments_section(rows))
    assert ("| hunter-rms-per-rot-all (pruned as hunter-rms-per-rot-groups) | 0 / 0 |" in md) == agree
    assert "| hunter-rms-per-rot-groups | 0 / 0 |" in md
