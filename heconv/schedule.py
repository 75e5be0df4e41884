"""Rotation schedules of one convolution: a baby step B per layer (docs/design.md, "Rotation schedules").

Split each diagonal d = g*B + j, with B a power of two dividing c_n and 0 <= j < B:

    Y[bo] = sum over kept g:  Rot_{g*B*P}( sum over kept j, bi, pos:
                Rot_{j*P + sigma(pos)}(X[bi]) (*) Rot_{j*P}(M[bo, bi, g*B + j, pos]) )

- baby steps: one rotation of input ciphertext bi per distinct nonzero slot shift
  j*P + sigma(pos) over its kept (j, pos), shared by every output block (pairs whose
  shifts coincide, as on narrow images, share one rotation);
- giant steps: one rotation of output ciphertext bo per kept g != 0, by g*B*P slots.

B = 1 is the output-rotation (OR) method, B = c_n Gazelle's input-rotation method. The
dense count is n_in*(k*k*B - 1) + n_out*(c_n/B - 1) when every (j, pos) has its own
shift; multiplications and additions do not depend on B. "auto" ranks every B by the
predicted time of its counts (counts x unit costs), Galois key count as tie-break; the
traffic per image never differs between them (`best_schedule`).

This module decides *which* rotations run, from the kept-term mask alone; `heconv.conv`
builds the plan, compiles and runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .basics import OpCounts
from .cost import DEFAULT_UNIT_COSTS, UnitCosts, floor_seconds
from .errors import InputError
from .geometry import Packing

SCHEDULE_FORMS = ("output-rotation", "input-rotation", "bsgs:B", "auto")


def baby_step_choices(c_n: int) -> list[int]:
    """The baby steps a layer with c_n channels per ciphertext can use: powers of two dividing c_n.

    >>> baby_step_choices(16)
    [1, 2, 4, 8, 16]
    """
    return [1 << e for e in range(int(c_n).bit_length()) if c_n % (1 << e) == 0]


def check_schedule(schedule: str, name: str | None = "conv") -> str:
    """Check a schedule's spelling (not yet against a layer's c_n); returns it unchanged.
    Errors name layer `name` (none when None).

    >>> check_schedule("bsgs:4")
    'bsgs:4'
    >>> check_schedule("bsgs:3")
    Traceback (most recent call last):
    ...
    heconv.errors.InputError: layer conv: schedule 'bsgs:3': the baby step B must be a power of two, got 3
    """
    where = f"layer {name}: " if name else ""
    if schedule in ("output-rotation", "input-rotation", "auto"):
        return schedule
    if isinstance(schedule, str) and schedule.startswith("bsgs:"):
        text = schedule[len("bsgs:"):]
        if not text.isdigit():
            raise InputError(f"{where}schedule {schedule!r}: expected 'bsgs:B' with an integer B, e.g. 'bsgs:4'")
        b = int(text)
        if b < 1 or b & (b - 1):
            raise InputError(f"{where}schedule {schedule!r}: the baby step B must be a power of two, got {b}")
        return schedule
    raise InputError(f"{where}unknown rotation schedule {schedule!r}; known: "
                     f"'output-rotation', 'input-rotation', 'bsgs:B' (B a power of two dividing c_n), 'auto'")


def layer_schedule(schedule: str | Mapping[str, str], name: str) -> str:
    """One layer's schedule from a network-wide one or a per-layer mapping (missing: output-rotation).

    >>> layer_schedule("auto", "conv1"), layer_schedule({"conv1": "bsgs:2"}, "conv1"), layer_schedule({}, "fc")
    ('auto', 'bsgs:2', 'output-rotation')
    """
    if isinstance(schedule, Mapping):
        return check_schedule(schedule.get(name, "output-rotation"), name)
    return check_schedule(schedule, name)


def check_network_schedule(schedule: str | Mapping[str, str], layers: list[str]) -> None:
    """Check a network-wide schedule, or a per-layer one whose names must all be convs of `layers`."""
    if isinstance(schedule, Mapping):
        unknown = sorted(set(schedule) - set(layers))
        if unknown:
            raise InputError(f"schedule names layers that are not convs of the network: {unknown[:5]}")
        for name, spec in schedule.items():
            check_schedule(spec, name)
    else:
        check_schedule(schedule, None)


def resolve_schedule(schedule: str, c_n: int, name: str = "conv") -> int | None:
    """The baby step B a schedule names for a layer with c_n channels per ciphertext (None: auto).

    >>> resolve_schedule("output-rotation", 16), resolve_schedule("input-rotation", 16), resolve_schedule("bsgs:4", 16)
    (1, 16, 4)
    >>> resolve_schedule("bsgs:32", 16, "layer1.0.conv1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    heconv.errors.InputError: layer layer1.0.conv1: schedule 'bsgs:32': the baby step B must divide c_n = 16 ...
    """
    check_schedule(schedule, name)
    if schedule == "auto":
        return None
    if schedule == "output-rotation":
        return 1
    if schedule == "input-rotation":
        return c_n
    b = int(schedule[len("bsgs:"):])
    if c_n % b:
        raise InputError(f"layer {name}: schedule {schedule!r}: the baby step B must divide c_n = {c_n} "
                         f"(one of {baby_step_choices(c_n)}); 'auto' picks one per layer")
    return b


def schedule_name(baby_step: int, c_n: int) -> str:
    """The canonical name of baby step B on a layer with c_n channels per ciphertext.

    >>> schedule_name(1, 16), schedule_name(16, 16), schedule_name(4, 16), schedule_name(1, 1)
    ('output-rotation', 'input-rotation', 'bsgs:4', 'output-rotation')
    """
    if baby_step == 1:
        return "output-rotation"
    return "input-rotation" if baby_step == c_n else f"bsgs:{baby_step}"


@dataclass(frozen=True)
class Rotations:
    """The rotations one schedule runs for a kept-term mask.

    input_shifts[bi]: distinct nonzero baby-step shifts of input ciphertext bi (one
    rotation each); giants[bo]: kept giant steps g of output ciphertext bo (g = 0 costs no
    rotation); steps: the distinct normalised steps, one Galois key each.
    """

    baby_step: int
    input_shifts: list[list[int]]
    giants: list[list[int]]
    steps: list[int]

    @property
    def count(self) -> int:
        return sum(len(s) for s in self.input_shifts) + sum(sum(1 for g in gs if g) for gs in self.giants)


def schedule_rotations(kept: np.ndarray, shifts: list[int], packing: Packing, baby_step: int) -> Rotations:
    """Baby and giant steps of schedule B for kept[bo, bi, d, pos] (True: plaintext nonzero).

    `shifts[pos]` is sigma(pos), normalised to [0, S).

    >>> from heconv.geometry import packing_geometry
    >>> g = packing_geometry(4, 4, 8, 8, 4096)                    # P = 64, c_n = 4, one block
    >>> kept = np.ones((1, 1, 4, 1), dtype=bool)                 # dense 1x1 conv
    >>> r = schedule_rotations(kept, [0], g, 2)                  # d = 2g + j
    >>> r.input_shifts, r.giants, r.steps, r.count              # baby j = 1: 64; giant g = 1: 128
    ([[64]], [[0, 1]], [64, 128], 2)
    """
    n_out, n_in, c_n, kk = kept.shape
    p, s = packing.channel_slots, packing.slots
    b = baby_step
    by_input = kept.any(axis=0).reshape(n_in, c_n // b, b, kk).any(axis=1)  # [bi, j, pos]
    step = (np.arange(b)[:, None] * p + np.asarray(shifts, dtype=np.int64)[None, :]) % s  # [j, pos]
    input_shifts = [sorted({int(v) for v in step[by_input[bi]]} - {0}) for bi in range(n_in)]
    by_output = kept.any(axis=(1, 3)).reshape(n_out, c_n // b, b).any(axis=2)  # [bo, g]
    giants = [[int(g) for g in np.nonzero(by_output[bo])[0]] for bo in range(n_out)]
    giant_steps = {g * b * p % s for gs in giants for g in gs if g}
    return Rotations(b, input_shifts, giants, sorted(set().union(*input_shifts, giant_steps) - {0}))


def schedule_counts(kept: np.ndarray, rotations: Rotations, has_bias: bool) -> OpCounts:
    """Predicted counts of a schedule from the kept mask alone (no plan built).

    One multiplication per kept plaintext; every product and every giant-step sum is one
    addition, so additions are pmuls minus the nonempty outputs whatever B is; one rescale
    per nonempty output, an encryption of the bias for each empty one.
    """
    pmuls = int(kept.sum())
    full = int(kept.any(axis=(1, 2, 3)).sum())
    return OpCounts(rotations=rotations.count, key_switches=rotations.count, pmuls=pmuls, adds=pmuls - full,
                    plain_adds=full if has_bias else 0, rescales=full, encryptions=kept.shape[0] - full)


@dataclass(frozen=True)
class ScheduleCandidate:
    """One baby step considered by "auto", with what it would cost."""

    baby_step: int
    schedule: str
    rotations: int
    galois_keys: int
    predicted_s: float


def rank_schedules(kept: np.ndarray, shifts: list[int], packing: Packing, has_bias: bool = False,
                   unit: UnitCosts | None = None) -> list[ScheduleCandidate]:
    """Every baby step of the layer with its predicted time (counts x unit costs), by B.

    >>> from heconv.geometry import packing_geometry
    >>> g = packing_geometry(512, 512, 2, 2, 4096)                # P = 4, c_n = 512
    >>> kept = np.ones((1, 1, 512, 1), dtype=bool)               # dense 1x1 512->512
    >>> best = best_schedule(rank_schedules(kept, [0], g))
    >>> best.baby_step, best.rotations                            # (B - 1) + (512/B - 1)
    (16, 46)
    """
    unit = unit or DEFAULT_UNIT_COSTS
    out = []
    for b in baby_step_choices(packing.c_n):
        rot = schedule_rotations(kept, shifts, packing, b)
        seconds = floor_seconds(schedule_counts(kept, rot, has_bias), unit)
        out.append(ScheduleCandidate(b, schedule_name(b, packing.c_n), rot.count, len(rot.steps), seconds))
    return out


def best_schedule(candidates: list[ScheduleCandidate]) -> ScheduleCandidate:
    """Lowest predicted time; then fewest Galois keys; then the smallest B.

    Server time is the whole end-to-end objective here (heconv.traffic): every baby step of a layer
    shares its packing (c_n, n_in, n_out are fixed before the schedule), so the client's work and
    the ciphertexts and bytes each way per image are the same for all of them. Only the Galois keys
    differ, which the client sends once, not per image: the tie-break."""
    return min(candidates, key=lambda c: (c.predicted_s, c.galois_keys, c.baby_step))


def dense_rotations(packing: Packing, kernel: int, baby_step: int = 1) -> int:
    """The dense count n_in*(k*k*B - 1) + n_out*(c_n/B - 1) (B = 1: the OR method).

    It equals the plan's count when every (j, pos) has its own shift, i.e. when W >= k,
    H > k // 2 and the shifts sigma(pos) stay within one channel's P slots; on smaller
    images shifts coincide (one rotation serves several) or positions fall outside.

    >>> from heconv.geometry import packing_geometry
    >>> g = packing_geometry(64, 64, 16, 16, 4096)
    >>> dense_rotations(g, 3), dense_rotations(g, 3, 4), dense_rotations(g, 3, 16)
    (92, 152, 572)
    """
    return packing.n_in * (kernel * kernel * baby_step - 1) + packing.n_out * (packing.c_n // baby_step - 1)
