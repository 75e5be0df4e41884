"""The experiments database: SQLite (stdlib) in WAL mode, one file, safe for concurrent writers.

Two tables and a view:

- runs: one row per training or pruning run (a sweep cell), keyed by a readable run id that
  names the full configuration, with the configuration as JSON, the data source, the
  provenance (versions, git revision), the checkpoint's path and sha256, status
  ("running", "done", "failed") and the error of a failed run.
- steps: one row per (run, pruning step): threshold, validation and test accuracy,
  rotations, multiplications, sparsity, whether the step was accepted and chosen.
- pruning_summary: the old pruning_summary.csv's columns, as a view over both.
- claims: the cells a running sweep has taken (its pid and host, refreshed while it runs), so
  that two sweeps on one database never run a cell twice.

Every write is one short IMMEDIATE transaction, so writers in several processes queue on
the lock (busy timeout) instead of losing rows.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import time
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator

from heconv.errors import InputError

from ..atomic import check_space, process_alive, put_in_place, temporary, write_error
from .db import APPLICATION_ID, check_database, connect, db_errors, remove_database
from .readings import READINGS

RUN_COLUMNS = ("run_id", "kind", "parent", "model", "dataset", "input_size", "subset", "poly_modulus_degree",
               "schedule", "method", "lasso", "lambda_p", "lambda_d", "seed", "config", "data_source", "n_train",
               "n_val", "n_test", "reference_val_accuracy", "val_accuracy", "test_accuracy", "history",
               "provenance", "checkpoint", "checkpoint_sha256", "encrypted", "status", "error", "started",
               "finished", "wall_s")
STEP_COLUMNS = ("run_id", "step", "threshold", "fraction", "val_accuracy", "test_accuracy", "accuracy_drop",
                "rotations", "pmuls", "sparsity", "accepted", "chosen", "finetune_epochs")
EXPORT_COLUMNS = ("run_id", "model", "dataset", "input_size", "subset", "poly_modulus_degree", "schedule", "method",
                  "lambda_p", "lambda_d", "seed", "step", "threshold", "fraction", "val_accuracy", "test_accuracy",
                  "accuracy_drop", "n_val", "n_test", "rotations", "pmuls", "sparsity", "accepted", "chosen",
                  "finetune_epochs", "cut_off", *(c for r in READINGS for c in (r.column, r.bytes_column)),
                  "git_revision")
# the view's encrypted columns, two per reading: its server time, and its bytes both ways (NULL where not measured)
_READING = {r.column: f"json_extract(r.encrypted, '{r.path}')" for r in READINGS} | {
    r.bytes_column: " + ".join(f"json_extract(r.encrypted, '{p}')" for p in r.bytes_paths) for r in READINGS}
# What a database of an older schema already has (newer columns are added when a writer opens it).
REQUIRED_STEP_COLUMNS = tuple(c for c in STEP_COLUMNS if c != "finetune_epochs")
_TABLES = {"runs": RUN_COLUMNS, "steps": REQUIRED_STEP_COLUMNS}
JSON_COLUMNS = ("config", "history", "provenance", "encrypted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, parent TEXT, model TEXT, dataset TEXT, input_size INTEGER,
    subset INTEGER, poly_modulus_degree INTEGER, schedule TEXT, method TEXT, lasso TEXT, lambda_p REAL,
    lambda_d REAL, seed INTEGER, config TEXT, data_source TEXT, n_train INTEGER, n_val INTEGER, n_test INTEGER,
    reference_val_accuracy REAL, val_accuracy REAL, test_accuracy REAL, history TEXT, provenance TEXT,
    checkpoint TEXT, checkpoint_sha256 TEXT, encrypted TEXT, status TEXT NOT NULL, error TEXT, started REAL,
    finished REAL, wall_s REAL);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(run_id), step INTEGER NOT NULL, threshold REAL, fraction REAL,
    val_accuracy REAL, test_accuracy REAL, accuracy_drop REAL, rotations INTEGER, pmuls INTEGER, sparsity REAL,
    accepted INTEGER, chosen INTEGER, finetune_epochs REAL, PRIMARY KEY (run_id, step));
CREATE TABLE IF NOT EXISTS claims (run_id TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL,
    claimed REAL NOT NULL);
"""
# A claim whose sweep stopped refreshing it this long ago (or whose process is gone, on this
# host) is stale: another sweep may take the cell over.
CLAIM_STALE_S = 600.0
# The views are made again when the database's user_version is older than VIEWS_VERSION, so
# that a database written by an older version gets today's columns (and reading one writes
# nothing); one IMMEDIATE transaction keeps racing openers apart.
VIEWS_VERSION = 7
_VIEWS = f"""
BEGIN IMMEDIATE;
DROP VIEW IF EXISTS pruning_summary;
DROP VIEW IF EXISTS experiments;
CREATE VIEW experiments AS
    SELECT {", ".join("s.step" if c == "step" else "s." + c if c in STEP_COLUMNS and c != "run_id"
                      else "json_extract(r.provenance, '$.git_revision') AS git_revision" if c == "git_revision"
                      else "json_extract(r.config, '$.cut_off') AS cut_off" if c == "cut_off"
                      else f"CASE WHEN s.chosen THEN {_READING[c]} END AS {c}"
                      if c in _READING
                      else "r." + c for c in EXPORT_COLUMNS)}
    FROM runs r JOIN steps s ON s.run_id = r.run_id WHERE r.kind = 'prune' AND r.status = 'done';
CREATE VIEW pruning_summary AS
    SELECT model, dataset, input_size, method, step, fraction, val_accuracy AS accuracy, accuracy_drop, rotations,
           pmuls, sparsity, accepted, seed, git_revision FROM experiments;
PRAGMA user_version = {VIEWS_VERSION};
COMMIT;
"""

