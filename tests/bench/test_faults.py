"""Fault injection: damaged, foreign, truncated and read-only databases, a full disk, a memory
limit, Ctrl-C, a dead cluster address, bad sweep grids and concurrent sweeps. Each case ends
with its exit code and one line on stderr, no traceback, nothing left behind and no row lost.

The full disk and the read-only mount are real (a small tmpfs) where this process may mount
one (root, and a kernel that allows it); elsewhere they skip with the reason, and the
simulated ENOSPC case still runs.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
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
    # SQLite's own -wal and -shm beside a WAL database are all a reader may leave
    assert [p for p in _listing(tmp_path) if not p.endswith(("-wal", "-shm"))] == listing


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
    line = _fails(capsys, f"cannot write {small_fs}", "results", "export", "--db", db, "--out", small_fs)
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


# -- memory and Ctrl-C (child processes) ------------------------------------------------------

_LIMITED = """
import resource, sys
from pathlib import Path
import tenseal.sealapi, torch  # noqa: F401  (loaded before the limit: it caps what comes next)
from bench.cli import main
used = next(int(l.split()[1]) * 1024 for l in Path("/proc/self/status").read_text().splitlines()
            if l.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (used + (160 << 20), resource.RLIM_INFINITY))
sys.exit(main(sys.argv[1:]))
"""


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_address_space_limit_is_refused_before_seal_allocates(tmp_path):
    t = time.time()
    r = subprocess.run([sys.executable, "-c", _LIMITED, "layer", "--c-in", "64", "--c-out", "64", "--hw", "16",
                        "--mode", "encrypted", "--workers", "1"], cwd=tmp_path, env=_env(), capture_output=True,
                       text=True, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "RLIMIT_AS" in lines[0], r.stderr[-2000:]
    assert time.time() - t < 60 and os.listdir(tmp_path) == []


def test_ctrl_c_ends_an_encrypted_run_within_seconds(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "bench.cli", "layer", "--c-in", "64", "--c-out", "64",
                             "--hw", "16", "--mode", "encrypted", "--workers", "2"], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: (os.setsid(), signal.signal(signal.SIGINT, signal.SIG_DFL)))
    try:
        time.sleep(1.0)
        deadline = time.time() + 60  # until SEAL is busy: the plaintexts take hundreds of MB
        while time.time() < deadline and proc.poll() is None:
            rss = next((int(x.split()[1]) for x in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                        if x.startswith("VmRSS:")), 0)
            if rss > 450_000:
                break
            time.sleep(0.1)
        if proc.poll() is not None:
            pytest.skip("the run ended before it could be interrupted")
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group, workers too
        t = time.time()
        _, err = proc.communicate(timeout=30)
        took = time.time() - t
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130 and took < 10, err[-2000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "artemis layer: interrupted"
    assert os.listdir(tmp_path) == []


# -- sweeps: addresses, grids, failed cells, concurrency -----------------------------------------

SWEEP = ["sweep", "--models", "small-cnn", "--dataset", "digits", "--input-sizes", "8", "--subset", "300",
         "--epochs", "1", "--methods", "dense"]


def test_dead_address_fails_within_seconds(tmp_path, capsys):
    t = time.time()
    _fails(capsys, "--address 127.0.0.1:1: no Ray cluster answers there", *SWEEP, "--address", "127.0.0.1:1",
           "--db", tmp_path / "e.sqlite")
    assert time.time() - t < 15 and os.listdir(tmp_path) == []


def test_address_auto_with_no_cluster_says_so(tmp_path, capsys, monkeypatch):
    services = pytest.importorskip("ray._private.services")
    if not hasattr(services, "get_ray_address_from_environment"):
        pytest.skip("this Ray finds clusters elsewhere")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: [])
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: None)
    _fails(capsys, "--address auto: no Ray cluster is running on this machine", *SWEEP, "--address", "auto",
           "--db", tmp_path / "e.sqlite")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("option, value, message", [
    ("--models", "small-cnn,foo", "sweep --models: got 'foo'"),
    ("--input-sizes", "0", "sweep --input-sizes: got 0"),
    ("--schedule", "bsgs:3", "the baby step B must be a power of two"),
    ("--lambdas-d", "inf", "sweep --lambdas-d: got inf"),
    ("--seeds", "-1", "sweep --seeds: got -1"),
])
def test_bad_grid_fails_before_the_first_cell(tmp_path, capsys, option, value, message):
    argv = SWEEP + ["--methods", "dense,artemis-diagonal", "--db", str(tmp_path / "e.sqlite")]
    _fails(capsys, message, *argv, option, value)
    assert os.listdir(tmp_path) == []


def test_duplicates_collapse(tmp_path, capsys):
    code, _, out = _cli(capsys, *SWEEP, "--methods", "dense,artemis-diagonal", "--seeds", "0,0",
                        "--lambdas-d", "0.3,0.30,3e-1", "--dry-run", "--db", tmp_path / "e.sqlite")
    assert code == 0 and len(out.strip().splitlines()) == 2 and os.listdir(tmp_path) == []


class _Ref:
    def __init__(self, value=None, error=None):
        self.value, self.error = value, error


class FakeRay:
    """Ray's few calls the sweep makes, run at once in this process (no cluster to start)."""

    @staticmethod
    def is_initialized():
        return True

    @staticmethod
    def cluster_resources():
        return {}

    @staticmethod
    def put(value):
        return _Ref(value)

    @staticmethod
    def get(ref):
        if ref.error:
            raise ref.error
        return ref.value

    @staticmethod
    def wait(refs, num_returns=1, timeout=None):
        return refs[:1], refs[1:]

    @staticmethod
    def remote(**_):
        def wrap(fn):
            class Task:
                @staticmethod
                def remote(*args):
                    failed = next((a for a in args if isinstance(a, _Ref) and a.error), None)
                    if failed:  # as Ray does: a task whose input failed fails with its error
                        return failed
                    try:
                        return _Ref(fn(*[a.value if isinstance(a, _Ref) else a for a in args]))
                    except Exception as e:
                        return _Ref(error=e)
            return Task
        return wrap


