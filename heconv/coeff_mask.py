"""The mask the coefficient algorithm's server adds to its outputs, and what it hides (docs/design.md,
"Weight privacy: masking").

An output polynomial holds the conv outputs the client reads and, at every other coefficient, partial
sums of the weights. Before it goes back, every output gets a fresh public-key encryption (the server
holds no secret key) of a mask that is exactly zero where the client reads and random elsewhere:

- where the output's modulus is one prime q (the hybrid protocol's [60, 40, 60] after the rescale,
  the last level of any chain): uniform modulo q, written residue by residue
  (`Backend.add_uniform_mask`). v + m mod q is uniform whatever v is, so an unread coefficient
  tells the client nothing: statistical distance 0, jointly over all of them;
- where it has several primes, a coefficient uniform modulo their product would swamp the client's
  decoder (it reads coefficients through the canonical embedding, in doubles), so the mask is
  uniform on [-R, R] with R one prime's worth, encoded like any coefficient vector: it hides
  log2(R / (B * scale)) bits (the mask this project had everywhere before).

Two convs whose outputs a residual add sums on the server (a ResNet block and its projection
shortcut), and which reach the client only as that sum, need one uniform mask between them: the
partner planned second leaves `plan.covered` groups unmasked where the first masks (same layout, so
the same read coefficients). The sum's unread coefficients are v_a + m + v_b mod q, uniform; its second
polynomial is re-randomised by the first's encryption of zero.

`mask_hiding_bits` states the figure from the plan's parameters; `artemis layer` and `artemis infer`
write it into their JSON.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .backends.base import Backend
from .params import CKKSParams

if TYPE_CHECKING:
    from .coeff import CompiledCoeffConv

# The parameters' security level. A mask with statistical distance 0 is stated as this many bits: a
# lower bound, and where the client's view stops being statistical (the re-randomised second
# polynomial hides the weights under RLWE, at this level).
SECURITY_BITS = 128


def output_primes(params: CKKSParams, level: int) -> int:
    """Primes left in the modulus at `level` (the special prime excluded).

    >>> from heconv.params import ckks_params
    >>> output_primes(ckks_params(depth=1), 1), output_primes(ckks_params(depth=2), 1)
    (1, 2)
    """
    return len(params.coeff_mod_bit_sizes) - 1 - level


def mask_kind(params: CKKSParams, level: int) -> str:
    """Which mask an output at `level` gets: "uniform" (mod its one prime) or "interval" (on [-R, R]).

    >>> from heconv.params import ckks_params
    >>> mask_kind(ckks_params(depth=1), 1), mask_kind(ckks_params(depth=2), 1)
    ('uniform', 'interval')
    """
    return "uniform" if output_primes(params, level) == 1 else "interval"


def mask_range_bits(params: CKKSParams, level: int) -> int:
    """log2 of the mask's range on an unread coefficient at `level`: the bits of the one prime q it is
    uniform modulo; with several primes, log2 R of [-R, R], 3 bits under the first prime (so that the
    client's decoder, in doubles, keeps the coefficients it reads).

    >>> from heconv.params import ckks_params
    >>> mask_range_bits(ckks_params(depth=1), 1), mask_range_bits(ckks_params(depth=2), 1)
    (60, 57)
    """
    first = params.coeff_mod_bit_sizes[0]
    return first if mask_kind(params, level) == "uniform" else first - 3


def mask_hiding_bits(params: CKKSParams, level: int, bound: float) -> float:
    """Statistical hiding per masked coefficient at output `level`, in bits: -log2 of the statistical
    distance between what the client decrypts there for two settings of the weights, at most
    SECURITY_BITS. `bound` limits |partial sum| (max|x| times the largest L1 norm of an output
    channel's weights).

    Uniform mod one prime: distance 0, stated as SECURITY_BITS. On [-R, R] at scale 2^s: two partial
    sums v, v' are within |v - v'| * 2^s / (2R) <= bound * 2^s / R, so log2(R / (bound * 2^s)) bits,
    and m such coefficients together lose up to log2(m) more (union bound).

    >>> from heconv.params import ckks_params
    >>> mask_hiding_bits(ckks_params(depth=1), 1, 32.0)   # [60] left after the rescale: uniform mod q
    128.0
    >>> mask_hiding_bits(ckks_params(depth=2), 1, 32.0)   # [60, 40] left: R = 2^57; 57 - 40 - 5
    12.0
    """
    if mask_kind(params, level) == "uniform":
        return float(SECURITY_BITS)
    bits = mask_range_bits(params, level) - params.scale_bits - math.log2(max(bound, 2.0 ** -params.scale_bits))
    return float(min(bits, SECURITY_BITS))


def mask_outputs(layer: CompiledCoeffConv, outputs: list[Any], backend: Backend,
                 rng: np.random.Generator | None = None) -> None:
    """Mask every nonempty output in place (zero on the coefficients its tile's client reads): uniform
    mod the prime at a one-prime level, else on [-R, R]; not the `covered` groups (a residual
    partner's mask covers them). Server side: no secret key."""
    plan = layer.plan
    level = plan.output_level
    tiles, n = plan.chunking.tiles, plan.chunking.n
    uniform = mask_kind(plan.params, level) == "uniform"
    r = float(2 ** mask_range_bits(plan.params, level))
    draws = rng or np.random.default_rng()  # the interval mask's source: fresh OS entropy on every run
    for g, blocks in enumerate(plan.blocks):
        if not blocks or g in plan.covered:
            continue  # the encrypted bias alone: nothing of the weights to hide; or the partner's mask hides it
        for t in range(tiles):
            y = outputs[g * tiles + t]
            if uniform:
                backend.add_uniform_mask(y, layer.needed[t], rng)
                continue
            scale = backend.scale(y)
            values = np.where(layer.needed[t], 0.0, draws.uniform(-r, r, n)) / scale if backend.tracks_values else None
            noise = backend.encrypt_plain(backend.encode_coefficients(values if values is not None else np.zeros(n),
                                                                      level, scale))
            backend.add_inplace(y, noise)
