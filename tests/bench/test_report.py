import csv
import json
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.report import (
    CSV_COLUMNS,
    Case,
    default_benchmark_files,
    fit_full,
    fit_rotation_only,
    load_benchmarks,
    method_ratios,
    read_readme_block,
    render_readme_block,
    update_readme,
    write_report,
)
from bench.report.text import fmt
from bench.report.verdict import _meets_bar

UNITS = {"key_switches": 2.5e-3, "pmuls": 2.3e-4, "adds": 5.4e-5, "plain_adds": 2.0e-5, "rescales": 7.0e-4}
PRIM = {"key_switches": "rotation", "pmuls": "pmul", "adds": "add", "plain_adds": "plain_add", "rescales": "rescale"}


def _fixture(tmp_path, n_cases=40, seed=0, noise=0.0):
    """Layer cases whose counts have the engine's structure: an add per pmul, a plain add per rescale."""
    rng = np.random.default_rng(seed)
    benchmarks = []
    for i in range(n_cases):
        rot, pmuls, outputs = (int(rng.integers(1, 5000)) for _ in range(3))
        counts = {"key_switches": rot, "pmuls": pmuls, "adds": pmuls, "plain_adds": outputs, "rescales": outputs}
        latency = sum(counts[k] * UNITS[k] for k in UNITS) * (1 + noise * rng.normal())
        benchmarks.append({"name": f"case{i}", "stats": {"mean": latency, "median": latency},
                           "extra_info": {"poly_modulus_degree": 8192, "counts": counts}})
    for k, u in UNITS.items():
        benchmarks.append({"name": f"prim-{k}", "stats": {"mean": u, "median": u},
                           "extra_info": {"primitive": PRIM[k], "poly_modulus_degree": 8192, "level": 0}})
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"benchmarks": benchmarks, "artemis": {"git_revision": "abc"}}))
    return path


TERM_UNITS = {"rotations": UNITS["key_switches"], "pmul_add_pairs": UNITS["pmuls"] + UNITS["adds"],
              "outputs": UNITS["rescales"] + UNITS["plain_adds"]}


def test_full_fit_recovers_unit_costs(tmp_path):
    cases, units, _ = load_benchmarks([_fixture(tmp_path)])
    fit = fit_full(cases)
    assert set(fit.coef) == set(TERM_UNITS)  # no separately fitted adds, plain adds or rescales
    for k, u in TERM_UNITS.items():
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


def _primitives(ns):
    return [{"name": f"prim-{PRIM[k]}-N{n}", "stats": {"mean": u, "median": u},
             "extra_info": {"primitive": PRIM[k], "poly_modulus_degree": n, "level": 0}}
            for n in ns for k, u in UNITS.items()]


