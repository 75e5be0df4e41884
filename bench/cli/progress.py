"""Drawing a sweep's progress (bench.experiments.progress) on stderr.

In a terminal: one bar whose total is the work that will run (training epochs and pruning
steps of the cells not yet done), its text naming the cell and where it stands. Outside a
terminal: one line per stage (a cell's epoch or step, a cell done, each of the demo's later
stages). Reused cells are announced in both. Ray's own notices are kept quiet unless -v.
"""

from __future__ import annotations

import logging
import sys
import time


def short(run_id: str) -> str:
    """A cell's name as the progress shows it.

    >>> short("prune/hunter/threshold/d1/f1/q3c1d2e/p2/resnet20/fashion-mnist/16/n6000/N8192/output-rotation/"
    ...       "proximal/lp0/ld0/s0/e6")
    'prune hunter s0'
    >>> short("train/resnet20/fashion-mnist/16/n6000/N8192/output-rotation/proximal/lp0/ld0.3/s0/e6")
    'train resnet20 ld0.3 s0'
    """
    parts = run_id.split("/")
    seed = next((p for p in reversed(parts) if p.startswith("s") and p[1:].isdigit()), "")
    if parts[0] == "prune":
        return f"prune {parts[1]} {seed}"
    lams = [p for p in parts if p[:2] in ("lp", "ld") and p[2:] not in ("0", "")]
    return " ".join(["train", parts[1], *lams, seed])


class SweepView:
    """say(text) for a stage, progress(done, total, info) for the sweep's events."""

    def __init__(self, desc: str, verbose: bool = False, stream=None) -> None:
        self.desc, self.verbose = desc, verbose
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.bar = None
        self._last_line: dict[str, str] = {}
        self._start = time.monotonic()

    def __enter__(self) -> "SweepView":
        if not self.verbose:
            quiet_ray()
        return self

    def _bar(self, total: float):
        """The terminal's bar, made at the first figure of work (a bar of nothing draws nothing)."""
        if self.bar is None and self.tty and total > 0:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, file=self.stream, dynamic_ncols=True,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} epochs and steps "
                                       "[{elapsed}<{remaining}] {postfix}")
        return self.bar

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(f"[{time.monotonic() - self._start:6.0f}s] {text}", file=self.stream, flush=True)

    def say(self, text: str) -> None:
        """A stage: a line outside a terminal, the bar's text in one."""
        if self.bar is not None:
            self.bar.set_postfix_str(text)
        else:
            self._line(text)

    def progress(self, done: float, total: float, info: dict) -> None:
        event = info.get("event")
        if event == "reused":
            if info["cells"] or info["trained"]:
                self._line(f"{self.desc}: reusing {len(info['cells'])} finished pruning cell(s) and "
                           f"{len(info['trained'])} trained model(s) from the database"
                           + (": " + ", ".join(short(c) for c in [*info["cells"], *info["trained"]])
                              if self.verbose else ""))
            return
        cell = short(info["cell"])
        if event == "running":
            unit = "epoch" if info["cell"].startswith("train/") else "step"
            text = f"{cell}: {unit} {info['cell_done']:.0f}/{info['cell_total']}"
            if "resumed" in info:  # a killed cell going on from its snapshot (bench.experiments.snapshots)
                text = f"{cell}: resumed from its snapshot after {unit} {info['resumed']}/{info['cell_total']}"
                self._last_line[info["cell"]] = text  # said once, here, in a terminal too
                self._line(f"{text} ({done:.0f}/{total:.0f} units of the sweep)")
            if "accuracy" in info:
                text += f", val {info['accuracy']:.2f}, {info.get('rotations', '?')} rotations"
        else:
            text = f"{cell}: {'done' if event == 'cell-done' else 'FAILED'}"
        if self._bar(total) is not None:
            self.bar.total = total
            self.bar.n = done
            self.bar.set_postfix_str(text)
        elif event != "running" or float(info["cell_done"]).is_integer():
            if self._last_line.get(info["cell"]) != text:  # one line per finished epoch or step
                self._last_line[info["cell"]] = text
                self._line(f"{text} ({done:.0f}/{total:.0f} units of the sweep)")


def quiet_ray() -> None:
    """Ray's notices (token authentication, the local instance started) only with -v."""
    import ray  # noqa: F401  (its import sets its loggers up; quieten them afterwards)

    for name in ("ray", "ray._private", "ray.worker"):
        logging.getLogger(name).setLevel(logging.ERROR)
