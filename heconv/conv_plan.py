"""What a convolution plan is: its shape, its kept plaintexts, its schedule and rotations.

Frozen data only (built by `heconv.conv.plan_conv`, executed by `heconv.conv.run_conv`),
with a JSON round trip: `ConvPlan.from_dict(json.loads(plan.to_json())) == plan`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from .basics import OpCounts, ScaleSplit
from .geometry import Packing
from .params import CKKSParams
from .schedule import ScheduleCandidate, schedule_name


@dataclass(frozen=True)
class ConvSpec:
    """Shape of one convolution: C_in -> C_out, k x k, 'same' padding, on H x W."""

    name: str
    c_in: int
    c_out: int
    kernel: int
    height: int
    width: int
    stride: int = 1


@dataclass(frozen=True)
class Term:
    """One nonzero plaintext M[bo, bi, d, pos].

    `pos` indexes kernel_offsets(k); `shift` is the (normalised) baby-step rotation
    j*P + sigma(pos) of the input it multiplies (j = d mod B), so the run loop needs no
    geometry.
    """

    bo: int
    bi: int
    d: int
    pos: int
    shift: int


@dataclass(frozen=True)
class ConvPlan(ScaleSplit):
    """Everything `run_conv` will do, decided before any ciphertext exists.

    schedule: as asked ("output-rotation", "input-rotation", "bsgs:B" or "auto");
    baby_step: the B it resolved to (`schedule_name` spells it); positions[bi]: kept
    filter positions of input ciphertext bi (indices into kernel_offsets); input_shifts[bi]:
    the distinct nonzero baby-step shifts j*P + sigma(pos) it needs (one rotation each);
    diagonals[bo]: kept diagonals of output ciphertext bo; giants[bo]: their kept giant
    steps g = d // B (one rotation each but g = 0); terms: the nonzero plaintexts in run
    order; rotation_steps: the Galois keys the plan needs; candidates: for "auto", every B
    considered with its predicted cost (empty otherwise).
    """

    spec: ConvSpec
    packing: Packing
    params: CKKSParams
    schedule: str
    level: int
    has_bias: bool
    positions: list[list[int]]
    input_shifts: list[list[int]]
    diagonals: list[list[int]]
    terms: list[Term]
    rotation_steps: list[int]
    baby_step: int
    giants: list[list[int]]
    candidates: list[ScheduleCandidate] = field(default_factory=list)
    predicted: OpCounts = field(default_factory=OpCounts)
    # Without a rescale (heconv.bounds.last_level_split): the input at 2^input_scale_bits, the weights at
    # 2^weight_scale_bits, the products summed at the input's level (the chain's last) and left there.
    rescale: bool = True
    input_scale_bits: int | None = None  # None: the parameters' scale
    weight_scale_bits: int | None = None  # None: the prime the rescale divides by

    @property
    def schedule_name(self) -> str:
        """The schedule that runs: "output-rotation", "input-rotation" or "bsgs:B"."""
        return schedule_name(self.baby_step, self.packing.c_n)

    @property
    def empty_outputs(self) -> list[int]:
        """Output ciphertexts with no kept term: the server encrypts the bias alone."""
        return [bo for bo, ds in enumerate(self.diagonals) if not ds]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["terms"] = [[t.bo, t.bi, t.d, t.pos, t.shift] for t in self.terms]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "ConvPlan":
        params = dict(d["params"])
        params["coeff_mod_bit_sizes"] = tuple(params["coeff_mod_bit_sizes"])
        return cls(
            spec=ConvSpec(**d["spec"]),
            packing=Packing(**d["packing"]),
            params=CKKSParams(**params),
            schedule=d["schedule"],
            level=d["level"],
            has_bias=d["has_bias"],
            positions=d["positions"],
            input_shifts=d["input_shifts"],
            diagonals=d["diagonals"],
            terms=[Term(*t) for t in d["terms"]],
            rotation_steps=d["rotation_steps"],
            baby_step=d.get("baby_step", 1),
            giants=d.get("giants", d["diagonals"]),  # plans written before schedules: B = 1
            candidates=[ScheduleCandidate(**c) for c in d.get("candidates", [])],
            predicted=OpCounts(**d["predicted"]),
            rescale=d.get("rescale", True),  # plans written before the last-level option rescaled
            input_scale_bits=d.get("input_scale_bits"),
            weight_scale_bits=d.get("weight_scale_bits"),
        )
