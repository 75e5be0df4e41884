"""The timing protocol (issue 19): passes merged per case by minimum, the canary flag, the
cross-validated cost model, and the plugin on pytest-benchmark's public ground (issue 24)."""

import json
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.cli.bench import run as bench_run
from bench.harness.canary import SLOW, flag_run, judge
from bench.harness.passes import merge_runs, retry_cases, shuffled, store_run
from bench.report import Case, default_benchmark_files
from bench.report.crossval import cross_validate, leave_one_out, noise_floor

ROOT = Path(__file__).resolve().parents[2]


def _entry(name, t, canary=0.05, **info):
    return {"name": name, "fullname": f"bench/test_layers.py::{name}", "stats": {"min": t, "median": t * 1.1,
                                                                                "mean": t * 1.2},
            "extra_info": {"canary_before_s": canary, "canary_after_s": canary, **info}}


def test_merged_run_takes_each_cases_minimum_across_passes():
    passes = [{"benchmarks": [_entry("a", 1.0), _entry("b", 2.0)], "datetime": "1"},
              {"benchmarks": [_entry("a", 0.9), _entry("b", 2.4)], "datetime": "2"},
              {"benchmarks": [_entry("b", 2.2), _entry("a", 1.3)], "datetime": "3"}]
    merged = merge_runs(passes, ["p1", "p2", "p3"])
    by = {b["name"]: b for b in merged["benchmarks"]}
    assert [b["name"] for b in merged["benchmarks"]] == ["a", "b"]
    assert by["a"]["stats"]["min"] == 0.9 and by["a"]["extra_info"]["pass_chosen"] == "p2"
    assert by["b"]["stats"]["min"] == 2.0 and by["b"]["extra_info"]["pass_chosen"] == "p1"
    assert by["a"]["extra_info"]["passes_s"] == [1.0, 0.9, 1.3]
    assert by["b"]["extra_info"]["passes_spread"] == pytest.approx((2.4 - 2.0) / (2.4 + 2.0))
    assert merged["datetime"] == "3" and merged["artemis"]["merged"]["passes"] == ["p1", "p2", "p3"]
    assert passes[0]["benchmarks"][0]["extra_info"].get("pass_chosen") is None  # the passes are left as they were
    # a whole model merges on its least server time per image, not on the round's wall time
    models = [{"benchmarks": [_entry("m", t, server_s=s + 0.1, server_min_s=s)]} for t, s in ((5.0, 2.0), (4.0, 2.5))]
    assert merge_runs(models)["benchmarks"][0]["extra_info"]["server_min_s"] == 2.0


def test_canary_flags_a_simulated_slow_case_and_the_merge_avoids_it():
    slow_canary = 0.05 * (1 + SLOW) * 1.2  # 26% above the median: the host was slower while it ran
    pass1 = {"benchmarks": [_entry("a", 0.8, canary=slow_canary), _entry("b", 2.0), _entry("c", 3.0)]}
    verdict = flag_run(pass1)
    assert verdict.reference_s == 0.05 and verdict.slow == (True, False, False)
    assert [b["extra_info"]["canary_slow"] for b in pass1["benchmarks"]] == [True, False, False]
    assert pass1["artemis"]["canary"]["slow_cases"] == 1
    pass2 = {"benchmarks": [_entry("a", 1.0), _entry("b", 2.1), _entry("c", 3.1)]}
    flag_run(pass2)
    a = merge_runs([pass1, pass2])["benchmarks"][0]
    # the faster, slow-host figure is not kept
    assert a["stats"]["min"] == 1.0 and a["extra_info"]["canary_slow"] is False
    # a case slow in every pass is retried; judged against the passes' median, a slightly slower retry pass is flagged
    pass2["benchmarks"][0]["extra_info"]["canary_slow"] = True
    assert retry_cases([pass1, pass2]) == ["bench/test_layers.py::a"]
    assert judge([0.0529, 0.0520], reference_s=0.05).slow == (True, False)


