"""The encrypted readings of a chosen model (`artemis results encrypt`): one table, from which the
database's experiments view, the command's options and the verdicts' words are made.

    >>> [r.name for r in READINGS], by_name("algorithms").column, by_name("algorithms").bytes_column
    (['fixed', 'auto', 'algorithms', 'coefficient'], 'encrypted_algorithms_server_s', 'encrypted_algorithms_bytes')

`fixed` is the schedule the model was pruned for, stored at the top of the run's `encrypted`
record; every other reading is stored under its name beside it and asked for by the flag
`--<name>` of `artemis results encrypt`. Only the fixed reading's rotations are the ones pruning
was steered by, so the others are compared by server time alone. Each reading also records the
bytes an image's ciphertexts take each way, so that its time at a link rate can be told too.
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
    top: bool = False  # stored at the top of the run's `encrypted` record (the fixed schedule), not under its name

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
        return "encrypted_server_s" if self.top else f"encrypted_{self.name}_server_s"

    @property
    def path(self) -> str:
        """Its server time's JSON path in the run's `encrypted` record."""
        return self._key("server_s")

    @property
    def bytes_column(self) -> str:
        """Its column in the experiments view of the bytes per image, both ways together."""
        return "encrypted_bytes" if self.top else f"encrypted_{self.name}_bytes"

    @property
    def bytes_paths(self) -> tuple[str, str]:
        """The JSON paths of its bytes per image from client to server and back."""
        return self._key("bytes_client_to_server"), self._key("bytes_server_to_client")

    def _key(self, key: str) -> str:
        return f"$.{key}" if self.top else f"$.{self.name}.{key}"


READINGS = (
    Reading("fixed", "fixed schedule", (), True, top=True),
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


FIXED = next(r for r in READINGS if r.top)  # the schedule the model was pruned for: always measured
OPTIONAL = tuple(r for r in READINGS if not r.top)  # each asked for by its flag


def by_name(name: str) -> Reading:
    return next(r for r in READINGS if r.name == name)