def _write(tmp_path, benchmarks, name="bench.json", revision="abc", primitives=True, selection=None, **top):
    """A run; with the primitives suite at every N of its cases (the report needs it) unless primitives=False."""
    if primitives:
        ns = sorted({b["extra_info"]["poly_modulus_degree"] for b in benchmarks}) or [8192]
        benchmarks = [*benchmarks, *_primitives(ns)]
    artemis = {"git_revision": revision, **({"selection": selection} if selection else {})}
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmarks": benchmarks, "artemis": artemis, **top}))
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
    sources = {k: v.pop("source") for k, v in model["method_ratios"]["resnet20"].items()}
    assert sources["hunter/artemis-diagonal"]["hunter"].endswith("(database not recorded)")  # no database recorded
    assert model["method_ratios"] == {"resnet20": {
        "hunter/artemis-diagonal": {"rotations": 2.5, "latency": 2.5,
                                    "accuracy": {"hunter": acc, "artemis-diagonal": acc}},
        "dense/artemis-diagonal": {"rotations": 4.0, "latency": 4.0,
                                   "accuracy": {"dense": {**acc, "test_accuracy": 86.0}, "artemis-diagonal": acc}},
    }}  # resnet18 has no artemis-diagonal case, so no ratio
    saved = json.loads((tmp_path / "out" / "cost_model.json").read_text())
    assert {k: {**v, "source": sources[k]} for k, v in model["method_ratios"]["resnet20"].items()} \
        == saved["method_ratios"]["resnet20"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| resnet20 | hunter/artemis-diagonal | 2.50x | 2.50x |" in md
    # each checkpoint row names where its model came from (this fixture's record no database)
    assert "| test 84.00%, val 85.50% (fashion-mnist) | seed not recorded, made at revision not recorded" in md
    assert "| resnet20 | layers.0.0.conv1 | artemis-diagonal | 8192 | 40 | 0.5000 |" in md
    assert "| resnet20 | layers.0.0.conv1 | dense | 8192 | 92 | 1.0000 |" in md


def test_method_ratios_last_case_wins_and_needs_checkpoints():
    def case(method, rot, t, weights="checkpoint"):
        return Case(method, "model", 8192, t, {"key_switches": rot},
                    {"model": "resnet18", "method": method, "weights": weights})

    assert method_ratios([case("hunter", 10, 1.0), case("artemis-diagonal", 5, 1.0, weights="synthetic")]) == {}
    r = method_ratios([case("hunter", 10, 1.0), case("artemis-diagonal", 5, 1.0), case("hunter", 20, 3.0)])
    got = {k: (v["rotations"], v["latency"]) for k, v in r["resnet18"].items()}
    assert got == {"hunter/artemis-diagonal": (4.0, 3.0)}


def test_a_checkpoint_case_names_its_database_seed_and_the_family_member_chosen():
    def case(method, rot, ckpt):
        return Case(method, "model", 8192, 1.0, {"key_switches": rot},
                    {"model": "resnet20", "method": method, "weights": "checkpoint", "checkpoint": ckpt})

    db = {"seed": 0, "database": "results/g/experiments.sqlite"}
    r = method_ratios([case("hunter", 10, {**db, "variant": "diagonal-no-lasso"}),
                       case("artemis-diagonal", 5, {**db, "variant": "artemis-diagonal"})])["resnet20"]
    entry = r["hunter/artemis-diagonal"]
    assert entry["members"] == {"hunter": "diagonal-no-lasso"}
    assert entry["source"] == {"hunter": "seed 0 of results/g/experiments.sqlite",
                               "artemis-diagonal": "seed 0 of results/g/experiments.sqlite"}
    block = render_readme_block({"method_ratios": {"resnet20": r}})
    assert ("| resnet20 | hunter (diagonal-no-lasso)/artemis-diagonal | 2.00x | 1.00x |  "
            "| seed 0 of results/g/experiments.sqlite |") in block


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
    assert "| 8192 | 8 |" in block and "rotations dominate" in block.lower()  # 8 layer cases fitted
    assert "Fitted unit costs at N = 8192: rotations " in block and "noise floor" in block
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


def test_readme_says_which_mask_the_fitted_mask_cost_prices():
    per_n = {"cases": 30, "n_cases": 30, "unit_costs": {"rotations": 1.2e-3, "masks_before": 2.19e-3}}
    old = render_readme_block({"per_n": {"8192": {**per_n, "mask_kinds": {"unrecorded": 26}}}})
    assert ("The masks' unit costs at N = 8192 are fitted per kind: `masks_before` on 26 from runs before the "
            "uniform mask") in old and "no layer case ran today's mask" in old
    both = {"rotations": 1.2e-3, "masks": 1.9e-3, "masks_before": 2.19e-3}
    new = render_readme_block({"per_n": {"8192": {**per_n, "unit_costs": both,
                                                  "mask_kinds": {"withheld": 20, "uniform": 2}}}})
    assert "`masks` on 20 layer cases with the unread coefficients withheld" in new
    assert "`masks_before` on 2 with the uniform mask" in new and "no layer case ran today's" not in new
    # a cost_model.json written before the kinds were recorded: nothing claimed either way
    assert "masks' unit cost" not in render_readme_block({"per_n": {"8192": per_n}})


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


def test_cli_report_readme_option(tmp_path, monkeypatch):
    """The README block is written only when --readme names the file (issue 9)."""
    bench = _suites(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(README)
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(bench), "--out", "out", "--pruning-csv", "none.csv"]) == 0
    assert readme.read_text() == README  # no --readme: the README is left alone
    assert main(["report", str(bench), "--out", "out", "--pruning-csv", "none.csv", "--readme", "README.md"]) == 0
    assert read_readme_block(readme) == render_readme_block(json.loads((tmp_path / "out" / "cost_model.json")
                                                                       .read_text()))
    other = tmp_path / "sub"
    other.mkdir()
    monkeypatch.chdir(other)
    assert main(["report", str(bench), "--out", "never", "--readme", "README.md"]) == 2  # file not found
    bare = tmp_path / "bare.md"
    bare.write_text("# nothing\n")
    assert main(["report", str(bench), "--out", "never", "--readme", str(bare)]) == 2
    assert not (other / "never").exists()  # the missing file or markers stopped it before anything was written


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
    # rotations dominate among the fitted cases: the empty one (share 0) is in neither count
    assert n["rotations_dominate"] == sum(k["dominate"] for k in n["rotation_share_by_kind"].values())
    assert f"| {n['rotations_dominate']} of 40 |" in render_readme_block(model)


# --- run selection, refusals, verdicts, CPU time (issue 9) ----------------------------------------------


