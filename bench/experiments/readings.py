"""The encrypted readings of a chosen model (`artemis results encrypt`): one table, from which the
database's experiments view, the command's options and the verdicts' words are made.

    >>> [r.name for r in READINGS], by_name("algorithms").column
    (['fixed', 'auto', 'algorithms'], 'encrypted_algorithms_server_s')

`fixed` is the schedule the model was pruned for, stored at the top of the run's `encrypted`
record; every other reading is stored under its name beside it. Only the fixed reading's
rotations are the ones pruning was steered by, so the others are compared by server time alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reading:
    name: str
    label: str  # in the verdicts: "encrypted (<label>, 3 seeds)"
    prepare: tuple[tuple[str, Any], ...]  # prepare_model's options beyond the model's own schedule
    counted: bool  # its rotations are the chosen step's (the fixed schedule's)

    @property
    def column(self) -> str:
        """Its server time's column in the experiments view."""
        return "encrypted_server_s" if self.name == "fixed" else f"encrypted_{self.name}_server_s"

    @property
    def path(self) -> str:
        """Its server time's JSON path in the run's `encrypted` record."""
        return "$.server_s" if self.name == "fixed" else f"$.{self.name}.server_s"


READINGS = (
    Reading("fixed", "fixed schedule", (), True),
    # the slot engine's auto schedule: a baby step per layer
    Reading("auto", "slot auto schedule", (("schedule", "auto"),), False),
    # per conv the algorithm of the lowest predicted time (slot schedules, matvec, coefficient encoding): the
    # engine at its best, as the model benchmarks' auto cases
    Reading("algorithms", "auto across algorithms", (("schedule", "auto"), ("choose_algorithm", True)), False),
)


def by_name(name: str) -> Reading:
    return next(r for r in READINGS if r.name == name)
