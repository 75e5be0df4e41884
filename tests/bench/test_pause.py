"""Sweeps pause while a timing run measures: the file, its staleness, the worker's wait, the bench."""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import bench.experiments.pause as pause
from bench.cli.bench import run as bench_run
from bench.experiments.progress import CellReporter


class _Box:
    def __init__(self):
        self.got = []
        self.put = self

    def remote(self, item):
        self.got.append(item)


def test_a_worker_waits_while_a_live_pauser_holds_the_file(tmp_path, monkeypatch):
    f = tmp_path / "pause"
    monkeypatch.setenv("ARTEMIS_PAUSE_FILE", str(f))
    monkeypatch.setattr(pause, "POLL_S", 0.02)
    box = _Box()
    reporter = CellReporter(box, "train/x", units=1)
    with pause.paused(idle=0.0):
        assert pause.pause_requested()
        t = threading.Thread(target=reporter, args=(1, 2, {}))
        t.start()
        time.sleep(0.3)
        assert t.is_alive() and box.got == []  # parked at its progress call
    t.join(5)
    assert not t.is_alive() and len(box.got) == 1 and list(tmp_path.iterdir()) == []


def test_two_holders_never_release_each_others_pause(tmp_path):
    """A demo's encrypted runs inside an `artemis bench` (or a nested hold): the sweeps wait until the last
    holder lets go."""
    f = tmp_path / "pause"
    with pause.paused(f, idle=0.0):
        with pause.paused(f, idle=0.0):
            assert pause.pause_requested(f)
        assert pause.pause_requested(f)  # the inner hold's exit left the outer one standing
    assert not pause.pause_requested(f) and list(tmp_path.iterdir()) == []


def test_a_killed_holders_file_is_ignored_and_cleared_by_the_next_holder(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    f = tmp_path / "pause"
    stale = tmp_path / "pause.1-2"
    stale.write_text(dead.stdout)
    assert not pause.pause_requested(f)
    with pause.paused(f, idle=0.0):
        assert pause.pause_requested(f) and not stale.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_dead_pausers_file_pauses_nothing(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    f = tmp_path / "pause"
    f.write_text(dead.stdout)
    assert not pause.pause_requested(f)
    assert pause.wait_while_paused(f) < 0.1
    f.write_text(f"{os.getpid()}\n")
    assert pause.pause_requested(f)


def test_artemis_bench_holds_the_pause_during_its_passes(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTEMIS_PAUSE_FILE", str(tmp_path / "pause"))
    monkeypatch.setattr(pause, "IDLE_TARGET", 0.0)
    seen = []

    def runner(args):
        seen.append(pause.pause_requested())
        opt = {k: args[i + 1] for i, k in enumerate(args) if k.startswith("--") and i + 1 < len(args)}
        storage = Path(opt["--benchmark-storage"].removeprefix("file://"))
        data = {"benchmarks": [{"name": "a", "fullname": "bench/test_layers.py::a", "group": None,
                                "stats": {"min": 1.0, "median": 1.0}, "extra_info": {}}],
                "datetime": "2026-12-06T00:00:00+00:00", "artemis": {"pass": {"name": opt["--artemis-pass"]}}}
        from bench.harness.passes import store_run

        store_run(storage, f"abc-full-{opt['--artemis-run']}-{opt['--artemis-pass']}", json.dumps(data).encode())
        return 0

    args = argparse.Namespace(tests=[], passes=2, seed=1, retries=0, markexpr=None, keyword=None, pruned=None,
                              storage=str(tmp_path / "b"))
    result = bench_run(args, runner)
    assert seen == [True, True] and not pause.pause_requested()
    merged = json.loads(Path(result["merged"]).read_text())["artemis"]["merged"]
    assert merged["sweeps_paused"] is True and merged["idle_share_at_start"] is not None
    seen.clear()
    bench_run(argparse.Namespace(**{**vars(args), "pause": False, "storage": str(tmp_path / "c")}), runner)
    assert seen == [False, False]


def test_the_bench_and_the_encrypted_runs_say_when_the_wait_for_idle_cpus_gave_up(monkeypatch):
    from bench.cli.bench import render
    from bench.cli.results import _render_encrypt

    monkeypatch.setattr(pause, "IDLE_TARGET", 0.9)  # the test session's own fixture starts at once

    bench = {"passes": ["p1"], "seed": 0, "suite": "full", "cases": 1, "merged": "m", "canary_reference_s": None}
    assert "CPUs 95% idle at the start):" in render({**bench, "idle_share_at_start": 0.95})
    assert "short of the 90%" not in render({**bench, "idle_share_at_start": 0.95})
    assert "40% idle at the start, short of the 90% the wait asks for" in render({**bench, "idle_share_at_start": 0.4})
    assert "sweeps not paused" in render({**bench, "idle_share_at_start": None})
    measured = [{"run": "r", "rotations": 3, "server_s": 1.0, "top1_agreement": 1.0}]
    said = _render_encrypt({"measured": measured, "idle_share_at_start": 0.5}).splitlines()
    assert said[-1].startswith("timed with sweeps paused, CPUs 50% idle") and "gave up after 60 s" in said[-1]
    assert _render_encrypt({"measured": [], "idle_share_at_start": None}) == "nothing to measure"
    # a result is read against the target it was timed under (recorded), not today's
    assert "short of" not in render({**bench, **pause.idle_record(0.6), "idle_target": 0.5})
    assert pause.idle_record(0.4) == {"sweeps_paused": True, "idle_share_at_start": 0.4, "idle_target": 0.9,
                                      "idle_wait_s": pause.IDLE_WAIT_S}
