"""A matvec conv split over worker processes (heconv.parallel): its (bo, g) groups for
heconv.parallel_plan.split_groups, and what a worker's share reads (the share itself runs through
heconv.algorithms.base.ScaleSplitAlgorithm.run_share).

A group is output bo's giant step g: its multiply-adds and one giant rotation (none for g = 0). A worker
computes the baby steps its groups read, so a split of one output's giant steps over two workers
recomputes the shared baby steps in each; the split weighs that (`split_groups`) and worker 0 adds the
partial sums, then rescales and biases.
"""

from __future__ import annotations

from typing import Any

from ...basics import OpCounts
from ...cost import DEFAULT_UNIT_COSTS, UnitCosts
from ...parallel_plan import ParallelPlan, Share, WorkGroup, split_groups
from .engine import CompiledMatvec, run_order
from .plan import MatvecPlan


def matvec_groups(plan: MatvecPlan, unit: UnitCosts) -> list[WorkGroup]:
    """The plan's (bo, g) groups in run order, with the baby steps they read and their predicted seconds.

    >>> import numpy as np
    >>> from heconv.params import ckks_params
    >>> from heconv.algorithms.matvec.plan import plan_matvec
    >>> p = plan_matvec(np.ones((2, 2, 1, 1)), 1, 1, ckks_params(depth=1), baby_step=1, complex_pack=False)   # k = 0, 1
    >>> [(grp.bo, grp.g, grp.start, grp.end, sorted(grp.baby)) for grp in matvec_groups(p, DEFAULT_UNIT_COSTS)]
    [(0, 0, 0, 1, []), (0, 1, 1, 2, [])]
    """
    order = run_order(plan)
    big_b, out, i = plan.baby_step, [], 0
    while i < len(order):
        j, key = i, order[i][:2]
        while j < len(order) and order[j][:2] == key:
            j += 1
        terms = order[i:j]
        baby = frozenset((bi, k % big_b) for _, _, bi, k in terms if k % big_b)
        cost = (j - i) * (unit.pmul + unit.add) + (unit.rotation if key[1] else 0.0)
        out.append(WorkGroup(key[0], key[1], i, j, baby, frozenset(t[2] for t in terms), cost))
        i = j
    return out


def split_matvec(plan: MatvecPlan, workers: int, algorithm: str, unit_costs: UnitCosts | None = None) -> ParallelPlan:
    """The plan split over at most `workers` processes, priced at the plan's level; `algorithm`: the name
    matvec is registered under.

    >>> import numpy as np
    >>> from heconv.params import ckks_params
    >>> from heconv.algorithms.matvec.plan import plan_matvec
    >>> p = plan_matvec(np.ones((512, 512, 3, 3)), 2, 2, ckks_params(depth=1))   # one output ciphertext
    >>> par = split_matvec(p, 2, "matvec")
    >>> par.workers, par.merged, [s.finals for s in par.shares], par.predicted.pmuls == p.predicted.pmuls
    (2, [0], [[], []], True)
    """
    unit = (unit_costs or DEFAULT_UNIT_COSTS).at_work(plan.params.level_work(plan.level))
    g = plan.geometry
    folds = len(g.fold_steps)
    finish = OpCounts(rotations=folds, key_switches=folds, adds=folds, plain_adds=int(plan.has_bias),
                      rescales=int(plan.rescale))
    return split_groups(plan.spec.name, matvec_groups(plan, unit), g.n_in, g.n_out, finish=finish,
                        serial=plan.predicted, workers=workers, unit=unit, algorithm=algorithm)


def share_resources(layer: CompiledMatvec, share: Share) -> tuple[list[Any], set[int]]:
    """The plaintexts and rotation steps (baby and giant) a share uses."""
    plan = layer.plan
    terms = layer.terms[share.start:share.end]
    steps = {s for shifts in share.input_shifts for s in shifts}
    steps |= {gs * plan.baby_step % plan.geometry.slots for _, gs, _, _, _ in terms if gs}
    if share.finals or share.worker == 0:  # it finishes an output (worker 0: the merged ones too)
        steps |= set(plan.geometry.fold_steps)
    return [t[4] for t in terms], steps
