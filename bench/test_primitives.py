"""CKKS primitives at N = 8192 and 16384, at every level a layer multiplies at.

Each case times one primitive exactly as the engine calls it; operands are made
outside the timed part. extra_info names the primitive, N, the level and the moduli,
so the report can read unit costs per (N, level).
"""

import numpy as np
import pytest

from heconv.backends import make_backend
from heconv.params import ckks_params

# (N, depth): the hybrid protocol's one-level chain, and the non-interactive five-level one.
CHAINS = [(8192, 1), (16384, 5)]
PRIMITIVES = ["rotation", "pmul", "add", "plain_add", "rescale", "encode", "cmul"]


def _cases():
    for n, depth in CHAINS:
        for level in range(depth):
            for prim in PRIMITIVES:
                marks = [pytest.mark.quick] if (n == 8192) else []
                yield pytest.param(n, depth, level, prim, id=f"N{n}-L{level}-{prim}", marks=marks)


@pytest.fixture(scope="module")
def backends():
    out = {}
    for n, depth in CHAINS:
        b = make_backend("encrypted", ckks_params(depth=depth, poly_modulus_degree=n))
        b.generate_galois_keys([1])
        out[n] = b
    return out


@pytest.mark.parametrize("n, depth, level, primitive", list(_cases()))
def test_primitive(benchmark, backends, n, depth, level, primitive):
    benchmark.group = "primitives"
    b = backends[n]
    rng = np.random.default_rng(0)
    vec = rng.uniform(-1, 1, b.slots)
    x = b.encrypt(vec)
    for lv in range(level):  # bring the operand down the chain as a network would
        x = b.multiply_plain(x, b.encode(np.ones(b.slots), lv, b.rescale_divisor(lv)))
        b.rescale_inplace(x)
    w = b.encode(vec, level, b.rescale_divisor(level))
    prod = b.multiply_plain(x, w)
    if primitive == "rotation":
        benchmark(b.rotate, prod, 1)
    elif primitive == "pmul":
        benchmark(b.multiply_plain, x, w)
    elif primitive == "add":
        acc = b.multiply_plain(x, w)
        benchmark(b.add_inplace, acc, prod)
    elif primitive == "encode":
        benchmark(b.encode, vec, level)
    else:
        # In-place operations that consume their operand: a fresh one per round.
        def fresh():
            if primitive == "rescale":
                return (b.multiply_plain(x, w),), {}
            if primitive == "cmul":
                return (b.encrypt_plain(b.encode(vec, level)),), {}
            y = b.multiply_plain(x, w)
            b.rescale_inplace(y)
            return (y, b.encode(vec, level + 1, b.scale(y))), {}

        fn = {"rescale": b.rescale_inplace, "cmul": b.square_inplace, "plain_add": b.add_plain_inplace}[primitive]
        benchmark.pedantic(fn, setup=fresh, rounds=30, iterations=1)
    benchmark.extra_info.update(primitive=primitive, poly_modulus_degree=n, level=level,
                                coeff_mod_bit_sizes=list(b.params.coeff_mod_bit_sizes))
