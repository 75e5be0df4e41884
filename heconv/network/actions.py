"""What a network plan is made of: the actions of the protocol (who does what, in order)
and the per-layer predictions. Built by the planners, executed by the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from ..algorithms import DEFAULT_ALGORITHM, get_algorithm
from ..algorithms.layout import Layout
from ..basics import OpCounts
from ..linear import LinearPlan
from ..parallel_plan import ParallelPlan
from ..params import CKKSParams


@dataclass(frozen=True)
class Encrypt:
    """Client: subsample a cleartext value by `subsample`, pack it in `layout` (a conv's input layout, or
    the layout of the encrypted operand of a residual add) or for the `linear` layer, and send it at `level`."""

    src: str
    dst: str
    level: int
    subsample: int = 1
    layout: Layout | None = None
    linear: LinearPlan | None = None
    ciphertexts: int = 0  # how many the packed value takes (heconv.network.traffic)


@dataclass(frozen=True)
class ServerConv:
    """A conv on the server: the `plan` of the registered `algorithm` (heconv.algorithms); `parallel`: its
    split over worker processes (None: in-process)."""

    name: str
    src: str
    dst: str
    plan: Any
    parallel: ParallelPlan | None = None
    algorithm: str = DEFAULT_ALGORITHM


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
    """Server -> client: decrypt, unpack from `layout` (which reads a strided output at its stride) or
    from the `linear` layer's output, then activation / pooling."""

    name: str
    src: str
    dst: str
    channels: int
    activation: str  # relu | none
    pool: bool = False
    layout: Layout | None = None
    linear: LinearPlan | None = None
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
    schedule: str | None = None  # convs: what ran (ConvAlgorithm.label, e.g. "output-rotation", "bsgs:4")
    baby_step: int | None = None  # convs: its baby step B
    workers: int = 1  # convs: the processes it runs on
    algorithm: str | None = None  # convs: the registered algorithm that runs it
    reason: str | None = None  # convs chosen by `--schedule auto` across algorithms: why (predicted times)


@dataclass(frozen=True)
class NetworkPlan:
    params: CKKSParams
    actions: list[Action]
    output: str
    galois_steps: list[int]
    layers: list[LayerReport] = field(default_factory=list)
    protocol: str = "hybrid"
    workers: int = 1  # the most processes any conv runs on (heconv.parallel)
    algorithm: str = DEFAULT_ALGORITHM  # every conv's, a name in heconv.algorithms (the registry)
    value_bound: float | None = None  # the largest |value| the plan assumes the client uploads (hybrid)

    @property
    def predicted(self) -> OpCounts:
        return sum((layer.predicted for layer in self.layers), OpCounts())

    @property
    def pmuls_level0(self) -> float:
        """The plaintext multiplications weighted by the primes each works on, in level-0 multiplications
        (a coefficient conv at the last level of [60, 40, 60] counts half): what the cost model's
        multiply-accumulate term reads (bench.report.crossval)."""
        p = self.params
        return float(sum(r.predicted.pmuls * p.level_work(r.level) for r in self.layers))

    def summary(self) -> list[dict]:
        """Per server layer: predicted rotations, multiplications, Galois keys."""
        return [
            {"layer": r.name, "kind": r.kind, "algorithm": r.algorithm, "schedule": r.schedule,
             "baby_step": r.baby_step, "reason": r.reason,
             "workers": r.workers, "rotations": r.predicted.rotations, "pmuls": r.predicted.pmuls,
             "adds": r.predicted.adds, "galois_keys": r.galois_steps}
            for r in self.layers
        ]


def galois_steps(actions: list[Action]) -> list[int]:
    steps: set[int] = set()
    for a in actions:
        if isinstance(a, ServerConv):
            steps.update(get_algorithm(a.algorithm).rotation_steps(a.plan))
        elif isinstance(a, ServerLinear):
            steps.update(a.plan.rotation_steps)
        elif isinstance(a, ServerPool):
            steps.update(a.steps)
    return sorted(steps)


def _server_reads(action: Action) -> tuple[str, ...]:
    """The server-side values an action reads (an upload and a client op read client values)."""
    if isinstance(action, ServerAdd):
        return action.a, action.b
    return () if isinstance(action, (Encrypt, ClientOp)) else (action.src,)


def check_placements(plan: NetworkPlan) -> None:
    """Ask each conv's algorithm whether its plan is sound where the network plan placed it
    (`ConvAlgorithm.check_placement`: its residual partner, and whether only their sum is read);
    InputError if not. The planner's own plans pass; `Server` calls it, so a loaded or edited plan is
    checked before anything is compiled."""
    convs = {a.dst: a for a in plan.actions if isinstance(a, ServerConv)}
    readers: dict[str, int] = {}
    for a in plan.actions:
        for name in _server_reads(a):
            readers[name] = readers.get(name, 0) + 1
    partner: dict[str, tuple[ServerConv, bool]] = {}
    for a in plan.actions:
        if isinstance(a, ServerAdd) and a.a in convs and a.b in convs and a.a != a.b:
            sum_only = readers[a.a] == readers[a.b] == 1
            partner[a.a], partner[a.b] = (convs[a.b], sum_only), (convs[a.a], sum_only)
    for dst, conv in convs.items():
        other, sum_only = partner.get(dst, (None, False))
        get_algorithm(conv.algorithm).check_placement(conv.name, conv.plan, other.plan if other else None, sum_only)
