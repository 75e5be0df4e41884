"""What the coefficient algorithm's server does to its outputs before they go back, and what that hides
(docs/design.md, "Weight privacy: what goes back").

An output polynomial holds the conv outputs the client reads and, at every other coefficient, partial
sums of the weights. Two things keep those partial sums from the client:

- **Only the read coefficients go back** (`Backend.to_wire` with the layout's read mask, Cheetah's
  extraction): the second polynomial c1 whole and the first, c0, at the coefficients the client reads.
  Coefficient j of c0 + c1*s needs c0 at j alone, so the client decrypts what it reads exactly; an
  unread coefficient never leaves the server (nothing of it is sent, at any level);
- **c1 is re-randomised** (`mask_outputs`): c1 = sum_i w_i * c1_i is a known linear map of the
  client's own upload polynomials, from which the weights could be solved. Every output gets a fresh
  public-key encryption of zero (the server holds no secret key), so c1 looks random to the client
  under RLWE. A heuristic, not a proof: nothing floods the noise, and the read coefficients' noise
  (e*u + e0 + e1*s, the client knowing its public key's e) is a function of the server's u.

What is not hidden: the read coefficients' noise is not flooded (it depends on the weights, as in any
CKKS protocol that does not flood), and the architecture (shapes, the chunking, the kept blocks'
count through the timing).

Two convs whose outputs a residual add sums on the server (a ResNet block and its projection
shortcut), and which reach the client only as that sum, need one re-randomisation between them: the
partner planned second leaves `plan.covered` groups as they are where the first re-randomises (same
layout), since c1_a + z + c1_b is as fresh as c1_a + z.

`mask_hiding_bits` states the figure; `artemis layer` and `artemis infer` write it into their JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backends.base import Backend
from .params import CKKSParams

if TYPE_CHECKING:
    from .coeff import CompiledCoeffConv

# The parameters' security level, stated (not derived) for an unread coefficient: nothing of it is sent,
# and what the re-randomised second polynomial tells is bounded by RLWE at this level (heuristically, above).
SECURITY_BITS = 128
MASK_KIND = "withheld"  # the records' name for it (bench.report.crossval fits a mask unit cost per kind)


def output_primes(params: CKKSParams, level: int) -> int:
    """Primes left in the modulus at `level` (the special prime excluded).

    >>> from heconv.params import ckks_params
    >>> output_primes(ckks_params(depth=1), 1), output_primes(ckks_params(depth=2), 1)
    (1, 2)
    """
    return len(params.coeff_mod_bit_sizes) - 1 - level


def mask_kind(params: CKKSParams, level: int) -> str:
    """What a masked output at `level` gets: "withheld" at every level (unread coefficients not sent,
    the second polynomial re-randomised). Until 2026-12-06 it was "uniform" (a random polynomial mod
    one prime added at the unread coefficients) or "interval" (on [-R, R], with several primes).

    >>> from heconv.params import ckks_params
    >>> mask_kind(ckks_params(depth=1), 1), mask_kind(ckks_params(depth=2), 1)
    ('withheld', 'withheld')
    """
    return MASK_KIND


def mask_hiding_bits(params: CKKSParams, level: int, bound: float) -> float:
    """Hiding per unread output coefficient, in bits, as stated: it is not sent, so the client's view of
    it is what the re-randomised second polynomial tells, bounded by RLWE at the parameters' security
    level (SECURITY_BITS; heuristically, the noise not flooded), whatever the level or the partial
    sums' `bound`.

    >>> from heconv.params import ckks_params
    >>> mask_hiding_bits(ckks_params(depth=1), 1, 32.0), mask_hiding_bits(ckks_params(depth=2), 1, 32.0)
    (128.0, 128.0)
    """
    return float(SECURITY_BITS)


def mask_outputs(layer: CompiledCoeffConv, outputs: list[Any], backend: Backend) -> None:
    """Re-randomise every nonempty output in place (a fresh public-key encryption of zero), except the
    `covered` groups (a residual partner's re-randomisation covers the sum). Server side: no secret key."""
    plan = layer.plan
    tiles = plan.chunking.tiles
    for g, blocks in enumerate(plan.blocks):
        if not blocks or g in plan.covered:
            continue  # the encrypted bias alone: nothing of the weights to hide; or the partner's covers it
        for t in range(tiles):
            backend.rerandomize(outputs[g * tiles + t])