_TEMP_VIEWS = "\n".join(line.replace("CREATE VIEW", "CREATE TEMP VIEW") for line in _VIEWS.splitlines()
                        if not line.startswith(("BEGIN", "COMMIT", "PRAGMA", "DROP")))


class ExperimentStore:
    """The experiments database at `path` (created with its tables on first use).

    >>> import tempfile, os
    >>> db = ExperimentStore(os.path.join(tempfile.mkdtemp(), "x.sqlite"))
    >>> db.start_run("prune/a", "prune", {"model": "m", "method": "dense", "seed": 0})
    >>> db.finish_run("prune/a", {"val_accuracy": 90.0}, [{"step": 0, "val_accuracy": 90.0, "chosen": True}])
    >>> db.status("prune/a"), [r["val_accuracy"] for r in db.export_rows()]
    ('done', [90.0])
    """

    def __init__(self, path: str | Path, timeout: float = 120.0, readonly: bool = False, option: str = "--db"):
        """Check the file first (bench.experiments.db): a reader (`readonly`) opens it read-only and
        creates nothing; a writer makes a missing one (removed again if that fails)."""
        self.path = Path(path)
        self.timeout = timeout
        self.readonly = readonly
        make = check_database(self.path, not readonly, _TABLES, VIEWS_VERSION, option)
        if readonly:
            return
        existed = self.path.exists()
        try:
            if make:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            with db_errors(self.path), closing(self._connect()) as con:
                # one transaction: another opener sees every table or none; IF NOT EXISTS makes racing
                # creators harmless
                con.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\nCOMMIT;")
                if con.execute("PRAGMA application_id").fetchone()[0] == 0:
                    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                if con.execute("PRAGMA user_version").fetchone()[0] < VIEWS_VERSION:
                    have = {r[1] for r in con.execute("PRAGMA table_info(steps)")}
                    if "finetune_epochs" not in have:  # a database from before the equal-budget protocol
                        con.execute("ALTER TABLE steps ADD COLUMN finetune_epochs REAL")
                    con.executescript(_VIEWS)
        except BaseException as e:
            if not existed:  # nothing half-made is left behind
                remove_database(self.path)
            if isinstance(e, OSError):
                raise write_error(self.path, e) from None
            raise

    @staticmethod
    def check(path: str | Path, write: bool = True, option: str = "--db") -> None:
        """Refuse an unusable database before any work, creating nothing (the constructor's checks)."""
        check_database(Path(path), write, _TABLES, VIEWS_VERSION, option)

    def _connect(self) -> sqlite3.Connection:
        con = connect(self.path, self.timeout, self.readonly)
        if self.readonly and con.execute("PRAGMA user_version").fetchone()[0] < VIEWS_VERSION:
            have = {r[1] for r in con.execute("PRAGMA table_info(steps)")}
            views = _TEMP_VIEWS
            for c in set(STEP_COLUMNS) - have:  # columns an older schema lacks read as NULL
                views = re.sub(rf"\bs\.{c}\b", f"NULL AS {c}", views)
            con.executescript(views)  # an older file's views, today's columns, written nowhere
        return con

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with db_errors(self.path), closing(self._connect()) as con:
            yield con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise RuntimeError(f"{self.path} was opened read-only")
        with db_errors(self.path), closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def start_run(self, run_id: str, kind: str, fields: dict, parent: str | None = None) -> None:
        """Record a run as running (replacing an earlier unfinished or failed attempt and its steps)."""
        row = {c: fields.get(c) for c in RUN_COLUMNS} | {"run_id": run_id, "kind": kind, "parent": parent,
                                                          "status": "running", "error": None,
                                                          "started": time.time()}
        with self._write() as con:
            con.execute("DELETE FROM steps WHERE run_id = ?", (run_id,))
            _upsert(con, "runs", _encode(row))

    def finish_run(self, run_id: str, fields: dict, steps: list[dict] | None = None) -> None:
        """Mark a run done with its results and steps, in one transaction."""
        cols = {c: fields[c] for c in RUN_COLUMNS if c in fields and c not in ("run_id", "kind", "started")}
        cols |= {"status": "done", "error": None, "finished": time.time()}
        with self._write() as con:
            _update(con, run_id, _encode(cols))
            con.execute("DELETE FROM steps WHERE run_id = ?", (run_id,))
            for s in steps or []:
                _upsert(con, "steps", {c: _sql(s.get(c)) for c in STEP_COLUMNS} | {"run_id": run_id})

    def fail_run(self, run_id: str, error: str) -> None:
        with self._write() as con:
            _update(con, run_id, {"status": "failed", "error": error[-4000:], "finished": time.time()})

    def set_fields(self, run_id: str, fields: dict) -> None:
        """Add results to a run (e.g. its encrypted benchmark)."""
        with self._write() as con:
            _update(con, run_id, _encode({c: v for c, v in fields.items() if c in RUN_COLUMNS}))

    def status(self, run_id: str) -> str | None:
        with self._read() as con:
            row = con.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return row["status"] if row else None

    def run(self, run_id: str) -> dict | None:
        with self._read() as con:
            row = con.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return _decode(dict(row), self.path) if row else None

    def runs(self, **where) -> list[dict]:
        """Runs whose columns equal the given values, e.g. runs(kind="prune", status="done")."""
        bad = [k for k in where if k not in RUN_COLUMNS]
        if bad:
            raise ValueError(f"unknown run columns {bad}; known: {RUN_COLUMNS}")
        clause = " AND ".join(f"{k} = ?" for k in where) or "1"
        with self._read() as con:
            rows = con.execute(f"SELECT * FROM runs WHERE {clause} ORDER BY run_id", tuple(where.values()))
            return [_decode(dict(r), self.path) for r in rows]

    def steps(self, run_id: str) -> list[dict]:
        with self._read() as con:
            rows = con.execute("SELECT * FROM steps WHERE run_id = ? ORDER BY step", (run_id,))
            return [dict(r) for r in rows]

    def export_rows(self, view: str = "experiments") -> list[dict]:
        """One row per (finished prune run, step): the `experiments` view (or `pruning_summary`)."""
        if view not in ("experiments", "pruning_summary"):
            raise ValueError(f"unknown view {view!r}; known: experiments, pruning_summary")
        with self._read() as con:
            order = "run_id, step" if view == "experiments" else "model, dataset, input_size, method, seed, step"
            return [dict(r) for r in con.execute(f"SELECT * FROM {view} ORDER BY {order}")]


    def claim(self, run_ids: list[str]) -> dict | None:
        """Take every cell of `run_ids` for this process, or none: returns None when taken, else the
        live claim (pid, host) that holds one of them. Stale claims are taken over."""
        me = (os.getpid(), socket.gethostname())
        now = time.time()
        with self._write() as con:
            for rid in run_ids:
                row = con.execute("SELECT pid, host, claimed FROM claims WHERE run_id = ?", (rid,)).fetchone()
                if row and (row["pid"], row["host"]) != me and not _stale(row, now):
                    return {"run_id": rid, "pid": row["pid"], "host": row["host"]}
            con.executemany("INSERT OR REPLACE INTO claims (run_id, pid, host, claimed) VALUES (?, ?, ?, ?)",
                            [(rid, *me, now) for rid in run_ids])
        return None

    def live_claims(self) -> set[str]:
        """The run ids a live sweep holds (claims not stale)."""
        now = time.time()
        with self._read() as con:
            return {r["run_id"] for r in con.execute("SELECT run_id, pid, host, claimed FROM claims")
                    if not _stale(r, now)}

    def refresh_claims(self) -> None:
        """Keep this process's claims live (a sweep calls it while it waits for cells)."""
        with self._write() as con:
            con.execute("UPDATE claims SET claimed = ? WHERE pid = ? AND host = ?",
                        (time.time(), os.getpid(), socket.gethostname()))

    def release_claims(self) -> None:
        with self._write() as con:
            con.execute("DELETE FROM claims WHERE pid = ? AND host = ?", (os.getpid(), socket.gethostname()))

    def snapshot(self, path: str | Path) -> None:
        """A consistent copy of the database at `path` (VACUUM INTO), e.g. to commit while a sweep writes.
        The copy holds no claims: they name processes of this host, which a copy outlives. Its temporary
        (and journal) is removed on failure, and by clean_stale after a kill."""
        path = Path(path)
        if path.resolve() == self.path.resolve():
            raise InputError(f"snapshot of {self.path} onto itself")
        tmp = temporary(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            check_space(path, self.path.stat().st_size)
            with self._read() as con:
                con.execute("VACUUM INTO ?", (str(tmp),))
            with closing(sqlite3.connect(tmp)) as copy, copy:
                if copy.execute("SELECT 1 FROM sqlite_master WHERE name = 'claims'").fetchone():
                    copy.execute("DELETE FROM claims")
        except BaseException as e:
            remove_database(tmp)
            if isinstance(e, OSError):
                raise write_error(path, e) from None
            raise
        put_in_place(tmp, path)  # with the command's other outputs (bench.atomic.outputs_together)


def checkpoint_on_disk(run: dict | None) -> Path | None:
    """A run's recorded checkpoint when it is done and the file is there (its bytes unchecked), else None."""
    if not run or run["status"] != "done" or not run["checkpoint"] or not Path(run["checkpoint"]).is_file():
        return None
    return Path(run["checkpoint"])


def _stale(claim: sqlite3.Row, now: float) -> bool:
    if claim["host"] == socket.gethostname() and not process_alive(claim["pid"]):
        return True
    return now - claim["claimed"] > CLAIM_STALE_S


def _sql(v):
    return int(v) if isinstance(v, bool) else v


def _encode(row: dict) -> dict:
    return {k: (json.dumps(v, default=str) if k in JSON_COLUMNS and v is not None else _sql(v)) for k, v in row.items()}


def _decode(row: dict, path: Path | None = None) -> dict:
    out = {}
    for k, v in row.items():
        try:
            out[k] = json.loads(v) if k in JSON_COLUMNS and v is not None else v
        except ValueError:
            raise InputError(f"{path}: run {row.get('run_id')!r}: its {k} is not valid JSON (a damaged "
                             "database)") from None
    return out


def _upsert(con: sqlite3.Connection, table: str, row: dict) -> None:
    cols = ", ".join(row)
    con.execute(f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


def _update(con: sqlite3.Connection, run_id: str, cols: dict) -> None:
    cur = con.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in cols)} WHERE run_id = ?",
                      (*cols.values(), run_id))
    if cur.rowcount != 1:
        raise ValueError(f"experiments database: no run {run_id!r} to update (start_run first)")
