import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from heconv.cli import main
from heconv.report import (
    CSV_COLUMNS,
    Case,
    fit_full,
    fit_rotation_only,
    load_benchmarks,
    method_ratios,
    read_readme_block,
    render_readme_block,
    update_readme,
    write_report,
)

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


# --- fixtures with the suites' extra_info keys ---------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _counts(rot, pmuls=100, n=1):
    return {"rotations": rot, "key_switches": rot, "pmuls": pmuls, "adds": pmuls, "plain_adds": n, "rescales": n}


def _layer(name, rot, latency, n=8192, **info):
    return {"name": name, "stats": {"mean": latency, "median": latency},
            "extra_info": {"poly_modulus_degree": n, "counts": _counts(rot, 10 * rot), **info}}


def _model(name, rot, server_s, **info):
    return {"name": name, "stats": {"mean": server_s + 1.0, "median": server_s + 1.0},
            "extra_info": {"poly_modulus_degree": 8192, "counts": _counts(rot, 7 * rot), "server_s": server_s,
                           **info}}


def _write(tmp_path, benchmarks, name="bench.json", revision="abc"):
    path = tmp_path / name
    path.write_text(json.dumps({"benchmarks": benchmarks, "artemis": {"git_revision": revision}}))
    return path


def _suites(tmp_path):
    ckpt = {"suite": "model", "model": "resnet20", "weights": "checkpoint", "prune_diagonals": 0.0}
    acc = {"dataset": "fashion-mnist", "val_accuracy": 85.5, "test_accuracy": 84.0}
    return _write(tmp_path, [
        _layer("old-style-layer", 92, 0.9, layer="layer1.conv3x3"),  # no new keys: defaults apply
        _layer("ckpt-layer-dense", 92, 1.0, suite="layer", layer="layers.0.0.conv1", network="resnet20",
               weights="checkpoint", method="dense"),
        _layer("ckpt-layer-artemis", 40, 0.5, suite="layer", layer="layers.0.0.conv1", network="resnet20",
               weights="checkpoint", method="artemis-diagonal"),
        *[_layer(f"sweep-d{f}", r, t, suite="layer", layer="layer2.conv3x3", sweep="diagonals", prune_diagonals=f)
          for f, r, t in ((0.0, 142, 1.0), (0.5, 79, 0.5), (0.9, 28, 0.14))],
        *[_layer(f"sweep-p{f}", r, t, suite="layer", layer="layer2.conv3x3", sweep="positions", prune_positions=f)
          for f, r, t in ((0.0, 142, 1.0), (0.5, 120, 0.6))],
        _model("m-dense", 800, 4.0, **ckpt, method="dense", checkpoint={**acc, "test_accuracy": 86.0}),
        _model("m-hunter", 500, 2.5, **ckpt, method="hunter", checkpoint=acc),
        _model("m-artemis", 200, 1.0, **ckpt, method="artemis-diagonal", checkpoint=acc),
        _model("m-synthetic", 100, 0.3, model="resnet20", prune_diagonals=0.9),  # old style: synthetic
        _model("m18-hunter", 3000, 12.0, suite="model", model="resnet18", weights="checkpoint", method="hunter"),
    ])


