"""The experiments database: concurrent writers lose nothing; the export has the issue's columns."""

import multiprocessing as mp

import pytest

from bench.experiments.store import EXPORT_COLUMNS, VIEWS_VERSION, ExperimentStore


def _writer(path: str, worker: int, runs: int) -> None:
    db = ExperimentStore(path)
    for i in range(runs):
        rid = f"prune/w{worker}/r{i}"
        db.start_run(rid, "prune", {"model": "m", "method": f"w{worker}", "seed": i, "lambda_d": 0.1})
        db.finish_run(rid, {"val_accuracy": 90.0 + i},
                      [{"step": s, "val_accuracy": 90.0 - s, "rotations": 100 - s, "chosen": s == 1} for s in range(3)])


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "e.sqlite")
    ExperimentStore(path)
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    db = ExperimentStore(path)
    assert len(db.runs(kind="prune", status="done")) == 60
    rows = db.export_rows()
    assert len(rows) == 180 and sum(r["chosen"] for r in rows) == 60


def test_export_columns_and_summary_view(tmp_path):
    db = ExperimentStore(tmp_path / "e.sqlite")
    db.start_run("prune/a", "prune", {"model": "resnet20", "dataset": "fashion-mnist", "input_size": 16,
                                      "poly_modulus_degree": 8192, "schedule": "output-rotation",
                                      "method": "artemis-diagonal", "lambda_p": 0.0, "lambda_d": 0.05, "seed": 2,
                                      "provenance": {"git_revision": "abc"}})
    db.finish_run("prune/a", {"n_val": 2000, "n_test": 4000},
                  [{"step": 0, "threshold": None, "val_accuracy": 91.0, "test_accuracy": 90.5, "rotations": 700,
                    "pmuls": 9000, "accepted": True, "chosen": False},
                   {"step": 1, "threshold": 0.01, "val_accuracy": 90.5, "test_accuracy": 90.1, "rotations": 500,
                    "pmuls": 7000, "accepted": True, "chosen": True}])
    required = ("model", "dataset", "input_size", "poly_modulus_degree", "schedule", "method", "lambda_p", "lambda_d",
                "seed", "step", "threshold", "val_accuracy", "test_accuracy", "n_val", "n_test", "rotations", "pmuls",
                "chosen")
    assert set(required) <= set(EXPORT_COLUMNS)
    rows = db.export_rows()
    assert [r["step"] for r in rows] == [0, 1] and rows[1]["chosen"] == 1 and rows[1]["n_test"] == 4000
    assert rows[0]["git_revision"] == "abc"
    summary = db.export_rows("pruning_summary")
    assert summary[1]["accuracy"] == 90.5 and summary[1]["seed"] == 2


def test_unfinished_and_failed_runs_are_not_exported(tmp_path):
    db = ExperimentStore(tmp_path / "e.sqlite")
    db.start_run("prune/a", "prune", {"method": "dense"})
    db.start_run("prune/b", "prune", {"method": "dense"})
    db.fail_run("prune/b", "ValueError: boom")
    assert db.export_rows() == [] and db.status("prune/a") == "running"
    assert db.run("prune/b")["error"] == "ValueError: boom"
    with pytest.raises(ValueError, match="no run"):
        db.finish_run("prune/none", {})
    with pytest.raises(ValueError, match="folder"):
        ExperimentStore(tmp_path)


def test_reading_an_up_to_date_database_writes_nothing(tmp_path):
    import hashlib

    path = tmp_path / "e.sqlite"
    db = ExperimentStore(path)
    db.start_run("prune/a", "prune", {"method": "dense"})
    db.finish_run("prune/a", {}, [{"step": 0, "chosen": True}])
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(ExperimentStore(path).export_rows()) == 1
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_database_of_older_views_gains_the_encrypted_readings_columns(tmp_path):
    """A database written before a reading existed (user_version 4: no encrypted_algorithms_server_s) reads
    with every column: read-only through temporary views, and a writer makes the views again."""
    import sqlite3

    path = tmp_path / "e.sqlite"
    db = ExperimentStore(path)
    db.start_run("prune/a", "prune", {"method": "dense"})
    db.finish_run("prune/a", {}, [{"step": 0, "chosen": True}])
    db.set_fields("prune/a", {"encrypted": {"server_s": 2.0, "bytes_client_to_server": 300,
                                            "bytes_server_to_client": 200, "auto": {"server_s": 1.5},
                                            "algorithms": {"server_s": 1.0, "bytes_client_to_server": 7}}})
    with sqlite3.connect(path) as con:  # the views as an older version made them
        con.executescript("DROP VIEW pruning_summary; DROP VIEW experiments; "
                          "CREATE VIEW experiments AS SELECT r.run_id FROM runs r; "
                          "CREATE VIEW pruning_summary AS SELECT run_id FROM experiments; "
                          f"PRAGMA user_version = {VIEWS_VERSION - 1};")
    row = ExperimentStore(path, readonly=True).export_rows()[0]
    assert (row["encrypted_server_s"], row["encrypted_auto_server_s"], row["encrypted_algorithms_server_s"]) == (
        2.0, 1.5, 1.0)
    # bytes both ways together; a reading that recorded one way only has none (not half a figure)
    assert (row["encrypted_bytes"], row["encrypted_auto_bytes"], row["encrypted_algorithms_bytes"]) == (
        500, None, None)
    ExperimentStore(path)
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == VIEWS_VERSION
        columns = {r[1] for r in con.execute("PRAGMA table_info(experiments)")}
        assert {"encrypted_algorithms_server_s", "encrypted_coefficient_server_s", "encrypted_coefficient_bytes"} \
            <= columns
