"""Benchmark passes: their order, their storage, and their merge into one run.

- `shuffled`: a pass's case order, shuffled by a recorded seed; cases that share an expensive
  set-up (a `shuffle_block` marker naming the parameters that key it) stay together.
- `store_run`: a run's JSON into pytest-benchmark's storage layout,
  <storage>/<machine id>/<NNNN>_<label>.json (what `pytest-benchmark compare` and `list` read),
  written through a temporary file and an exclusive link: never half-written, never overwritten.
- `merge_runs`: K passes into one run: per case the pass with the least fitted time
  (`fitted_seconds`), preferring passes whose canary was not slow.
- `retry_cases`: the cases with no pass on a quiet host, which `artemis bench` re-runs.
"""

from __future__ import annotations

import copy
import os
import platform
import random
import re
import secrets
from pathlib import Path
from typing import Callable, Hashable, Sequence, TypeVar

T = TypeVar("T")
_NUMBERED = re.compile(r"^(\d{4})_.*\.json$")


def machine_id() -> str:
    """pytest-benchmark's storage folder for this machine (the same format as its own)."""
    return "-".join((platform.system(), platform.python_implementation(),
                     ".".join(platform.python_version_tuple()[:2]), platform.architecture()[0]))


def store_run(storage: str | Path, label: str, data: bytes) -> Path:
    """Write `data` as the next numbered run <storage>/<machine id>/<NNNN>_<label>.json and return its path.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> [store_run(d, "x", b"{}").name for _ in range(2)]
    ['0001_x.json', '0002_x.json']
    """
    folder = Path(storage) / machine_id()
    folder.mkdir(parents=True, exist_ok=True)
    # a complete file first, named so that bench.results.clean_stale removes it if this process dies
    tmp = folder / f".{label}.json.artemis-{os.getpid()}-{secrets.token_hex(4)}.tmp"
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    try:
        while True:
            nums = [int(m[1]) for p in folder.iterdir() if (m := _NUMBERED.match(p.name))]
            path = folder / f"{max(nums, default=0) + 1:04d}_{label}.json"
            try:
                os.link(tmp, path)  # fails if a concurrent run took the number: try the next one
                return path
            except FileExistsError:
                continue
    finally:
        tmp.unlink(missing_ok=True)


def shuffled(items: Sequence[T], seed: int, block: Callable[[T], Hashable | None]) -> list[T]:
    """`items` in an order shuffled by `seed`; items with the same non-None `block` key stay adjacent.

    >>> shuffled(list("abcdef"), 3, lambda x: None) == shuffled(list("abcdef"), 3, lambda x: None)
    True
    >>> order = shuffled(["p1", "p2", "p3", "a", "b"], 0, lambda x: "p" if x[0] == "p" else None)
    >>> sorted(order) == ["a", "b", "p1", "p2", "p3"], "".join(x[0] for x in order).count("ppp")
    (True, 1)
    """
    rng = random.Random(seed)
    groups: dict[Hashable, list[T]] = {}
    for i, item in enumerate(items):
        key = block(item)
        groups.setdefault(("block", key) if key is not None else ("item", i), []).append(item)
    blocks = list(groups.values())
    rng.shuffle(blocks)
    for b in blocks:
        rng.shuffle(b)
    return [item for b in blocks for item in b]


def fitted_seconds(bench: dict) -> float:
    """The time the report fits for one benchmark entry (bench.report.cases reads it here): a whole
    model's least server time per image, a primitive's median per call, else the least timed round
    (the mean in files that lack the least).

    >>> fitted_seconds({"stats": {"min": 1.0, "median": 2.0}, "extra_info": {"server_s": 5.0, "server_min_s": 4.0}})
    4.0
    >>> fitted_seconds({"stats": {"min": 1.0, "median": 2.0}, "extra_info": {"primitive": "pmul"}})
    2.0
    >>> fitted_seconds({"stats": {"min": 1.0, "median": 2.0}, "extra_info": {}})
    1.0
    """
    e, stats = bench.get("extra_info") or {}, bench["stats"]
    if "server_s" in e:
        return float(e.get("server_min_s", e["server_s"]))
    if "primitive" in e:
        return float(stats["median"])
    return float(stats["min"] if "min" in stats else stats["mean"])


def merge_runs(runs: Sequence[dict], names: Sequence[str] | None = None) -> dict:
    """One run from several passes of the same cases: per case (by `fullname`) the entry of the
    pass with the least `fitted_seconds` among the passes whose canary was not slow (all passes
    when every one was). The entry keeps its own stats, so the result is a pytest-benchmark run;
    its extra_info adds every pass's figure (`passes_s`), their spread (max - min) / (max + min),
    the pass chosen and whether every pass was slow (`canary_slow`). The top level is the
    last pass's, with "artemis" naming the passes. Cases are in the first pass's order.

    >>> def run(t, slow=False):
    ...     return {"benchmarks": [{"fullname": "c", "stats": {"min": t}, "extra_info": {"canary_slow": slow}}]}
    >>> m = merge_runs([run(1.2), run(1.0, slow=True), run(1.1)], ["p1", "p2", "p3"])
    >>> b = m["benchmarks"][0]
    >>> b["stats"]["min"], b["extra_info"]["pass_chosen"], b["extra_info"]["passes_s"], b["extra_info"]["canary_slow"]
    (1.1, 'p3', [1.2, 1.0, 1.1], False)
    """
    if not runs:
        raise ValueError("no pass to merge")
    names = list(names) if names is not None else [f"pass {i + 1}" for i in range(len(runs))]
    by_case: dict[str, list[tuple[str, dict]]] = {}
    for name, run in zip(names, runs):
        for b in run.get("benchmarks", []):
            by_case.setdefault(b.get("fullname") or b["name"], []).append((name, b))
    merged = []
    for entries in by_case.values():
        quiet = [(n, b) for n, b in entries if not (b.get("extra_info") or {}).get("canary_slow")]
        name, best = min(quiet or entries, key=lambda nb: fitted_seconds(nb[1]))
        times = [fitted_seconds(b) for _, b in entries]
        out = copy.deepcopy(best)
        out.setdefault("extra_info", {}).update(
            passes=[n for n, _ in entries], passes_s=times, pass_chosen=name, canary_slow=not quiet,
            passes_spread=(max(times) - min(times)) / (max(times) + min(times)) if len(times) > 1 else None)
        merged.append(out)
    top = copy.deepcopy({k: v for k, v in runs[-1].items() if k != "benchmarks"})
    artemis = top.setdefault("artemis", {})
    artemis["merged"] = {"passes": names, "rule": "per case, the least fitted time over the passes whose canary "
                                                  "was not slow (over all passes when every one was)",
                         "canaries": [(r.get("artemis") or {}).get("canary") for r in runs]}
    artemis.pop("canary", None)
    return {**top, "benchmarks": merged}


def retry_cases(runs: Sequence[dict]) -> list[str]:
    """The cases (`fullname`) whose canary was slow in every pass that ran them.

    >>> def run(*slow):
    ...     return {"benchmarks": [{"fullname": f"c{i}", "extra_info": {"canary_slow": s}} for i, s in enumerate(slow)]}
    >>> retry_cases([run(True, True, False), run(True, False, False)])
    ['c0']
    """
    seen: dict[str, bool] = {}
    for run in runs:
        for b in run.get("benchmarks", []):
            key = b.get("fullname") or b["name"]
            slow = bool((b.get("extra_info") or {}).get("canary_slow"))
            seen[key] = seen.get(key, True) and slow
    return [k for k, slow in seen.items() if slow]
