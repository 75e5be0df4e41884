"""The one atomic-write helper: nothing half-written is ever left behind, and a write that
fails (full disk, read-only mount, no permission) is one error naming the path.

- `atomic_write`: a temporary file beside the target (named for this process), then a rename;
  inside `outputs_together()` the rename waits for the end of the command.
- `outputs_together()`: every `atomic_write` (and deferred step) inside it is put in place
  together at the end; on an error, Ctrl-C or any other exception none of them appears.
- `temporary(path)`: the name such a temporary gets; a process killed outright leaves only
  those, and `clean_stale` removes them (and their SQLite journals) on the next run.
- `write_error`, `check_space`: the one-line errors a user can act on.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterator

from heconv.errors import InputError

_TMP = re.compile(r"^\..+\.artemis-(\d+)-[0-9a-f]+\.tmp(-journal|-wal|-shm)?$")
# Inside outputs_together(): the steps that put the held-back outputs in place.
_PENDING: ContextVar[list[tuple[Path | None, Callable[[], None]]] | None] = ContextVar("pending", default=None)
SPACE_MARGIN = 1 << 20  # bytes kept free beyond what a write needs


def temporary(path: Path) -> Path:
    """The temporary beside `path` that this process writes first (clean_stale knows its name).

    >>> import re; bool(_TMP.match(temporary(Path("/x/model.pt")).name))
    True
    """
    return path.parent / f".{path.name}.artemis-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def write_error(path: str | Path, e: OSError) -> InputError:
    """A failed write as one line naming the path and the reason, e.g. a full disk.

    >>> str(write_error("/r/a.csv", OSError(errno.ENOSPC, "No space left on device")))
    'cannot write /r/a.csv: no space left on device (ENOSPC)'
    """
    reason = (e.strerror or str(e) or type(e).__name__).rstrip(".")
    code = errno.errorcode.get(e.errno, "") if e.errno else ""
    return InputError(f"cannot write {path}: {reason[:1].lower() + reason[1:]}" + (f" ({code})" if code else ""))


def check_space(path: str | Path, nbytes: int) -> None:
    """Refuse a write of `nbytes` into `path`'s file system when it has less free space."""
    folder = next((p for p in [Path(path).parent, *Path(path).parents] if p.exists()), None)
    if folder is None:
        return
    free = shutil.disk_usage(folder).free
    if nbytes + SPACE_MARGIN > free:
        raise InputError(f"cannot write {path}: it needs {_mib(nbytes)} and {folder} has {_mib(free)} free")


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def _defer(tmp: Path | None, step: Callable[[], None]) -> None:
    pending = _PENDING.get()
    if pending is None:
        step()
    else:
        pending.append((tmp, step))


def atomic_write(path: str | Path, data: bytes, defer: bool = True) -> None:
    """Write `data` to `path` (mode 0644) through a temporary file in the same folder and a rename
    (inside outputs_together() the rename waits for the end, unless `defer` is False)."""
    path = Path(path)
    tmp = temporary(path)
    try:
        check_space(path, len(data))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise write_error(path, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

    put_in_place(tmp, path, defer)


def put_in_place(tmp: Path, path: Path, defer: bool = True) -> None:
    """Rename a finished temporary onto `path` (inside outputs_together(): at its end, unless not `defer`)."""
    def place() -> None:
        try:
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise write_error(path, e) from None

    if defer:
        _defer(tmp, place)
    else:
        place()


def defer(step: Callable[[], None]) -> None:
    """Run `step` when the outputs are put in place (now, outside outputs_together())."""
    _defer(None, step)


@contextlib.contextmanager
def outputs_together() -> Iterator[None]:
    """Hold back every output written inside; put them all in place at the end, or none."""
    pending: list[tuple[Path | None, Callable[[], None]]] = []
    token = _PENDING.set(pending)
    try:
        yield
    except BaseException:
        for tmp, _ in pending:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        raise
    finally:
        _PENDING.reset(token)
    for i, (_, step) in enumerate(pending):
        try:
            step()
        except BaseException:
            for tmp, _ in pending[i + 1:]:
                if tmp is not None:
                    tmp.unlink(missing_ok=True)
            raise


def clean_stale(*folders: str | Path) -> list[Path]:
    """Remove temporaries (and their SQLite journals) left by processes that no longer run."""
    removed = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        try:
            names = list(folder.iterdir())
        except OSError:
            continue
        for p in names:
            m = _TMP.match(p.name)
            if m and not process_alive(int(m.group(1))):
                try:
                    p.unlink(missing_ok=True)
                except OSError:
                    continue
                removed.append(p)
    return removed


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
