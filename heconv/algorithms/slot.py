"""The slot engine (heconv.conv with its rotation schedules, heconv.schedule) behind the ConvAlgorithm
interface: a thin adapter, the engine itself unchanged."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from ..backends.base import Backend
from ..conv import (
    CompiledConv,
    ConvPlan,
    accumulate_terms,
    check_inputs,
    compile_conv,
    finish_output,
    plan_conv,
    run_conv,
)
from ..geometry import group_ids, schedule_group_ids
from ..parallel_plan import ParallelPlan, Share, plan_parallel
from ..params import CKKSParams
from ..schedule import dense_rotations
from .base import GroupArray, ScaleSplitAlgorithm
from .layout import SlotLayout


class SlotAlgorithm(ScaleSplitAlgorithm):
    """Gazelle packing, a baby-step/giant-step schedule per layer (options: schedule, c_n, unit_costs);
    a stride-2 output stays at full resolution and the client reads every second pixel."""

    takes_schedule = True
    protocols = ("hybrid", "non-interactive")
    parallel = True

    def label(self, plan: ConvPlan) -> str:
        return plan.schedule_name

    def figures(self, plan: ConvPlan, output_bound: float) -> dict[str, Any]:
        """Its packing, the baby steps "auto" considered, the dense count of the schedule, and the kept
        diagonal and positional groups (what pruning them saved)."""
        p, k = plan.packing, plan.spec.kernel
        return {"c_n": p.c_n, "channel_slots": p.channel_slots,
                "schedule_candidates": [asdict(c) for c in plan.candidates],
                "dense_formula_rotations": dense_rotations(p, k, plan.baby_step),
                "kept_diagonals": sum(len(d) for d in plan.diagonals), "diagonal_groups": p.n_out * p.c_n,
                "kept_positions": sum(len(q) for q in plan.positions), "positional_groups": p.n_in * k * k}

    def split(self, plan: ConvPlan, workers: int) -> ParallelPlan:
        from . import algorithm_name  # the registry imports this module

        return plan_parallel(plan, workers, algorithm_name(self))

    def check_inputs(self, compiled: CompiledConv, inputs: list[Any], backend: Backend) -> None:
        check_inputs(compiled, inputs, backend)

    accumulate = staticmethod(accumulate_terms)  # the engine's own functions (heconv.conv)
    finish_output = staticmethod(finish_output)

    def share_resources(self, compiled: CompiledConv, share: Share) -> tuple[list[Any], set[int]]:
        plan = compiled.plan
        giant = plan.packing.channel_slots * plan.baby_step
        steps = {s for shifts in share.input_shifts for s in shifts}
        steps |= {g * giant % plan.packing.slots for t in plan.terms[share.start:share.end]
                  if (g := t.d // plan.baby_step)}
        return compiled.weights[share.start:share.end], steps

    def plan(self, weight: np.ndarray, height: int, width: int, params: CKKSParams, *, stride: int = 1,
             has_bias: bool = False, name: str = "conv", level: int | None = None, **options: Any) -> ConvPlan:
        """`level` None: 0 with a rescale (the default), the chain's last with `rescale=False`."""
        return plan_conv(weight, height, width, params, stride=stride, has_bias=has_bias, name=name, level=level,
                         **options)

    def compile(self, plan: ConvPlan, weight: np.ndarray, bias: np.ndarray | None, backend: Backend,
                input_scale: float | None = None) -> CompiledConv:
        return compile_conv(plan, weight, bias, backend, input_scale)

    def run(self, compiled: CompiledConv, inputs: list[Any], backend: Backend) -> list[Any]:
        return run_conv(compiled, inputs, backend)

    def plaintexts(self, plan: ConvPlan) -> int:
        return len(plan.terms)

    def input_layout(self, plan: ConvPlan) -> SlotLayout:
        return SlotLayout.of(plan.packing, plan.spec.c_in, scale_bits=plan.input_scale_bits)

    def output_layout(self, plan: ConvPlan) -> SlotLayout:
        return SlotLayout.of(plan.packing, plan.spec.c_out, plan.spec.stride, plan.output_scale_bits)

    def group_ids(self, plan: ConvPlan, shape: tuple[int, int, int, int]) -> Mapping[str, GroupArray]:
        s = schedule_group_ids(shape, plan.packing.c_n, plan.baby_step)
        p = group_ids(shape, plan.packing.c_n)
        n_plain = p.n_diagonal * p.n_positional
        return {"giant": GroupArray(s.giant, s.n_giant, "rotation", s.giant_saves(np.arange(s.n_giant))),
                "baby": GroupArray(s.baby, s.n_baby, "rotation", s.baby_saves(np.arange(s.n_baby))),
                "plaintext": GroupArray(p.plaintext, n_plain, "pmul", np.ones(n_plain, dtype=bool))}
