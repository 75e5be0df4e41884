"""The cost model's arithmetic: unit costs of the HE primitives and the latency floor.

The floor of a run is its operation counts times the unit costs (measured by
`bench.harness.unit_costs` in the same process at the same level): the time the layer
would take if the engine added no overhead at all beyond the primitives it calls.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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


def floor_seconds(counts: OpCounts, unit: UnitCosts) -> float:
    """Counts times unit costs (key switches carry the rotation cost; encodes are the coefficient
    algorithm's masks, the only encoding a run does).

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


# Fixed unit costs for planning (DESIGN.md section 7, N = 8192 [60, 40, 60], one thread, CPU
# time inside a conv): rotation 1.25 ms, pmul 0.12 ms, add 0.04 ms, rescale 0.27 ms, encode
# 0.60 ms. Encryption (not in the table) is a rough 2 ms: it is the same for every schedule of
# a layer, so it never changes a choice. `plan_conv(schedule="auto")` ranks schedules with
# these unless given measured ones; nothing is measured while planning.
DEFAULT_UNIT_COSTS = UnitCosts(rotation=1.25e-3, pmul=0.12e-3, add=0.04e-3, plain_add=0.04e-3, rescale=0.27e-3,
                               encrypt=2e-3, encode=0.60e-3, cmul=0.0)
