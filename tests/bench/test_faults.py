"""Fault injection, part one: damaged, foreign, truncated, empty and read-only databases, full
disks, and report and train inputs (tests/bench/test_faults_runs.py has memory, Ctrl-C,
sweeps and checkpoints). Each case ends with its exit code and one line on stderr, no
traceback, nothing left behind and no row lost.

The full disk and the read-only mount are real (a small tmpfs) where this process may mount
one (root, and a kernel that allows it); elsewhere they skip with the reason, and the
simulated ENOSPC case still runs.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.bench.faults import RUNS, _cli, _fails, _fill, _good_db, _listing, _mount_tmpfs, _rows, small_fs  # noqa: F401  (small_fs: a fixture)

# -- damaged and foreign databases ------------------------------------------------------------

def _random(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def _truncated(path: Path) -> None:
    _good_db(path)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def _foreign(path: Path) -> None:
    with closing(sqlite3.connect(path)) as con, con:
        con.execute("CREATE TABLE runs (id INTEGER, name TEXT)")
        con.execute("INSERT INTO runs VALUES (1, 'theirs')")


def _other_app(path: Path) -> None:
    with closing(sqlite3.connect(path)) as con, con:
        con.execute("PRAGMA application_id = 1234")
        con.execute("CREATE TABLE t (x)")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _no_steps(path: Path) -> None:
    _good_db(path)
    with closing(sqlite3.connect(path)) as con, con:
        con.execute("DROP VIEW IF EXISTS pruning_summary")
        con.execute("DROP VIEW IF EXISTS experiments")
        con.execute("DROP TABLE steps")


def _bad_json(path: Path) -> None:
    _good_db(path)
    with closing(sqlite3.connect(path)) as con, con:
        con.execute("UPDATE runs SET config = '{not json'")


DAMAGED = [
    ("random bytes", _random, "not an SQLite database"),
    ("truncated", _truncated, "truncated"),
    ("foreign runs table", _foreign, "its 'runs' table is not ours"),
    ("another program's", _other_app, "another program's SQLite database"),
    ("empty file", _empty, "an empty SQLite database"),
    ("steps table gone", _no_steps, "no 'steps' table"),
]
READERS = [["results", "status"], ["results", "export", "--out", "{d}/out"],
           ["results", "checkpoints", "--model", "small-cnn", "--out", "{d}/out"]]


@pytest.mark.parametrize("argv", [pytest.param(a, id=" ".join(a[:2])) for a in READERS])
@pytest.mark.parametrize("make, message", [pytest.param(m, msg, id=i) for i, m, msg in DAMAGED])
def test_damaged_database_is_one_line_and_left_as_it_was(tmp_path, capsys, make, message, argv):
    db = tmp_path / "e.sqlite"
    make(db)
    before, listing = db.read_bytes(), _listing(tmp_path)
    _fails(capsys, message, *[a.format(d=tmp_path) for a in argv], "--db", db)
    assert db.read_bytes() == before and _listing(tmp_path) == listing  # nothing created in it, nothing beside


@pytest.mark.parametrize("make, message", [pytest.param(m, msg, id=i) for i, m, msg in DAMAGED if i != "empty file"])
def test_writers_refuse_a_damaged_database_too(tmp_path, capsys, make, message):
    db = tmp_path / "e.sqlite"
    make(db)
    before = db.read_bytes()
    _fails(capsys, message, "sweep", "--models", "small-cnn", "--methods", "dense", "--seeds", "0", "--db", db,
           "--checkpoints", tmp_path / "ck")
    assert db.read_bytes() == before and not (tmp_path / "ck").exists()


def test_malformed_json_is_one_line(tmp_path, capsys):
    db = tmp_path / "e.sqlite"
    _bad_json(db)
    _fails(capsys, "its config is not valid JSON", "results", "status", "--db", db)
    assert _rows(db) == RUNS


def test_reading_a_good_database_changes_nothing(tmp_path, capsys):
    db = _good_db(tmp_path / "e.sqlite")
    before, listing = db.read_bytes(), _listing(tmp_path)
    code, _, out = _cli(capsys, "results", "status", "--db", db)
    assert code == 0 and f"prune: {RUNS} done" in out and db.read_bytes() == before
    assert _listing(tmp_path) == listing  # not even SQLite's -wal and -shm


def test_a_reader_beside_a_writer_sees_its_committed_rows(tmp_path):
    from bench.experiments.store import ExperimentStore

    db = _good_db(tmp_path / "e.sqlite")
    with closing(sqlite3.connect(db, isolation_level=None)) as writer:  # open: its rows sit in the -wal
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("INSERT INTO runs (run_id, kind, status) VALUES ('train/x', 'train', 'done')")
        assert (tmp_path / "e.sqlite-wal").exists()
        assert len(ExperimentStore(db, readonly=True).runs()) == RUNS + 1


def test_read_only_mount_reads_and_refuses_writes(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    _mount_tmpfs(folder, "4m")
    try:
        _good_db(folder / "e.sqlite")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        code, _, out = _cli(capsys, "results", "status", "--db", folder / "e.sqlite")
        assert code == 0 and f"prune: {RUNS} done" in out
        code, _, _ = _cli(capsys, "results", "export", "--db", folder / "e.sqlite", "--out", tmp_path / "out")
        assert code == 0 and (tmp_path / "out" / "experiments.csv").read_text().count("\n") == RUNS + 1
        _fails(capsys, "read-only", "results", "encrypt", "--db", folder / "e.sqlite")
        _fails(capsys, "read-only", "sweep", "--models", "small-cnn", "--methods", "dense", "--db",
               folder / "e.sqlite", "--checkpoints", tmp_path / "ck")
        assert _rows(folder / "e.sqlite") == RUNS
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


# -- a full disk ------------------------------------------------------------------------------

def test_export_onto_a_full_disk_leaves_nothing(tmp_path, capsys, small_fs):
    db = _good_db(tmp_path / "e.sqlite")
    _fill(small_fs)
    line = _fails(capsys, str(small_fs), "results", "export", "--db", db, "--out", small_fs)
    assert "free" in line or "ENOSPC" in line or "full" in line
    assert _listing(small_fs) == ["filler"] and _rows(db) == RUNS


def test_sweep_onto_a_full_disk_leaves_no_database(tmp_path, capsys, small_fs):
    _fill(small_fs)
    _fails(capsys, f"cannot write {small_fs / 'e.sqlite'}", "sweep", "--models", "small-cnn", "--methods", "dense",
           "--seeds", "0", "--db", small_fs / "e.sqlite", "--checkpoints", small_fs / "ck")
    assert _listing(small_fs) == ["filler"]


def test_simulated_enospc_is_one_line_and_leaves_no_temporary(tmp_path, capsys, monkeypatch):
    import bench.atomic

    real_open = open

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bench.atomic, "open", lambda p, mode="r": Full(real_open(p, mode)), raising=False)
    db = _good_db(tmp_path / "e.sqlite")
    out = tmp_path / "out"
    _fails(capsys, "no space left on device (ENOSPC)", "results", "export", "--db", db, "--out", out)
    assert [p.name for p in out.iterdir()] == [] and _rows(db) == RUNS


def test_a_killed_exports_temporary_is_removed_by_the_next_command(tmp_path, capsys):
    db = _good_db(tmp_path / "e.sqlite")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "out" / f".experiments.sqlite.artemis-{dead.stdout.strip()}-0badc0de.tmp"
    stale.parent.mkdir()
    stale.write_bytes(b"x" * 1000)
    (stale.parent / (stale.name + "-journal")).write_bytes(b"x")
    code, _, _ = _cli(capsys, "results", "export", "--db", db, "--out", tmp_path / "out")
    assert code == 0 and sorted(p.name for p in stale.parent.iterdir()) == [
        "experiments.csv", "experiments.sqlite", "pruning_summary.csv"]


# -- report and train ---------------------------------------------------------------------------

def _bench_json(path: Path, latency: float) -> Path:
    import json

    case = {"name": "case0", "stats": {"mean": latency, "median": latency},
            "extra_info": {"poly_modulus_degree": 8192, "counts": {"key_switches": 10, "pmuls": 100}}}
    path.write_text(json.dumps({"benchmarks": [case]}))
    return path


@pytest.mark.parametrize("make, message", [
    (lambda d: d.mkdir() or d, "a folder; expected pytest-benchmark JSON files"),
    (lambda d: _bench_json(d, float("nan")), "latency nan s; expected a finite time > 0"),
    (lambda d: _bench_json(d, -1.0), "latency -1.0 s; expected a finite time > 0"),
], ids=["empty folder", "NaN latency", "negative latency"])
def test_report_refuses_bad_inputs_before_writing(tmp_path, capsys, make, message):
    given = make(tmp_path / "in")
    _fails(capsys, message, "report", given, "--out", tmp_path / "out", "--no-db")
    assert not (tmp_path / "out").exists()


def test_report_refuses_a_database_that_is_not_there(tmp_path, capsys):
    given = _bench_json(tmp_path / "in", 1.0)
    _fails(capsys, "typo.sqlite: no such database file; nothing was written", "report", given, "--out",
           tmp_path / "out", "--db", tmp_path / "typo.sqlite")
    assert not (tmp_path / "out").exists()


def test_report_refuses_a_read_only_readme_before_writing(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    _mount_tmpfs(folder, "1m")
    try:
        (folder / "README.md").write_text("x\n<!-- results:begin -->\n<!-- results:end -->\n")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        _fails(capsys, "cannot be written", "report", _bench_json(tmp_path / "b.json", 1.0), "--out",
               tmp_path / "out", "--readme", folder / "README.md")
        assert not (tmp_path / "out").exists()
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_train_onto_a_full_disk_is_one_line_and_leaves_nothing(capsys, small_fs):
    _fill(small_fs)
    _fails(capsys, f"--out {small_fs / 'out'}: {small_fs}'s file system is full", "train", "--model", "small-cnn",
           "--dataset", "digits", "--input-size", "8", "--subset", "200", "--epochs", "1", "--out", small_fs / "out")
    assert _listing(small_fs) in (["filler"], ["filler", "out"])  # at most the empty folder it was to write into
