"""Unit costs of the HE primitives, measured the way `heconv.conv.run_conv` uses its operands.

A layer does not multiply one hot plaintext again and again: it multiplies thousands of
distinct pre-encoded plaintexts (128 KB each at N = 8192), streamed from memory, by a few
dozen rotated inputs, and it rotates with a different Galois key (0.8 MB each) for every
step. Timing one hot operand keeps it all in cache and under-states memory-bound layers.
So every primitive here is timed over a pool of distinct operands, each call on the next
one, the way the run loop meets them:

- pmul:      next plaintext of a pool several times the last-level cache, times the next
             of a few dozen ciphertexts (the layer's rotated inputs, which stay warm);
- rotation:  next key of a pool of distinct steps (keys several times the cache),
             on the next ciphertext of the same small pool;
- add:       accumulator += a product just made by a streamed pmul (untimed), as in
             the layer's accumulation sweep;
- rescale:   a freshly made product; plain_add: a freshly rescaled output plus the next
             of a few distinct bias plaintexts; encode, encrypt, cmul: distinct operands.

`OperandPool.stream(primitive)` gives the untimed `setup` and the timed `call` of each,
so the primitives suite (bench/test_primitives.py) times exactly what
`measure_unit_costs` times. Each call is timed on both the wall clock
(`time.perf_counter`, median per call) and the process CPU clock (`time.process_time`,
mean per call, the clock's own cost subtracted): the wall figure is what a floor compared
with wall latency uses (`measure_unit_costs`' default); the CPU figure does not count
time the process waited for a core, so it is the one to compare with a layer's `cpu_s`
on a shared machine (a busy 2-core machine shows wall/CPU well above 1), and it sums like
`cpu_s` does (a mean, where the median of wall times drops the calls another process
interrupted). Each figure is the least of three passes, the passes of all primitives
interleaved: another process's burst of memory traffic slows even the CPU clock (shared
cache and memory), and it then spoils one pass rather than the figure.

The pools live on a shallow copy of the backend with its own counter, so the backend's
counter and Galois keys are never touched; keys for extra steps are generated on the copy
(a public view, which cannot make keys, cycles through the keys it holds).
"""

from __future__ import annotations

import copy
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from heconv.backends import Backend, OpCounts
from heconv.cost import UnitCosts
from heconv.errors import InputError

PRIMITIVES = ("rotation", "pmul", "add", "plain_add", "rescale", "encrypt", "encode", "cmul")
DEFAULT_CACHE_BYTES = 32 << 20
# Streamed pools hold this many times the last-level cache, so every operand comes from DRAM.
PLAINTEXT_CACHE_FACTOR = 2.0
KEY_CACHE_FACTOR = 1.5
# The ciphertexts a layer multiplies (its rotated inputs) are few and stay warm: a quarter of the cache.
CIPHERTEXT_CACHE_FACTOR = 0.25
CLOCKS = ("wall", "cpu")


def last_level_cache_bytes() -> int:
    """Size of the largest CPU cache (sysfs, else sysconf), or 32 MiB when neither says."""
    best = 0
    for idx in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (idx / "size").read_text().strip()
        except OSError:
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
        digits = text[:-1] if mult != 1 else text
        if digits.isdigit():
            best = max(best, int(digits) * mult)
    if not best:
        try:
            best = int(os.sysconf("SC_LEVEL3_CACHE_SIZE"))
        except (ValueError, OSError, AttributeError):
            best = 0
    return best if best > 0 else DEFAULT_CACHE_BYTES


def _primes_at(backend: Backend, level: int) -> int:
    """Data primes a ciphertext at `level` carries (the special prime excluded)."""
    return len(backend.params.coeff_mod_bit_sizes) - 1 - level


def plaintext_bytes(backend: Backend, level: int) -> int:
    """In-memory size of an NTT-form CKKS plaintext at `level` (N 64-bit words per prime).

    >>> from heconv.params import ckks_params
    >>> from heconv.backends import make_backend
    >>> plaintext_bytes(make_backend("count", ckks_params(depth=1)), 0)   # 8192 * 2 * 8
    131072
    """
    return backend.params.poly_modulus_degree * _primes_at(backend, level) * 8