def _fake_pytest(storage_times, canaries):
    """A stand-in for the pytest process of one pass: writes the run `--artemis-pass` names into the storage."""
    calls = []

    def run(args):
        calls.append(args)
        opt = {k: args[i + 1] for i, k in enumerate(args) if k.startswith("--") and i + 1 < len(args)}
        name, stamp = opt["--artemis-pass"], opt["--artemis-run"]
        storage = Path(opt["--benchmark-storage"].removeprefix("file://"))
        wanted = [a.split("::")[-1] for a in args if "::" in a]
        times, canary = storage_times[name], canaries.get(name, {})
        data = {"benchmarks": [_entry(n, t, canary.get(n, 0.05)) for n, t in times.items()
                               if not wanted or n in wanted],
                "datetime": "2026-12-06T00:00:00+00:00",
                "artemis": {"selection": {"suite": "full" if not wanted else "filtered"},
                            "pass": {"name": name, "run": stamp}}}
        ref = opt.get("--artemis-canary-reference")
        flag_run(data, float(ref) if ref else None)
        store_run(storage, f"abc-full-{stamp}-{name}", json.dumps(data).encode())
        return 0

    return run, calls


def test_artemis_bench_runs_shuffled_passes_retries_slow_cases_and_stores_the_merge(tmp_path):
    import argparse

    times = {"pass1of2": {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}, "pass2of2": {"a": 1.1, "b": 1.9, "c": 3.3, "d": 4.4},
             "retry1": {"b": 1.95}}
    canaries = {"pass1of2": {"b": 0.08}, "pass2of2": {"b": 0.08}}  # b ran on a slow host in both passes
    runner, calls = _fake_pytest(times, canaries)
    args = argparse.Namespace(tests=[], passes=2, seed=11, retries=1, markexpr="quick", keyword=None, pruned=None,
                              storage=str(tmp_path), pause=False)
    result = bench_run(args, runner)
    assert [c[c.index("--artemis-shuffle") + 1] for c in calls] == ["11", "12", "13"]  # seed + pass index, recorded
    assert all("-m" in c and c[c.index("-m") + 1] == "quick" for c in calls)
    assert calls[2][-1] == "bench/test_layers.py::b" and "--artemis-canary-reference" in calls[2]
    merged = json.loads(Path(result["merged"]).read_text())
    by = {b["name"]: b for b in merged["benchmarks"]}
    assert {n: b["stats"]["min"] for n, b in by.items()} == {"a": 1.0, "b": 1.95, "c": 3.0, "d": 4.0}
    assert by["b"]["extra_info"]["pass_chosen"].endswith("-retry1.json") and not by["b"]["extra_info"]["canary_slow"]
    assert merged["artemis"]["merged"]["seed"] == 11 and len(result["passes"]) == 3
    assert Path(result["merged"]).name.startswith("0004_") and result["canary_slow_cases"] == []
    # the report reads the merged run by default, never a single pass
    assert default_benchmark_files(tmp_path) == [Path(result["merged"])]


def test_artemis_bench_option_errors_are_one_line(capsys):
    assert main(["bench", "--passes", "0"]) == 2
    assert "--passes: expected a positive integer" in capsys.readouterr().err


def test_leave_one_out_on_synthetic_cases_with_a_known_answer():
    rng = np.random.default_rng(0)
    units = {"key_switches": 1.2e-3, "pmuls": 1.3e-4, "rescales": 3.0e-4}
    cases = []
    for i in range(30):
        counts = {"key_switches": int(rng.integers(0, 500)), "pmuls": int(rng.integers(10, 9000)),
                  "rescales": int(rng.integers(1, 16))}
        t = sum(units[k] * v for k, v in counts.items())
        cases.append(Case(f"c{i}", "layer", 8192, t * (1.2 if i == 7 else 1.0), counts, {}))
    model = Case("m", "model", 8192, 10.0, {"key_switches": 4000, "pmuls": 30000, "rescales": 50}, {})
    model.latency = sum(units[k] * v for k, v in model.counts.items()) * 1.05  # 5% above the sum of its layers
    cv = cross_validate(8192, [*cases, model], {}).summary()
    # case 7 runs 20% slow: predicted from the 29 exact others it is the true cost, an error of 1 - 1/1.2
    assert cv["cv_worst_cases"][0]["case"] == "c7"
    assert cv["cv_worst_rel_err"] == pytest.approx(1 - 1 / 1.2, rel=1e-6)
    assert cv["n_cases"] == 30 and cv["terms"] == ["rotations", "pmul_add_pairs", "outputs"]
    assert cv["models"]["m"]["latency_s"] == model.latency  # validated, never fitted
    # without the slow case, leave-one-out recovers every case exactly and the fit the unit costs
    exact = cross_validate(8192, [c for c in cases if c.name != "c7"] + [model], {}).summary()
    assert exact["models_worst_rel_err"] == pytest.approx(1 - 1 / 1.05, rel=1e-6)
    assert exact["cv_worst_rel_err"] < 1e-9 and exact["cv_r2"] == pytest.approx(1.0)
    assert exact["unit_costs"]["rotations"] == pytest.approx(1.2e-3, rel=1e-6)
    assert exact["unit_costs"]["outputs"] == pytest.approx(3.0e-4, rel=1e-6)
    # a rotation-only model with an intercept, by hand: two known lines
    x = np.array([[r, 1.0] for r in (10, 20, 30, 40, 50)])
    assert np.allclose(leave_one_out(x, x @ [0.01, 0.5], lambda a, b: np.linalg.lstsq(a, b, rcond=None)[0]),
                       x @ [0.01, 0.5])


