import csv
import json
import re

from bench.cli import main
from bench.results import CSV_COLUMNS
from heconv.frontend import lower_model
from heconv.network import plan_network
from heconv.params import params_for_input
from models.checkpoint import find_checkpoints, load_checkpoint_model


def test_demo_smallest_settings(tmp_path, capsys, monkeypatch, caplog):
    """The whole pipeline end to end, cleartext backend, tiny data: a smoke test, not a result."""
    code = main(["demo", "--dataset", "digits", "--input-size", "8", "--subset", "200", "--epochs", "1",
                 "--images", "1", "--mode", "plain", "--out", str(tmp_path)])
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
    # ... and the report beside it, from the demo's own database and encrypted run alone
    assert f"written: {tmp_path / 'demo.md'}, {tmp_path / 'report.md'}" in out
    assert (tmp_path / "pareto.png").is_file() and (tmp_path / "experiments_pareto.png").is_file()
    _demo_folder_agrees(tmp_path, result)
    assert result["sweeps_paused"] is False and "were not paused" in (tmp_path / "demo.md").read_text()

    # encrypted, the demo pauses this host's sweeps while it times the models (after its own sweep has run)
    import bench.demo as demo
    from bench.experiments.pause import pause_requested

    held = []

    def measure(cfg, run, *a):
        held.append(pause_requested())
        return next(r for r in result["rows"] if r["method"] == run["method"])

    monkeypatch.setattr(demo, "_measure", measure)
    again = demo.run_demo(demo.DemoConfig(dataset="digits", input_size=8, subset=200, epochs=1, images=1),
                          tmp_path / "again")
    assert held == [True, True, True] and not pause_requested()
    assert again["sweeps_paused"] is True
    assert "While they ran: sweeps paused" in (tmp_path / "again/demo.md").read_text()

    # a demo folder whose database outlived its checkpoints (a committed results/demo/) is refused, not half-reused
    import shutil

    shutil.rmtree(tmp_path / "again" / "checkpoints")
    before = (tmp_path / "again" / "demo.md").read_text()
    code = main(["demo", "--dataset", "digits", "--input-size", "8", "--subset", "200", "--epochs", "1",
                 "--images", "1", "--out", str(tmp_path / "again")])
    assert code == 2 and "checkpoints are not on this machine" in capsys.readouterr().err
    assert (tmp_path / "again" / "demo.md").read_text() == before

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
        assert meta["database"] == db  # the report names where a benchmarked checkpoint came from
        same = [k for k in demo_meta if k not in ("git_revision", "database")]
        assert {k: meta[k] for k in same} == {k: demo_meta[k] for k in same}
        assert demo_meta["database"].endswith("experiments.sqlite")
    capsys.readouterr()
    assert main(["results", "checkpoints", "--db", db, "--model", "resnet20", "--methods", "unstructured",
                 "--out", str(tmp_path / "ck2")]) == 2
    assert "no finished resnet20 runs of ['unstructured']" in capsys.readouterr().err
    assert not (tmp_path / "ck2").exists()

    # 'artemis results encrypt' measures the chosen models again, under their schedule and auto, with one
    # prepared plan alive at a time (a dense ResNet18's plaintexts take about 8 GiB)
    import gc
    import weakref

    import bench.harness.model as harness

    prepared, real_prepare = [], harness.prepare_model

    def prepare_one_at_a_time(*a, **k):
        gc.collect()
        assert all(ref() is None for ref in prepared), "a prepared model outlived its measurement"
        prep = real_prepare(*a, **k)
        prepared.append(weakref.ref(prep))
        return prep

    monkeypatch.setattr(harness, "prepare_model", prepare_one_at_a_time)
    assert main(["results", "encrypt", "--db", db, "--model", "resnet20", "--images", "1", "--mode", "plain",
                 "--redo", "--auto", "--algorithms", "--coefficient", "--no-pause"]) == 0
    assert len(prepared) == 12  # three models, four readings each
    from bench.experiments.store import ExperimentStore

    for run in ExperimentStore(db, readonly=True).runs(kind="prune", seed=0):
        e = run["encrypted"]
        assert e["rotations"] == e["predicted_rotations"] == rows[run["method"]]["rotations"]
        assert e["auto"]["rotations"] == e["auto"]["predicted_rotations"] <= e["rotations"]
        assert e["algorithms"]["rotations"] == e["algorithms"]["predicted_rotations"]
        assert e["algorithms"]["top1_agreement"] == e["coefficient"]["top1_agreement"] == 1.0
        assert e["coefficient"]["rotations"] < e["algorithms"]["rotations"]  # coefficient-encoded convs rotate little
    rows = {r["run_id"]: r for r in ExperimentStore(db, readonly=True).export_rows() if r["chosen"]}
    assert all(r["encrypted_algorithms_server_s"] > 0 and r["encrypted_coefficient_server_s"] > 0
               for r in rows.values())
    # every reading asked for is there: nothing is measured again without --redo
    prepared.clear()
    assert main(["results", "encrypt", "--db", db, "--model", "resnet20", "--mode", "plain", "--algorithms",
                 "--no-pause"]) == 0
    assert prepared == [] and "nothing to measure" in capsys.readouterr().out
    # measured again with one reading: the others go (one period's timings), and the user is told
    assert main(["results", "encrypt", "--db", db, "--model", "resnet20", "--mode", "plain", "--redo", "--auto",
                 "--no-pause"]) == 0
    assert len(prepared) == 6 and "its readings ['algorithms', 'coefficient'] are dropped" in caplog.text
    runs = ExperimentStore(db, readonly=True).runs(kind="prune", seed=0)
    assert all("auto" in r["encrypted"] and not {"algorithms", "coefficient"} & set(r["encrypted"]) for r in runs)


