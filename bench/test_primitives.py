"""CKKS primitives at N = 8192 and 16384, at every level a layer multiplies at.

Each case times one primitive the way `run_conv` uses its operands: every round takes
the next operand of a pool (`bench.harness.unit_costs.OperandPool`, the same streams
`measure_unit_costs` times): distinct plaintexts totalling about twice the last-level
cache for pmul, a distinct Galois key per rotation, fresh products for add and rescale.
Operands are made by the untimed setup. extra_info names the primitive, N, the level and
the moduli, so the report can read unit costs per (N, level), and adds the process CPU
seconds per call (`cpu_s`, from a second streamed pass timed on the CPU clock) and the
pool sizes.
"""

import numpy as np
import pytest

from bench.harness.unit_costs import OperandPool, PoolSizes, clock_overhead, time_stream
from heconv.backends import make_backend
from heconv.params import ckks_params

# (N, depth): the hybrid protocol's one-level chain, and the non-interactive five-level one.
CHAINS = [(8192, 1), (16384, 5)]
PRIMITIVES = ["rotation", "pmul", "add", "plain_add", "rescale", "encode", "encrypt", "cmul"]
# At least this many timed rounds, even where a pass over the pool is shorter.
MIN_ROUNDS = {"rotation": 20, "encode": 10, "encrypt": 10, "cmul": 10}
DEFAULT_MIN_ROUNDS = 30


def _cases():
    for n, depth in CHAINS:
        for level in range(depth):
            for prim in PRIMITIVES:
                marks = [pytest.mark.quick] if level == 0 else []
                yield pytest.param(n, depth, level, prim, id=f"N{n}-L{level}-{prim}", marks=marks)


@pytest.fixture(scope="module")
def pool_for():
    """The operand pool of (N, level), one alive at a time (each holds about 100 MB).

    Each N's backend gets the key pool's steps once, so the pools of every level share
    the keys instead of generating their own.
    """
    backends, current = {}, {}

    def get(n: int, depth: int, level: int) -> OperandPool:
        if (n, level) not in current:
            current.clear()
            if n not in backends:
                b = make_backend("encrypted", ckks_params(depth=depth, poly_modulus_degree=n))
                b.generate_galois_keys(range(1, PoolSizes.for_backend(b, 0).keys + 1))
                backends[n] = b
            current[(n, level)] = OperandPool(backends[n], level, seed=0)
        return current[(n, level)]

    return get


@pytest.mark.shuffle_block("n", "level")  # one pool alive at a time: a shuffled pass keeps each pool's cases together
@pytest.mark.parametrize("n, depth, level, primitive", list(_cases()))
def test_primitive(benchmark, timed, pool_for, n, depth, level, primitive):
    benchmark.group = "primitives"
    pool = pool_for(n, depth, level)
    s = pool.stream(primitive)
    rounds = max(s.rounds, MIN_ROUNDS.get(primitive, DEFAULT_MIN_ROUNDS))
    timed(s.call, rounds=rounds, setup=lambda: (s.setup(), {}))
    cpu = time_stream(s, rounds, clock_overhead())
    b = pool.backend
    benchmark.extra_info.update(primitive=primitive, poly_modulus_degree=n, level=level,
                                coeff_mod_bit_sizes=list(b.params.coeff_mod_bit_sizes),
                                operands="streamed", cpu_s=cpu.cpu_mean, cpu_median_s=cpu.cpu_median,
                                pool_plaintexts=len(pool.plaintexts), pool_ciphertexts=len(pool.ciphertexts),
                                pool_galois_keys=len(pool.key_steps), cache_bytes=pool.cache_bytes)
    assert np.isfinite(cpu.cpu_mean) and cpu.calls == rounds
