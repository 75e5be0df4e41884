"""The seed paper's claims table: one row per database, model and ratio, each judged on its own
interval, with the candidates validation chose each side from, sides that pruned nothing named,
and repeated runs counted once."""

import json

from bench.report.experiments import experiments_summary, model_results
from bench.report.paper_claims import CLAIMS, PaperClaim, claim_rows, claims_lines, interval_text
from tests.bench.test_experiments_report import _rows, _run

PARETO = next(c.words for c in CLAIMS if "Pareto" in c.words)


def _groups(scale: float, seeds=(0, 1, 2)) -> list[dict]:
    """artemis-positional at `scale` times artemis-diagonal's 300 rotations on every seed, two lambda_p."""
    rows = _rows(jitter=0.1, seeds=seeds)
    for seed in seeds:
        for lam, r in ((0.3, 300 * scale * (1 + 0.05 * seed)), (0.7, 1000)):
            run = _run("artemis-positional", seed, [(1000, 90.0, 90.0), (r, 89.0, 89.0)])
            rows += [dict(x, lambda_p=lam, run_id=x["run_id"] + f"/lp{lam}") for x in run]
    return rows


def _table(experiments: dict) -> list[str]:
    return [c.markdown() for c in claim_rows(experiments)]


def test_each_database_gives_its_own_row_and_verdict():
    agree, against = experiments_summary(_groups(2.0)), experiments_summary(_groups(0.5))
    table = _table({"a.sqlite": agree, "b.sqlite": against})
    pareto = [r for r in table if "artemis-positional / artemis-diagonal" in r]
    assert len(pareto) == 2 and "`a.sqlite`" in pareto[0] and "`b.sqlite`" in pareto[1]
    assert "| holds (" in pareto[0] and "| does not hold (" in pareto[1]  # b: positional needs half
    hunter = [r for r in table if "hunter / artemis-diagonal" in r]
    assert len(hunter) == 2 and all("| holds" in r for r in hunter)  # hunter 1.8-2.2x artemis' rotations
    # b repeats a's hunter and artemis-diagonal runs on every seed: one reading of that claim, the other named
    assert "seeds 0, 1, 2 the same runs as in `a.sqlite`" in hunter[1]
    text = "\n".join(claims_lines({"experiments": {"a.sqlite": agree, "b.sqlite": against}}))
    # their Pareto readings differ in positional's runs but share artemis-diagonal's: correlated, not independent
    assert "seeds 0, 1, 2 share one side's runs with `b.sqlite`" in pareto[0]
    assert (f"{PARETO[0].upper()}{PARETO[1:]}: holds in 1, does not hold in 1 of 2 distinct readings, 2 of which "
            "share one side's runs with another counted here, so they are not independent") in text
    assert "holds in 1 of 1 independent reading; 1 more reading repeats runs counted here" in text


def test_a_reading_with_more_seeds_is_the_one_counted():
    few, many = experiments_summary(_rows(jitter=0.1)), experiments_summary(_rows(jitter=0.1, seeds=(0, 1, 2, 3)))
    rows = [(c.row.source, c.counts) for c in claim_rows({"few": few, "many": many})
            if c.row.ratio["num"] == "hunter"]
    assert rows == [("few", False), ("many", True)]


def test_candidates_count_lambda_settings_and_family_members():
    rows = _groups(2.0)
    for s in (0, 1, 2):  # a second Hunter variant at two settings: the family's candidates add up to 3
        for lam in (0.0, 1.0):
            run = _run("hunter-rms-all", s, [(1000, 90.0, 90.0), (700, 89.2, 89.0)])
            rows += [dict(x, lambda_d=lam, run_id=x["run_id"] + f"/{lam}") for x in run]
    results = model_results(rows)
    assert results["artemis-diagonal"].settings == 2 and results["artemis-positional"].settings == 2
    assert results["hunter"].settings == 3 and results["dense"].settings == 1
    assert "| 3 / 2 |" in next(r for r in _table({"a.sqlite": experiments_summary(rows)}) if "hunter" in r)


