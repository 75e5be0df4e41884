"""`artemis results export`: a snapshot and the CSV files, into a folder that need not exist yet."""

import csv

from bench.cli import main
from bench.experiments.store import EXPORT_COLUMNS, ExperimentStore


def test_export_into_a_new_folder(tmp_path):
    db = ExperimentStore(tmp_path / "e.sqlite")
    db.start_run("prune/a", "prune", {"model": "resnet20", "dataset": "digits", "input_size": 8, "method": "dense",
                                      "seed": 0, "lambda_p": 0.0, "lambda_d": 0.0})
    db.finish_run("prune/a", {"val_accuracy": 90.0, "test_accuracy": 89.0},
                  [{"step": 0, "val_accuracy": 90.0, "test_accuracy": 89.0, "rotations": 10, "pmuls": 20, "chosen": 1}])
    out = tmp_path / "new" / "results"
    assert main(["results", "export", "--db", str(tmp_path / "e.sqlite"), "--out", str(out)]) == 0
    assert [r["run_id"] for r in ExperimentStore(out / "experiments.sqlite").runs()] == ["prune/a"]
    with open(out / "experiments.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == list(EXPORT_COLUMNS)
        assert [int(r["rotations"]) for r in reader] == [10]
    assert not list(out.glob(".*.tmp"))
