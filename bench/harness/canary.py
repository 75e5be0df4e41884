"""The canary: a fixed reference workload timed before and after every benchmark case.

A shared host slows down for seconds at a time, and a slower host raises CPU time with wall
time, so wall over CPU cannot see it. The canary can: the same ~50 ms of work (rotations and
plaintext multiplications with accumulation, on the encrypted backend at the hybrid protocol's
N = 8192) timed next to each case. A case whose canary ran more than `SLOW` above the pass's
median canary was timed on a slow host: it is re-run (`artemis bench --retries`) or flagged.

`Canary` does the timing (the suites bracket each case with it, bench/conftest.py); the rest
are pure functions on the recorded figures, which the plugin and the report share.
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass

import numpy as np

SLOW = 0.05  # a canary more than 5% above the pass's median: the case ran on a slow host
ROTATIONS = 24  # with PMULS: about 50 ms at N = 8192 (about 1.2 ms a rotation, 0.13 ms a pmul + add)
PMULS = 160
POLY_MODULUS_DEGREE = 8192


class Canary:
    """The reference workload on its own encrypted backend; calling it times one run, in seconds.

    Garbage collection is off while it runs (like the timed rounds). Building it makes keys
    (about a second); every call then does exactly ROTATIONS rotations, PMULS plaintext
    multiplications and PMULS additions on the same operands.
    """

    def __init__(self, seed: int = 0):
        from heconv.backends import make_backend
        from heconv.params import ckks_params

        self.backend = make_backend("encrypted", ckks_params(depth=1, poly_modulus_degree=POLY_MODULUS_DEGREE), seed)
        steps = list(range(1, ROTATIONS + 1))
        self.backend.generate_galois_keys(steps)
        rng = np.random.default_rng(seed)
        slots = self.backend.slots
        self.ct = self.backend.encrypt(rng.uniform(-1, 1, slots))
        # a few distinct plaintexts, cycled: the workload must not depend on the cache's history
        self.plains = [self.backend.encode(rng.uniform(-1, 1, slots)) for _ in range(8)]
        self.steps = steps

    def run(self) -> None:
        b = self.backend
        acc = b.multiply_plain(self.ct, self.plains[0])
        for i in range(1, PMULS):
            b.add_inplace(acc, b.multiply_plain(self.ct, self.plains[i % len(self.plains)]))
        for step in self.steps:
            b.rotate(self.ct, step)

    def __call__(self) -> float:
        enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter()
            self.run()
            return time.perf_counter() - start
        finally:
            if enabled:
                gc.enable()


@dataclass(frozen=True)
class CanaryVerdict:
    """The canaries of one pass: their median (the reference unless one is given), and which were slow."""

    reference_s: float | None
    threshold: float
    slow: tuple[bool, ...]

    @property
    def flagged(self) -> int:
        return sum(self.slow)


def case_canary(info: dict) -> float | None:
    """A case's canary: the slower of the runs before and after it (None when not recorded).

    >>> case_canary({"canary_before_s": 0.050, "canary_after_s": 0.061})
    0.061
    >>> case_canary({}) is None
    True
    """
    vals = [info.get(k) for k in ("canary_before_s", "canary_after_s")]
    vals = [float(v) for v in vals if v is not None]
    return max(vals) if vals else None


def judge(canaries: list[float | None], reference_s: float | None = None, threshold: float = SLOW) -> CanaryVerdict:
    """Which canaries are more than `threshold` above the reference (default: their median).

    >>> v = judge([0.050, 0.051, 0.049, 0.060, None])
    >>> v.reference_s, v.slow, v.flagged
    (0.0505, (False, False, False, True, False), 1)
    >>> judge([0.050, 0.052], reference_s=0.045).slow  # a retry pass judged against the main passes
    (True, True)
    """
    known = [c for c in canaries if c is not None]
    if reference_s is None:
        reference_s = statistics.median(known) if known else None
    if reference_s is None:
        return CanaryVerdict(None, threshold, tuple(False for _ in canaries))
    limit = (1 + threshold) * reference_s
    return CanaryVerdict(reference_s, threshold, tuple(c is not None and c > limit for c in canaries))


def flag_run(output_json: dict, reference_s: float | None = None, threshold: float = SLOW) -> CanaryVerdict:
    """Judge a pytest-benchmark run's canaries in place: every case's extra_info gets `canary_s` and
    `canary_slow`, and the run's "artemis" block a "canary" summary. Returns the verdict.

    >>> run = {"benchmarks": [{"extra_info": {"canary_before_s": t, "canary_after_s": t}} for t in (1.0, 1.0, 1.2)]}
    >>> flag_run(run).flagged, [b["extra_info"]["canary_slow"] for b in run["benchmarks"]]
    (1, [False, False, True])
    >>> run["artemis"]["canary"]["median_s"], run["artemis"]["canary"]["slow_cases"]
    (1.0, 1)
    """
    infos = [b.setdefault("extra_info", {}) for b in output_json.get("benchmarks", [])]
    canaries = [case_canary(e) for e in infos]
    verdict = judge(canaries, reference_s, threshold)
    for e, c, slow in zip(infos, canaries, verdict.slow):
        if c is not None:
            e["canary_s"], e["canary_slow"] = c, slow
    known = [c for c in canaries if c is not None]
    output_json.setdefault("artemis", {})["canary"] = {
        "workload": f"{ROTATIONS} rotations, {PMULS} plaintext multiplications and additions, N = {POLY_MODULUS_DEGREE}",
        "cases": len(known), "median_s": statistics.median(known) if known else None,
        "reference_s": verdict.reference_s, "threshold": threshold, "slow_cases": verdict.flagged,
        "max_s": max(known) if known else None}
    return verdict
