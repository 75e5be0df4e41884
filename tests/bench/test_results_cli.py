"""`artemis results export`: a snapshot and the CSV files, into a folder that need not exist yet."""

import csv
import sqlite3

from bench.cli import main
from bench.experiments.store import EXPORT_COLUMNS, ExperimentStore


def test_export_into_a_new_folder(tmp_path):
    db = ExperimentStore(tmp_path / "e.sqlite")
    db.start_run("prune/a", "prune", {"model": "resnet20", "dataset": "digits", "input_size": 8, "method": "dense",
                                      "seed": 0, "lambda_p": 0.0, "lambda_d": 0.0})
    db.finish_run("prune/a", {"val_accuracy": 90.0, "test_accuracy": 89.0},
                  [{"step": 0, "val_accuracy": 90.0, "test_accuracy": 89.0, "rotations": 10, "pmuls": 20, "chosen": 1}])
    assert db.claim(["prune/b"]) is None  # a live sweep's claim: the copy, which outlives it, holds none
    out = tmp_path / "new" / "results"
    assert main(["results", "export", "--db", str(tmp_path / "e.sqlite"), "--out", str(out)]) == 0
    assert [r["run_id"] for r in ExperimentStore(out / "experiments.sqlite").runs()] == ["prune/a"]
    claims = "SELECT count(*) FROM claims"
    assert sqlite3.connect(out / "experiments.sqlite").execute(claims).fetchone() == (0,)
    assert sqlite3.connect(tmp_path / "e.sqlite").execute(claims).fetchone() == (1,)
    with open(out / "experiments.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == list(EXPORT_COLUMNS)
        assert [int(r["rotations"]) for r in reader] == [10]
    assert not list(out.glob(".*.tmp"))


def _pruned(db, method, seed, rotations, lam=0.0):
    rid = f"prune/{method}/{lam}/s{seed}"
    db.start_run(rid, "prune", {"model": "resnet20", "dataset": "digits", "input_size": 8, "poly_modulus_degree": 8192,
                                "method": method, "seed": seed, "lambda_p": 0.0, "lambda_d": lam})
    db.finish_run(rid, {"val_accuracy": 90.0, "test_accuracy": 89.0},
                  [{"step": 0, "val_accuracy": 90.0, "test_accuracy": 89.0, "rotations": 100, "pmuls": 20,
                    "accepted": 1, "chosen": 0},
                   {"step": 1, "val_accuracy": 89.5, "test_accuracy": 88.0, "rotations": rotations, "pmuls": 10,
                    "accepted": 1, "chosen": 1}])


def test_verdicts_of_one_database_alone(tmp_path, capsys):
    """A side experiment's database gets the report's verdicts without any benchmark run."""
    db = ExperimentStore(tmp_path / "e.sqlite")
    for seed in (0, 1, 2):
        _pruned(db, "dense", seed, 100)
        _pruned(db, "diagonal-no-lasso", seed, 60 + seed)
        _pruned(db, "artemis-diagonal", seed, 50, lam=0.7)
        _pruned(db, "artemis-diagonal-rescaled", seed, 40, lam=0.7)
    out = tmp_path / "side"
    assert main(["results", "verdicts", "--db", str(tmp_path / "e.sqlite"), "--out", str(out)]) == 0
    md = (out / "verdicts.md").read_text()
    assert md.startswith("# Pruning verdicts of e.sqlite") and (out / "experiments_pareto.png").is_file()
    assert "| artemis-diagonal (artemis-diagonal-rescaled) | 0 / 0.7 | 3 of 3 | 40 (40, 40, 40) |" in md
    assert "| diagonal-no-lasso / artemis-diagonal | 1.52x [95% t" in md  # (60*61*62)^(1/3) / 40
    empty = ExperimentStore(tmp_path / "none.sqlite")
    assert empty.runs() == []
    assert main(["results", "verdicts", "--db", str(tmp_path / "none.sqlite"), "--out", str(out)]) == 2
    assert "holds no finished pruning run" in capsys.readouterr().err


def test_status_tells_killed_runs_from_running_ones(tmp_path, capsys):
    """A run recorded running that no live sweep holds was killed; one a live sweep claims is running."""
    db = ExperimentStore(tmp_path / "e.sqlite")
    for rid in ("prune/held", "prune/orphan"):
        db.start_run(rid, "prune", {"model": "resnet20", "method": "dense", "seed": 0})
    _pruned(db, "dense", 0, 100)
    assert db.claim(["prune/held"]) is None  # this process: a live sweep
    assert main(["results", "status", "--db", str(tmp_path / "e.sqlite")]) == 0
    assert "prune: 1 done, 1 killed, 1 running" in capsys.readouterr().out


def test_every_command_reads_the_database_the_sweep_writes_by_default():
    """`artemis sweep` and each `artemis results` action default to one working database (bench.cli.common)."""
    from bench.cli import build_parser
    from bench.cli.common import DEFAULT_DB

    parser = build_parser()
    base = {"export": [], "encrypt": [], "checkpoints": ["--model", "resnet20", "--out", "x"],
            "verdicts": ["--out", "x"], "status": []}
    for action, extra in base.items():
        assert parser.parse_args(["results", action, *extra]).db == str(DEFAULT_DB), action
    assert parser.parse_args(["sweep"]).db == str(DEFAULT_DB)
    assert DEFAULT_DB.parent.name == "runs"  # git-ignored: a sweep never writes the committed results/ unasked
