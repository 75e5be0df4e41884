"""Unit costs of the HE primitives, measured on a backend the way the engine calls them."""

from __future__ import annotations

import statistics
import time

import numpy as np

from heconv.backends import Backend
from heconv.cost import UnitCosts


def _median_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _median_each(items: list, fn) -> float:
    """Median time of fn(item) over items (for in-place operations that need a fresh operand each)."""
    times = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure_unit_costs(backend: Backend, level: int = 0, reps: int = 30, seed: int = 0) -> UnitCosts:
    """Time each primitive on `backend` at `level` (the input level of a layer).

    Uses a rotation step that already has a key (a backend without keys gets one for
    step 1 and loses it again) and restores the backend's counter afterwards.
    """
    keys = backend.galois_steps
    if not keys:  # a plan without rotations still gets a rotation cost for the model
        backend.generate_galois_keys([1])
    if not 0 <= level < backend.params.depth:
        raise ValueError(f"measure_unit_costs: level {level} cannot be rescaled (depth {backend.params.depth})")
    saved = backend.counter.copy()
    rng = np.random.default_rng(seed)
    vec = lambda: rng.uniform(-1, 1, backend.slots)  # noqa: E731
    step = min(backend.galois_steps)
    x = backend.encrypt(vec())
    # Bring x to `level` with a multiply-rescale per level, as a deeper network would.
    for lv in range(level):
        x = backend.multiply_plain(x, backend.encode(np.ones(backend.slots), lv, backend.rescale_divisor(lv)))
        backend.rescale_inplace(x)
    w = backend.encode(vec(), level, backend.rescale_divisor(level))
    prod = backend.multiply_plain(x, w)
    acc = backend.multiply_plain(x, w)

    rotation = _median_time(lambda: backend.rotate(prod, step), reps)
    pmul = _median_time(lambda: backend.multiply_plain(x, w), reps)
    add = _median_time(lambda: backend.add_inplace(acc, prod), reps)
    values = vec()
    encode = _median_time(lambda: backend.encode(values, level + 1), max(3, reps // 3))

    products = [backend.multiply_plain(x, w) for _ in range(reps)]
    rescale = _median_each(products, backend.rescale_inplace)
    bias = backend.encode(vec(), level + 1, backend.scale(products[0]))
    plain_add = _median_time(lambda: backend.add_plain_inplace(products[0], bias), reps)
    encrypt = _median_time(lambda: backend.encrypt_plain(bias), max(3, reps // 3))
    fresh = [backend.encrypt_plain(backend.encode(values, level)) for _ in range(max(3, reps // 3))]
    cmul = _median_each(fresh, backend.square_inplace)
    backend.counter = saved
    if not keys:
        backend.generate_galois_keys([])
    return UnitCosts(rotation, pmul, add, plain_add, rescale, encrypt, encode, cmul)
