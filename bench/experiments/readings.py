"""The encrypted readings of a chosen model (`artemis results encrypt`): one table, from which the
database's experiments view, the command's options and the verdicts' words are made.

    >>> [r.name for r in READINGS], by_name("algorithms").column
    (['fixed', 'auto', 'algorithms', 'coefficient'], 'encrypted_algorithms_server_s')

`fixed` is the schedule the model was pruned for, stored at the top of the run's `encrypted`
record; every other reading is stored under its name beside it and asked for by the flag
`--<name>` of `artemis results encrypt`. Only the fixed reading's rotations are the ones pruning
was steered by, so the others are compared by server time alone.
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
    help: str = ""  # its flag's help in `artemis results encrypt` (every reading but the fixed one)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():  # it names a flag's dest, a JSON key and a column
            raise ValueError(f"reading name {self.name!r}: letters, digits and underscores only")

    @property
    def dest(self) -> str:
        """Its flag's attribute on the parsed arguments of `artemis results encrypt` (`--<name>`)."""
        return f"reading_{self.name}"

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
    Reading("auto", "slot auto schedule", (("schedule", "auto"),), False,
            "also run each model under the slot engine's auto schedule (a baby step per layer)"),
    # the engine at its best at the protocol's own traffic, as the model benchmarks' auto cases
    Reading("algorithms", "auto across algorithms", (("schedule", "auto"), ("choose_algorithm", True)), False,
            "also run each model under auto across algorithms: per conv the algorithm of the lowest predicted time "
            "among those that keep the protocol's traffic (the slot engine's schedules, matvec)"),
    # the fastest server of all, at more traffic: rotations all but gone, so what pruning saves there
    Reading("coefficient", "coefficient encoding", (("algorithm", "coefficient"),), False,
            "also run each model by the coefficient algorithm (coefficient-encoded convs: a few rotations, more "
            "traffic each way)"),
)


FIXED = READINGS[0]  # the schedule the model was pruned for: always measured, stored at the record's top
OPTIONAL = READINGS[1:]  # each asked for by its flag


def by_name(name: str) -> Reading:
    return next(r for r in READINGS if r.name == name)
