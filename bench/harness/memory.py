"""Refuse work that cannot fit: the memory a plan's encoded plaintexts need against what
the machine has, checked before any plaintext is encoded."""

from __future__ import annotations

import os
from pathlib import Path

from heconv.errors import InputError


def available_memory() -> int:
    """Bytes of memory this machine can still give (MemAvailable), or its total when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(what: str, need: int, have: int | None = None) -> None:
    """Refuse work whose estimated memory exceeds what the machine has, naming both figures."""
    have = available_memory() if have is None else have
    if need > have:
        raise InputError(f"{what} needs about {need / 2**30:.1f} GiB of encoded plaintexts, "
                         f"this machine has {have / 2**30:.1f} GiB available")
