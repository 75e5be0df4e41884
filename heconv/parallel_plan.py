"""How one convolution's work splits across worker processes. Pure: touches no backend.

The unit of work is a giant-step group (bo, g): the terms of Q[bo, g] (consecutive in the
plan's run order), multiplied and added, then rotated by the giant step. An algorithm lists
its groups (`WorkGroup`; the slot engine's here, matvec's in its folder) and `split_groups`
splits them. Each worker takes a contiguous run of groups, so most output ciphertexts stay
within one worker:

- a worker computes the baby-step rotations *its* terms read (for dense weights, every
  one of the layer's): recomputed per worker, not shipped. Shipping would need a barrier
  between the workers in the middle of every layer, for little: at N = 8192 a rotation
  takes 1.0-1.15 ms and SEAL's serialization of its result 0.33-0.70 ms to save plus
  0.20-0.24 ms to load, so with two workers each would trade one rotation for half a
  rotation, half a save and half a load, about 0.25 ms less per baby step (4% of dense
  ResNet18 at 16x16). `ParallelPlan.extra_rotations` counts what recomputing adds;
- an output ciphertext whose groups all fall in one worker is finished there (rescale,
  matvec's fold, bias) and shipped back finished; one split between workers comes back as
  partial sums that worker 0 adds and finishes (`merged`); worker 0 also encrypts the bias
  of empty outputs.

Additions, multiplications and rescales are exactly the single-process plan's (a sum of
k partial sums still takes k - 1 additions in all); rotations exceed it by the baby steps
that more than one worker computes. The split minimises the largest worker's predicted
time (counts x unit costs), so the layer's floor is that worker's floor plus transfers.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from .basics import OpCounts
from .conv_plan import ConvPlan
from .cost import DEFAULT_UNIT_COSTS, UnitCosts
from .errors import InputError


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_workers(workers: object, where: str = "") -> int:
    """A worker count: a positive integer (bool refused)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"{where}workers must be a positive integer, got {workers!r}")
    return workers


@dataclass(frozen=True)
class Share:
    """What one worker computes: terms[start:end] of the plan (whole (bo, g) groups).

    input_shifts[bi]: the baby-step rotations of input bi it computes (every bi, empty when
    unused); inputs: the input ciphertexts it reads; outputs: the output ciphertexts it
    adds into; finals: those it computes alone, finished (rescaled, biased) where it runs.
    """

    worker: int
    start: int
    end: int
    groups: int
    input_shifts: list[list[int]]
    inputs: list[int]
    outputs: list[int]
    finals: list[int]
    predicted: OpCounts


@dataclass(frozen=True)
class ParallelPlan:
    """A conv's split over `workers` processes (worker 0: the calling process).

    merged: outputs whose partial sums come from several workers (added and finished by
    worker 0: rescale, the algorithm's fold, bias); merge: what worker 0 does after the shares
    (those additions and finishes, and the encryption of empty outputs); predicted: every
    share's counts plus the merge's, the counts a run must show.
    """

    layer: str
    workers: int
    shares: list[Share]
    merged: list[int]
    merge: OpCounts
    predicted: OpCounts
    algorithm: str  # the registered algorithm whose parallel hooks run the shares
    serial: OpCounts = field(default_factory=OpCounts)  # the single-process plan's counts

    @property
    def extra_rotations(self) -> int:
        """Baby steps computed by more than one worker: rotations beyond the single-process plan."""
        return self.predicted.rotations - self.serial.rotations

    def worker_counts(self) -> list[OpCounts]:
        """Predicted counts per worker, worker 0's including the merge."""
        return [s.predicted + (self.merge if s.worker == 0 else OpCounts()) for s in self.shares]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["extra_rotations"] = self.extra_rotations
        return d


@dataclass(frozen=True)
class WorkGroup:
    """One unit of a split: the terms[start:end] of output bo's giant step g (in the plan's run order),
    the (bi, shift != 0) baby steps they read, the inputs they read, and their predicted seconds
    (multiply-adds plus the giant rotation). Each algorithm lists its own (`SlotAlgorithm.split`,
    the matvec folder's `matvec_groups`); `split_groups` splits any such list."""

    bo: int
    g: int
    start: int
    end: int
    baby: frozenset  # (bi, shift) pairs with shift != 0
    inputs: frozenset
    cost: float


