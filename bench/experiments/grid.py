"""A sweep grid checked before its first cell runs, with its duplicates collapsed.

Every axis is checked whole (models, methods, input sizes against the CKKS parameters,
the schedule, finite non-negative lambdas, seeds numpy and torch accept, the training and
pruning settings), so that a typo fails in one line naming the option at once instead of
failing every cell an hour later; `--seeds 0,0` or `--lambdas-d 0.3,0.30,3e-1` run once.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import TYPE_CHECKING

from heconv.errors import InputError

if TYPE_CHECKING:
    from .sweep import SweepGrid

SEED_MAX = 2**32 - 1  # numpy's and torch's seeds
# grid axis -> the command-line option that fills it (the errors name the option)
OPTIONS = {"models": "--models", "methods": "--methods", "seeds": "--seeds", "lambdas_d": "--lambdas-d",
           "lambdas_p": "--lambdas-p", "input_sizes": "--input-sizes"}


def unique(values: tuple) -> tuple:
    """The values in their first order, each once (equal numbers are one: 0.3 == 3e-1).

    >>> unique((0.3, 0.30, 3e-1, 0.1)), unique((0, 0, 1))
    ((0.3, 0.1), (0, 1))
    """
    return tuple(dict.fromkeys(values))


def _bad(option: str, given, expected: str) -> InputError:
    return InputError(f"sweep {option}: got {given!r}; expected {expected}")


def _check_numbers(grid: "SweepGrid") -> None:
    for axis in ("lambdas_d", "lambdas_p"):
        for v in getattr(grid, axis):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise _bad(OPTIONS[axis], v, "finite numbers >= 0")
    for s in grid.seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= SEED_MAX:
            raise _bad("--seeds", s, f"integers in [0, {SEED_MAX}]")
    for size in grid.input_sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise _bad("--input-sizes", size, "positive integers")


def _check_cells(grid: "SweepGrid") -> None:
    from heconv.params import params_for_input
    from heconv.schedule import check_schedule
    from models import MODELS
    from pruning.data import DATASETS
    from pruning.methods import METHODS

    unknown = [m for m in grid.models if m not in MODELS]
    if unknown:
        raise _bad("--models", ",".join(unknown), f"models from {', '.join(MODELS)}")
    unknown = [m for m in grid.methods if m not in METHODS]
    if unknown:
        raise _bad("--methods", ",".join(unknown), f"methods from {', '.join(METHODS)}")
    base = grid.base
    if base.dataset not in DATASETS:
        raise _bad("--dataset", base.dataset, f"one of {', '.join(DATASETS)}")
    try:
        check_schedule(base.schedule, None)
    except ValueError as e:
        raise InputError(f"sweep --schedule: {e}") from None
    for size in grid.input_sizes:
        try:
            params_for_input(size, size, base.poly_modulus_degree)
        except ValueError as e:
            raise InputError(f"sweep --input-sizes {size} with --poly-modulus-degree "
                             f"{base.poly_modulus_degree}: {e}") from None
    for name, ok, expected in (("epochs", base.epochs >= 1, "a positive integer"),
                               ("batch-size", base.batch_size >= 1, "a positive integer"),
                               ("lr", math.isfinite(base.lr) and base.lr > 0, "a finite number > 0"),
                               ("subset", base.subset is None or base.subset >= 1, "a positive integer")):
        if not ok:
            raise _bad(f"--{name}", getattr(base, name.replace("-", "_")), expected)
    p = grid.prune
    if p is not None and not (math.isfinite(p.max_drop) and p.max_drop >= 0):
        raise _bad("--max-drop", p.max_drop, "a finite number >= 0")


def checked_grid(grid: "SweepGrid") -> "SweepGrid":
    """`grid` with every axis checked and its duplicates collapsed (InputError names the option).

    >>> from bench.experiments.sweep import SweepGrid
    >>> g = checked_grid(SweepGrid(models=("small-cnn",), methods=("dense",), seeds=(0, 0), lambdas_d=(0.3, 3e-1)))
    >>> g.seeds, g.lambdas_d
    ((0,), (0.3,))
    >>> checked_grid(SweepGrid(models=("small-cnn",), methods=("dense",), lambdas_d=(float("inf"),)))
    Traceback (most recent call last):
    ...
    heconv.errors.InputError: sweep --lambdas-d: got inf; expected finite numbers >= 0
    """
    axes = {f.name: unique(tuple(getattr(grid, f.name))) for f in fields(grid) if f.name in OPTIONS}
    grid = replace(grid, **axes)
    _check_numbers(grid)
    _check_cells(grid)
    return grid
