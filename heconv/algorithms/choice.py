"""`--schedule auto` across algorithms: per conv, the registered algorithm (with its own best schedule) of
the lowest predicted time, among those that keep the protocol's traffic (docs/design.md, "Rotation
schedules"). The coefficient algorithm changes the traffic, so it stays the user's own choice.

A candidate's predicted time is its plan's counts times the unit costs (heconv.cost.floor_seconds); an
algorithm that splits a conv over `workers` processes is timed by its slowest worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..cost import DEFAULT_UNIT_COSTS, UnitCosts, floor_seconds
from .base import ConvAlgorithm


@dataclass(frozen=True)
class AlgorithmCandidate:
    """One algorithm considered for a conv: what would run (`label`) and its predicted seconds."""

    algorithm: str
    label: str
    predicted_s: float


@dataclass(frozen=True)
class AlgorithmChoice:
    """The algorithm chosen for one conv, its plan, and every candidate (the chosen one first).

    >>> c = AlgorithmChoice("matvec", None, (AlgorithmCandidate("matvec", "matvec bsgs:8", 0.01),
    ...                                      AlgorithmCandidate("slot", "bsgs:4", 0.02)))
    >>> c.reason
    'auto: matvec bsgs:8 (matvec) 0.0100 s < bsgs:4 (slot) 0.0200 s, predicted'
    """

    algorithm: str
    plan: Any
    candidates: tuple[AlgorithmCandidate, ...]

    @property
    def reason(self) -> str:
        """One line: the chosen candidate's predicted time against the others'."""
        best, *rest = self.candidates
        others = ", ".join(f"{c.label} ({c.algorithm}) {c.predicted_s:.4f} s" for c in rest)
        sign = " <= " if rest and rest[0].predicted_s <= best.predicted_s else " < "
        return (f"auto: {best.label} ({best.algorithm}) {best.predicted_s:.4f} s" + (sign + others if others else "")
                + ", predicted")


def auto_algorithms(algorithms: dict[str, ConvAlgorithm], protocol: str) -> list[str]:
    """The names `--schedule auto` chooses among: those that keep the traffic and run in `protocol`,
    in registration order."""
    return [n for n, a in algorithms.items() if not a.changes_traffic and protocol in a.protocols]


def predicted_seconds(algorithm: ConvAlgorithm, plan: Any, workers: int = 1, unit: UnitCosts | None = None) -> float:
    """The plan's predicted time: its counts x unit costs at its input level (`UnitCosts.at_work`), or its
    slowest worker's when it splits."""
    unit = (unit or DEFAULT_UNIT_COSTS).at_work(plan.params.level_work(algorithm.input_level(plan)))
    split = algorithm.split(plan, workers) if workers > 1 and algorithm.parallel else None
    if split is None:
        return floor_seconds(algorithm.predicted(plan), unit)
    return max(floor_seconds(c, unit) for c in split.worker_counts())


def choose_algorithm(algorithms: dict[str, ConvAlgorithm], names: list[str], plan_with: Callable[[str], Any],
                     workers: int = 1, unit: UnitCosts | None = None,
                     accept: Callable[[str, Any], bool] | None = None) -> AlgorithmChoice:
    """Plan the conv with every algorithm of `names` (`plan_with(name)`), keep the lowest predicted time
    (ties: the first registered) among the plans `accept(name, plan)` takes (all where it takes none:
    e.g. a residual partner's output placement that no candidate matches; the planner then says so)."""
    planned = [(i, name, plan_with(name)) for i, name in enumerate(names)]
    kept = [t for t in planned if accept is None or accept(t[1], t[2])] or planned
    scored = []
    for i, name, plan in kept:
        alg = algorithms[name]
        scored.append((predicted_seconds(alg, plan, workers, unit), i, name, plan))
    scored.sort(key=lambda t: (t[0], t[1]))
    cands = tuple(AlgorithmCandidate(n, algorithms[n].label(p), s) for s, _, n, p in scored)
    return AlgorithmChoice(scored[0][2], scored[0][3], cands)