def _fake_cells(monkeypatch, log: Path, fail: str | None = None, pause: float = 0.0) -> None:
    import bench.experiments.sweep as sweep

    def run(cell, *_):
        time.sleep(pause)
        with open(log, "a") as f:
            f.write(cell.run_id + "\n")
        if fail and fail in cell.run_id:
            raise RuntimeError(f"{cell.run_id} failed on purpose")
        return {"val_accuracy": 90.0, "test_accuracy": 89.0, "schedules": None, "state": cell.run_id.encode(),
                "steps": [{"step": 0, "val_accuracy": 90.0, "chosen": True}]}

    monkeypatch.setitem(sys.modules, "ray", FakeRay)
    monkeypatch.setattr(sweep, "run_train_cell", run)
    monkeypatch.setattr(sweep, "run_prune_cell", run)


def test_a_failed_cell_fails_the_sweep_naming_it(tmp_path, capsys, monkeypatch):
    _fake_cells(monkeypatch, tmp_path / "log", fail="/s1/")
    db = tmp_path / "e.sqlite"
    _fails(capsys, "1 of 2 cells failed (prune/dense/", *SWEEP, "--seeds", "0,1", "--db", db, "--checkpoints",
           tmp_path / "ck", code=1)
    runs = {r["run_id"]: r["status"] for r in ExperimentStore(db, readonly=True).runs(kind="prune")}
    assert sorted(runs.values()) == ["done", "failed"]


def _sweeper(db: str, ck: str, log: str, start: float) -> None:
    mp = pytest.MonkeyPatch()
    _fake_cells(mp, Path(log), pause=0.05)
    from bench.experiments.cells import PruneCell, TrainCell
    from bench.experiments.sweep import SweepGrid, run_sweep

    base = TrainCell("small-cnn", dataset="digits", input_size=8, subset=300, epochs=1)
    grid = SweepGrid(models=("small-cnn",), methods=("dense", "hunter"), seeds=(0, 1, 2, 3), input_sizes=(8,),
                     base=base, prune=PruneCell(base, base, "dense"))
    time.sleep(max(0.0, start - time.time()))
    run_sweep(grid, ExperimentStore(db), ck)
    os._exit(0)


def test_two_sweeps_on_one_database_never_run_a_cell_twice(tmp_path):
    db, log = tmp_path / "e.sqlite", tmp_path / "log"
    ExperimentStore(db)
    ctx = multiprocessing.get_context("fork")
    start = time.time() + 0.5
    procs = [ctx.Process(target=_sweeper, args=(str(db), str(tmp_path / "ck"), str(log), start)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    ran = log.read_text().split()
    assert len(ran) == len(set(ran))  # no cell (training or pruning) ran twice
    runs = ExperimentStore(db, readonly=True).runs()
    assert len([r for r in runs if r["kind"] == "prune" and r["status"] == "done"]) == 8
    assert len([r for r in runs if r["kind"] == "train" and r["status"] == "done"]) == 4
    with closing(sqlite3.connect(db)) as con:
        assert con.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # released


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
    _fails(capsys, message, "report", given, "--out", tmp_path / "out", "--db", tmp_path / "none.sqlite")
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
    _fails(capsys, f"cannot write {small_fs / 'out'}", "train", "--model", "small-cnn", "--dataset", "digits",
           "--input-size", "8", "--subset", "200", "--epochs", "1", "--out", small_fs / "out")
    assert _listing(small_fs) in (["filler"], ["filler", "out"])  # at most the empty folder it was to write into


# -- checkpoints: meta of the wrong type or size, more images than the split ----------------------

CKPT_META = {"model": "small-cnn", "in_channels": 1, "num_classes": 10, "dataset": "digits", "input_size": 8,
             "subset": 200, "seed": 0, "poly_modulus_degree": 8192}


@pytest.mark.parametrize("meta, argv, message", [
    ({"num_classes": "10"}, ["infer", "--mode", "count"], "meta num_classes = '10'; expected a whole number"),
    ({"input_size": 10**9}, ["infer", "--mode", "count"], "meta input_size = 1000000000; expected"),
    ({"input_size": 10**9}, ["prune", "--method", "dense", "--out", "{d}/out"], "meta input_size = 1000000000"),
    ({}, ["infer", "--mode", "count", "--images", "500"], "--images 500: the checkpoint's digits test split holds 40"),
], ids=["num_classes a string", "input_size 1e9 (infer)", "input_size 1e9 (prune)", "more images than the split"])
def test_checkpoint_meta_and_images_are_checked(tmp_path, capsys, meta, argv, message):
    import models
    from bench.results import save_checkpoint

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    save_checkpoint(models.build_model("small-cnn", 1, 10), tmp_path / "m.pt", {**CKPT_META, **meta})
    listing = _listing(tmp_path)
    _fails(capsys, message, *[a.format(d=tmp_path) for a in argv], "--checkpoint", tmp_path / "m.pt")
    assert _listing(tmp_path) == listing