def _groups(plan: ConvPlan, unit: UnitCosts) -> list[WorkGroup]:
    b, out = plan.baby_step, []
    terms, i = plan.terms, 0
    while i < len(terms):
        j, key = i, (terms[i].bo, terms[i].d // b)
        while j < len(terms) and (terms[j].bo, terms[j].d // b) == key:
            j += 1
        baby = frozenset((t.bi, t.shift) for t in terms[i:j] if t.shift)
        cost = (j - i) * (unit.pmul + unit.add) + (unit.rotation if key[1] else 0.0)
        out.append(WorkGroup(key[0], key[1], i, j, baby, frozenset(t.bi for t in terms[i:j]), cost))
        i = j
    return out


def _segments(groups: list[WorkGroup], limit: float, rotation: float) -> list[int] | None:
    """Greedy contiguous segments of predicted cost <= limit (group costs plus the segment's
    distinct baby steps); their start indices, or None when one group alone exceeds it."""
    starts, cost, baby = [0], 0.0, set()
    for k, grp in enumerate(groups):
        add = grp.cost + len(grp.baby - baby) * rotation
        if k > starts[-1] and cost + add > limit:
            starts.append(k)
            cost, baby, add = 0.0, set(), grp.cost + len(grp.baby) * rotation
        if k == starts[-1] and add > limit:
            return None
        cost += add
        baby |= grp.baby
    return starts


def _balanced(groups: list[WorkGroup], workers: int, rotation: float) -> list[int]:
    """Start indices of at most `workers` contiguous segments minimising the largest one's cost."""
    hi = sum(g.cost for g in groups) + len(frozenset().union(*(g.baby for g in groups))) * rotation
    lo, best = 0.0, [0]  # one segment: always feasible
    for _ in range(60):
        mid = (lo + hi) / 2
        starts = _segments(groups, mid, rotation)
        if starts is not None and len(starts) <= workers:
            hi, best = mid, starts
        else:
            lo = mid
        if hi - lo <= 1e-9 * hi:
            break
    return best


def _share_counts(groups: list[WorkGroup], shifts: list[list[int]], finals: list[int], finish: OpCounts) -> OpCounts:
    per_bo: dict[int, int] = {}
    for grp in groups:
        per_bo[grp.bo] = per_bo.get(grp.bo, 0) + 1
    rot = sum(len(s) for s in shifts) + sum(1 for grp in groups if grp.g)
    pmuls = sum(grp.end - grp.start for grp in groups)
    adds = sum(grp.end - grp.start - 1 for grp in groups) + sum(n - 1 for n in per_bo.values())
    return OpCounts(rotations=rot, key_switches=rot, pmuls=pmuls, adds=adds) + _times(finish, len(finals))


def _times(counts: OpCounts, n: int) -> OpCounts:
    return OpCounts(**{k: v * n for k, v in counts.to_dict().items()})


def split_groups(name: str, groups: list[WorkGroup], n_in: int, n_out: int, *, finish: OpCounts,
                 serial: OpCounts, workers: int, unit: UnitCosts, algorithm: str) -> ParallelPlan:
    """Split a conv's (bo, g) groups (in run order) over at most `workers` processes: contiguous runs of
    groups minimising the largest worker's predicted time, each worker computing the baby steps its
    groups read. `finish`: what completing one output costs once its sum is whole (its rescale, bias,
    ...), where that happens; `serial`: the single-process plan's counts; `algorithm`: whose hooks run
    the shares (heconv.algorithms.base.ConvAlgorithm's parallel hooks)."""
    check_workers(workers, f"layer {name}: ")
    starts = _balanced(groups, min(workers, len(groups)), unit.rotation) if groups else [0]
    bounds = list(zip(starts, starts[1:] + [len(groups)]))
    contributors: dict[int, list[int]] = {}
    for w, (a, z) in enumerate(bounds):
        for grp in groups[a:z]:
            if w not in contributors.setdefault(grp.bo, []):
                contributors[grp.bo].append(w)
    shares = []
    for w, (a, z) in enumerate(bounds):
        mine = groups[a:z]
        shifts = [sorted({s for bi, s in frozenset().union(*(g.baby for g in mine)) if bi == i}) for i in range(n_in)]
        start = mine[0].start if mine else 0
        end = mine[-1].end if mine else 0
        inputs = sorted(frozenset().union(*(g.inputs for g in mine)))
        outputs = sorted({g.bo for g in mine})
        finals = [bo for bo in outputs if contributors[bo] == [w]]
        shares.append(Share(w, start, end, len(mine), shifts, inputs, outputs, finals,
                            _share_counts(mine, shifts, finals, finish)))
    merged = sorted(bo for bo, ws in contributors.items() if len(ws) > 1)
    empty = [bo for bo in range(n_out) if bo not in contributors]
    merge = (OpCounts(adds=sum(len(contributors[bo]) - 1 for bo in merged), encryptions=len(empty))
             + _times(finish, len(merged)))
    predicted = sum((s.predicted for s in shares), OpCounts()) + merge
    return ParallelPlan(name, len(shares), shares, merged, merge, predicted, algorithm, serial)


def plan_parallel(plan: ConvPlan, workers: int, algorithm: str, unit_costs: UnitCosts | None = None) -> ParallelPlan:
    """Split the slot engine's `plan` over at most `workers` processes (never more than its (bo, g) groups);
    `algorithm`: the name the slot engine is registered under.

    >>> import numpy as np
    >>> from heconv.conv import plan_conv
    >>> from heconv.params import ckks_params
    >>> p = plan_conv(np.ones((64, 64, 3, 3)), 16, 16, ckks_params(depth=1))   # 92 rotations, 64 groups
    >>> par = plan_parallel(p, 2, "slot")
    >>> [(s.start, s.end, s.outputs, s.finals) for s in par.shares]
    [(0, 1152, [0, 1], [0, 1]), (1152, 2304, [2, 3], [2, 3])]
    >>> par.extra_rotations, par.predicted == p.predicted + OpCounts(rotations=32, key_switches=32)
    (32, True)
    """
    check_workers(workers, f"layer {plan.spec.name}: ")
    unit = unit_costs or DEFAULT_UNIT_COSTS
    return split_groups(plan.spec.name, _groups(plan, unit), plan.packing.n_in, plan.packing.n_out,
                        finish=OpCounts(plain_adds=int(plan.has_bias), rescales=int(plan.rescale)),
                        serial=plan.predicted, workers=workers, unit=unit, algorithm=algorithm)