def _demo_folder_agrees(folder, result):
    """demo.md and report.md tell one story: every figure demo.md states is report.md's, and both are the
    demo's database's (issue 21)."""
    from bench.experiments.store import ExperimentStore

    demo, report = (folder / "demo.md").read_text(), (folder / "report.md").read_text()
    shared = [line for line in demo.splitlines() if line.startswith(("- **", "| ", "ratio = ", "- dense", "- hunter"))]
    assert len(shared) >= 12
    missing = [line for line in shared if line not in report.splitlines()]
    assert not missing, missing
    assert "results/benchmarks" not in report and "Run read" not in report and "0006" not in report
    # every figure of the table and the ratio lines is the database's or the encrypted run's
    store = ExperimentStore(folder / "experiments.sqlite")
    rows = {r["method"]: r for r in result["rows"]}
    chosen = {r["method"]: r for r in store.export_rows() if r["chosen"] and r["seed"] == 0}
    table = {line.split(" | ")[0][2:]: line.split(" | ") for line in demo.splitlines()
             if line.startswith("| ") and not line.startswith(("| method", "|---"))}
    for method, cells in table.items():
        run = store.run(chosen[method]["run_id"])
        assert cells[2] == f"{run['val_accuracy']:.2f}" == f"{chosen[method]['val_accuracy']:.2f}"
        assert cells[3] == f"{run['test_accuracy']:.2f}"
        predicted, counted = re.match(r"(\d+) / (\d+) \((\d+) \+ 0\)", cells[4]).groups()[:2]
        assert int(predicted) == int(counted) == chosen[method]["rotations"] == run["encrypted"]["rotations"]
        assert cells[6] == f"{run['encrypted']['server_s']:.2f}" == f"{rows[method]['server_s']:.2f}"
        assert chosen[method]["encrypted_server_s"] == run["encrypted"]["server_s"]
    for base in ("dense", "hunter"):
        line = next(x for x in demo.splitlines() if x.startswith(f"- {base} / artemis-diagonal: "))
        want = chosen[base]["rotations"] / chosen["artemis-diagonal"]["rotations"]
        assert f"{want:.2f}x rotations (seed 0: {want:.2f}x)" in line
        assert sum(x.startswith(f"- {base} / artemis-diagonal") for x in report.splitlines()) == 1  # stated once
    for name in ("pareto.png", "experiments_pareto.png"):
        assert f"]({name})" in report
