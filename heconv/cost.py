"""The cost model's arithmetic: unit costs of the HE primitives and the latency floor.

The floor of a run is its operation counts times the unit costs (measured by
`bench.harness.unit_costs` in the same process at the same level): the time the layer
would take if the engine added no overhead at all beyond the primitives it calls.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from .basics import OpCounts


@dataclass(frozen=True)
class UnitCosts:
    """Seconds per primitive, each measured the way the engine calls it."""

    rotation: float
    pmul: float
    add: float
    plain_add: float
    rescale: float
    encrypt: float
    encode: float
    cmul: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def at_work(self, work: float) -> "UnitCosts":
        """These level-0 costs at a level doing `work` of level 0's (`CKKSParams.level_work`): the
        multiplications, additions and rotations work prime by prime (a key switch at one prime of
        [60, 40, 60] took 0.68 ms against 1.38 at two, run 0058's unit costs); the rest is kept.

        >>> DEFAULT_UNIT_COSTS.at_work(0.5).pmul, DEFAULT_UNIT_COSTS.at_work(0.5).rotation
        (6e-05, 0.000625)
        """
        return replace(self, pmul=self.pmul * work, add=self.add * work, plain_add=self.plain_add * work,
                       rotation=self.rotation * work)


def floor_seconds(counts: OpCounts, unit: UnitCosts) -> float:
    """Counts times unit costs (key switches carry the rotation cost; a run encodes nothing, the
    encodes term kept for plans that do).

    >>> u = UnitCosts(rotation=2e-3, pmul=2e-4, add=5e-5, plain_add=3e-5, rescale=8e-4, encrypt=0, encode=0)
    >>> round(floor_seconds(OpCounts(key_switches=92, pmuls=2304, adds=2300, rescales=4), u), 4)
    0.763
    """
    return (
        counts.key_switches * unit.rotation
        + counts.pmuls * unit.pmul
        + counts.adds * unit.add
        + counts.plain_adds * unit.plain_add
        + counts.rescales * unit.rescale
        + counts.encryptions * unit.encrypt
        + counts.encodes * unit.encode
        + counts.cmuls * unit.cmul
    )


# Fixed unit costs for planning (docs/design.md, "The cost model"; N = 8192 [60, 40, 60], one thread, CPU
# time inside a conv): rotation 1.25 ms, pmul 0.12 ms, add 0.04 ms, rescale 0.27 ms, encode
# 0.60 ms. Encryption (not in the table) is a rough 2 ms (1.7-3.5 ms measured in the benchmark runs): the
# same for every schedule of a slot layer; in the coefficient chunking it prices each output's mask.
# `plan_conv(schedule="auto")` and the coefficient chunking rank their candidates with these unless
# given measured ones; nothing is measured while planning.
DEFAULT_UNIT_COSTS = UnitCosts(rotation=1.25e-3, pmul=0.12e-3, add=0.04e-3, plain_add=0.04e-3, rescale=0.27e-3,
                               encrypt=2e-3, encode=0.60e-3, cmul=0.0)


@dataclass(frozen=True)
class WireCosts:
    """Seconds per ciphertext of the work around the network, serialization included: the client
    encrypting an upload (seeded with its secret key, or with the public key), the server loading
    an upload (a seeded one expanded from its seed) and serializing an output, the client loading,
    decrypting and decoding an output. The client's encoding is `UnitCosts.encode`.

    The upload side (encoding, encryption, loading) is level 0's and works prime by prime: an upload
    at a level with fewer primes is priced in proportion (`CKKSParams.level_work`; measured at
    [60, 40, 60]: seeded encryption 2.3 ms at two primes against 1.1-1.3 at one, loading 0.84-1.0
    against 0.48, encoding 0.9-1.2 against 0.5-0.7). Saving and decrypting are the one-prime
    output's, where every coefficient and rescaled slot output of that chain lands."""

    encrypt_seeded: float
    encrypt_public: float
    load: float
    save: float
    decrypt: float
    save_extracted: float = 0.62e-3  # an output sent with the coefficients read alone (Backend.to_wire with read)
    decrypt_extracted: float = 1.4e-3  # and the client rebuilding, decrypting and decoding it

    def encrypt(self, seeded: bool) -> float:
        return self.encrypt_seeded if seeded else self.encrypt_public

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# Fixed wire costs for planning (N = 8192 [60, 40, 60], one thread, the mean of two runs' medians over
# 30 ciphertexts each on a shared 2-core machine, `tests/heconv/measure_wire_costs.py`): seeded encryption
# 1.9 ms against 6.1 ms with the public key (SEAL compresses the larger one), loading 0.85 ms,
# serializing 0.47 ms, loading, decrypting and decoding 1.1 ms. An extracted output (a quarter of c0 read,
# the second polynomial back from NTT form to cut the first) costs about 1.3x both ways: 0.76-0.81 against
# 0.59-0.63 ms to serialize, 1.35-1.48 against 1.08-1.11 ms to rebuild and decrypt (two runs at level 1,
# `--level 1`, beside a sweep), so 0.62 and 1.4 ms here.
DEFAULT_WIRE_COSTS = WireCosts(encrypt_seeded=1.9e-3, encrypt_public=6.1e-3, load=0.85e-3, save=0.47e-3,
                               decrypt=1.1e-3)
