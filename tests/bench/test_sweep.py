"""`artemis sweep` on a tiny grid on local Ray: killed midway, the rerun finishes only the missing cells."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from bench.experiments.store import ExperimentStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _sweep(tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bench.cli", "sweep", "--models", "small-cnn", "--dataset", "digits",
            "--input-sizes", "8", "--subset", "300", "--epochs", "2", "--methods", "dense,artemis-diagonal",
            "--seeds", "0,1", "--lambdas-d", "0.5", "--finetune-epochs", "1", "--num-cpus", "1",
            "--db", str(tmp_path / "e.sqlite"), "--checkpoints", str(tmp_path / "ck"), *extra]


def _env() -> dict:
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}


def test_killed_sweep_resumes_only_the_missing_cells(tmp_path):
    db_path = tmp_path / "e.sqlite"
    proc = subprocess.Popen(_sweep(tmp_path), cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 240
    done_before: dict[str, float] = {}
    try:
        while time.time() < deadline and proc.poll() is None:
            if db_path.exists():
                done_before = {r["run_id"]: r["finished"] for r in ExperimentStore(db_path).runs(kind="prune",
                                                                                                  status="done")}
                if done_before:
                    break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert done_before, "no cell finished within the time limit"
    db = ExperimentStore(db_path)
    prune_runs = {r["run_id"]: r for r in db.runs(kind="prune")}
    trains = {r["run_id"]: r["checkpoint_sha256"] for r in db.runs(kind="train", status="done")}
    for row in (r for r in prune_runs.values() if r["status"] == "done"):  # pruned from these bytes
        assert row["config"]["parents_sha256"] == {"train": trains[row["config"]["train"]],
                                                   "reference": trains[row["config"]["reference"]]}
    unfinished = [r for r, row in prune_runs.items() if row["status"] != "done"]
    if not unfinished:
        pytest.skip("the sweep finished every cell before it could be killed")
    out = subprocess.run(_sweep(tmp_path), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    after = {r["run_id"]: r for r in ExperimentStore(db_path).runs(kind="prune")}
    assert len(after) == 4 and all(r["status"] == "done" for r in after.values())
    done_now = [rid for rid, row in after.items() if rid in done_before and row["finished"] == done_before[rid]]
    assert sorted(done_now) == sorted(done_before)  # finished cells were not run again
    skipped = len([rid for rid, row in prune_runs.items() if row["status"] == "done"])
    assert f"{skipped} already done (of 4)" in out.stdout
    assert len(ExperimentStore(db_path).export_rows()) >= 4
    # A third run has nothing to do.
    again = subprocess.run(_sweep(tmp_path), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert "0 cells done, 0 failed, 4 already done" in again.stdout


def test_an_unknown_model_fails_before_any_cell(tmp_path):
    # The grid is checked before Ray starts (a failing cell's record and exit code:
    # tests/bench/test_faults_runs.py, with cells that fail on purpose).
    cmd = _sweep(tmp_path)
    cmd[cmd.index("small-cnn")] = "small-cnn,no-such-model"
    out = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "artemis sweep: error: sweep --models: got 'no-such-model'; expected models from resnet18, resnet50, "
        "resnet20, small-cnn, small-cnn-square"]
    assert os.listdir(tmp_path) == []


def test_a_sweeps_ray_workers_keep_the_sweeps_niceness(tmp_path):
    """Ray would start its workers 15 levels nicer than the driver: below whatever else runs."""
    code = ("import os, ray\n"
            "from bench.experiments.cluster import start_ray\n"
            "start_ray(None, 1)\n"
            "print(os.nice(0), ray.get(ray.remote(lambda: os.nice(0)).remote()))\n"
            "ray.shutdown()\n")
    env = {k: v for k, v in _env().items() if k != "RAY_worker_niceness"}
    out = subprocess.run(["nice", "-n", "3", sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    driver, worker = map(int, out.stdout.split()[-2:])
    assert worker == driver >= 3
