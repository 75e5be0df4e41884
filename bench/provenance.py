"""What made a result: library versions, machine and git revision."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

SOURCE_SUFFIXES = (".py", ".toml", ".cfg", ".sh", ".ini")
REPOSITORY = Path(__file__).resolve().parent.parent


def in_repository(path: str | Path) -> str:
    """A path as recorded in results: from the repository's root where it lies inside it (it then reads
    the same on every machine), else as given.

    >>> in_repository(REPOSITORY / "results" / "experiments.sqlite")
    'results/experiments.sqlite'
    >>> in_repository("/elsewhere/e.sqlite")
    '/elsewhere/e.sqlite'
    """
    try:
        return Path(path).resolve().relative_to(REPOSITORY).as_posix()
    except ValueError:
        return Path(path).as_posix()


def git_revision(path: str | Path | None = None) -> str:
    """The commit of the checkout this package lives in, '+dirty' when it has changes
    (modified tracked files, or untracked source files that git does not ignore)."""
    cwd = Path(path) if path else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown"
        status = subprocess.run(["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True, timeout=10)
        dirty = any(not line.startswith("??") or line.rstrip().endswith(SOURCE_SUFFIXES) or "/.ci/" in f"/{line[3:]}"
                    for line in status.stdout.splitlines() if line.strip())
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in ("numpy", "torch", "tenseal", "pytest-benchmark", "scipy", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo; else the platform's word for it). Trainings do
    not repeat bit for bit across CPUs, and ratios to a peer move with them."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def provenance() -> dict:
    """Everything a result file records about how it was made."""
    return {
        "git_revision": git_revision(),
        "versions": versions(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
        },
    }
