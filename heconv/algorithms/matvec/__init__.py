"""matvec: the conv between one input and one output ciphertext block as a matrix between their slot
vectors (Halevi-Shoup; what Orion does), docs/design.md "The matvec algorithm". Its nonzero generalized
diagonals come from the weights (terms with the same total shift share one plaintext), the product runs
baby-step/giant-step with the baby step chosen by predicted time, and a stride-2 output is multiplexed at its
own resolution.

geometry.py: where the terms sit; complex.py: two real blocks per ciphertext; plan.py: the frozen plan and
its counts; engine.py: compile and run; parallel.py: a split over worker processes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...backends.base import Backend
from ...checks import check_run_inputs
from ...parallel_plan import ParallelPlan, Share
from ...params import CKKSParams
from ..base import GroupArray, NetworkContext, ScaleSplitAlgorithm
from ..layout import SlotLayout
from .complex import real_plan
from .engine import CompiledMatvec, accumulate, compile_matvec, finish_output, run_matvec
from .geometry import MatvecGeometry, fold_shift, matvec_geometry, term_shifts
from .layout import ComplexLayout, MultiplexedLayout, RotatedCopiesLayout
from .parallel import share_resources, split_matvec
from .plan import MatvecPlan, plan_matvec

__all__ = ["MatvecAlgorithm", "MatvecGeometry", "MatvecPlan", "CompiledMatvec", "matvec_geometry", "plan_matvec",
           "compile_matvec", "run_matvec", "matvec_group_ids", "MultiplexedLayout",
           "RotatedCopiesLayout", "ComplexLayout"]


def matvec_group_ids(plan: MatvecPlan, shape: tuple[int, int, int, int]) -> dict[str, GroupArray]:
    """Per weight W[o, i, ky, kx]: its diagonal (bo, bi, k) (one plaintext), its giant step (bo, k // B)
    and its baby step (bi, k mod B) (one rotation each unless the step is 0).

    >>> from heconv.params import ckks_params
    >>> p = plan_matvec(np.ones((2, 2, 1, 1)), 1, 1, ckks_params(depth=1), baby_step=1, complex_pack=False)   # T = 2
    >>> g = matvec_group_ids(p, (2, 2, 1, 1))
    >>> g["diagonal"].ids[:, :, 0, 0].tolist(), g["giant"].count, g["baby"].count
    ([[0, 1], [1, 0]], 2, 1)
    """
    g = plan.geometry
    c_out, c_in, k, _ = shape
    o, i = np.arange(c_out)[:, None, None], np.arange(c_in)[None, :, None]
    pos = np.arange(k * k)[None, None, :]
    bo, local = np.divmod(o, g.out_channels_per_ct)
    q, f = np.divmod(local, g.out_frames)
    bi, c = np.divmod(i, g.c_n)
    if g.complex_pack:  # real blocks 2b and 2b + 1 share ciphertext b
        bo, bi = bo // 2, bi // 2
    diag = fold_shift(term_shifts(g)[q, f, c, pos], g)[0]  # [o, i, pos]
    b, t = plan.baby_step, g.diag_period
    n_giant = -(-t // b)
    full = (c_out, c_in, k, k)
    ids = {
        "diagonal": ((bo * g.n_in + bi) * t + diag, g.n_out * g.n_in * t, "pmul", None),
        "giant": (bo * n_giant + diag // b, g.n_out * n_giant, "rotation", n_giant),
        "baby": (bi * b + diag % b, g.n_in * b, "rotation", b),
    }
    # A step 0 (giant g = 0, baby j = 0) is no rotation: zeroing its group saves nothing.
    return {name: GroupArray(np.broadcast_to(v, (c_out, c_in, k * k)).reshape(full), n, saves,
                             np.ones(n, dtype=bool) if per is None else np.arange(n) % per != 0)
            for name, (v, n, saves, per) in ids.items()}


class MatvecAlgorithm(ScaleSplitAlgorithm):
    """The conv as block matrices between slot vectors: shared diagonals, strided outputs multiplexed.

    Options: baby_step (None: chosen by predicted time), c_n, out_frames (None: chosen by predicted time),
    fold (False: no fold), copies (None: rotated copies of the input where they predict faster; 1: none),
    complex_pack (None: two real blocks per ciphertext where that predicts faster; False: never), unit_costs."""

    parallel = True

    def plan(self, weight: np.ndarray, height: int, width: int, params: CKKSParams, *, stride: int = 1,
             has_bias: bool = False, name: str = "conv", level: int | None = None, **options: Any) -> MatvecPlan:
        """`level` None: 0 with a rescale (the default), the chain's last with `rescale=False`."""
        return plan_matvec(weight, height, width, params, stride=stride, has_bias=has_bias, name=name, level=level,
                           **options)

    def compile(self, plan: MatvecPlan, weight: np.ndarray, bias: np.ndarray | None, backend: Backend,
                input_scale: float | None = None) -> CompiledMatvec:
        return compile_matvec(plan, weight, bias, backend, input_scale)

    def run(self, compiled: CompiledMatvec, inputs: list[Any], backend: Backend) -> list[Any]:
        return run_matvec(compiled, inputs, backend)

    def network_options(self, context: NetworkContext) -> dict[str, Any]:
        """The last level where the value bound allows (ScaleSplitAlgorithm); and no fold beside a residual
        partner: the frames are part of the output's placement, and two partners choosing theirs by predicted
        time (or a slot conv, which never folds) could place the sum's operands apart; for the same reason no
        complex packing there (its output is a layout of its own). Likewise where an add sums the output with
        another add's encrypted result, whose layout is fixed."""
        options = super().network_options(context)
        if context.partner_kernel is not None or context.summed_with_encrypted:
            options["fold"] = False
            options["complex_pack"] = False
        return options

    def split(self, plan: MatvecPlan, workers: int) -> ParallelPlan:
        from .. import algorithm_name  # the registry imports this package

        return split_matvec(plan, workers, algorithm_name(self))

    def check_inputs(self, compiled: CompiledMatvec, inputs: list[Any], backend: Backend) -> None:
        g = compiled.plan.geometry
        check_run_inputs(compiled.plan, inputs, g.n_in, g.c_n, backend)

    accumulate = staticmethod(accumulate)  # the engine's own functions (engine.py)
    finish_output = staticmethod(finish_output)

    def share_resources(self, compiled: CompiledMatvec, share: Share) -> tuple[list[Any], set[int]]:
        return share_resources(compiled, share)

    def input_layout(self, plan: MatvecPlan) -> SlotLayout | RotatedCopiesLayout | ComplexLayout:
        """Gazelle's packing; its replicas rotated apart where the plan reads rotated copies; its blocks
        paired as complex numbers, each with its conjugate, where the plan packs them so."""
        g = plan.geometry
        if g.complex_pack:
            real = SlotLayout(g.slots, g.height, g.width, g.c_n, g.c_in, scale_bits=plan.input_scale_bits)
            return ComplexLayout(real, period=g.period)
        if g.copies > 1:
            return RotatedCopiesLayout(g.slots, g.height, g.width, g.c_n, g.c_in, scale_bits=plan.input_scale_bits,
                                       copies=g.copies)
        return SlotLayout(g.slots, g.height, g.width, g.c_n, g.c_in, scale_bits=plan.input_scale_bits)

    def output_layout(self, plan: MatvecPlan) -> SlotLayout | MultiplexedLayout | ComplexLayout:
        """Multiplexed when a strided output packs several parities per frame; otherwise (one parity) the
        very places of Gazelle's packing, so it is given as the SlotLayout it equals (a residual add then
        matches it with another conv's output or a client upload). Complex packing pairs either's blocks."""
        g = plan.geometry
        if g.complex_pack:
            real = real_plan(plan)
            return ComplexLayout(self.output_layout(real))
        if g.parities == 1:
            return SlotLayout(g.slots, g.height, g.width, g.out_frames, plan.spec.c_out, g.stride,
                              plan.output_scale_bits)
        return MultiplexedLayout(g, plan.spec.c_out, plan.output_scale_bits)

    def figures(self, plan: MatvecPlan, output_bound: float) -> dict[str, Any]:
        """Its frame (c_n channels of P slots, the strided parities multiplexed), its nonzero diagonals and the
        baby steps considered."""
        g = plan.geometry
        return {"c_n": g.c_n, "channel_slots": g.channel_slots, "parities": g.parities, "fold": g.fold,
                "copies": g.copies, "complex_pack": g.complex_pack,
                "nonzero_diagonals": plan.plaintexts,
                "schedule_candidates": [dataclasses.asdict(c) for c in plan.candidates]}

    def label(self, plan: MatvecPlan) -> str:
        copies = plan.geometry.copies
        return (f"matvec bsgs:{plan.baby_step}" + (f" copies:{copies}" if copies > 1 else "")
                + (" complex" if plan.geometry.complex_pack else ""))

    def group_ids(self, plan: MatvecPlan, shape: tuple[int, int, int, int]) -> Mapping[str, GroupArray]:
        return matvec_group_ids(plan, shape)