def _run(path, suite=None, when=None, benchmarks=()):
    """A run file: `suite` in artemis.selection (None: not recorded), pytest-benchmark's top-level datetime."""
    data = {"benchmarks": list(benchmarks), "artemis": {"git_revision": "r"}}
    if suite:
        data["artemis"]["selection"] = {"suite": suite, "markexpr": "", "keyword": "", "args": [], "selected": 1}
    if when:
        data["datetime"] = when
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_default_run_is_the_newest_full_run_in_the_storage_layout(tmp_path):
    root = tmp_path / "benchmarks"
    linux, darwin = root / "Linux-CPython-3.11-64bit", root / "Darwin-CPython-3.12-64bit"
    _run(root / "bench-20260101T000000Z-aa-full.json", when="2026-01-01T00:00:00+00:00")  # legacy flat: by name
    _run(root / "bench-20261201T000000Z-bb-quick.json")  # newest of all, but quick (name), no datetime
    linux_full = _run(linux / "0002_cc-full-20260301T000000Z-1.json", "full", "2026-03-01T00:00:00+00:00")
    _run(linux / "0003_dd-full-20260501T000000Z-2.json", "filtered", "2026-05-01T00:00:00+00:00")  # selection wins
    _run(linux / "0004_ee-quick-20260701T000000Z-3.json", "quick", "2026-07-01T00:00:00+00:00")
    _run(linux / "0005_ff-x.json", None, "2026-08-01T00:00:00+00:00")  # suite not recorded: never by default
    (linux / "0006_broken.json").write_text("{not json")
    (root / "other.json").write_text(json.dumps({"results": []}))
    newest = _run(darwin / "0001_gg-full-20260401T000000Z-4.json", "full", "2026-04-01T00:00:00")  # naive = UTC
    assert default_benchmark_files(root) == [newest]  # by datetime, not by folder or number
    newest.unlink()
    assert default_benchmark_files(root) == [linux_full]
    _run(linux / "0001_ii-filtered-20260220T000000Z-5.json", None, "2026-02-20T00:00:00+00:00")
    moved = _run(linux / "0000_hh-full-20260215T000000Z.json", None, "2026-02-15T00:00:00+00:00")  # label in name
    linux_full.unlink()
    assert default_benchmark_files(root) == [moved]
    moved.unlink()
    assert [p.name for p in default_benchmark_files(root)] == ["bench-20260101T000000Z-aa-full.json"]
    (root / "bench-20260101T000000Z-aa-full.json").unlink()
    with pytest.raises(ValueError, match=r"no full benchmark run under .*benchmarks.*'pytest --benchmark-only'"):
        default_benchmark_files(root)
    with pytest.raises(ValueError, match="no full benchmark run under .*missing"):
        default_benchmark_files(tmp_path / "missing")