def test_tidy_csv(tmp_path):
    write_report([_suites(tmp_path)], tmp_path / "out")
    with open(tmp_path / "out" / "report.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS
    assert [r["name"] for r in rows] == [
        "old-style-layer", "sweep-d0.0", "sweep-d0.5", "sweep-d0.9", "sweep-p0.0", "sweep-p0.5",
        "ckpt-layer-artemis", "ckpt-layer-dense", "m18-hunter", "m-artemis", "m-dense", "m-hunter", "m-synthetic"]
    by = {r["name"]: r for r in rows}
    assert {k: by["old-style-layer"][k] for k in ("suite", "network", "layer", "method", "weights", "sweep")} == {
        "suite": "layer", "network": "resnet18", "layer": "layer1.conv3x3", "method": "synthetic",
        "weights": "synthetic", "sweep": ""}
    assert {k: by["m-hunter"][k] for k in ("suite", "network", "layer", "method", "weights")} == {
        "suite": "model", "network": "resnet20", "layer": "", "method": "hunter", "weights": "checkpoint"}
    assert float(by["m-hunter"]["latency_s"]) == 2.5  # server_s, not the benchmark's mean
    assert float(by["sweep-p0.5"]["prune_positions"]) == 0.5 and by["sweep-p0.5"]["sweep"] == "positions"
    assert int(by["sweep-d0.5"]["key_switches"]) == 79 and int(by["sweep-d0.5"]["pmuls"]) == 790
    for r in rows:
        assert 0.0 <= float(r["rotation_share"]) <= 1.0
        assert float(r["predicted_full_s"]) > 0 and r["predicted_rotation_only_s"] != ""
    # the same input gives the same bytes
    first = (tmp_path / "out" / "report.csv").read_bytes()
    write_report([_suites(tmp_path)], tmp_path / "out")
    assert (tmp_path / "out" / "report.csv").read_bytes() == first


def test_method_ratios_exact(tmp_path):
    model = write_report([_suites(tmp_path)], tmp_path / "out")
    acc = {"dataset": "fashion-mnist", "val_accuracy": 85.5, "test_accuracy": 84.0}
    assert model["method_ratios"] == {"resnet20": {
        "hunter/artemis-diagonal": {"rotations": 2.5, "latency": 2.5,
                                    "accuracy": {"hunter": acc, "artemis-diagonal": acc}},
        "dense/artemis-diagonal": {"rotations": 4.0, "latency": 4.0,
                                   "accuracy": {"dense": {**acc, "test_accuracy": 86.0}, "artemis-diagonal": acc}},
    }}  # resnet18 has no artemis-diagonal case, so no ratio
    saved = json.loads((tmp_path / "out" / "cost_model.json").read_text())
    assert saved["method_ratios"] == model["method_ratios"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| resnet20 | hunter/artemis-diagonal | 2.50x | 2.50x |" in md
    assert "| resnet20 | layers.0.0.conv1 | artemis-diagonal | 8192 | 40 | 0.5000 |" in md
    assert "| resnet20 | layers.0.0.conv1 | dense | 8192 | 92 | 1.0000 |" in md


def test_method_ratios_last_case_wins_and_needs_checkpoints():
    def case(method, rot, t, weights="checkpoint"):
        return Case(method, "model", 8192, t, {"key_switches": rot},
                    {"model": "resnet18", "method": method, "weights": weights})

    assert method_ratios([case("hunter", 10, 1.0), case("artemis-diagonal", 5, 1.0, weights="synthetic")]) == {}
    r = method_ratios([case("hunter", 10, 1.0), case("artemis-diagonal", 5, 1.0), case("hunter", 20, 3.0)])
    assert r == {"resnet18": {"hunter/artemis-diagonal": {"rotations": 4.0, "latency": 3.0}}}


def test_sweeps(tmp_path):
    write_report([_suites(tmp_path)], tmp_path / "out")
    assert (tmp_path / "out" / "sweeps.png").stat().st_size > 1000
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| resnet18 | layer2.conv3x3 | 8192 | diagonals | 0.90 | 28 | 280 | 0.1400 |" in md
    assert "| resnet18 | layer2.conv3x3 | 8192 | positions | 0.50 | 120 | 1200 | 0.6000 |" in md
    # no sweep cases, no sweep plot
    write_report([_fixture(tmp_path)], tmp_path / "plain")
    assert not (tmp_path / "plain" / "sweeps.png").exists()
    assert "Sparsity sweeps" not in (tmp_path / "plain" / "report.md").read_text()


def test_second_n_gets_its_own_section(tmp_path):
    big = _write(tmp_path, [_layer(f"big{r}", r, 0.004 * r + 0.01 * i, n=16384) for i, r in enumerate((50, 90, 200))],
                 name="big.json")
    model = write_report([_fixture(tmp_path), big], tmp_path / "out")
    assert set(model["per_n"]) == {"8192", "16384"} and model["per_n"]["16384"]["cases"] == 3
    assert model["r2_full"] == model["per_n"]["8192"]["r2_full"]  # the headline stays N = 8192's
    assert (tmp_path / "out" / "latency_fits_N16384.png").is_file()
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## N = 8192 (40 cases)" in md and "## N = 16384 (3 cases)" in md
    only_big = write_report([big], tmp_path / "big")
    assert only_big["r2_rotation_only"] == only_big["per_n"]["16384"]["r2_rotation_only"]


def test_one_case_of_an_n_gives_strict_json(tmp_path):
    one = _write(tmp_path, [_layer("only", 50, 0.2, n=16384)])
    model = write_report([one], tmp_path / "out")
    assert model["per_n"]["16384"]["r2_full"] is None  # R^2 of one case is undefined: null, not NaN
    json.loads((tmp_path / "out" / "cost_model.json").read_text(), parse_constant=pytest.fail)


def _pruning_csv(path, model, dataset, size, rotations):
    header = "model,dataset,input_size,method,step,fraction,accuracy,accuracy_drop,rotations,pmuls,sparsity,accepted\n"
    lines = [f"{model},{dataset},{size},{m},{s},{f},{a},0.0,{r},1,{f},{ok}"
             for m, s, f, a, r, ok in (("dense", 0, 0.0, 85.0, rotations[0], True),
                                       ("hunter", 1, 0.3, 84.5, rotations[1], True),
                                       ("artemis-diagonal", 1, 0.5, 84.8, rotations[2], True),
                                       ("artemis-diagonal", 2, 0.7, 80.0, 1, False))]
    path.write_text(header + "\n".join(lines) + "\n")
    return path


def test_pareto_one_or_several_csvs(tmp_path):
    a = _pruning_csv(tmp_path / "a.csv", "resnet18", "fashion-mnist", 16, (5000, 4500, 2500))
    b = _pruning_csv(tmp_path / "b.csv", "resnet20", "cifar10", 32, (800, 600, 200))
    model = write_report([_fixture(tmp_path)], tmp_path / "one", pruning_csv=a)
    assert model["pruning_ratios"] == {"resnet18/fashion-mnist/16: dense / artemis-diagonal rotations": 2.0,
                                       "resnet18/fashion-mnist/16: hunter / artemis-diagonal rotations": 1.8}
    model = write_report([_fixture(tmp_path)], tmp_path / "two", pruning_csv=[a, str(b), tmp_path / "missing.csv"])
    assert model["pruning_ratios"]["resnet20/cifar10/32: dense / artemis-diagonal rotations"] == 4.0
    assert len(model["pruning_ratios"]) == 4
    assert (tmp_path / "two" / "pareto.png").is_file()
    bad = tmp_path / "bad.csv"
    bad.write_text("model,method\nresnet18,dense\n")
    with pytest.raises(ValueError, match=r"bad.csv: not a pruning summary, missing columns \['dataset'"):
        write_report([_fixture(tmp_path)], tmp_path / "bad", pruning_csv=bad)


def test_bad_extra_info(tmp_path):
    with pytest.raises(ValueError, match="x.json: c1: extra_info suite must be 'layer' or 'model', got 'primitive'"):
        load_benchmarks([_write(tmp_path, [_layer("c1", 5, 1.0, suite="primitive")], name="x.json")])
    with pytest.raises(ValueError, match="y.json: c2: extra_info sweep must be one of"):
        load_benchmarks([_write(tmp_path, [_layer("c2", 5, 1.0, sweep="channels")], name="y.json")])
    no_server = _model("m", 5, 1.0, model="resnet20")
    del no_server["extra_info"]["server_s"]
    with pytest.raises(ValueError, match="z.json: m: model case without extra_info server_s"):
        load_benchmarks([_write(tmp_path, [no_server], name="z.json")])


# --- the README block ------------------------------------------------------------------------------------

README = "# Title\n\nintro\n\n## Results\n\n<!-- results:begin -->\nold text\n<!-- results:end -->\n\n## Next\n"


def test_readme_round_trip(tmp_path):
    model = write_report([_suites(tmp_path)], tmp_path / "out", pruning_csv=_pruning_csv(
        tmp_path / "a.csv", "resnet18", "fashion-mnist", 16, (5000, 4500, 2500)))
    block = render_readme_block(model)
    assert block == render_readme_block(json.loads((tmp_path / "out" / "cost_model.json").read_text()))
    assert "| 8192 | 13 |" in block and "rotations dominate" in block.lower()
    assert "| resnet20 | hunter/artemis-diagonal | 2.50x | 2.50x |" in block
    assert "resnet18/fashion-mnist/16: dense / artemis-diagonal rotations: 2.00x" in block
    assert "`bench.json` (revision abc)" in block and "(results/report.md)" in block
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert update_readme(readme, block) is True
    assert read_readme_block(readme) == block
    text = readme.read_text()
    assert text.startswith("# Title\n\nintro\n\n## Results\n\n<!-- results:begin -->\n_Written by")
    assert text.endswith(block.splitlines()[-1] + "\n<!-- results:end -->\n\n## Next\n")
    assert update_readme(readme, block) is False  # unchanged: not rewritten
    update_readme(readme, "")
    assert readme.read_text() == README.replace("old text\n", "")


def test_readme_without_markers(tmp_path):
    readme = tmp_path / "NOTES.md"
    readme.write_text("# Title\n<!-- results:begin -->\n")
    with pytest.raises(ValueError, match=r"NOTES.md: needs one line '<!-- results:begin -->' and, after it, "
                                         r"one line '<!-- results:end -->' \(found 1 and 0\)"):
        update_readme(readme, "x")
    readme.write_text("<!-- results:end -->\n<!-- results:begin -->\n")
    with pytest.raises(ValueError, match="NOTES.md: needs one line"):
        read_readme_block(readme)
    with pytest.raises(ValueError, match="GONE.md: file not found"):
        update_readme(tmp_path / "GONE.md", "x")
    assert readme.read_text() == "<!-- results:end -->\n<!-- results:begin -->\n"


def test_repo_readme_block_is_the_rendered_cost_model():
    """The README's results can only come from `artemis report`: rerun it after new benchmarks."""
    cost_model = json.loads((ROOT / "results" / "cost_model.json").read_text())
    assert read_readme_block(ROOT / "README.md") == render_readme_block(cost_model)


def test_cli_report_readme_options(tmp_path, monkeypatch, caplog):
    bench = _suites(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(README)
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(bench), "--out", "out", "--pruning-csv", "none.csv", "--no-readme"]) == 0
    assert readme.read_text() == README
    assert main(["report", str(bench), "--out", "out", "--pruning-csv", "none.csv"]) == 0  # ./README.md by default
    assert read_readme_block(readme) == render_readme_block(json.loads((tmp_path / "out" / "cost_model.json")
                                                                       .read_text()))
    other = tmp_path / "sub"
    other.mkdir()
    monkeypatch.chdir(other)
    with caplog.at_level(logging.WARNING):
        assert main(["report", str(bench), "--out", "out", "--pruning-csv", "none.csv"]) == 0
    assert "README not updated: README.md: file not found" in caplog.text
    bare = tmp_path / "bare.md"
    bare.write_text("# nothing\n")
    assert main(["report", str(bench), "--out", "never", "--readme", str(bare)]) == 2
    assert not (other / "never").exists()  # the missing markers stopped it before anything was written


def test_cases_without_operations_are_listed_not_fitted(tmp_path):
    path = _fixture(tmp_path)
    data = json.loads(path.read_text())
    data["benchmarks"].append({"name": "all-pruned", "stats": {"mean": 3e-3, "median": 3e-3},
                               "extra_info": {"poly_modulus_degree": 8192, "counts": {k: 0 for k in UNITS}}})
    path.write_text(json.dumps(data))
    model = write_report([path], tmp_path / "out", None)
    n = model["per_n"]["8192"]
    assert n["cases"] == 41 and n["fitted_cases"] == 40 and n["cases_without_operations"] == ["all-pruned"]
    assert n["max_rel_err_full"] < 1e-6  # the empty case would be a 100% error
    assert "left out of the fits: all-pruned" in (tmp_path / "out" / "report.md").read_text()
