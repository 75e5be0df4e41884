"""The seed paper's claims table: one row per database, model and ratio, each judged on its own
interval, with the candidates validation chose each side from."""

from bench.report.experiments import experiments_summary, model_results
from bench.report.paper_claims import CLAIMS, above_one, at_least, claim_rows, claims_lines
from tests.bench.test_experiments_report import _rows, _run


def _groups(scale: float) -> list[dict]:
    """artemis-positional at `scale` times artemis-diagonal's 300 rotations on every seed, two lambda_p."""
    rows = _rows(jitter=0.1)
    for seed in (0, 1, 2):
        for lam, r in ((0.3, 300 * scale * (1 + 0.05 * seed)), (0.7, 1000)):
            run = _run("artemis-positional", seed, [(1000, 90.0, 90.0), (r, 89.0, 89.0)])
            rows += [dict(x, lambda_p=lam, run_id=x["run_id"] + f"/lp{lam}") for x in run]
    return rows


def test_each_database_gives_its_own_row_and_verdict():
    agree, against = experiments_summary(_groups(2.0)), experiments_summary(_groups(0.5))
    rows, counts = claim_rows({"a.sqlite": agree, "b.sqlite": against})
    pareto = [r for r in rows if "artemis-positional / artemis-diagonal" in r]
    assert len(pareto) == 2 and "`a.sqlite`" in pareto[0] and "`b.sqlite`" in pareto[1]
    assert "| holds |" in pareto[0] and "| does not hold |" in pareto[1]  # b: positional needs half
    words = next(c.words for c in CLAIMS if 'Pareto' in c.words)
    assert counts[words]["holds"] == 1 and counts[words]["does not hold"] == 1
    hunter = [r for r in rows if "hunter / artemis-diagonal" in r]
    assert len(hunter) == 2 and all("| holds |" in r for r in hunter)  # hunter 1.8-2.2x artemis' rotations
    text = "\n".join(claims_lines({"experiments": {"a.sqlite": agree, "b.sqlite": against}}))
    assert "Diagonal pruning alone is Pareto-optimal: holds in 1, does not hold in 1 of 2 readings" in text


def test_candidates_count_lambda_settings_and_family_members():
    rows = _groups(2.0)
    for s in (0, 1, 2):  # a second Hunter variant: the family's candidates add up
        rows += _run("hunter-rms-all", s, [(1000, 90.0, 90.0), (700, 89.2, 89.0)])
    results = model_results(rows)
    assert results["artemis-diagonal"].settings == 2 and results["artemis-positional"].settings == 2
    assert results["hunter"].settings == 2 and results["dense"].settings == 1
    table = claim_rows({"a.sqlite": experiments_summary(rows)})[0]
    assert "| 2 / 2 |" in next(r for r in table if "hunter" in r)


def test_verdicts_follow_the_intervals():
    assert at_least({"value": 1.5, "interval": (1.2, 1.9), "seeds": 5}) == "holds"
    assert at_least({"value": 1.3, "interval": (1.1, 1.5), "seeds": 5}) == "undecided"
    assert at_least({"value": 1.0, "interval": (0.9, 1.1), "seeds": 5}) == "does not hold"
    assert above_one({"value": 1.2, "interval": (1.0, 1.4), "seeds": 5}) == "undecided"  # 1 itself is not above
    assert above_one({"value": 1.2, "interval": (1.01, 1.4), "seeds": 5}) == "holds"
    assert above_one({"value": 1.2, "interval": (1.01, 1.4), "seeds": 2}) == "not judged"


def test_the_report_opens_with_the_claims_and_the_dominance_rows():
    lines = claims_lines({"per_n": {"8192": {"rotations_dominate": 3, "fitted_cases": 4, "cases": 5}}})
    row = next(x for x in lines if x.startswith("| rotations dominate"))
    assert "3 of 4 cases (75%)" in row and "holds in most cases" in row and row.count("|") == 7
    assert claims_lines({}) == []


def test_a_side_that_pruned_nothing_is_named():
    rows = _groups(2.0)
    rows = [dict(r, accepted=0, chosen=int(r["step"] == 0)) if r["method"] == "artemis-positional" and r["step"] else r
            for r in rows]  # positional's pruned steps all rejected: its point is the unpruned step 0
    summary = experiments_summary(rows)
    line = next(r for r in claim_rows({"a.sqlite": summary})[0] if "artemis-positional /" in r)
    assert "(artemis-positional pruned nothing within the budget on any seed)" in line
    assert "pruned nothing" not in next(r for r in claim_rows({"a.sqlite": summary})[0] if "hunter /" in r)
