"""What every command shares: argument types, the progress bar, the results folder."""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
from pathlib import Path

from heconv.errors import InputError

from ..atomic import SPACE_MARGIN
from ..provenance import REPOSITORY

ROOT = REPOSITORY
RESULTS = ROOT / "results"  # committed: written only under --publish (or by the sweep's database)
RUNS = ROOT / "runs"  # git-ignored: where report and demo write by default
DEFAULT_DB = RUNS / "experiments.sqlite"  # the working database a sweep writes and `artemis results` reads
SCHEDULE_CHOICES = "{output-rotation,input-rotation,bsgs:B,auto}"  # the --schedule metavar


def _number(text: str, cast, ok, expected: str):
    try:
        v = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not ok(v):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return v


def fraction(text: str) -> float:
    return _number(text, float, lambda v: 0.0 <= v <= 1.0, "a fraction in [0, 1]")


def positive(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def finite(text: str) -> float:
    return _number(text, float, math.isfinite, "a finite number")


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")


def non_negative(text: str) -> float:
    return _number(text, float, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")


# Upper bounds of sizes and counts: beyond them a run only allocates for minutes before failing.
MAX_IMAGES = 10_000  # a test split's size
MAX_CLASSES = 1_000
MAX_INPUT_SIZE = 512  # pixels a side (one channel must fit the largest ring's slots long before)
SEED_MAX = 2**32 - 1  # numpy's and torch's seeds


def at_most(limit: int, what: str = "a positive integer"):
    """A positive integer no larger than `limit` (argparse names the option)."""
    def parse(text: str) -> int:
        return _number(text, int, lambda v: 1 <= v <= limit, f"{what} <= {limit}")
    return parse


def seed(text: str) -> int:
    return _number(text, int, lambda v: 0 <= v <= SEED_MAX, f"a seed in [0, {SEED_MAX}]")


def schedule(text: str) -> str:
    """A rotation schedule: output-rotation, input-rotation, bsgs:B (B a power of two) or auto."""
    from heconv.schedule import check_schedule

    try:
        return check_schedule(text, None)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def bandwidth(text: str) -> float:
    """A link rate such as 1gbit or 100mbit, in bits per second (bench.harness.bandwidth)."""
    from ..harness.bandwidth import parse_bandwidth

    try:
        return parse_bandwidth(text)
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_schedule_option(p) -> None:
    """--schedule, shared by layer and infer (default auto)."""
    p.add_argument("--schedule", type=schedule, default="auto", metavar=SCHEDULE_CHOICES,
                   help="rotation schedule of every conv: output-rotation (baby step B = 1), input-rotation "
                        "(B = c_n), bsgs:B (B a power of two dividing c_n), auto (default: per layer, the B with "
                        "the lowest predicted time from its weights; with no --algorithm, also the algorithm, see "
                        "--algorithm)")


def add_bandwidth_options(p) -> None:
    """--bandwidth and --chunking, shared by layer and infer: the link rate the end-to-end time is
    reckoned at, which the coefficient chunking also minimises (heconv.coeff_choice)."""
    from heconv.traffic import OBJECTIVES

    from ..harness.bandwidth import DEFAULT_BANDWIDTH, UNITS

    p.add_argument("--bandwidth", type=bandwidth, default=DEFAULT_BANDWIDTH,
                   help=f"link rate for the end-to-end time and the coefficient chunking's choice, e.g. 100mbit "
                        f"(default {DEFAULT_BANDWIDTH}; units {', '.join(UNITS)})")
    p.add_argument("--chunking", choices=OBJECTIVES, default=OBJECTIVES[0],
                   help="what the coefficient algorithm's chunking minimises: end-to-end (default: client + server "
                        "+ traffic at --bandwidth) or server (server time alone, the earlier rule, to compare)")


def add_algorithm_option(p, choose: bool = False) -> None:
    """--algorithm and --compare-slot, shared by layer and infer (default slot): every algorithm of the
    registry (heconv.algorithms), each described by its own summary. `choose` (layer and infer): left out,
    with --schedule auto every conv runs by the algorithm of the lowest predicted time
    (heconv.algorithms.choice)."""
    from heconv.algorithms import algorithm_names, get_algorithm

    names = algorithm_names()
    default = (f"default: with --schedule auto, per conv the one of the lowest predicted time among those that "
               f"keep the protocol's traffic, else {names[0]}") if choose else f"default {names[0]}"
    p.add_argument("--algorithm", choices=names, default=None if choose else names[0],
                   help=f"convolution algorithm ({default}): " + "; ".join(
                       f"{n}: {get_algorithm(n).summary}" + ("" if get_algorithm(n).parallel else " (in-process)")
                       for n in names))
    p.add_argument("--compare-slot", action="store_true",
                   help="with an algorithm that changes the protocol's traffic (coefficient): also run the slot "
                        "engine's output-rotation schedule, in-process, on the same weights and inputs in this "
                        "process, and report the ratios")


def add_workers_option(p) -> None:
    """--workers, shared by layer and infer (default: the idle cores, at least 1)."""
    p.add_argument("--workers", type=positive, default=None,
                   help="processes each conv runs on, forked after compile; 1 runs in-process. Default: the cores "
                        "this process may use that the 1-minute load average leaves idle, at least 1 (a second "
                        "worker lost to one on a busy 2-core machine: it recomputes baby steps and waits for a "
                        "core); a conv uses at most its (bo, g) giant-step groups")


def default_workers(cores: int, load: float) -> int:
    """The idle cores by the load average, with a quarter-core margin, at least 1.

    >>> default_workers(2, 0.1), default_workers(2, 0.8), default_workers(2, 3.0), default_workers(16, 4.2)
    (2, 1, 1, 12)
    """
    return max(1, min(cores, int(cores - load + 0.25)))


def resolve_workers(args: argparse.Namespace) -> int:
    """--workers, or default_workers on this machine now; args.workers_chosen says how it was chosen."""
    from heconv.parallel_plan import available_cores

    if args.workers is not None:
        args.workers_chosen = "--workers"
        return args.workers
    cores, load = available_cores(), os.getloadavg()[0]
    n = default_workers(cores, load)
    args.workers_chosen = f"default: {n} of {cores} cores idle by the 1-minute load average {load:.2f}"
    return n


def output_folder(args: argparse.Namespace, default: Path, published: Path) -> Path:
    """--out, or `published` (a committed folder) under --publish, else `default` (under runs/)."""
    if getattr(args, "publish", False):
        if args.out is not None and Path(args.out).resolve() != published.resolve():
            raise InputError(f"--publish writes {published}; --out {args.out} contradicts it (give one of them)")
        return published
    return Path(args.out) if args.out is not None else default


def add_publish_options(p, default: Path, published: Path, what: str) -> None:
    """--out (default under runs/, git-ignored) and --publish (the committed folder)."""
    p.add_argument("--out", default=None, help=f"folder for {what} (default {_shown(default)}, git-ignored)")
    p.add_argument("--publish", action="store_true",
                   help=f"write the committed {_shown(published)} instead (what the repository shows; "
                        "a maintainer's step, not a newcomer's)")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT)) + "/"
    except ValueError:
        return str(path)


