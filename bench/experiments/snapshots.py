"""Mid-cell snapshots: a sweep cell killed part-way (a session's end, a crash) goes on from its
last finished training epoch or pruning step instead of from zero.

pruning's loops hand a state to a callable after each epoch or step (pruning.train.SaveState)
and take one back (`resume`); this module is where the sweep keeps it: one file per cell,
`<checkpoints>/snapshots/<run id>.pt`, written atomically (bench.atomic) with torch.save and
read back with `torch.load(..., weights_only=True)`. The file carries a digest of the cell's
configuration and of what it starts from (the trained model's checkpoint, the reference
accuracy): a snapshot of any other configuration is ignored with a log line, never used. The
sweep removes a cell's snapshot once the cell is recorded done.

>>> import tempfile, torch
>>> folder = Path(tempfile.mkdtemp())
>>> s = cell_snapshot(folder, "train/x/s0", {"seed": 0})
>>> s.save({"epoch": 3, "w": torch.ones(2)})
>>> s.load()["epoch"], cell_snapshot(folder, "train/x/s0", {"seed": 1}).load()
(3, None)
>>> s.remove(); s.load() is None
True
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from ..atomic import atomic_write, clean_stale

log = logging.getLogger(__name__)

FOLDER = "snapshots"  # under the sweep's checkpoints folder
# Part of every digest: a change to what a snapshot holds (pruning.train / pruning.iterative's
# states) bumps it, so that older snapshots are ignored rather than misread.
FORMAT = 1
_NAME_MAX = 150  # a longer run id is shortened and given a digest (file names stop at 255 bytes)


def snapshot_path(folder: str | Path, run_id: str) -> Path:
    """Where a cell's snapshot lives under the checkpoints `folder`.

    >>> snapshot_path("ck", "prune/hunter/s0").as_posix()
    'ck/snapshots/prune_hunter_s0.pt'
    >>> len(snapshot_path("ck", "train/" + "x" * 300).name)
    150
    """
    name = run_id.replace("/", "_")
    if len(name) + 3 > _NAME_MAX:
        tag = hashlib.sha256(run_id.encode()).hexdigest()[:16]
        name = f"{name[:_NAME_MAX - 3 - 17]}-{tag}"
    return Path(folder) / FOLDER / f"{name}.pt"


def clean_snapshots(folder: str | Path) -> None:
    """Remove the temporaries of snapshot writes killed part-way (bench.atomic.clean_stale)."""
    clean_stale(Path(folder) / FOLDER)


@dataclass(frozen=True)
class CellSnapshot:
    """One cell's snapshot file and the digest a snapshot must carry to be used. Picklable: it
    travels to the cell's Ray task, which saves and loads (the driver only removes)."""

    path: Path
    run_id: str
    digest: str

    def with_inputs(self, *inputs: str) -> "CellSnapshot":
        """The same file, valid only for these inputs too (e.g. the starting checkpoint's sha256)."""
        return replace(self, digest=_digest([self.digest, *inputs]))

    def save(self, state: dict) -> None:
        """torch.save the state with this digest, atomically (a kill leaves the previous snapshot).
        A write that fails (a full disk) is logged and the cell goes on: it only loses its resume point."""
        import torch

        buf = io.BytesIO()
        torch.save({"format": FORMAT, "run_id": self.run_id, "digest": self.digest, "state": state}, buf)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, buf.getvalue(), defer=False)
        except (OSError, ValueError) as e:  # bench.atomic's one-line errors are InputErrors (ValueErrors)
            log.warning("%s: its snapshot was not written (%s); the cell goes on", self.run_id, e)

    def load(self) -> dict | None:
        """The saved state, or None: no file, an unreadable one, or one of another configuration."""
        return self.read()[0]

    def read(self) -> tuple[dict | None, str | None]:
        """(the saved state or None, why a snapshot on disk was not used: None when it was, or when there is none).
        The reason is logged here too (in a Ray worker that is its log; the sweep logs it again at the cell's end)."""
        import torch

        if not self.path.is_file():
            return None, None
        try:
            blob = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # a damaged file costs the work since the cell's start, nothing else
            why = f"snapshot {self.path} is unreadable ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        else:
            if isinstance(blob, dict) and blob.get("digest") == self.digest and blob.get("run_id") == self.run_id:
                return blob["state"], None
            why = f"snapshot {self.path} is of another configuration"
        log.warning("%s: %s; ignored, the cell starts over", self.run_id, why)
        return None, why

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def cell_snapshot(folder: str | Path, run_id: str, fields: dict) -> CellSnapshot:
    """The snapshot of the cell `run_id` whose configuration is `fields` (the cell's fields())."""
    return CellSnapshot(snapshot_path(folder, run_id), run_id, _digest([FORMAT, run_id, fields]))


def _digest(parts: list) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
