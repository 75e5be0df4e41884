"""`artemis bench`: K benchmark passes in random order, merged into one stored run.

    artemis bench                      # 3 passes of the full suite, into runs/benchmarks
    artemis bench --publish            # the same into the committed results/benchmarks
    artemis bench --passes 2 -m quick --storage /tmp/bench

Each pass is its own `pytest --benchmark-only` process, its cases in an order shuffled by
the seed (recorded; pass i uses seed + i - 1), stored as its own run
(`<NNNN>_<revision>-<suite>-<stamp>-pass<i>of<K>.json`, readable by `pytest-benchmark compare`).
Cases whose canary was slow in every pass are run again, judged against the passes' median
canary, up to --retries times. Then the passes are merged (bench.harness.passes.merge_runs:
per case the least time over the passes on a quiet host) into
`<NNNN>_<revision>-<suite>-<stamp>-merged.json`, the run `artemis report` reads by default.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

from heconv.errors import InputError

from ..experiments.pause import idle_record, idle_words, paused
from .common import RESULTS, ROOT, RUNS, positive

Runner = Callable[[list[str]], int]  # pytest's arguments -> its exit status


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run the benchmark suites in K shuffled passes and merge them into one run")
    p.add_argument("tests", nargs="*", metavar="TEST",
                   help="test paths or node ids to run (default: every suite under bench/)")
    p.add_argument("--passes", type=positive, default=3, help="independent passes, each its own process (default 3)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the case order (default: drawn at random and recorded in the runs)")
    p.add_argument("--retries", type=int, default=1, choices=range(0, 6), metavar="{0..5}",
                   help="extra passes for the cases whose canary was slow in every pass (default 1)")
    p.add_argument("-m", dest="markexpr", default=None, help="pytest's -m: e.g. quick (default: not slow)")
    p.add_argument("-k", dest="keyword", default=None, help="pytest's -k: cases whose name matches")
    p.add_argument("--pruned", action="append", metavar="DIR", help="checkpoint folder(s), as the suites take it")
    p.add_argument("--storage", default=None,
                   help="pytest-benchmark storage folder for the passes and the merged run "
                        "(default runs/benchmarks, git-ignored)")
    p.add_argument("--publish", action="store_true",
                   help="store into the committed results/benchmarks instead (a maintainer's step)")
    p.add_argument("--no-pause", dest="pause", action="store_false",
                   help="leave this host's sweeps running (by default they wait at their next batch or pruning "
                        "step until the passes end, and the passes start once the CPUs are idle)")
    p.set_defaults(func=run, render=render)


def pytest_subprocess(args: list[str]) -> int:
    """Run pytest in its own process from the repository root; its output goes to stderr."""
    return subprocess.call([sys.executable, "-m", "pytest", *args], cwd=ROOT, stdout=sys.stderr)


def _selection(args: argparse.Namespace) -> list[str]:
    sel = ["-m", args.markexpr] if args.markexpr else []
    sel += ["-k", args.keyword] if args.keyword else []
    for d in args.pruned or []:
        sel += ["--pruned", d]
    return sel


def _stored(storage: Path, run_stamp: str, name: str) -> Path:
    found = sorted(storage.glob(f"*/[0-9][0-9][0-9][0-9]_*-{run_stamp}-{name}.json"))
    if len(found) != 1:
        raise RuntimeError(f"pass {name} of run {run_stamp}: expected one stored run under {storage}, found {found}")
    return found[0]


def run(args: argparse.Namespace, pytest_runner: Runner = pytest_subprocess) -> dict:
    publish = getattr(args, "publish", False)
    if publish and args.storage is not None:
        raise InputError("artemis bench: --publish stores into results/benchmarks; --storage contradicts it")
    storage = Path(args.storage or (RESULTS if publish else RUNS) / "benchmarks").resolve()
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    common = ["--benchmark-only", "-p", "no:cacheprovider", "-q", "--benchmark-storage", f"file://{storage}",
              "--artemis-run", stamp]
    files: list[Path] = []

    def one_pass(name: str, shuffle: int, extra: list[str]) -> dict:
        rc = pytest_runner([*common, "--artemis-pass", name, "--artemis-shuffle", str(shuffle), *extra])
        if rc == 5:
            raise InputError(f"the selection {extra or 'default'} picked no benchmark case")
        if rc != 0:
            raise RuntimeError(f"benchmark pass {name} exited with status {rc} (its output is above)")
        files.append(_stored(storage, stamp, name))
        return json.loads(files[-1].read_text())

    with paused() if getattr(args, "pause", True) else nullcontext(None) as idle:
        return _passes(args, one_pass, files, storage, seed, stamp, idle)


def _passes(args: argparse.Namespace, one_pass, files: list[Path], storage: Path, seed: int, stamp: str,
            idle: float | None) -> dict:
    from ..harness.passes import merge_runs, retry_cases, store_run
    from ..provenance import git_revision

    main = [one_pass(f"pass{i + 1}of{args.passes}", seed + i, [*_selection(args), *args.tests])
            for i in range(args.passes)]
    medians = [((r.get("artemis") or {}).get("canary") or {}).get("median_s") for r in main]
    known = [m for m in medians if m is not None]
    reference = statistics.median(known) if known else None
    runs, retried = list(main), []
    for r in range(args.retries):
        slow = retry_cases(runs)
        if not slow:
            break
        ref = ["--artemis-canary-reference", repr(reference)] if reference is not None else []
        runs.append(one_pass(f"retry{r + 1}", seed + args.passes + r, [*ref, *_selection(args), *slow]))
        retried.append(slow)
    merged = merge_runs(runs, [f.name for f in files])
    suite = ((main[0].get("artemis") or {}).get("selection") or {}).get("suite") or "filtered"
    merged["artemis"]["selection"] = (main[0].get("artemis") or {}).get("selection")
    merged["artemis"]["merged"] |= {"seed": seed, "canary_reference_s": reference, "retried": retried,
                                    **idle_record(idle)}
    merged["artemis"].pop("pass", None)
    rev = git_revision(ROOT)
    label = rev[:8] + ("-dirty" if rev.endswith("+dirty") else "") + f"-{suite}-{stamp}-merged"
    path = store_run(storage, label, json.dumps(merged, indent=4).encode())
    slow_left = [b["fullname"] for b in merged["benchmarks"] if (b.get("extra_info") or {}).get("canary_slow")]
    return {"merged": str(path), "passes": [str(f) for f in files], "seed": seed, "suite": suite,
            "cases": len(merged["benchmarks"]), "canary_reference_s": reference,
            "retried": sum(len(r) for r in retried), "canary_slow_cases": slow_left, **idle_record(idle)}


def render(result: dict) -> str:
    idle = result.get("idle_share_at_start")
    lines = [f"{len(result['passes'])} runs (seed {result['seed']}, suite {result['suite']}"
             + f"; {idle_words(idle, result.get('idle_target'), result.get('idle_wait_s'))}):",
             *[f"  {p}" for p in result["passes"]],
             f"merged ({result['cases']} cases, per case the least time over the passes on a quiet host): "
             f"{result['merged']}"]
    if result["canary_reference_s"] is not None:
        lines.append(f"canary median {result['canary_reference_s'] * 1e3:.1f} ms; {result['retried']} case run(s) "
                     f"re-run; {len(result['canary_slow_cases'])} case(s) slow in every pass (flagged)")
    return "\n".join(lines)
