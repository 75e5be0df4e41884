"""heconv: a CKKS SIMD convolution engine that skips pruned diagonals and positions.

Plan, then run:

    plan = plan_conv(weight, H, W, params)          # pure: kept groups, steps, counts
    backend.generate_galois_keys(plan.rotation_steps)
    layer = compile_conv(plan, weight, bias, backend)  # encodes plaintexts once
    outputs = run_conv(layer, inputs, backend)      # counts every operation

Backends: heconv.seal_backend.SealBackend (SEAL via tenseal.sealapi) and
heconv.plain_backend.PlainBackend (cleartext, identical operation counts).
"""

from .backend import Backend, OpCounts
from .conv import (
    CompiledConv,
    ConvPlan,
    ConvSpec,
    Term,
    compile_conv,
    decrypt_output,
    dense_rotations,
    encrypt_input,
    fold_batchnorm,
    plan_conv,
    predicted_counts,
    run_conv,
)
from .cost import UnitCosts, floor_seconds, measure_unit_costs
from .geometry import Packing, pack, packing_geometry, unpack
from .params import CKKSParams, ckks_params
from .plain_backend import PlainBackend

__all__ = [
    "Backend", "OpCounts", "CompiledConv", "ConvPlan", "ConvSpec", "Term", "compile_conv", "decrypt_output",
    "dense_rotations", "encrypt_input", "fold_batchnorm", "plan_conv", "predicted_counts", "run_conv",
    "UnitCosts", "floor_seconds", "measure_unit_costs", "Packing", "pack", "packing_geometry", "unpack",
    "CKKSParams", "ckks_params", "PlainBackend",
]