def test_noise_floor_is_the_worst_spread_of_identical_plans():
    same = {"key_switches": 10, "pmuls": 100, "rescales": 2}
    cs = [Case("or", "layer", 8192, 0.253, dict(same), {"requested_schedule": "output-rotation"}),
          Case("auto", "layer", 8192, 0.364, dict(same), {"requested_schedule": "auto"}),
          Case("other", "layer", 8192, 0.5, {**same, "pmuls": 101}, {})]
    floor, which = noise_floor(cs)
    assert floor == pytest.approx((0.364 - 0.253) / (0.364 + 0.253)) and which == ["auto", "or"]


def test_shuffled_order_is_seeded_and_keeps_blocks_together():
    items = [f"p{i}" for i in range(6)] + [f"l{i}" for i in range(20)]
    block = {f"p{i}": i // 3 for i in range(6)}.get  # two pools of three cases
    a, b = shuffled(items, 5, block), shuffled(items, 5, block)
    assert a == b and sorted(a) == sorted(items) and a != items and shuffled(items, 6, block) != a
    pos = {x: i for i, x in enumerate(a)}
    for k in (0, 1):
        members = sorted(pos[f"p{i}"] for i in range(6) if i // 3 == k)
        assert members[-1] - members[0] == 2  # adjacent


def test_plugin_patches_nothing_private():
    """pytest-benchmark through its public hooks and options only; plugin state in config.stash (issue 24)."""
    for path in ("bench/pytest_plugin.py", "bench/conftest.py"):
        text = (ROOT / path).read_text()
        for private in ("_benchmarksession", "storage.save", "_next_num", "config._", "pytestconfig._"):
            assert private not in text, (path, private)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"pytest-benchmark[histogram]>=5,<6"' in pyproject


def test_canary_workload_counts_and_times():
    from bench.harness.canary import PMULS, ROTATIONS, Canary

    c = Canary()
    c.backend.reset_counter()
    t = c()
    counts = c.backend.reset_counter()
    assert t > 0 and counts.rotations == ROTATIONS and counts.pmuls == PMULS and counts.adds == PMULS - 1


def test_plugin_stores_a_numbered_run_with_the_protocol_and_the_shuffle_seed(tmp_path):
    """A real pytest run through the plugin: pytest-benchmark writes --benchmark-json, the plugin numbers it."""
    import subprocess
    import sys

    test = tmp_path / "test_tiny.py"
    test.write_text("import pytest\n\n@pytest.mark.parametrize('i', range(3))\n"
                    "def test_tiny(benchmark, i):\n    benchmark(lambda: sum(range(100)))\n")
    storage = tmp_path / "storage"
    for _ in range(2):  # two runs: numbered one after the other, never overwriting
        out = subprocess.run([sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), str(test),
                              "--benchmark-only", "-p", "no:cacheprovider",
                              "-q", f"--benchmark-storage=file://{storage}", "--artemis-shuffle", "4",
                              "--benchmark-min-rounds=7", "--benchmark-max-time=0.001"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    runs = sorted(storage.glob("*/*.json"))
    assert [p.name[:5] for p in runs] == ["0001_", "0002_"] and "-filtered-" in runs[0].name
    assert not [p for p in storage.rglob("*") if p.name.startswith(".")]  # no temporary left behind
    data = json.loads(runs[0].read_text())
    assert data["artemis"]["selection"]["shuffle_seed"] == 4
    assert data["artemis"]["timing_protocol"] == {"rounds": 7, "warmup_rounds": 1, "model_images": 3,
                                                  "disable_gc": True}  # the command line's 7 wins
    opts = data["benchmarks"][0]["options"]
    assert opts["disable_gc"] is True and opts["min_rounds"] == 7 and opts["warmup"]


def test_report_states_the_cross_validated_fields_and_the_canary(tmp_path):
    from bench.report import write_report

    units = {"key_switches": 1.2e-3, "pmuls": 1.3e-4, "rescales": 3.0e-4}
    rng = np.random.default_rng(1)
    benchmarks = []
    for i in range(12):
        c = {"key_switches": int(rng.integers(1, 400)), "pmuls": int(rng.integers(10, 5000)),
             "rescales": int(rng.integers(1, 9))}
        c = {**c, "adds": c["pmuls"], "plain_adds": c["rescales"]}
        t = sum(units[k] * c.get(k, 0) for k in units)
        benchmarks.append(_entry(f"l{i}", t, canary=0.05 + 0.001 * i, suite="layer", poly_modulus_degree=8192,
                                 counts=c, passes_spread=0.01 * i, canary_slow=i == 11))
    twin = {**benchmarks[0], "name": "twin", "fullname": "twin", "stats": {"min": benchmarks[0]["stats"]["min"] * 1.1}}
    mc = {"key_switches": 900, "pmuls": 9000, "rescales": 20, "adds": 9000, "plain_adds": 20}
    ms = sum(units[k] * mc[k] for k in units)
    benchmarks += [twin, _entry("m", 9.0, suite="model", model="resnet20", poly_modulus_degree=8192, counts=mc,
                                server_s=ms * 1.1, server_min_s=ms * 1.02)]
    benchmarks += [{"name": f"p-{p}", "stats": {"median": u, "mean": u, "min": u},
                    "extra_info": {"primitive": p, "poly_modulus_degree": 8192, "level": 0}}
                   for p, u in (("rotation", 1.2e-3), ("pmul", 1e-4), ("add", 3e-5), ("rescale", 2.5e-4),
                                ("plain_add", 5e-5))]
    run = tmp_path / "merged.json"
    run.write_text(json.dumps({"benchmarks": benchmarks, "artemis": {"git_revision": "abc"}}))
    model = write_report([run], tmp_path / "out")
    p = model["per_n"]["8192"]
    assert p["n_cases"] == 13 and set(p["unit_costs"]) == {"rotations", "pmul_add_pairs", "outputs"}
    assert p["noise_floor"] == pytest.approx(0.1 / 2.1)
    assert p["models_worst_rel_err"] == pytest.approx(1 - 1 / 1.02, abs=0.01)
    # the twin runs 10% slow; l0-l5 and the twin agree
    assert p["cv_r2"] > 0.99 and p["cv_worst_rel_err"] < 0.15 and p["agreeing_cases"] == 7
    assert p["unit_costs_over_primitives"]["rotations"] == pytest.approx(1.0, rel=0.05)
    saved = json.loads((tmp_path / "out" / "cost_model.json").read_text())
    assert all(k in saved["per_n"]["8192"] for k in ("cv_r2", "cv_worst_rel_err", "noise_floor",
                                                     "models_worst_rel_err", "unit_costs", "n_cases"))
    md = (tmp_path / "out" / "report.md").read_text()
    assert "The canary (a fixed workload" in md and "1 case(s) were timed in every pass while" in md
    assert f"Noise floor (the worst (max - min) / (max + min) of the times of cases with identical plans): " \
           f"{p['noise_floor']:.1%}" in md
    assert f"| whole models predicted from the layer fit (not fitted) | 1 | - | {p['models_worst_rel_err']:.1%} |" in md
