"""A SIGKILLed sweep leaves no local Ray process behind (bench/experiments/reaper.py): its agents
used to spend about a minute on the dead GCS; now every process of its Ray is gone within
seconds, and the next sweep on the database finishes the cells."""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.experiments.reaper import descendants, process_table

ROOT = Path(__file__).resolve().parents[2]
LIMIT_S = 15.0


def _running(pids: dict[int, int]) -> dict[int, int]:
    """Those of `pids` (pid -> start time) still running the same process, zombies aside."""
    table = process_table()
    return {p: s for p, s in pids.items() if p in table and table[p][1] == s}


def _wait_gone(pids: dict[int, int], limit: float) -> tuple[dict[int, int], float]:
    start = time.time()
    while _running(pids) and time.time() - start < limit:
        time.sleep(0.1)
    return _running(pids), time.time() - start


def test_the_watcher_kills_the_tree_of_a_killed_driver_and_nothing_else(tmp_path):
    # A driver starts a process tree (a child, and a grandchild that the child leaves behind, as
    # the raylet leaves its agents) plus a bystander, then the watcher over the child only.
    driver = textwrap.dedent(f"""
        import subprocess, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from bench.experiments.reaper import start_reaper
        sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
        child = subprocess.Popen([sys.executable, "-c",
            "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); time.sleep(60)", *sleeper])
        bystander = subprocess.Popen(sleeper)
        start_reaper({{child.pid}})
        time.sleep(1.0)
        print(child.pid, bystander.pid, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        child, bystander = map(int, proc.stdout.readline().split())
        tree = descendants({child}, process_table())
        assert len(tree) == 2  # the child and its grandchild
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        left, _ = _wait_gone(tree, 5.0)
        assert not left
        assert _running(descendants({bystander}, process_table()))  # not one of the watched
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # our own session only
        proc.stdout.close()


@pytest.mark.slow
def test_a_sigkilled_sweep_leaves_no_ray_process_and_the_next_one_resumes(tmp_path):
    pytest.importorskip("ray")
    from bench.experiments.store import ExperimentStore

    db_path = tmp_path / "e.sqlite"
    cmd = [sys.executable, "-m", "bench.cli", "sweep", "--models", "small-cnn", "--dataset", "digits",
           "--input-sizes", "8", "--subset", "300", "--epochs", "3", "--methods", "dense,artemis-diagonal",
           "--seeds", "0", "--lambdas-d", "0.5", "--finetune-epochs", "1", "--num-cpus", "1",
           "--db", str(db_path), "--checkpoints", str(tmp_path / "ck")]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    seen: dict[int, int] = {}
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:  # until a task runs in a Ray worker
            tree = descendants({proc.pid}, process_table())
            tree.pop(proc.pid)
            seen.update(tree)
            cmdlines = [_cmdline(p) for p in tree]
            if any(c.startswith("ray::run_") for c in cmdlines) and any("Agent" in c for c in cmdlines):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the sweep ended before a cell ran"
        assert len(seen) >= 6, seen  # gcs, raylet, agents, a worker, the watcher...
        os.kill(proc.pid, signal.SIGKILL)  # the driver only, as the OOM killer would
        proc.wait()
        left, took = _wait_gone(seen, LIMIT_S)
        assert not left, {p: _cmdline(p) for p in left}
        print(f"all {len(seen)} Ray processes of the killed sweep gone in {took:.1f} s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers of our own session, if the test failed
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = ExperimentStore(db_path).runs(kind="prune")
    assert len(runs) == 2 and all(r["status"] == "done" for r in runs)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read().replace("\0", " ")
    except OSError:
        return ""
