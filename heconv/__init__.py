"""heconv: a CKKS SIMD convolution engine that skips pruned diagonals and positions.

Plan, then run:

    plan = plan_conv(weight, H, W, params)          # pure: kept groups, schedule, steps, counts
    backend.generate_galois_keys(plan.rotation_steps)
    layer = compile_conv(plan, weight, bias, backend)  # encodes plaintexts once
    outputs = run_conv(layer, inputs, backend)      # counts every operation

Backends (`heconv.backends.make_backend`): SEAL through tenseal.sealapi ("encrypted") and
a cleartext numpy backend ("plain", "count") with identical operation counts. Whole
networks: `heconv.frontend.lower_model` (PyTorch -> IR) and `heconv.network` (plan, run).
Every conv algorithm through one interface, looked up in one registry: `heconv.algorithms`.
"""

from .algorithms import ConvAlgorithm, Layout, algorithm_names, get_algorithm
from .backends import Backend, OpCounts, make_backend
from .conv import (
    CompiledConv,
    ConvPlan,
    ConvSpec,
    Term,
    compile_conv,
    decrypt_output,
    dense_rotations,
    encrypt_input,
    plan_conv,
    predicted_counts,
    run_conv,
)
from .cost import DEFAULT_UNIT_COSTS, UnitCosts, floor_seconds
from .geometry import Packing, pack, packing_geometry, unpack
from .params import CKKSParams, ckks_params, params_for_input
from .schedule import SCHEDULE_FORMS, ScheduleCandidate, rank_schedules, schedule_name

__all__ = [
    "ConvAlgorithm", "Layout", "algorithm_names", "get_algorithm",
    "Backend", "OpCounts", "make_backend", "CompiledConv", "ConvPlan", "ConvSpec", "Term", "compile_conv",
    "decrypt_output", "dense_rotations", "encrypt_input", "plan_conv", "predicted_counts", "run_conv",
    "DEFAULT_UNIT_COSTS", "UnitCosts", "floor_seconds", "SCHEDULE_FORMS", "ScheduleCandidate", "rank_schedules",
    "schedule_name", "Packing", "pack", "packing_geometry", "unpack", "CKKSParams", "ckks_params",
    "params_for_input",
]