def bar(total: int, desc: str):
    """A progress bar on stderr (hidden when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=None, dynamic_ncols=True)


def add_precision_options(p, tolerance: float) -> None:
    """--scale-bits, --no-bound-check and --tolerance, shared by layer and infer."""
    p.add_argument("--scale-bits", type=positive, default=40, help="CKKS scale 2^bits (default 40; 20-60)")
    p.add_argument("--no-bound-check", action="store_true",
                   help="run even when the outputs could exceed what the parameters hold (they may decrypt to garbage)")
    p.add_argument("--tolerance", type=non_negative, default=tolerance,
                   help=f"largest error against PyTorch, relative to max(1, max|reference|), that passes "
                        f"(default {tolerance:g}); outside it the command exits 1")


def tolerance_verdict(result: dict, error_key: str, reference_key: str | None, tolerance: float,
                      agreement_key: str | None = None) -> dict:
    """within_tolerance (None when nothing was decrypted) and the limit, added to the result."""
    error = result.get(error_key)
    if error is None:
        return {"tolerance": tolerance, "within_tolerance": None}
    scale = max(1.0, float(result.get(reference_key) or 0.0)) if reference_key else 1.0
    ok = error <= tolerance * scale and (agreement_key is None or result.get(agreement_key) == 1.0)
    return {"tolerance": tolerance, "error_limit": tolerance * scale, "within_tolerance": bool(ok)}


def _writable_parent(path: Path, option: str) -> None:
    parent = next((p for p in [path, *path.parents] if p.exists()), None)
    if parent is None or not parent.is_dir():
        raise InputError(f"{option} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{option} {path}: {parent} is not writable")
    free = shutil.disk_usage(parent).free
    if free < SPACE_MARGIN:  # a full disk fails before the work, not after it
        raise InputError(f"{option} {path}: {parent}'s file system is full ({free // 1024} KiB free)")


def check_output_paths(args: argparse.Namespace) -> list[Path]:
    """Refuse, before any work, an --out that is a file or a --results that is a folder;
    returns the folders the command writes into."""
    folders = []
    out = getattr(args, "out", None)
    if out:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out} is a file; expected a folder")
        _writable_parent(out, "--out")
        folders.append(out)
    results = getattr(args, "results", None)
    if results:
        results = Path(results)
        if results.is_dir():
            raise InputError(f"--results {results} is a folder; expected a CSV file")
        _writable_parent(results.parent, "--results")
        folders.append(results.parent)
    return folders


def add_group_schedule_option(p, default: str | None) -> None:
    """--schedule of train and prune: the schedule whose rotation groups are trained and pruned."""
    p.add_argument("--schedule", type=schedule, default=default, metavar=SCHEDULE_CHOICES,
                   help="rotation schedule whose groups are pruned: output-rotation, input-rotation, bsgs:B, or "
                        "auto (a baby step per conv chosen on the dense model, then fixed)"
                        + (f" (default {default})" if default else ""))


def fixed_schedules(model, shape: tuple[int, int, int], params, schedule: str) -> dict[str, str]:
    """One schedule per conv path, fixed before training or pruning ("auto": chosen on `model`)."""
    from pruning.groups import model_schedules

    return model_schedules(model, shape, params, schedule)
