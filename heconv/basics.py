"""Leaf definitions every part of heconv shares: the operation counter and `next_pow2`.

This module imports nothing from heconv, so params, geometry, cost and the backends can all
depend on it without a cycle (they used to: params -> geometry -> cost -> backends.base -> params).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


def next_pow2(n: int) -> int:
    """Smallest power of two >= n.

    >>> next_pow2(1), next_pow2(5), next_pow2(256), next_pow2(784)
    (1, 8, 256, 1024)
    """
    if n < 1:
        raise ValueError(f"next_pow2 needs a positive integer, got {n}")
    return 1 << (int(n) - 1).bit_length()


@dataclass
class OpCounts:
    """What the engine did (or, in a plan, will do).

    `rotations` are logical rotations; `key_switches` are the Galois automorphisms
    actually applied (more than rotations only when a step has no key of its own).
    `cmuls` are ciphertext squarings, each with its relinearisation.

    >>> (OpCounts(rotations=2, pmuls=3) + OpCounts(rotations=1)).to_dict()["rotations"]
    3
    """

    rotations: int = 0
    key_switches: int = 0
    pmuls: int = 0
    cmuls: int = 0
    adds: int = 0
    plain_adds: int = 0
    rescales: int = 0
    encodes: int = 0
    encryptions: int = 0
    decryptions: int = 0

    def __add__(self, other: "OpCounts") -> "OpCounts":
        return OpCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def __sub__(self, other: "OpCounts") -> "OpCounts":
        return OpCounts(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def copy(self) -> "OpCounts":
        return OpCounts(**asdict(self))

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class ScaleSplit:
    """What a conv plan with `level`, `rescale`, `input_scale_bits` and `weight_scale_bits` fields (the slot
    engine's and matvec's) says of its outputs: their level and scale."""

    level: int
    rescale: bool
    input_scale_bits: int | None
    weight_scale_bits: int | None

    @property
    def output_level(self) -> int:
        """One rescale below the input, or the input's own level without one."""
        return self.level + self.rescale

    @property
    def output_scale_bits(self) -> int | None:
        """log2 of the outputs' scale without a rescale (input + weight bits); None: the parameters' scale."""
        return None if self.rescale else self.input_scale_bits + self.weight_scale_bits
