"""Pausing the sweeps of this host while a timing run measures.

A timing run (`artemis bench`, `artemis results encrypt`, the demo's encrypted runs) holds
`paused()`: it writes its own file beside the host's pause file (`<pause file>.<pid>-<ns>`, its pid
in it), waits until the CPUs are idle, measures, and removes its file. Every sweep worker calls
`wait_while_paused()` at each progress call (each training batch, each pruning step) and waits
there while any such file stands, so its cell goes on where it stopped: nothing is lost or redone.
One file per holder: two timing runs at once never release each other's pause. A file whose writer
has died is stale and ignored, so a killed timing run pauses nothing. The files are host-wide (the
CPUs are), `ARTEMIS_PAUSE_FILE` moves them (tests do).

>>> import os, tempfile
>>> f = os.path.join(tempfile.mkdtemp(), "pause")
>>> with paused(f, idle=0.0) as idle:
...     pause_requested(f)
True
>>> pause_requested(f)
False
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator

POLL_S = 0.5  # how often a parked worker looks at the file again
IDLE_TARGET = 0.9  # the idle share of the CPUs that starts the measurements (2 cores: both nearly idle)
IDLE_WAIT_S = 60.0  # the longest wait for it: a worker parks at its next batch (a pruning step's fine-tune too)


def pause_file() -> Path:
    """The host's pause file (ARTEMIS_PAUSE_FILE, or artemis-sweeps.pause in the temporary folder)."""
    return Path(os.environ.get("ARTEMIS_PAUSE_FILE") or Path(tempfile.gettempdir()) / "artemis-sweeps.pause")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _holder(p: Path) -> Path:
    """This hold's own file (one per `paused()` call, a nested one in the same process too)."""
    return p.with_name(f"{p.name}.{os.getpid()}-{time.monotonic_ns()}")


def _holders(p: Path) -> dict[Path, bool]:
    """The pause file and every holder's file beside it, each with whether its pid is alive (an
    unreadable or half-written file: not alive)."""
    try:
        files = [p, *p.parent.glob(f"{p.name}.*")]
    except OSError:
        return {}
    out = {}
    for f in files:
        try:
            out[f] = _alive(int(f.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            out[f] = False
    return out


def pause_requested(path: str | Path | None = None) -> bool:
    """Whether a live process asks the sweeps to pause: the pause file itself or a holder's file beside
    it names a live pid (a stale or unreadable file asks nothing)."""
    return any(_holders(Path(path) if path is not None else pause_file()).values())


def wait_while_paused(path: str | Path | None = None, poll_s: float = POLL_S) -> float:
    """Wait while a pause is requested; the seconds waited (0.0 at once when none is)."""
    start = time.monotonic()
    while pause_requested(path):
        time.sleep(poll_s)
    return time.monotonic() - start


def cpu_idle_share(window_s: float = 1.0) -> float:
    """The share of the host's CPU time that was idle over `window_s` (from /proc/stat; 1.0 where
    the host has no /proc/stat, so that the wait ends at once)."""
    def sample() -> tuple[int, int] | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except (OSError, ValueError):
            return None
        return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields)  # idle + iowait, total

    a = sample()
    time.sleep(window_s)
    b = sample()
    if a is None or b is None or b[1] == a[1]:
        return 1.0
    return (b[0] - a[0]) / (b[1] - a[1])


def idle_record(share: float | None) -> dict:
    """What a timed result records of its wait (`paused`'s share; None: sweeps not paused), with the target
    and the longest wait it ran under, so that it is read later against those and not today's.

    >>> idle_record(0.95)["idle_target"]
    0.9
    """
    return {"sweeps_paused": share is not None, "idle_share_at_start": share, "idle_target": IDLE_TARGET,
            "idle_wait_s": IDLE_WAIT_S}


def idle_words(share: float | None, target: float | None = None, wait_s: float | None = None) -> str:
    """How idle the CPUs were when a paused measurement started, in words (None: sweeps not paused);
    a share short of the target (IDLE_TARGET unless recorded) means the wait gave up after `wait_s`
    (IDLE_WAIT_S) and the host was busy.

    >>> idle_words(0.93)
    'sweeps paused, CPUs 93% idle at the start'
    >>> idle_words(0.4)
    'sweeps paused, CPUs 40% idle at the start, short of the 90% the wait asks for: it gave up after 60 s'
    >>> idle_words(0.85, target=0.8)
    'sweeps paused, CPUs 85% idle at the start'
    >>> idle_words(None)
    'sweeps not paused'
    """
    if share is None:
        return "sweeps not paused"
    target = IDLE_TARGET if target is None else target
    wait_s = IDLE_WAIT_S if wait_s is None else wait_s
    short = f", short of the {target:.0%} the wait asks for: it gave up after {wait_s:g} s" if share < target else ""
    return f"sweeps paused, CPUs {share:.0%} idle at the start{short}"


@contextmanager
def paused(path: str | Path | None = None, idle: float | None = None,
           timeout_s: float | None = None) -> Iterator[float]:
    """Pause the host's sweeps for the block; yields the idle share reached before it (the wait ends
    at `idle` (IDLE_TARGET) or after `timeout_s` (IDLE_WAIT_S): a busy host is then measured as it
    is, and the caller records the share)."""
    p = Path(path) if path is not None else pause_file()
    idle = IDLE_TARGET if idle is None else idle
    timeout_s = IDLE_WAIT_S if timeout_s is None else timeout_s
    for f, alive in _holders(p).items():
        if not alive and f != p:  # a killed holder's file (SIGKILL skips the cleanup below)
            with suppress(OSError):  # gone meanwhile, or another user's
                f.unlink()
    mine = _holder(p)
    tmp = p.with_name(f".{mine.name}")  # hidden: pause_requested never reads it half-written
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, mine)  # whole or absent: a worker never reads half a pid
    try:
        deadline, share = time.monotonic() + timeout_s, 0.0
        while True:
            share = cpu_idle_share() if idle > 0 else 1.0
            if share >= idle or time.monotonic() >= deadline:
                break
        yield share
    finally:
        mine.unlink(missing_ok=True)
