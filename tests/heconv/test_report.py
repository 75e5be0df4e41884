import json

import numpy as np
import pytest

from heconv.report import fit_full, fit_rotation_only, load_benchmarks, write_report

UNITS = {"key_switches": 2.5e-3, "pmuls": 2.3e-4, "adds": 5.4e-5, "plain_adds": 2.0e-5, "rescales": 7.0e-4}
PRIM = {"key_switches": "rotation", "pmuls": "pmul", "adds": "add", "plain_adds": "plain_add", "rescales": "rescale"}


def _fixture(tmp_path, n_cases=40, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    benchmarks = []
    for i in range(n_cases):
        counts = {k: int(rng.integers(1, 5000)) for k in UNITS}
        latency = sum(counts[k] * UNITS[k] for k in UNITS) * (1 + noise * rng.normal())
        benchmarks.append({"name": f"case{i}", "stats": {"mean": latency, "median": latency},
                           "extra_info": {"poly_modulus_degree": 8192, "counts": counts}})
    for k, u in UNITS.items():
        benchmarks.append({"name": f"prim-{k}", "stats": {"mean": u, "median": u},
                           "extra_info": {"primitive": PRIM[k], "poly_modulus_degree": 8192, "level": 0}})
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"benchmarks": benchmarks, "artemis": {"git_revision": "abc"}}))
    return path


def test_full_fit_recovers_unit_costs(tmp_path):
    cases, units, _ = load_benchmarks([_fixture(tmp_path)])
    fit = fit_full(cases)
    for k, u in UNITS.items():
        assert fit.coef[k] == pytest.approx(u, rel=0.01)
    assert fit.r2 > 0.9999 and fit.max_rel_err < 1e-6
    assert units[(8192, 0, "rotation")] == UNITS["key_switches"]


def test_rotation_only_fit_is_worse_when_multiplications_matter(tmp_path):
    cases, _, _ = load_benchmarks([_fixture(tmp_path)])
    assert fit_rotation_only(cases).r2 < fit_full(cases).r2


def test_write_report(tmp_path):
    model = write_report([_fixture(tmp_path)], tmp_path / "out")
    for f in ("report.md", "report.csv", "cost_model.json", "latency_fits_N8192.png"):
        assert (tmp_path / "out" / f).is_file()
    saved = json.loads((tmp_path / "out" / "cost_model.json").read_text())
    assert saved["r2_full"] == pytest.approx(model["r2_full"]) and saved["r2_full"] > 0.9999
    assert saved["per_n"]["8192"]["overhead_factor"] == pytest.approx(1.0, rel=1e-6)
    assert len(saved["rotation_share"]) == 40
    assert "abc" in (tmp_path / "out" / "report.md").read_text()
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left


def test_malformed_and_empty(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        load_benchmarks([bad])
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"results": []}))
    with pytest.raises(ValueError, match="other.json: not a pytest-benchmark JSON file"):
        load_benchmarks([other])
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"benchmarks": []}))
    with pytest.raises(ValueError, match="no benchmark with counts or primitives"):
        load_benchmarks([empty])
    with pytest.raises(ValueError, match="no benchmark JSON given"):
        load_benchmarks([])
    with pytest.raises(ValueError, match="missing.json: file not found"):
        load_benchmarks([tmp_path / "missing.json"])
