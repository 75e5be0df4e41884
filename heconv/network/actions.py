"""What a network plan is made of: the actions of the protocol (who does what, in order)
and the per-layer predictions. Built by the planners, executed by the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..basics import OpCounts
from ..coeff_plan import CoeffPlan
from ..conv import ConvPlan
from ..geometry import CoeffChunking, Packing
from ..linear import LinearPlan
from ..parallel_plan import ParallelPlan
from ..params import CKKSParams


@dataclass(frozen=True)
class Encrypt:
    """Client: pack a cleartext value (subsampled first) and send it at `level`. `coeff`: in a
    coefficient conv's input layout, or with `coeff_output` in its output layout (a residual operand)."""

    src: str
    dst: str
    level: int
    subsample: int = 1
    packing: Packing | None = None
    linear: LinearPlan | None = None
    coeff: CoeffChunking | None = None
    coeff_output: bool = False
    ciphertexts: int = 0  # how many the packed value takes (heconv.network.traffic)


@dataclass(frozen=True)
class ServerConv:
    """A conv on the server (slot or coefficient plan); `parallel`: its split over worker processes
    (None: in-process; coefficient plans always run in-process)."""

    name: str
    src: str
    dst: str
    plan: ConvPlan | CoeffPlan
    parallel: ParallelPlan | None = None


@dataclass(frozen=True)
class ServerAdd:
    name: str
    a: str
    b: str
    dst: str
    ciphertexts: int


@dataclass(frozen=True)
class ServerLinear:
    name: str
    src: str
    dst: str
    plan: LinearPlan
    weight_scale: float = 1.0  # global pooling's 1/(H*W), folded into the weights


@dataclass(frozen=True)
class ServerSquare:
    """x -> x*x, relinearised and rescaled, on every ciphertext (non-interactive mode)."""

    name: str
    src: str
    dst: str
    level: int
    ciphertexts: int


@dataclass(frozen=True)
class ServerPool:
    """Global sum pooling by rotate-and-sum over each channel's P slots (non-interactive)."""

    name: str
    src: str
    dst: str
    steps: list[int]


@dataclass(frozen=True)
class Refresh:
    """Server -> client: decrypt, unpack, subsample, then activation / pooling."""

    name: str
    src: str
    dst: str
    channels: int
    subsample: int
    activation: str  # relu | none
    pool: bool = False
    packing: Packing | None = None
    linear: LinearPlan | None = None
    coeff: CoeffChunking | None = None  # a coefficient conv's output layout
    ciphertexts: int = 0  # how many come back (heconv.network.traffic)
    level: int = 0  # theirs


@dataclass(frozen=True)
class ClientOp:
    """Work on a value the client already holds in the clear."""

    name: str
    src: str
    dst: str
    kind: str  # relu | pool | pad
    stride: int = 1
    c_out: int = 0


Action = Union[Encrypt, ServerConv, ServerAdd, ServerLinear, ServerSquare, ServerPool, Refresh, ClientOp]


@dataclass(frozen=True)
class LayerReport:
    name: str
    kind: str
    predicted: OpCounts
    galois_steps: int
    level: int = 0  # where its rotations and multiplications happen
    schedule: str | None = None  # convs: the rotation schedule that runs ("output-rotation", "bsgs:4", "coefficient")
    baby_step: int | None = None  # convs: its baby step B
    workers: int = 1  # convs: the processes it runs on


@dataclass(frozen=True)
class NetworkPlan:
    params: CKKSParams
    actions: list[Action]
    output: str
    galois_steps: list[int]
    layers: list[LayerReport] = field(default_factory=list)
    protocol: str = "hybrid"
    workers: int = 1  # the most processes any conv runs on (heconv.parallel)
    algorithm: str = "slot"  # every conv's: "slot" (heconv.conv) or "coefficient" (heconv.coeff)

    @property
    def predicted(self) -> OpCounts:
        return sum((layer.predicted for layer in self.layers), OpCounts())

    def summary(self) -> list[dict]:
        """Per server layer: predicted rotations, multiplications, Galois keys."""
        return [
            {"layer": r.name, "kind": r.kind, "schedule": r.schedule, "baby_step": r.baby_step,
             "workers": r.workers, "rotations": r.predicted.rotations, "pmuls": r.predicted.pmuls,
             "adds": r.predicted.adds, "galois_keys": r.galois_steps}
            for r in self.layers
        ]


def galois_steps(actions: list[Action]) -> list[int]:
    steps: set[int] = set()
    for a in actions:
        if isinstance(a, (ServerConv, ServerLinear)):
            steps.update(a.plan.rotation_steps)
        elif isinstance(a, ServerPool):
            steps.update(a.steps)
    return sorted(steps)
