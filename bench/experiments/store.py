"""The experiments database: SQLite (stdlib) in WAL mode, one file, safe for concurrent writers.

Two tables and a view:

- runs: one row per training or pruning run (a sweep cell), keyed by a readable run id that
  names the full configuration, with the configuration as JSON, the data source, the
  provenance (versions, git revision), the checkpoint's path and sha256, status
  ("running", "done", "failed") and the error of a failed run.
- steps: one row per (run, pruning step): threshold, validation and test accuracy,
  rotations, multiplications, sparsity, whether the step was accepted and chosen.
- pruning_summary: the old pruning_summary.csv's columns, as a view over both.

Every write is one short IMMEDIATE transaction, so writers in several processes queue on
the lock (busy timeout) instead of losing rows.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator

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
                  "finetune_epochs", "cut_off", "encrypted_server_s", "encrypted_auto_server_s", "git_revision")
JSON_COLUMNS = ("config", "history", "provenance", "encrypted")

_SCHEMA = f"""
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
"""
# The views are made again when the database's user_version is older than VIEWS_VERSION, so
# that a database written by an older version gets today's columns (and reading one writes
# nothing); one IMMEDIATE transaction keeps racing openers apart.
VIEWS_VERSION = 4
_VIEWS = f"""
BEGIN IMMEDIATE;
DROP VIEW IF EXISTS pruning_summary;
DROP VIEW IF EXISTS experiments;
CREATE VIEW experiments AS
    SELECT {", ".join("s.step" if c == "step" else "s." + c if c in STEP_COLUMNS and c != "run_id"
                      else "json_extract(r.provenance, '$.git_revision') AS git_revision" if c == "git_revision"
                      else "CASE WHEN s.chosen THEN json_extract(r.encrypted, '$.server_s') END AS encrypted_server_s"
                      if c == "encrypted_server_s"
                      else "json_extract(r.config, '$.cut_off') AS cut_off" if c == "cut_off"
                      else "CASE WHEN s.chosen THEN json_extract(r.encrypted, '$.auto.server_s') END "
                           "AS encrypted_auto_server_s" if c == "encrypted_auto_server_s"
                      else "r." + c for c in EXPORT_COLUMNS)}
    FROM runs r JOIN steps s ON s.run_id = r.run_id WHERE r.kind = 'prune' AND r.status = 'done';
CREATE VIEW pruning_summary AS
    SELECT model, dataset, input_size, method, step, fraction, val_accuracy AS accuracy, accuracy_drop, rotations,
           pmuls, sparsity, accepted, seed, git_revision FROM experiments;
PRAGMA user_version = {VIEWS_VERSION};
COMMIT;
"""


class ExperimentStore:
    """The experiments database at `path` (created with its tables on first use).

    >>> import tempfile, os
    >>> db = ExperimentStore(os.path.join(tempfile.mkdtemp(), "x.sqlite"))
    >>> db.start_run("prune/a", "prune", {"model": "m", "method": "dense", "seed": 0})
    >>> db.finish_run("prune/a", {"val_accuracy": 90.0}, [{"step": 0, "val_accuracy": 90.0, "chosen": True}])
    >>> db.status("prune/a"), [r["val_accuracy"] for r in db.export_rows()]
    ('done', [90.0])
    """

    def __init__(self, path: str | Path, timeout: float = 120.0):
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"experiments database {self.path} is a folder; expected a .sqlite file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        with closing(self._connect()) as con:
            con.executescript(_SCHEMA)  # its own transaction; IF NOT EXISTS makes racing creators harmless
            if con.execute("PRAGMA user_version").fetchone()[0] < VIEWS_VERSION:
                have = {r[1] for r in con.execute("PRAGMA table_info(steps)")}
                if "finetune_epochs" not in have:  # a database from before the equal-budget protocol
                    con.execute("ALTER TABLE steps ADD COLUMN finetune_epochs REAL")
                con.executescript(_VIEWS)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
        return con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as con:
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
        with closing(self._connect()) as con:
            row = con.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return row["status"] if row else None

    def run(self, run_id: str) -> dict | None:
        with closing(self._connect()) as con:
            row = con.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return _decode(dict(row)) if row else None

    def runs(self, **where) -> list[dict]:
        """Runs whose columns equal the given values, e.g. runs(kind="prune", status="done")."""
        bad = [k for k in where if k not in RUN_COLUMNS]
        if bad:
            raise ValueError(f"unknown run columns {bad}; known: {RUN_COLUMNS}")
        clause = " AND ".join(f"{k} = ?" for k in where) or "1"
        with closing(self._connect()) as con:
            rows = con.execute(f"SELECT * FROM runs WHERE {clause} ORDER BY run_id", tuple(where.values()))
            return [_decode(dict(r)) for r in rows]

    def steps(self, run_id: str) -> list[dict]:
        with closing(self._connect()) as con:
            rows = con.execute("SELECT * FROM steps WHERE run_id = ? ORDER BY step", (run_id,))
            return [dict(r) for r in rows]

    def export_rows(self, view: str = "experiments") -> list[dict]:
        """One row per (finished prune run, step): the `experiments` view (or `pruning_summary`)."""
        if view not in ("experiments", "pruning_summary"):
            raise ValueError(f"unknown view {view!r}; known: experiments, pruning_summary")
        with closing(self._connect()) as con:
            order = "run_id, step" if view == "experiments" else "model, dataset, input_size, method, seed, step"
            return [dict(r) for r in con.execute(f"SELECT * FROM {view} ORDER BY {order}")]


    def snapshot(self, path: str | Path) -> None:
        """A consistent copy of the database at `path` (VACUUM INTO), e.g. to commit while a sweep writes."""
        path = Path(path)
        if path.resolve() == self.path.resolve():
            raise ValueError(f"snapshot of {self.path} onto itself")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.unlink(missing_ok=True)
        with closing(self._connect()) as con:
            con.execute("VACUUM INTO ?", (str(tmp),))
        tmp.replace(path)


def _sql(v):
    return int(v) if isinstance(v, bool) else v


def _encode(row: dict) -> dict:
    return {k: (json.dumps(v, default=str) if k in JSON_COLUMNS and v is not None else _sql(v)) for k, v in row.items()}


def _decode(row: dict) -> dict:
    return {k: (json.loads(v) if k in JSON_COLUMNS and v is not None else v) for k, v in row.items()}


def _upsert(con: sqlite3.Connection, table: str, row: dict) -> None:
    cols = ", ".join(row)
    con.execute(f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


def _update(con: sqlite3.Connection, run_id: str, cols: dict) -> None:
    cur = con.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in cols)} WHERE run_id = ?",
                      (*cols.values(), run_id))
    if cur.rowcount != 1:
        raise ValueError(f"experiments database: no run {run_id!r} to update (start_run first)")
