"""What the fault-injection tests share: running the command line in-process, the one-line
check, a small experiments database, and a small tmpfs where this machine allows one."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from bench.cli import main
from bench.experiments.store import ExperimentStore

ROOT = Path(__file__).resolve().parents[2]
RUNS = 3


def _cli(capsys, *argv) -> tuple[int, list[str], str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.strip()], out


def _fails(capsys, message: str, *argv, code: int = 2) -> str:
    got, lines, _ = _cli(capsys, *argv)
    assert got == code and len(lines) == 1 and message in lines[0], lines
    return lines[0]


def _good_db(path: Path) -> Path:
    store = ExperimentStore(path)
    for i in range(RUNS):
        rid = f"prune/dense/s{i}"
        store.start_run(rid, "prune", {"model": "small-cnn", "dataset": "digits", "input_size": 8, "method": "dense",
                                       "seed": i, "config": {"max_drop": 1.0}})
        store.finish_run(rid, {"val_accuracy": 90.0 + i, "test_accuracy": 89.0},
                         [{"step": 0, "val_accuracy": 90.0 + i, "chosen": True}])
    return path


def _rows(path: Path) -> int:
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)) as con:
        return con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _mount_tmpfs(folder: Path, size: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8); the simulated ENOSPC case covers the write path")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True,
                       text=True)
    if r.returncode:
        pytest.skip(f"this machine forbids mounting a tmpfs ({r.stderr.strip()})")


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs (skipped where mounting is forbidden), unmounted afterwards."""
    folder = tmp_path / "fs"
    folder.mkdir()
    _mount_tmpfs(folder, "1m")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
