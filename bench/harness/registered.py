"""One conv of any registered heconv.algorithms algorithm, through the interface alone: the set-up
(plan, Galois keys, compile, the client's encrypted input) apart from the run that is timed, and
the check against PyTorch afterwards. `artemis layer --algorithm NAME` and the peers suite share it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from heconv.algorithms import ConvAlgorithm, decrypt_map, encrypt_map, get_algorithm
from heconv.backends.base import Backend

from .layer import INPUT_BOUND, torch_conv


@dataclass
class PreparedRegistered:
    """Everything a run needs, made before it: nothing here is timed."""

    name: str
    alg: ConvAlgorithm
    plan: Any
    layer: Any
    backend: Backend
    weight: np.ndarray
    bias: np.ndarray | None
    stride: int
    x: np.ndarray  # the client's input map, uniform in [-INPUT_BOUND, INPUT_BOUND]
    inputs: list

    def run(self) -> list:
        """The server's part, counted from zero: the compiled conv on the encrypted input."""
        self.backend.reset_counter()
        return self.alg.run(self.layer, self.inputs, self.backend)

    def check(self, outputs: list) -> dict:
        """The last run's counts against the plan's, and its decrypted output against torch."""
        counts, predicted = self.backend.reset_counter(), self.alg.predicted(self.plan)
        y = decrypt_map(outputs, self.alg.output_layout(self.plan), self.backend)
        ref = torch_conv(self.x, self.weight, self.bias, self.stride)
        return {"counts": counts, "predicted": predicted, "counts_match_plan": counts == predicted, "output": y,
                "max_abs_error": float(np.abs(y - ref).max()), "max_abs_reference": float(np.abs(ref).max())}


def prepare_registered(name: str, weight: np.ndarray, bias: np.ndarray | None, hw: int, stride: int,
                       backend: Backend, seed: int = 0,
                       check_plan: Callable[[ConvAlgorithm, Any], None] | None = None) -> PreparedRegistered:
    """Plan, key and compile the conv `name`, and encrypt a random input (seed + 1, as the slot
    harness draws it). `check_plan` (bounds, memory) runs on the plan before anything is built."""
    alg = get_algorithm(name)
    plan = alg.plan(weight, hw, hw, backend.params, stride=stride, has_bias=bias is not None)
    if check_plan is not None:
        check_plan(alg, plan)
    backend.generate_galois_keys(alg.rotation_steps(plan))
    layer = alg.compile(plan, weight, bias, backend)
    x = np.random.default_rng(seed + 1).uniform(-INPUT_BOUND, INPUT_BOUND, (weight.shape[1], hw, hw))
    inputs = encrypt_map(x, alg.input_layout(plan), backend)
    return PreparedRegistered(name, alg, plan, layer, backend, weight, bias, stride, x, inputs)
