"""The coefficient-encoding algorithm (heconv.coeff, Cheetah-style, no rotation) behind the ConvAlgorithm
interface: a thin adapter, the engine itself unchanged."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..backends.base import Backend
from ..coeff import (
    CompiledCoeffConv,
    compile_coeff_conv,
    evaluate_coeff_conv,
    mask_outputs,
    plan_coeff_conv,
    run_coeff_conv,
)
from ..coeff_mask import mask_hiding_bits, mask_kind
from ..coeff_plan import CoeffPlan, dense_coefficient_counts
from ..errors import InputError
from ..geometry import coefficient_block_ids
from ..params import CKKSParams
from .base import ConvAlgorithm, GroupArray, NetworkContext
from .layout import CoeffLayout


class CoefficientAlgorithm(ConvAlgorithm):
    """Channels in the coefficients of a polynomial, one multiplication per (output group, input chunk);
    options: mask, frame_kernel, align, unit_costs, rescale. The client reads the outputs' coefficients."""

    changes_traffic = True  # coefficient-encoded, masked ciphertexts each way
    rescale = False  # the plans' default (heconv.coeff_plan.CoeffPlan): at the last level, no rescale

    def run_timed(self, compiled: CompiledCoeffConv, inputs: list[Any],
                  backend: Backend) -> tuple[list[Any], dict[str, float]]:
        """The run with its masking timed apart ({"mask": seconds} when the plan masks)."""
        outputs = evaluate_coeff_conv(compiled, inputs, backend)
        if not compiled.plan.mask:
            return outputs, {}
        t = time.perf_counter()
        mask_outputs(compiled, outputs, backend)
        return outputs, {"mask": time.perf_counter() - t}

    timed_parts = ("mask",)

    def output_level(self, plan: CoeffPlan) -> int:
        return plan.output_level

    def output_scale(self, plan: CoeffPlan, input_scale: float) -> float:
        """Without a rescale the weights take 2^s over the input's scale: the outputs sit at 2^s."""
        return input_scale if plan.rescale else plan.params.scale

    def bound_point(self, plan: CoeffPlan) -> tuple[int, bool]:
        """Without a rescale the products sit at scale 2^s at the input level."""
        return plan.level, plan.rescale

    def baby_step(self, plan: CoeffPlan) -> None:
        return None

    def hiding_bits(self, plan: CoeffPlan, output_bound: float) -> float | None:
        """Hiding per unread output coefficient (128: not sent, and the second polynomial re-randomised)."""
        return mask_hiding_bits(plan.params, plan.output_level, output_bound) if plan.mask else None

    def traffic_objective(self, plan: CoeffPlan) -> Any | None:
        """What the chunking minimised (heconv.coeff_choice), when the plan recorded its choice."""
        return None if plan.choice is None else plan.choice.objective

    def figures(self, plan: CoeffPlan, output_bound: float) -> dict[str, Any]:
        """The chunking, the kept kernel blocks, the dense counts, the mask and what it hides, and the
        chunking's choice (every candidate with its predicted phases, and the objective)."""
        ch, top = plan.chunking, plan.output_level
        out: dict[str, Any] = {
            "chunking": ch.to_dict(), "c_w": ch.c_w, "chunks": ch.chunks, "group": ch.group, "tiles": ch.tiles,
            "kept_blocks": plan.plaintexts, "block_groups": ch.groups * ch.chunks,
            "dense_formula": dense_coefficient_counts(ch, plan.has_bias, plan.mask, plan.rescale).to_dict(),
            "mask": plan.mask, "input_level": plan.level, "input_scale_bits": plan.input_scale_bits,
            "rescale": plan.rescale,
            "mask_kind": mask_kind(plan.params, top) if plan.mask else None,
            "mask_range_bits": None,  # no mask polynomial since the extraction; older records hold its range
            "hiding_bits_per_coefficient": self.hiding_bits(plan, output_bound),
            "bandwidth_bps": None, "chunking_objective": None, "chunk_choice": None, "predicted_phases": None,
            "predicted_end_to_end_s": None}
        if plan.choice is not None:
            o, w = plan.choice.objective, plan.choice.winner
            out.update(bandwidth_bps=o.bandwidth_bps, chunking_objective=o.kind, chunk_choice=plan.choice.to_dict(),
                       predicted_phases=w.phases.to_dict(),
                       predicted_end_to_end_s=w.phases.end_to_end_s(o.bandwidth_bps))
        return out

    def network_options(self, context: NetworkContext) -> dict[str, Any]:
        """Two added convs framed by the larger kernel, the second aligned with the first's chunking (the
        first prices its partner's share too); the chunking minimises the network's objective, with the
        uploads in the output layout priced. Where only their sum reaches the client and the first's
        masks, the second leaves the groups the first re-randomises as they are (`CoeffPlan.covered`), and
        the first prices its partner without them."""
        options: dict[str, Any] = {"objective": context.objective, "output_uploads": context.output_uploads}
        if context.partner_kernel is not None:
            plan = context.partner_plan
            options.update(frame_kernel=context.partner_kernel, align=None if plan is None else plan.chunking,
                           partner=(context.partner_shape[1], context.partner_shape[2]) if plan is None else None)
            if plan is None:
                options["shared_mask"] = context.sum_only
            elif context.sum_only and isinstance(plan, CoeffPlan) and plan.mask:
                options["covered"] = tuple(g for g, b in enumerate(plan.blocks) if b and g not in plan.covered)
        return options

    def check_placement(self, name: str, plan: CoeffPlan, partner: Any | None, sum_only: bool) -> None:
        """Groups left to a partner's re-randomisation (`covered`) need that partner: the same layout, only
        the sum read, and each of those groups re-randomised there; else their second polynomials go out
        as the weights made them."""
        if not plan.covered:
            return
        if not (sum_only and isinstance(partner, CoeffPlan) and partner.mask
                and partner.chunking.output_layout == plan.chunking.output_layout
                and all(g < len(partner.blocks) and partner.blocks[g] and g not in partner.covered
                        for g in plan.covered)):
            raise InputError(f"layer {name}: output groups {list(plan.covered)} are left to a residual partner's "
                             f"mask, but no partner of the same layout re-randomises each of them with only the "
                             f"sum read; plan the network again")

    def plan(self, weight: np.ndarray, height: int, width: int, params: CKKSParams, *, stride: int = 1,
             has_bias: bool = False, name: str = "conv", level: int | None = None, **options: Any) -> CoeffPlan:
        """`level` None: the chain's last (or 0 with the option `rescale=True`): the client encrypts fresh."""
        options.setdefault("rescale", self.rescale)
        return plan_coeff_conv(weight, height, width, params, stride=stride, has_bias=has_bias, name=name,
                               level=level, **options)

    def compile(self, plan: CoeffPlan, weight: np.ndarray, bias: np.ndarray | None, backend: Backend,
                input_scale: float | None = None) -> CompiledCoeffConv:
        return compile_coeff_conv(plan, weight, bias, backend, input_scale)

    def run(self, compiled: CompiledCoeffConv, inputs: list[Any], backend: Backend) -> list[Any]:
        return run_coeff_conv(compiled, inputs, backend)

    def input_layout(self, plan: CoeffPlan) -> CoeffLayout:
        return CoeffLayout(plan.chunking, plan.spec.c_in, "input", scale_bits=plan.input_scale_bits)

    def output_layout(self, plan: CoeffPlan) -> CoeffLayout:
        return CoeffLayout(plan.chunking, plan.spec.c_out, "output", plan.spec.stride)

    def group_ids(self, plan: CoeffPlan, shape: tuple[int, int, int, int]) -> Mapping[str, GroupArray]:
        ids, n = coefficient_block_ids(shape, plan.chunking)
        return {"block": GroupArray(ids, n, "pmul", np.ones(n, dtype=bool))}


class RescaledCoefficientAlgorithm(CoefficientAlgorithm):
    """The coefficient algorithm at level 0 with one rescale per output (its earlier default): twice the upload.

    The input at 2^s with two primes, the weights at the prime the rescale divides by: errors about 1e-9
    on a 64->64 layer where the last-level default gives about 5e-5 (docs/design.md)."""

    rescale = True
