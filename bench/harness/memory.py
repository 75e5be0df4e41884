"""Refuse work that cannot fit, before SEAL allocates: a plan's estimated memory (keys,
plaintexts, ciphertexts, per worker) against the least this process may still take, of
free RAM, its own address-space limit (RLIMIT_AS, `ulimit -v`) and its cgroup's memory.max.

Why refuse up front: SEAL's memory pool does not recover from a failed allocation (under
`ulimit -v` it spun for over ten minutes, deaf to Ctrl-C), so it must never reach one.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from heconv.errors import InputError

# Address space a process takes beyond its data (allocator arenas, thread stacks, the
# pool's slack): RLIMIT_AS counts reservations, so the estimate gets this much on top.
AS_OVERHEAD = 1.25
AS_SLACK = 128 << 20


def _meminfo(key: str, path: str = "/proc/meminfo") -> int | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def free_ram() -> int:
    """Bytes of memory this machine can still give (MemAvailable), or its total when unknown."""
    avail = _meminfo("MemAvailable")
    return avail if avail is not None else os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def address_space_left() -> int | None:
    """Bytes of address space left under RLIMIT_AS (None: unlimited)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    used = _meminfo("VmSize", "/proc/self/status") or 0
    return max(0, soft - used)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return None if text in ("max", "") or not text.isdigit() else int(text)


def cgroup_memory_left(root: Path = Path("/sys/fs/cgroup"), proc: Path = Path("/proc/self/cgroup")) -> int | None:
    """Bytes the cgroups this process runs in still allow (v2 memory.max - memory.current up
    the hierarchy, or v1 limit_in_bytes - usage_in_bytes); None when nothing limits it."""
    try:
        lines = proc.read_text().splitlines()
    except OSError:
        return None
    left: list[int] = []
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if controllers == "":  # cgroup v2: every level up to the root may set a limit
            folder = root / rel.lstrip("/")
            while True:
                limit, current = _read_int(folder / "memory.max"), _read_int(folder / "memory.current")
                if limit is not None:
                    left.append(limit - (current or 0))
                if folder == root or root not in folder.parents:
                    break
                folder = folder.parent
        elif "memory" in controllers.split(","):
            folder = root / "memory" / rel.lstrip("/")
            limit = _read_int(folder / "memory.limit_in_bytes")
            if limit is not None and limit < 1 << 60:  # v1 writes a huge number for "no limit"
                left.append(limit - (_read_int(folder / "memory.usage_in_bytes") or 0))
    return max(0, min(left)) if left else None


def memory_room(need: int) -> tuple[int, str]:
    """The least room among free RAM, the address-space limit (given `need`'s overhead there)
    and the cgroup's limit, as (bytes comparable with `need`, what sets it)."""
    rooms = [(free_ram(), "free RAM")]
    cgroup = cgroup_memory_left()
    if cgroup is not None:
        rooms.append((cgroup, "its cgroup's memory.max"))
    space = address_space_left()
    if space is not None:  # what `need` may be, once the allocator's overhead is counted
        rooms.append((max(0, int((space - AS_SLACK) / AS_OVERHEAD)), "its address-space limit RLIMIT_AS, ulimit -v"))
    return min(rooms)


def reset_peak_rss() -> bool:
    """Start this process's peak resident memory (VmHWM) afresh at its current size, so that a record's
    peak is its own model's or layer's, not the largest of everything the process ran before (Linux:
    /proc/self/clear_refs "5"). Memory SEAL's pool kept from earlier work stays resident and counts.
    False where the kernel does not offer it: peaks are then the process's since it started."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """This process's peak resident memory since the last reset_peak_rss (or since it started).

    >>> peak_rss_bytes() > 0
    True
    """
    hwm = _meminfo("VmHWM", "/proc/self/status")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def plan_bytes(plaintext_bytes: int, plaintexts: int, keys: int = 0, ciphertexts: int = 0, workers: int = 1) -> int:
    """What a plan holds: its plaintexts, its Galois keys (about 2(L+1) plaintexts each, L the
    data primes: take 8) and its live ciphertexts (two polynomials each), per worker.

    >>> plan_bytes(1000, plaintexts=10, keys=1, ciphertexts=2, workers=2)
    26000
    """
    return plaintext_bytes * (plaintexts + 8 * keys + 2 * ciphertexts * max(1, workers))


def check_memory(what: str, need: int, have: int | None = None) -> None:
    """Refuse work whose estimated memory exceeds what this process may still take, naming both
    figures and what limits it.

    >>> check_memory("layer conv1", 3 << 30, have=2 << 30)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    heconv.errors.InputError: layer conv1 needs about 3.0 GiB (keys, plaintexts, ciphertexts); this process ...
    """
    room, reason = (have, "given") if have is not None else memory_room(need)
    if need > room:
        raise InputError(f"{what} needs about {_size(need)} (keys, plaintexts, ciphertexts); "
                         f"this process may take {_size(room)} more ({reason})")


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def available_memory() -> int:
    """The room memory_room finds (kept for callers that only want the figure)."""
    return memory_room(0)[0]