def galois_key_bytes_in_memory(backend: Backend) -> int:
    """One Galois key in memory: a key-level ciphertext (2 polys, all primes) per data prime."""
    k = len(backend.params.coeff_mod_bit_sizes)
    return (k - 1) * 2 * k * backend.params.poly_modulus_degree * 8


@dataclass(frozen=True)
class PoolSizes:
    """How many distinct operands each pool holds."""

    plaintexts: int
    ciphertexts: int
    keys: int

    @classmethod
    def for_backend(cls, backend: Backend, level: int, cache_bytes: int | None = None) -> "PoolSizes":
        """Plaintexts PLAINTEXT_CACHE_FACTOR x the cache, keys KEY_CACHE_FACTOR x (4 to 96 of them),
        ciphertexts a quarter of it (4 to 32).

        >>> from heconv.params import ckks_params
        >>> from heconv.backends import make_backend
        >>> PoolSizes.for_backend(make_backend("count", ckks_params(depth=1)), 0, 32 << 20)
        PoolSizes(plaintexts=512, ciphertexts=32, keys=64)
        """
        cache = cache_bytes or last_level_cache_bytes()
        pt = plaintext_bytes(backend, level)
        return cls(
            plaintexts=max(8, int(np.ceil(PLAINTEXT_CACHE_FACTOR * cache / pt))),
            ciphertexts=int(np.clip(CIPHERTEXT_CACHE_FACTOR * cache // (2 * pt), 4, 32)),
            keys=int(np.clip(np.ceil(KEY_CACHE_FACTOR * cache / galois_key_bytes_in_memory(backend)), 4, 96)),
        )


@dataclass
class Stream:
    """One primitive as it is timed: `setup()` (untimed) returns the next call's arguments,
    `call(*args)` is the timed operation, `rounds` calls make one pass over the pool."""

    primitive: str
    call: Callable[..., Any]
    setup: Callable[[], tuple]
    rounds: int


class OperandPool:
    """Distinct operands at `level` on a working copy of `backend`, for streamed timing.

    The copy has its own counter and (when the backend holds fewer keys than `sizes.keys`
    and can make keys) its own Galois keys: the backend itself is left exactly as it was.
    """

    def __init__(self, backend: Backend, level: int = 0, seed: int = 0, sizes: PoolSizes | None = None,
                 cache_bytes: int | None = None):
        if not 0 <= level <= backend.params.depth:
            raise ValueError(f"measure_unit_costs: level {level} is outside the chain (depth {backend.params.depth})")
        self.level = level
        # At the chain's last level nothing rescales (the coefficient algorithm's default): the operands
        # are a fresh input at 2^(s - s//2) and weights at 2^(s//2), their products at 2^s, as it runs them.
        self.last = level == backend.params.depth
        self.cache_bytes = cache_bytes or last_level_cache_bytes()
        self.sizes = sizes or PoolSizes.for_backend(backend, level, self.cache_bytes)
        work = copy.copy(backend)
        work.counter = OpCounts()
        self.backend = work
        self.key_steps = self._keys(backend, work, self.sizes.keys)
        b, rng = work, np.random.default_rng(seed)
        self._rng = rng
        s = b.params.scale_bits
        self.divisor = 2.0 ** (s // 2) if self.last else b.rescale_divisor(level)
        if self.last:
            self.ciphertexts = [b.encrypt_plain(b.encode(self._vec(), level, 2.0 ** (s - s // 2)))
                                for _ in range(self.sizes.ciphertexts)]
        else:
            self.ciphertexts = [self._at_level(b.encrypt(self._vec())) for _ in range(self.sizes.ciphertexts)]
        self.plaintexts = [b.encode(self._vec(), level, self.divisor) for _ in range(self.sizes.plaintexts)]
        self.values = [self._vec() for _ in range(8)]
        # Biases are added after the rescale, at the output's scale (a product's, divided by the prime).
        probe = b.multiply_plain(self.ciphertexts[0], self.plaintexts[0])
        if not self.last:
            b.rescale_inplace(probe)
        self.out_scale = b.scale(probe)
        self.out_level = level + (not self.last)
        self.in_scale = 2.0 ** (s - s // 2) if self.last else None  # a square of it stays within the prime
        self.biases = [b.encode(v, self.out_level, self.out_scale) for v in self.values]
        self._next = {p: 0 for p in PRIMITIVES}

    @staticmethod
    def _keys(backend: Backend, work: Backend, want: int) -> list[int]:
        have = sorted(backend.galois_steps)
        if len(have) >= want:
            return have
        steps = set(have)
        step = 1
        while len(steps) < want and step < backend.slots:
            steps.add(step)
            step += 1
        try:
            work.generate_galois_keys(steps)
        except PermissionError:  # a public view cannot make keys: cycle through the ones it holds
            if not have:
                raise ValueError("measure_unit_costs: the backend holds no Galois key and cannot make one "
                                 "(a public view): a rotation cannot be timed") from None
            return have
        return sorted(work.galois_steps)

    def _vec(self) -> np.ndarray:
        return self._rng.uniform(-1, 1, self.backend.slots)

    def _at_level(self, ct: Any) -> Any:
        """Bring a fresh ciphertext down to the pool's level by a multiply-rescale per level."""
        b = self.backend
        for lv in range(self.level):
            ct = b.multiply_plain(ct, b.encode(np.ones(b.slots), lv, b.rescale_divisor(lv)))
            b.rescale_inplace(ct)
        return ct

    def _take(self, primitive: str) -> int:
        i = self._next[primitive]
        self._next[primitive] = i + 1
        return i

    def _product(self, i: int) -> Any:
        return self.backend.multiply_plain(self.ciphertexts[i % len(self.ciphertexts)],
                                           self.plaintexts[i % len(self.plaintexts)])

    def stream(self, primitive: str) -> Stream:
        """The setup and timed call of `primitive` (one of PRIMITIVES), cycling through the pools."""
        b, cts, pts = self.backend, self.ciphertexts, self.plaintexts
        nct, npt, nkeys = len(cts), len(pts), len(self.key_steps)
        # Products, accumulators and fresh outputs are made from the streamed pmul pool too,
        # each setup continuing where the last one stopped.
        if primitive == "pmul":
            def setup():
                i = self._take("pmul")
                return cts[i % nct], pts[i % npt]
            return Stream(primitive, b.multiply_plain, setup, npt)
        if primitive == "rotation":
            def setup():
                i = self._take("rotation")
                return cts[i % nct], self.key_steps[i % nkeys]
            return Stream(primitive, b.rotate, setup, max(nkeys, nct))
        if primitive == "add":
            accs = [self._product(i) for i in range(4)]

            def setup():
                i = self._take("add")
                return accs[i % len(accs)], self._product(i)
            return Stream(primitive, b.add_inplace, setup, npt)
        if primitive == "rescale":
            def setup():
                return (self._product(self._take("rescale")),)
            return Stream(primitive, b.rescale_inplace, setup, 2 * nct)
        if primitive == "plain_add":
            def setup():
                i = self._take("plain_add")
                y = self._product(i)
                if not self.last:
                    b.rescale_inplace(y)
                return y, self.biases[i % len(self.biases)]
            return Stream(primitive, b.add_plain_inplace, setup, 2 * nct)
        if primitive == "encode":
            def setup():
                return self.values[self._take("encode") % len(self.values)], self.level, self.divisor
            return Stream(primitive, b.encode, setup, 8)
        if primitive == "encrypt":
            def setup():
                return (self.biases[self._take("encrypt") % len(self.biases)],)
            return Stream(primitive, b.encrypt_plain, setup, 4)
        if primitive == "cmul":
            def setup():
                v = self.values[self._take("cmul") % len(self.values)]
                return (b.encrypt_plain(b.encode(v, self.level, self.in_scale)),)
            return Stream(primitive, b.square_inplace, setup, 4)
        raise ValueError(f"unknown primitive {primitive!r}; known: {PRIMITIVES}")


@dataclass(frozen=True)
class Timing:
    """Per-call seconds of one primitive over `calls` streamed calls."""

    wall_median: float
    wall_mean: float
    cpu_median: float
    cpu_mean: float
    calls: int


def clock_overhead(n: int = 200) -> float:
    """Median process-CPU seconds the timing code of `time_stream` adds to one call (of a no-op)."""

    def noop():
        return None

    cpus = []
    for _ in range(n):
        c = time.process_time()
        w = time.perf_counter()
        noop()
        time.perf_counter() - w
        cpus.append(time.process_time() - c)
    return statistics.median(cpus)


def time_stream(stream: Stream, calls: int, cpu_overhead: float = 0.0) -> Timing:
    """Time `calls` calls of `stream`, each on the next operands (setup untimed), on both clocks.

    The wall clock is read just around the call (its own cost, about 0.1 us, is left in,
    as pytest-benchmark leaves it); the CPU clock around that, so `cpu_overhead`
    (`clock_overhead()`, about 1 us here) is subtracted from each CPU reading.
    """
    walls, cpus = [], []
    call, setup = stream.call, stream.setup
    for _ in range(calls):
        args = setup()
        c = time.process_time()
        w = time.perf_counter()
        call(*args)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c - cpu_overhead)
    cpus = [max(x, 0.0) for x in cpus]
    return Timing(statistics.median(walls), statistics.fmean(walls), statistics.median(cpus),
                  statistics.fmean(cpus), calls)


@dataclass(frozen=True)
class UnitCostMeasurement:
    """Unit costs on both clocks, with the pools they were measured over.

    `wall`: median wall seconds per call; `cpu`: mean process-CPU seconds per call; each
    the least of `passes` passes over the pools (the passes of all primitives interleaved),
    so that a burst of another process's work on a shared machine, which slows even the
    CPU clock through the shared cache and memory, spoils one pass, not the figure.
    `timings[primitive]` lists every pass.
    """

    wall: UnitCosts
    cpu: UnitCosts
    timings: dict[str, list[Timing]]
    level: int
    sizes: PoolSizes
    cache_bytes: int
    seconds: float

    def to_dict(self) -> dict:
        return {"wall": self.wall.to_dict(), "cpu": self.cpu.to_dict(), "level": self.level,
                "pool": asdict(self.sizes), "cache_bytes": self.cache_bytes, "seconds": self.seconds,
                "timings": {p: [asdict(t) for t in ts] for p, ts in self.timings.items()}}


def measure_unit_costs_both(backend: Backend, level: int = 0, reps: int = 30, seed: int = 0,
                            sizes: PoolSizes | None = None, passes: int = 3) -> UnitCostMeasurement:
    """Time each primitive, streamed over distinct operands, on `backend` at `level`.

    A pass makes at least one round over each pool and at least `reps` calls of each
    primitive (encode, encrypt and cmul, which a layer's floor hardly uses,
    max(3, reps // 10)). The backend's counter and Galois keys are left as they were.
    """
    if passes < 1:
        raise InputError(f"passes must be at least 1, got {passes}")
    t0 = time.perf_counter()
    pool = OperandPool(backend, level, seed, sizes)
    overhead = clock_overhead()
    # at the last level no rescale can be timed: it costs 0 there (none happens)
    streams = {p: pool.stream(p) for p in PRIMITIVES if not (pool.last and p == "rescale")}
    for s in streams.values():
        s.call(*s.setup())  # one untimed call each: first-touch allocations
    timings: dict[str, list[Timing]] = {p: [] for p in streams}
    for _ in range(passes):
        for prim, s in streams.items():
            least = max(3, reps // 10) if prim in ("encode", "encrypt", "cmul") else reps
            timings[prim].append(time_stream(s, max(s.rounds, least), overhead))
    none = {p: 0.0 for p in PRIMITIVES if p not in streams}
    wall = UnitCosts(**{p: min(t.wall_median for t in ts) for p, ts in timings.items()}, **none)
    cpu = UnitCosts(**{p: min(t.cpu_mean for t in ts) for p, ts in timings.items()}, **none)
    return UnitCostMeasurement(wall, cpu, timings, level, pool.sizes, pool.cache_bytes, time.perf_counter() - t0)


def measure_unit_costs(backend: Backend, level: int = 0, reps: int = 30, seed: int = 0,
                       clock: str = "wall") -> UnitCosts:
    """Unit costs of `backend` at `level` (the input level of a layer), streamed as a layer
    uses its operands; `clock` "wall" (default) or "cpu" (see `UnitCostMeasurement`).

    The backend's counter and Galois keys are left as they were.
    """
    if clock not in CLOCKS:
        raise InputError(f"clock must be one of {CLOCKS}, got {clock!r}")
    m = measure_unit_costs_both(backend, level, reps, seed)
    return m.wall if clock == "wall" else m.cpu
