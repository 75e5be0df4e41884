"""A local Ray that dies with the sweep that started it, even when the sweep is SIGKILLed.

Ray's own fate-sharing (PR_SET_PDEATHSIG on the processes `ray.init` starts) ends the GCS, the
raylet, the monitor and the log monitor at once, and the task workers follow within about 2 s;
but the raylet's agents (ray::DashboardAgent, ray::RuntimeEnvAgent) notice their raylet is gone
and then spend about a minute (more on a loaded machine) trying to report it to the dead GCS.

So, once a local Ray is up, the sweep starts this small watcher (`python
bench/experiments/reaper.py DRIVER ROOT...`, the ROOTs being the pids of the Ray processes
`ray.init` started). While the driver lives, it notes every descendant of the ROOTs, each by pid
and start time (agents and workers, whose parent, the raylet, may die first). When the driver
is gone (the watcher's parent changes), it SIGKILLs those of them still running, the same
processes by start time (never a reused pid), and exits. It never looks at any other process,
so a cluster given by `--address`, or another sweep's Ray, is never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

INTERVAL_S = 0.25  # how often the watcher looks (its cost: one /proc scan)


def parse_stat(text: str) -> tuple[int, int]:
    """(parent pid, start time in clock ticks) from a /proc/PID/stat line.

    The command name, in parentheses, may hold spaces and parentheses itself.

    >>> parse_stat("4242 (ray::Dashboard Agent)) S 4200 4242 4200 0 -1 4194560 1 0 0 0 "
    ...            "0 0 0 0 20 0 1 0 987654 0 0")
    (4200, 987654)
    """
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[19])


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, start time) of every process now running (zombies left out)."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    text = f.read()
            except OSError:  # it ended meanwhile
                continue
            if text.rsplit(")", 1)[1].split()[0] != "Z":
                table[int(name)] = parse_stat(text)
    return table


def descendants(roots: set[int], table: dict[int, tuple[int, int]]) -> dict[int, int]:
    """pid -> start time of the `roots` still running and of all their descendants.

    >>> descendants({10}, {10: (1, 5), 11: (10, 6), 12: (11, 7), 13: (1, 8)})
    {10: 5, 11: 6, 12: 7}
    """
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found[pid] = table[pid][1]
            todo += children.get(pid, [])
    return found


def watch(driver: int, roots: set[int], interval: float = INTERVAL_S) -> int:
    """Note the descendants of `roots` while `driver` (our parent) lives, then kill those
    still running; returns how many were killed (none when they all ended first)."""
    me = os.getpid()
    known = descendants(roots, process_table())  # pid -> start time: a reused pid is not ours
    while os.getppid() == driver:
        time.sleep(interval)
        table = process_table()
        now = descendants(_same(known, table), table)
        now.pop(me, None)
        if not now:  # all ended (ray.shutdown): nothing can start under them any more
            return 0
        known.update(now)
    table = process_table()
    doomed = set(descendants(_same(known, table), table)) - {me}  # and any child started since the last look
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)  # the agents would spend a minute on a dead GCS otherwise
        except OSError:
            pass
    return len(doomed)


def _same(known: dict[int, int], table: dict[int, tuple[int, int]]) -> set[int]:
    """The pids of `known` that still run the same process (same start time).

    >>> _same({10: 5, 11: 6}, {10: (1, 5), 11: (1, 99)})
    {10}
    """
    return {pid for pid, start in known.items() if pid in table and table[pid][1] == start}


def ray_pids() -> set[int]:
    """The pids of the processes the local `ray.init` of this process started (empty when it
    started none, e.g. when it joined a cluster)."""
    import ray

    node = getattr(ray._private.worker, "_global_node", None)
    processes = getattr(node, "all_processes", None) or {}
    return {info.process.pid for infos in processes.values() for info in infos if info.process is not None}


def start_reaper(roots: set[int]) -> subprocess.Popen | None:
    """Start the watcher over the Ray processes `roots` of this (driver) process; None: no roots."""
    if not roots or not sys.platform.startswith("linux"):
        return None
    # Run as a file, not `-m bench...`: nothing but the standard library to import, from any folder.
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), str(os.getpid()), *map(str, sorted(roots))],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            close_fds=True)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: outlive the driver
    driver, *roots = map(int, argv)
    watch(driver, set(roots))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