def test_verdicts_follow_the_intervals_at_their_edges():
    at_least, above = PaperClaim("x", (), 1.2, False, ""), PaperClaim("y", (), 1.0, True, "")
    assert at_least.verdict({"value": 1.5, "interval": (1.2, 1.9), "seeds": 5}) == "holds"  # exactly 1.2 holds
    assert at_least.verdict({"value": 1.3, "interval": (1.1, 1.5), "seeds": 5}) == "undecided"
    assert at_least.verdict({"value": 1.0, "interval": (0.9, 1.1), "seeds": 5}) == "does not hold"
    assert above.verdict({"value": 1.2, "interval": (1.0, 1.4), "seeds": 5}) == "undecided"  # 1 itself is not above
    assert above.verdict({"value": 0.9, "interval": (0.8, 1.0), "seeds": 5}) == "undecided"  # nor below
    assert above.verdict({"value": 1.2, "interval": (1.01, 1.4), "seeds": 5}) == "holds"
    assert above.verdict({"value": 1.2, "interval": (1.01, 1.4), "seeds": 2}) == "not judged"
    assert interval_text(1.0037, 1.1996) == "[1.004, 1.200]"  # a bound that would print as a threshold


def test_a_side_that_pruned_nothing_is_not_comparable():
    for accepted in (True, False):  # step 0 (unpruned) chosen, or no step within the budget at all
        rows = _groups(2.0)
        rows = [dict(r, accepted=int(accepted and r["step"] == 0), chosen=int(r["step"] == 0))
                if r["method"] == "artemis-positional" else r for r in rows]
        table = _table({"a.sqlite": experiments_summary(rows)})
        line = next(r for r in table if "artemis-positional /" in r)
        assert "| not comparable (artemis-positional pruned nothing within the budget on any seed) |" in line
        assert "pruned nothing" not in next(r for r in table if "hunter /" in r)


def test_a_lone_stand_in_cannot_win_for_its_family():
    rows = [dict(r, method="diagonal-no-lasso") if r["method"] == "hunter" else r for r in _rows(jitter=0.1)]
    line = next(r for r in _table({"a.sqlite": experiments_summary(rows)}) if r.startswith("| HE-aware training"))
    assert "hunter (diagonal-no-lasso, the best of 1 variant run) / artemis-diagonal" in line
    assert "| not judged (only one of hunter's variants ran" in line


def test_the_table_reads_the_same_from_memory_and_from_json():
    summary = experiments_summary(_groups(0.5))
    model = {"experiments": {"a.sqlite": summary},
             "per_n": {"8192": {"rotations_dominate": 3, "fitted_cases": 4, "cases": 5, "noise_floor": 0.05}}}
    assert claims_lines(model) == claims_lines(json.loads(json.dumps(model)))
    row = next(x for x in claims_lines(model) if x.startswith("| rotations dominate"))
    assert "3 of 4 cases (75%)" in row and "holds in most cases" in row and row.count("|") == 7
    assert claims_lines({}) == []


def test_the_pareto_ratios_of_one_database_share_artemis_diagonal():
    """positional / diagonal and both / diagonal of one database read the same artemis-diagonal runs: the two
    readings are named as sharing a side and not counted as independent."""
    rows = _groups(2.0)
    for seed in (0, 1, 2):
        rows += _run("artemis-both", seed, [(1000, 90.0, 90.0), (900 * (1 + 0.05 * seed), 89.0, 89.0)])
    summary = experiments_summary(rows)
    readings = [c for c in claim_rows({"a.sqlite": summary}) if c.row.claim == PARETO]
    assert [c.row.ratio["num"] for c in readings] == ["artemis-positional", "artemis-both"]
    assert [what for _, what, _ in readings[0].correlated] == ["`a.sqlite`'s artemis-both / artemis-diagonal"]
    assert readings[1].correlated[0][2] == ["0", "1", "2"]
    text = "\n".join(claims_lines({"experiments": {"a.sqlite": summary}}))
    assert "holds in 2 of 2 distinct readings, 2 of which share one side's runs" in text
    # the other claims' readings share nothing with another reading: still independent
    hunter = next(x for x in text.splitlines() if "below Hunter:" in x)
    assert "of 1 independent reading" in hunter
