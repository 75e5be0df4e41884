"""The cost model's arithmetic: unit costs of the HE primitives and the latency floor.

The floor of a run is its operation counts times the unit costs (measured by
`bench.harness.unit_costs` in the same process at the same level): the time the layer
would take if the engine added no overhead at all beyond the primitives it calls.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .backends.base import OpCounts


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
    """Counts times unit costs (key switches carry the rotation cost).

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
        + counts.cmuls * unit.cmul
    )