def test_refuses_runs_without_the_cases_it_needs(tmp_path):
    no_prim = _write(tmp_path, [_layer("l1", 50, 0.2), _layer("l2", 90, 0.4)], name="no-prim.json", primitives=False)
    with pytest.raises(ValueError, match=r"no-prim.json: no primitive cases .*needs the primitives suite"):
        write_report([no_prim], tmp_path / "out")
    only_prim = _write(tmp_path, [], name="only-prim.json")
    with pytest.raises(ValueError, match=r"only-prim.json: no layer or model cases with counts"):
        write_report([only_prim], tmp_path / "out")
    quick = _write(tmp_path, [_layer("l1", 50, 0.2)], name="0007_q-quick.json", primitives=False,
                   selection={"suite": "quick"})
    with pytest.raises(ValueError, match=r"0007_q-quick.json: no primitive cases"):
        write_report([quick], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was written
    # two runs together may hold what one alone lacks
    write_report([no_prim, only_prim], tmp_path / "both")
    assert (tmp_path / "both" / "report.md").is_file()


def test_filtered_run_named_explicitly_is_read_and_labelled(tmp_path):
    sel = {"suite": "filtered", "markexpr": "not slow", "keyword": "resnet20", "args": ["-k", "resnet20"],
           "selected": 13, "deselected": 200}
    run = _write(tmp_path, [_layer(f"l{r}", r, 0.004 * r + 0.01 * (r % 3)) for r in (20, 50, 90, 140)],
                 name="Linux/0009_ab-filtered.json", selection=sel, datetime="2026-11-24T02:46:42+00:00")
    model = write_report([run], tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    top = md.split("## Verdict")[0]
    assert "Run read:" in top and "0009_ab-filtered.json`: suite **filtered**, 13 selected, 200 deselected" in top
    assert "-k 'resnet20'" in top and "made 2026-11-24T02:46:42+00:00" in top and "a filtered run" in top
    assert model["sources"][0]["suite"] == "filtered" and model["sources"][0]["primitive_cases"] == 5


def _verdict(md):
    return md.split("## Verdict", 1)[1].split("\n## ", 1)[0]


def test_verdict_opens_the_report_with_the_fitted_numbers(tmp_path):
    big = _write(tmp_path, [_layer(f"big{r}", r, 0.004 * r + 0.01 * i, n=16384) for i, r in enumerate((50, 90, 200))],
                 name="big.json")
    csv_a = _pruning_csv(tmp_path / "a.csv", "resnet18", "fashion-mnist", 16, (5000, 4500, 2500))
    model = write_report([_suites(tmp_path), big], tmp_path / "out", pruning_csv=csv_a)
    md = (tmp_path / "out" / "report.md").read_text()
    assert md.index("Runs read:") < md.index("## Verdict") < md.index("## N = 8192")
    verdict = _verdict(md)
    for n, p in model["per_n"].items():  # judged out of sample: leave-one-out on the layer cases
        assert (f"rotation-only model R^2 {fmt(p['cv_r2_rotation_only'], '.4f')}, worst relative error "
                f"{fmt(p['cv_worst_rel_err_rotation_only'], '.1%')}") in verdict
        assert (f"cost model R^2 {fmt(p['cv_r2'], '.4f')}, worst relative error {fmt(p['cv_worst_rel_err'], '.1%')}"
                in verdict)
        assert (f"noise floor of {p['noise_floor']:.1%}" if p["noise_floor"] is not None
                else "no noise floor measurable") in verdict
        ok = _meets_bar(p["cv_r2_rotation_only"], p["cv_worst_rel_err_rotation_only"])
        assert (f"N = {n} ({p['n_cases']} layer cases, leave-one-out): "
                + ("yes, the rotation count alone" if ok else "no, not on its own")) in verdict
        assert f"in {p['rotations_dominate']} of {p['fitted_cases']} cases" in verdict
        for kind, k in p["rotation_share_by_kind"].items():
            assert f"{kind} ({k['dominate']} of {k['cases']}, rotation share" in verdict
    kinds = model["per_n"]["8192"]["rotation_share_by_kind"]
    assert set(kinds) == {"layer", "whole model"} and kinds["whole model"]["cases"] == 5
    assert sum(k["dominate"] for k in kinds.values()) == model["per_n"]["8192"]["rotations_dominate"]
    r = model["method_ratios"]["resnet20"]
    assert (f"resnet20 hunter {r['hunter/artemis-diagonal']['rotations']:.2f}x rotations, "
            f"{r['hunter/artemis-diagonal']['latency']:.2f}x server time") in verdict
    assert "fewer rotations than the baseline in 2 of 2 comparisons and less server time in 2 of 2" in verdict
    assert "resnet18/fashion-mnist/16 dense 2.00x; resnet18/fashion-mnist/16 hunter 1.80x" in verdict
    assert "recorded no CPU time" in verdict  # these runs predate cpu_s


def test_verdict_without_method_ratios_and_with_a_poor_rotation_fit(tmp_path):
    model = write_report([_fixture(tmp_path)], tmp_path / "out")
    verdict = _verdict((tmp_path / "out" / "report.md").read_text())
    p = model["per_n"]["8192"]
    assert p["r2_rotation_only"] < 0.95  # random counts: multiplications matter
    assert "N = 8192 (40 layer cases, leave-one-out): no, not on its own" in verdict and "meets the bar" in verdict
    assert p["cv_worst_rel_err"] < 1e-6 and p["cv_r2"] > 0.9999  # exact data: leave-one-out recovers every case
    assert "save over the baselines" not in verdict


def test_cpu_time_in_csv_and_report(tmp_path):
    run = _write(tmp_path, [
        _layer("busy", 50, 0.5, latency_s=0.5, cpu_s=0.25),
        _layer("calm", 90, 0.9, latency_s=0.9, cpu_s=0.85),
        _layer("old", 70, 0.7),  # a run before the harness recorded CPU time
        _model("m", 400, 2.0, model="resnet20", server_cpu_s=1.9),
    ])
    model = write_report([run], tmp_path / "out")
    with open(tmp_path / "out" / "report.csv", newline="") as f:
        by = {r["name"]: r for r in csv.DictReader(f)}
    assert float(by["busy"]["cpu_s"]) == 0.25 and by["old"]["cpu_s"] == "" and float(by["m"]["cpu_s"]) == 1.9
    assert float(by["busy"]["latency_s"]) == 0.5  # wall time is still what is fitted
    w = model["wall_over_cpu"]
    assert (w["cases"], w["of_cases"], w["max"], w["max_case"], w["busy_cases"]) == (3, 4, 2.0, "busy", 1)
    assert w["median"] == pytest.approx(0.9 / 0.85)
    md = (tmp_path / "out" / "report.md").read_text()
    assert (f"Wall time was {0.9 / 0.85:.2f}x the process CPU time at the median and 2.00x at worst (busy), "
            "over the 3 of 4 cases that recorded CPU time; 1 ran over 1.2x") in _verdict(md)
    assert "| busy | layer | 50 | 500 | 0.5000 | 0.2500 | 2.00 |" in md
