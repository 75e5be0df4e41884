"""Fault injection, part two: a memory limit and Ctrl-C (child processes), cluster addresses,
bad sweep grids, a failed cell, two sweeps on one database, and checkpoints whose meta has
the wrong type or size. Each ends with its exit code and one line, no traceback, nothing
left behind and no row lost (tests/bench/test_faults.py has the databases and full disks).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from bench.experiments.store import ExperimentStore
from tests.bench.faults import ROOT, _cli, _fails, _listing

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
    ("--input-sizes", "0", "--input-sizes: sizes must be >= 1, got 0"),
    ("--schedule", "bsgs:3", "the baby step B must be a power of two"),
    ("--lambdas-d", "inf", "--lambdas-d: lambdas must be finite and >= 0, got inf"),
    ("--seeds", "-1", "--seeds: seeds must be >= 0, got -1"),
    ("--input-sizes", "100000", "sweep --input-sizes 100000 with --poly-modulus-degree"),
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


class _Handle:
    def __init__(self, obj):
        self.obj = obj

    def __getattr__(self, name):
        method = getattr(self.obj, name)

        class Method:
            @staticmethod
            def remote(*args):
                return _Ref(method(*args))
        return Method


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
            if isinstance(fn, type):  # an actor: its methods run at once too
                class Actor:
                    @staticmethod
                    def remote(*args):
                        return _Handle(fn(*args))
                return Actor

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
    code, lines, _ = _cli(capsys, *SWEEP, "--seeds", "0,1", "--db", db, "--checkpoints", tmp_path / "ck")
    # stderr: the progress lines (bench/cli/progress.py), then the one error line naming the cell
    assert code == 1 and lines[-1].startswith("artemis sweep: error: 1 of 2 cells failed (prune/dense/")
    assert sum("error" in line for line in lines) == 1
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


def test_a_lost_checkpoint_is_not_retrained_unless_asked(tmp_path, capsys, monkeypatch):
    """A model recorded done whose checkpoint is gone (a new machine) is refused with one line: its
    retraining would not be the same model bit for bit, and the cells pruned from the lost one would
    be compared with cells pruned from another. --retrain-lost retrains it and keeps the record."""
    _fake_cells(monkeypatch, tmp_path / "log")
    db, ck = tmp_path / "e.sqlite", tmp_path / "ck"
    assert _cli(capsys, *SWEEP, "--seeds", "0", "--db", db, "--checkpoints", ck)[0] == 0
    (train,) = ExperimentStore(db, readonly=True).runs(kind="train")
    Path(train["checkpoint"]).unlink()
    before = sqlite3.connect(db).execute("SELECT * FROM runs ORDER BY run_id").fetchall()
    more = [*SWEEP[:-1], "dense,hunter", "--seeds", "0"]  # a new cell that prunes the lost model
    code, lines, _ = _cli(capsys, *more, "--db", db, "--checkpoints", ck)
    assert code == 2 and lines[-1].startswith(f"artemis sweep: error: sweep: 1 trained model(s) recorded done have "
                                              f"no checkpoint with the recorded sha256 ({train['run_id']}: ")
    assert "is missing" in lines[-1] and "--retrain-lost" in lines[-1]
    assert sqlite3.connect(db).execute("SELECT * FROM runs ORDER BY run_id").fetchall() == before
    assert _cli(capsys, *more, "--retrain-lost", "--db", db, "--checkpoints", ck)[0] == 0
    store = ExperimentStore(db, readonly=True)
    (again,) = store.runs(kind="train")
    old = again["config"]["replaced"]
    assert again["status"] == "done" and Path(again["checkpoint"]).is_file()
    assert (old["checkpoint_sha256"], old["val_accuracy"], old["why"]) == (train["checkpoint_sha256"], 90.0,
                                                                           f"{train['checkpoint']} is missing")
    assert sorted(r["status"] for r in store.runs(kind="prune")) == ["done", "done"]


def test_a_retraining_killed_midway_keeps_the_earlier_record_and_its_claim(tmp_path, monkeypatch):
    """A --retrain-lost retraining that fails leaves its row not done: the next sweep retrains it
    without the flag (the refusal was given) and still keeps the earlier record; while a sweep
    retrains a lost model, the model is claimed, so a second sweep leaves it alone."""
    from bench.experiments.cells import PruneCell, TrainCell
    from bench.experiments.sweep import SweepGrid, run_sweep

    base = TrainCell("small-cnn", dataset="digits", input_size=8, subset=300, epochs=1)

    def grid(methods):
        return SweepGrid(models=("small-cnn",), methods=methods, seeds=(0,), input_sizes=(8,), base=base,
                         prune=PruneCell(base, base, "dense"))
    db, ck = tmp_path / "e.sqlite", tmp_path / "ck"
    _fake_cells(monkeypatch, tmp_path / "log")
    run_sweep(grid(("dense",)), ExperimentStore(db), ck)
    (train,) = ExperimentStore(db).runs(kind="train")
    Path(train["checkpoint"]).unlink()
    _fake_cells(monkeypatch, tmp_path / "log", fail="train/")
    run_sweep(grid(("dense", "hunter")), ExperimentStore(db), ck, retrain_lost=True)
    assert ExperimentStore(db).run(train["run_id"])["status"] != "done"
    import bench.experiments.sweep as sweep

    claims = []

    def spy(cell, *_):
        claims.extend(r[0] for r in sqlite3.connect(db).execute("SELECT run_id FROM claims"))
        return {"val_accuracy": 91.0, "test_accuracy": 89.0, "schedules": None, "state": b"again",
                "steps": [{"step": 0, "val_accuracy": 91.0, "chosen": True}]}
    _fake_cells(monkeypatch, tmp_path / "log")
    monkeypatch.setattr(sweep, "run_train_cell", spy)
    run_sweep(grid(("dense", "hunter")), ExperimentStore(db), ck)  # no flag: nothing recorded done is lost now
    again = ExperimentStore(db).run(train["run_id"])
    assert again["status"] == "done" and again["val_accuracy"] == 91.0 and train["run_id"] in claims
    assert again["config"]["replaced"]["checkpoint_sha256"] == train["checkpoint_sha256"]
