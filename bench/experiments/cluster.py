"""Starting Ray for a sweep, or joining a cluster, within a bounded time and with one line
when it cannot: a dead `--address` fails in seconds (a TCP probe before Ray's own
connection retries, which ran for minutes), `--address auto` with no cluster running says
so, and a Ray that does not come up is one error naming the reason. A local Ray dies with its
sweep, even a SIGKILLed one (bench/experiments/reaper.py).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from contextlib import contextmanager
from typing import Iterator

from heconv.errors import InputError

from .reaper import ray_pids, start_reaper

PROBE_S = 5.0  # a cluster's head answers a TCP connection at once
JOIN_S = 15  # the most joining a cluster that answered may take
_REAPERS: list = []  # the watchers of the local Rays this process started (kept: they outlive it)


def parse_address(address: str) -> tuple[str, int]:
    """host and port of `host:port` or `ray://host:port` (InputError otherwise).

    >>> parse_address("ray://10.0.0.2:10001"), parse_address("127.0.0.1:6379")
    (('10.0.0.2', 10001), ('127.0.0.1', 6379))
    """
    rest = address.split("://", 1)[1] if "://" in address else address
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--address {address}: expected host:port (or ray://host:port, or auto)")
    return host.strip("[]"), int(port)


def resolve_auto() -> str:
    """The address of the Ray cluster running on this machine, as `ray.init(address="auto")` finds it."""
    try:
        from ray._private.services import get_ray_address_from_environment
    except ImportError:  # Ray moved it: let ray.init find it (and the caller bound the wait)
        return "auto"
    try:
        return get_ray_address_from_environment("auto", None)
    except ConnectionError:
        raise InputError("--address auto: no Ray cluster is running on this machine (start one with "
                         "'ray start --head', or leave --address out for a local Ray)") from None


def probe(address: str, timeout: float = PROBE_S) -> None:
    """Refuse an address where nothing answers a TCP connection within `timeout` seconds."""
    host, port = parse_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        reason = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e)).lower()
        raise InputError(f"--address {address}: no Ray cluster answers there ({reason} within {timeout:g} s)") from None


@contextmanager
def _deadline(seconds: int, address: str) -> Iterator[None]:
    """Interrupt what runs inside after `seconds` (main thread only; elsewhere no limit)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    except TimeoutError:
        raise InputError(f"--address {address}: it answers but did not accept this sweep within {seconds} s "
                         "(is it a Ray cluster of the same version?)") from None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def check_address(address: str | None) -> str | None:
    """The address to join (`auto` resolved), once something answers there; None: a local Ray."""
    if address is None:
        return None
    address = resolve_auto() if address == "auto" else address
    if address != "auto":
        probe(address)
    return address


def start_ray(address: str | None, num_cpus: int | None) -> None:
    """ray.init: a local Ray (`num_cpus`), or the cluster at `address` (checked first)."""
    if address is not None:  # joining: its C++ retries' warnings are not our one line (a local start is quiet
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # without it, and the setting itself logs a line)
    import ray

    if ray.is_initialized():
        return
    address = check_address(address)
    options = dict(num_cpus=num_cpus if address is None else None, include_dashboard=False, log_to_driver=False,
                   configure_logging=False)
    try:
        if address is None:
            # Ray starts its workers 15 levels nicer than the sweep (RAY_worker_niceness): the workers do all
            # of a sweep's work, so they keep the niceness the user gave the sweep (`nice -n 10 artemis sweep`)
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(**options)
            reaper = start_reaper(ray_pids())  # only the processes this ray.init started
            if reaper is not None:
                _REAPERS.append(reaper)
        else:
            with _deadline(JOIN_S, address):
                ray.init(address=address, **options)
    except InputError:
        raise
    except Exception as e:  # e.g. a local Ray that cannot start under a memory limit
        lines = [line for line in str(e).splitlines() if line.strip()]
        where = f" at {address}" if address else ""
        raise InputError(f"Ray did not start{where}: {type(e).__name__}: {lines[-1] if lines else ''}".rstrip(": ")
                         ) from None
