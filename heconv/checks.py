"""The checks every convolution algorithm makes, in one place: the weights, the plan's arguments,
compile against its plan, and run against its inputs. Plan-time problems are the user's
(InputError); compile- and run-time mismatches are the caller's (ValueError).

>>> w, b = check_weight("conv1", np.ones((2, 1, 3, 3)), None)
>>> w.shape, b
((2, 1, 3, 3), None)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .bounds import level_bits
from .errors import InputError
from .params import CKKSParams


def check_weight(name: str, weight: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Weight [C_out, C_in, k, k] with k odd and finite values, and a bias [C_out] (or None), as float64."""
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise InputError(f"layer {name}: weight must have shape [C_out, C_in, k, k], got {list(w.shape)}")
    k = w.shape[2]
    if k % 2 == 0:
        raise InputError(f"layer {name}: kernel size must be odd for 'same' padding, got {k}x{k}")
    if not np.all(np.isfinite(w)):
        bad = int(np.size(w) - np.isfinite(w).sum())
        raise InputError(f"layer {name}: weight {list(w.shape)} holds {bad} NaN or Inf values")
    b = None
    if bias is not None:
        b = np.asarray(bias, dtype=np.float64)
        if b.shape != (w.shape[0],):
            raise InputError(f"layer {name}: bias must have shape [{w.shape[0]}], got {list(b.shape)}")
        if not np.all(np.isfinite(b)):
            raise InputError(f"layer {name}: bias holds NaN or Inf values")
    return w, b


def check_stride_level(name: str, stride: int, level: int, params: CKKSParams) -> None:
    """Stride 1 or 2, and an input level that leaves the chain a rescale."""
    if stride not in (1, 2):
        raise InputError(f"layer {name}: stride must be 1 or 2, got {stride}")
    if not 0 <= level < params.depth:
        raise InputError(f"layer {name}: input at level {level} needs a rescale, but the chain has "
                         f"{params.depth} level(s) (0..{params.depth - 1} can multiply)")


def check_plan_level(name: str, stride: int, level: int | None, params: CKKSParams, rescale: bool,
                     input_scale_bits: int | None, weight_scale_bits: int | None) -> int:
    """The input level a plan runs at (None: 0 with a rescale, the chain's last without), checked with the
    stride; without a rescale both scale splits must be given. Returns the level."""
    if rescale:
        level = 0 if level is None else level
        check_stride_level(name, stride, level, params)
        return level
    level = params.depth if level is None else level
    check_stride_level(name, stride, 0, params)
    if not 0 <= level <= params.depth:
        raise InputError(f"layer {name}: input at level {level} is outside the chain (0..{params.depth})")
    if input_scale_bits is None or weight_scale_bits is None:
        raise InputError(f"layer {name}: without a rescale the plan needs input_scale_bits and "
                         f"weight_scale_bits (heconv.bounds.last_level_split)")
    if input_scale_bits + weight_scale_bits >= level_bits(params, level):
        raise InputError(f"layer {name}: scale 2^{input_scale_bits} x 2^{weight_scale_bits} does not fit the "
                         f"{level_bits(params, level)}-bit modulus at level {level}; take "
                         f"heconv.bounds.last_level_split's")
    return level


def check_compile(plan: Any, weight: np.ndarray, bias: np.ndarray | None,
                  backend: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """The weights and backend a plan (with .spec, .has_bias, .params) is compiled with are the ones it was made for."""
    s = plan.spec
    w, b = check_weight(s.name, weight, bias)
    if w.shape != (s.c_out, s.c_in, s.kernel, s.kernel):
        raise ValueError(f"layer {s.name}: weight has shape {list(w.shape)}, the plan was made for "
                         f"{[s.c_out, s.c_in, s.kernel, s.kernel]}")
    if (b is not None) != plan.has_bias:
        raise ValueError(f"layer {s.name}: the plan was made {'with' if plan.has_bias else 'without'} a bias")
    if backend.params != plan.params:
        raise ValueError(f"layer {s.name}: backend parameters {backend.params} differ from the plan's {plan.params}")
    return w, b


def check_run_inputs(plan: Any, inputs: list[Any], n_in: int, c_n: int, backend: Any) -> None:
    """n_in input ciphertexts at the plan's level, and a Galois key for every step the plan uses."""
    name = plan.spec.name
    if len(inputs) != n_in:
        raise ValueError(f"layer {name}: expected {n_in} input ciphertexts (c_n = {c_n}), got {len(inputs)}")
    for i, ct in enumerate(inputs):
        if backend.level(ct) != plan.level:
            raise ValueError(f"layer {name}: input ciphertext {i} is at level {backend.level(ct)}, "
                             f"the plan expects {plan.level}")
    missing = set(plan.rotation_steps) - backend.galois_steps
    if missing:
        raise ValueError(f"layer {name}: the backend lacks Galois keys for steps {sorted(missing)[:8]}")
