import csv
import json

from bench.cli import main
from bench.results import CSV_COLUMNS
from heconv.frontend import lower_model
from heconv.network import plan_network
from heconv.params import params_for_input
from models.checkpoint import find_checkpoints, load_checkpoint_model


def test_demo_smallest_settings(tmp_path, capsys):
    """The whole pipeline end to end, cleartext backend, tiny data: a smoke test, not a result."""
    bench = tmp_path / "bench.json"  # a tiny benchmark run for the report's fits
    bench.write_text(json.dumps({"benchmarks": [
        {"name": f"case{r}", "stats": {"mean": 2e-3 * r + 1e-4 * 9 * r, "median": 2e-3 * r + 1e-4 * 9 * r},
         "extra_info": {"suite": "layer", "poly_modulus_degree": 8192, "counts": {"key_switches": r, "pmuls": 9 * r}}}
        for r in (10, 40, 90, 160)] + [
        {"name": f"prim-{p}", "stats": {"mean": t, "median": t},
         "extra_info": {"primitive": p, "poly_modulus_degree": 8192, "level": 0}}
        for p, t in (("rotation", 2e-3), ("pmul", 1e-4), ("add", 3e-5), ("plain_add", 1e-5), ("rescale", 3e-4))]}))
    code = main(["demo", "--dataset", "digits", "--input-size", "8", "--subset", "200", "--epochs", "1",
                 "--images", "1", "--mode", "plain", "--out", str(tmp_path), "--bench-json", str(bench)])
    assert code == 0
    out = capsys.readouterr().out
    assert "| dense |" in out and "| artemis-diagonal |" in out and "| hunter |" in out
    result = json.loads((tmp_path / "demo.json").read_text())
    rows = {r["method"]: r for r in result["rows"]}
    assert set(rows) == {"dense", "artemis-diagonal", "hunter"}
    for r in rows.values():
        assert r["rotations"] == r["predicted_rotations"] and r["top1_agreement"] == 1.0
    assert rows["hunter"]["pmuls"] <= rows["dense"]["pmuls"]
    assert (tmp_path / "demo.md").read_text().startswith("# Demo: resnet20 on digits 8x8")

    # The checkpoints the benchmarks pick up and the rows the report's Pareto plot reads.
    found = find_checkpoints([tmp_path])
    assert set(found) == {("resnet20", m) for m in ("dense", "artemis-diagonal", "hunter")}
    for (_, method), path in found.items():
        model, meta = load_checkpoint_model(path)
        assert meta["method"] == method and meta["test_accuracy"] == rows[method]["test_accuracy"]
        plan = plan_network(lower_model(model, (1, 8, 8)), params_for_input(8, 8))
        assert plan.predicted.rotations == rows[method]["predicted_rotations"]
    with open(tmp_path / "pruning_summary.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == CSV_COLUMNS
        methods = {r["method"] for r in reader}
    assert methods == {"dense", "artemis-diagonal", "hunter"}
    # ... and the report beside it: the benchmark fits and the demo's own Pareto points
    assert f"report: {tmp_path / 'report.md'}" in out
    report = (tmp_path / "report.md").read_text()
    assert "resnet20" in report and (tmp_path / "pareto.png").is_file()

    # 'artemis results checkpoints' exports the same chosen models from the database
    import torch

    from models.checkpoint import read_checkpoint

    db = str(tmp_path / "experiments.sqlite")
    assert main(["results", "checkpoints", "--db", db, "--model", "resnet20", "--out", str(tmp_path / "ck")]) == 0
    exported = find_checkpoints([tmp_path / "ck"])
    assert set(exported) == set(found)
    for key, path in exported.items():
        (state, meta), (demo_state, demo_meta) = read_checkpoint(path), read_checkpoint(found[key])
        assert all(torch.equal(state[k], demo_state[k]) for k in demo_state)
        assert {k: meta[k] for k in demo_meta if k != "git_revision"} == {k: demo_meta[k] for k in demo_meta
                                                                          if k != "git_revision"}
    capsys.readouterr()
    assert main(["results", "checkpoints", "--db", db, "--model", "resnet20", "--methods", "unstructured",
                 "--out", str(tmp_path / "ck2")]) == 2
    assert "no finished resnet20 runs of ['unstructured']" in capsys.readouterr().err
    assert not (tmp_path / "ck2").exists()
