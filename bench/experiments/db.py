"""The one place that opens an experiments database, checking it first.

`check_database(path, write, tables)` refuses, with one line naming the file and the
problem (heconv.errors.InputError), anything that is not an SQLite file of our schema:
a folder, a missing file (for a reader), a file that is not SQLite, a truncated or
damaged one, another program's database (its application_id stamp, or tables of other
columns), one written by a newer schema, one missing a table it should have, and for a
writer one it cannot write. Readers open read-only (`connect(..., readonly=True)`) and
never create anything; writers stamp the file with APPLICATION_ID when they make it.
Failures while using it (a full disk, an I/O error) come out as one line too (`db_errors`).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator

from heconv.errors import InputError

APPLICATION_ID = 0x41525445  # "ARTE": PRAGMA application_id of an experiments database
_HEADER = b"SQLite format 3\x00"
SIDE_FILES = ("-wal", "-shm", "-journal")


def connect(path: Path, timeout: float, readonly: bool = False) -> sqlite3.Connection:
    """A connection (rows as sqlite3.Row, autocommit). A read-only one never changes the file and
    leaves nothing beside it: with no -wal there (no writer has it open), on a folder nobody can
    write (a read-only mount), it reads the file as immutable (no -wal or -shm of its own; a writer
    that checkpoints during those milliseconds can make it fail, never change it); with a -wal
    there (a sweep writing), it joins the writer's WAL read-only."""
    if readonly:
        writer = path.with_name(path.name + "-wal").exists()
        mode = "ro" if writer and os.access(path.parent, os.W_OK) else "ro&immutable=1"
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=timeout,
                              isolation_level=None)
    else:
        con = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
    con.row_factory = sqlite3.Row
    con.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    return con


@contextmanager
def db_errors(path: Path) -> Iterator[None]:
    """SQLite's errors while using the database as one line naming it (a full disk, a damaged page)."""
    try:
        yield
    except sqlite3.DatabaseError as e:
        text = str(e)
        if any(w in text for w in ("full", "readonly", "read-only", "I/O", "unable to open")):
            raise InputError(f"cannot write {path}: {text}") from None
        raise InputError(f"{path}: damaged or not an experiments database ({text})") from None


def _header_problem(path: Path) -> str | None:
    """What the first 100 bytes say is wrong (not SQLite, truncated), or None."""
    size = path.stat().st_size
    if size == 0:
        return None  # an empty file is an empty SQLite database
    with open(path, "rb") as f:
        head = f.read(100)
    if not head.startswith(_HEADER):
        return "not an SQLite database"
    if len(head) < 100:
        return f"truncated ({size} bytes, less than SQLite's 100-byte header)"
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    valid = head[24:28] == head[92:96]  # the in-header size is valid when these counters agree
    if valid and pages and size < page * pages:
        return f"truncated ({size} bytes; its header says {page * pages})"
    return None


def check_database(path: str | Path, write: bool, tables: dict[str, tuple[str, ...]], schema_version: int,
                   option: str = "--db") -> bool:
    """Refuse `path` unless it is an experiments database we can use (`write`: and write);
    returns whether it has to be made (missing or empty, for a writer).

    `tables`: the columns each table must have; `schema_version`: the newest user_version
    this code reads.
    """
    path = Path(path)
    where = f"{option} {path}"
    if path.is_dir():
        raise InputError(f"{where} is a folder; expected an experiments database (.sqlite file)")
    if not path.exists():
        if not write:
            raise InputError(f"{where}: no experiments database there (run 'artemis sweep' first)")
        folder = next((p for p in path.parents if p.exists()), None)
        if folder is None or not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(f"{where}: cannot create it, {folder} is not a writable folder")
        return True
    if not os.access(path, os.R_OK):
        raise InputError(f"{where}: not readable (permission denied)")
    problem = _header_problem(path)
    if problem:
        raise InputError(f"{where}: {problem}; expected an experiments database")
    if write and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)):
        raise InputError(f"{where}: read-only (the file or its folder {path.parent} cannot be written), "
                         "and this command writes to it")
    try:
        with closing(connect(path, 5.0, readonly=True)) as con:
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            version = con.execute("PRAGMA user_version").fetchone()[0]
            have = {name: {r[1] for r in con.execute(f"PRAGMA table_info({name})")} for name in tables}
            others = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.DatabaseError as e:
        raise InputError(f"{where}: damaged or not an SQLite database ({e})") from None
    if app_id not in (0, APPLICATION_ID):
        raise InputError(f"{where}: another program's SQLite database (application_id {app_id:#x}); "
                         "expected an experiments database")
    if version > schema_version:
        raise InputError(f"{where}: written by a newer version (schema {version}; this one reads up to "
                         f"{schema_version})")
    if not others:
        if write:
            return True
        raise InputError(f"{where}: an empty SQLite database, no experiments in it (run 'artemis sweep' first)")
    for name, columns in tables.items():
        if not have[name]:
            raise InputError(f"{where}: no {name!r} table (damaged, or not an experiments database; it has "
                             f"{', '.join(sorted(others))})")
        missing = [c for c in columns if c not in have[name]]
        if missing:
            raise InputError(f"{where}: its {name!r} table is not ours (it lacks {', '.join(missing[:4])}"
                             f"{' ...' if len(missing) > 4 else ''}); expected an experiments database")
    return False


def remove_database(path: Path) -> None:
    """Remove a database this process began to make and could not finish, with its side files."""
    for p in [path, *(path.with_name(path.name + s) for s in SIDE_FILES)]:
        try:
            p.unlink(missing_ok=True)
        except OSError:
            pass
