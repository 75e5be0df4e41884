"""Magnitude bounds through a network plan, checked before each encryption.

From an encryption up to the next refresh, every value's largest possible magnitude
follows from the one before it (a conv: gain * bound + max|bias|; an add: the sum; a
square: the square; rotate-and-sum pooling: bound * 2^steps). The client knows its
cleartext before it encrypts, so each segment is checked before any of its ciphertexts
exists; `heconv.bounds.check_bound` refuses a layer whose values would wrap around the
modulus.
"""

from __future__ import annotations

import math

from ..algorithms import get_algorithm
from ..bounds import check_bound
from .actions import (
    ClientOp,
    Encrypt,
    NetworkPlan,
    Refresh,
    ServerAdd,
    ServerConv,
    ServerLinear,
    ServerPool,
    ServerSquare,
)


def check_segment(plan: NetworkPlan, start: int, clear_bounds: dict[str, float],
                  gains: dict[str, tuple[float, float]]) -> None:
    """Check the actions from `start` up to the next refresh.

    clear_bounds: max|value| of the cleartext values the client holds; gains: per conv
    and linear layer, (max row L1 norm of its weights, max|bias|).
    """
    params, depth = plan.params, plan.params.depth
    bound = dict(clear_bounds)
    scale: dict[str, int | None] = {}  # log2 of each server value's scale; None: the parameters'
    factor: dict[str, float] = {}  # a slot's modulus over its values' bound (sqrt(2) in complex slots)

    def bits(layout) -> int | None:
        s = layout.scale(params)
        return None if s == params.scale else round(math.log2(s))

    for a in plan.actions[start:]:
        if isinstance(a, Refresh):
            return
        src = a.a if isinstance(a, ServerAdd) else a.src
        if src not in bound:
            continue  # produced after a later refresh
        b = bound[src]
        if isinstance(a, (ClientOp, Encrypt)):
            out = b
            if isinstance(a, Encrypt) and a.layout is not None:
                scale[a.dst] = bits(a.layout)
        elif isinstance(a, (ServerConv, ServerLinear)):
            gain, bias = gains[a.name]
            out = gain * b + bias
            is_conv = isinstance(a, ServerConv)
            alg = get_algorithm(a.algorithm) if is_conv else None
            point = alg.bound_point(a.plan) if is_conv else (a.plan.level, True)
            layout = alg.output_layout(a.plan) if is_conv else None
            factor[a.dst] = layout.modulus_factor if is_conv else 1.0
            check_bound(a.name, factor[a.dst] * max(out, b), params, *point)
            if is_conv:
                scale[a.dst] = bits(layout)
        elif isinstance(a, ServerAdd):
            out = b + bound.get(a.b, 0.0)
            scale[a.dst], factor[a.dst] = scale.get(a.a), max(factor.get(a.a, 1.0), factor.get(a.b, 1.0))
            # sums happen after the rescale, or unrescaled at the last level at the products' scale
            check_bound(a.name, factor[a.dst] * out, params, depth, product=False, scale_bits=scale[a.dst])
        elif isinstance(a, ServerSquare):
            out = b * b
            check_bound(a.name, out, params, a.level)
        elif isinstance(a, ServerPool):
            out = b * 2 ** len(a.steps)
            check_bound(a.name, out, params, depth, product=False)
        else:
            raise TypeError(f"unknown action {type(a).__name__}")
        bound[a.dst] = out
