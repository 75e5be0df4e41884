"""The interface a convolution algorithm implements: plan, compile, run, its layouts, counts and groups.

    alg = get_algorithm(name)                                  # heconv.algorithms: the registry
    plan = alg.plan(weight, H, W, params, stride=s, has_bias=True, **options)   # frozen, no ciphertext
    backend.generate_galois_keys(alg.rotation_steps(plan))
    layer = alg.compile(plan, weight, bias, backend)           # plaintexts encoded once
    outputs = alg.run(layer, encrypt_map(x, alg.input_layout(plan), backend), backend)
    y = decrypt_map(outputs, alg.output_layout(plan), backend)  # [C_out, H/s, W/s]; counts == alg.predicted(plan)

Nothing outside an algorithm's folder needs to know how it works: the layouts say where the maps sit,
`predicted` what a run costs, `group_ids` which weights prune together.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends.base import Backend
from ..basics import OpCounts
from ..bounds import last_level_split
from ..conv import rotate_inputs
from ..params import CKKSParams
from .layout import Layout, decrypt_map, encrypt_map


@dataclass(frozen=True)
class GroupArray:
    """One kind of pruning group: the id of every weight W[o, i, ky, kx] (an array of the weight's shape),
    the number of ids, what zeroing a whole group saves ("rotation" or "pmul"), and `saving[id]`: False for
    the groups whose zeroing saves nothing (a giant or baby step 0 is no rotation)."""

    ids: np.ndarray
    count: int
    saves: str
    saving: np.ndarray


class ConvAlgorithm(ABC):
    """A way to compute a 'same'-padded k x k conv (stride 1 or 2) on CKKS ciphertexts.

    What the network planner, the parties, pruning and the tools need to know about an algorithm is
    an attribute or a method here, so nothing outside the registry branches on its name:
    """

    # Its ciphertexts cross the network in another encoding or masked (the protocol's traffic changes):
    # a separate choice of the user's, never one `--schedule auto` makes for them.
    changes_traffic: bool = False
    # It reads the `schedule` option (heconv.schedule: output-rotation, input-rotation, bsgs:B, auto).
    takes_schedule: bool = False
    # The network protocols (heconv.network.PROTOCOLS) it runs in.
    protocols: tuple[str, ...] = ("hybrid",)
    # It can split a conv over worker processes (`split`); otherwise it runs in-process.
    parallel: bool = False
    # It can run a conv at the chain's last level where a value bound allows (ScaleSplitAlgorithm).
    last_level: bool = False

    @property
    def summary(self) -> str:
        """One line on what the algorithm does: the first line of its class docstring."""
        line = (type(self).__doc__ or "").strip().splitlines()[0].rstrip(".;,")
        return line[:1].lower() + line[1:]

    @abstractmethod
    def plan(self, weight: np.ndarray, height: int, width: int, params: CKKSParams, *, stride: int = 1,
             has_bias: bool = False, name: str = "conv", level: int = 0, **options: Any) -> Any:
        """A frozen plan from the weights and the shape alone (no backend, no ciphertext)."""

    @abstractmethod
    def compile(self, plan: Any, weight: np.ndarray, bias: np.ndarray | None, backend: Backend,
                input_scale: float | None = None) -> Any:
        """The plan's plaintexts encoded on `backend`."""

    @abstractmethod
    def run(self, compiled: Any, inputs: list[Any], backend: Backend) -> list[Any]:
        """Input ciphertexts (in `input_layout`) -> output ciphertexts (in `output_layout`)."""

    @abstractmethod
    def input_layout(self, plan: Any) -> Layout:
        """Where the plan reads its input map."""

    @abstractmethod
    def output_layout(self, plan: Any) -> Layout:
        """Where the plan writes its output map (at the strided resolution)."""

    def input_level(self, plan: Any) -> int:
        """The level the client encrypts the input at (the plan's level by default)."""
        return plan.level

    def output_level(self, plan: Any) -> int:
        """The level of the outputs (one rescale below the input by default)."""
        return plan.level + 1

    def output_scale(self, plan: Any, input_scale: float) -> float:
        """The outputs' CKKS scale for inputs at `input_scale`: a rescale brings the products back to the
        input's (the default)."""
        return input_scale

    def bound_point(self, plan: Any) -> tuple[int, bool]:
        """Where the layer's largest value sits, as heconv.bounds.check_bound's (level, product): by
        default in the products at the input level, at scale 2^(2s) before the rescale."""
        return plan.level, True

    def predicted(self, plan: Any) -> OpCounts:
        """What a run of the plan counts, exactly."""
        return plan.predicted

    def plaintexts(self, plan: Any) -> int:
        """Weight plaintexts `compile` encodes (what the layer holds in memory)."""
        return plan.plaintexts

    def rotation_steps(self, plan: Any) -> list[int]:
        """The Galois keys the plan needs (none for an algorithm that never rotates)."""
        return list(plan.rotation_steps)

    def run_timed(self, compiled: Any, inputs: list[Any], backend: Backend) -> tuple[list[Any], dict[str, float]]:
        """`run`, with the seconds of the parts a report shows apart (e.g. {"mask": s}); none by default."""
        return self.run(compiled, inputs, backend), {}

    # The parts `run_timed` may time apart: a layer record holds "<part>_s" for each (0 where a run had none).
    timed_parts: tuple[str, ...] = ()

    def figures(self, plan: Any, output_bound: float) -> dict[str, Any]:
        """The plan's own figures a layer record shows beside the common ones (bench.harness.layer_record),
        under keys of the algorithm's own (e.g. the slot engine's packing and schedule candidates, the
        coefficient chunking and its mask); none by default. `output_bound`: the largest |output| the
        layer's inputs allow (what a mask must hide)."""
        return {}

    def hiding_bits(self, plan: Any, output_bound: float) -> float | None:
        """What a mask on the outputs the client reads hides, in bits per masked value (heconv.coeff_mask)
        for outputs up to `output_bound`; None: the plan masks nothing (the default)."""
        return None

    def traffic_objective(self, plan: Any) -> Any | None:
        """What the plan's traffic-aware choice minimised (a heconv.traffic.Objective), or None: the plan
        made no such choice (the default)."""
        return None

    def label(self, plan: Any) -> str:
        """What a layer record's `schedule` column says ran: the registered name by default."""
        from . import algorithm_name  # the registry imports this module

        return algorithm_name(self)

    def baby_step(self, plan: Any) -> int | None:
        """The plan's baby step B, where it has one."""
        return getattr(plan, "baby_step", None)

    def split(self, plan: Any, workers: int) -> Any | None:
        """The plan split over up to `workers` processes (heconv.parallel_plan), or None: in-process."""
        return None

    # -- Parallel hooks (heconv.parallel.ConvPool), for an algorithm with `parallel = True`. A split's
    # shares (heconv.parallel_plan.Share) are contiguous runs of terms[start:end] in the plan's run order,
    # whole (bo, g) groups; a worker computes its share, worker 0 merges what several computed.
    def check_inputs(self, compiled: Any, inputs: list[Any], backend: Backend) -> None:
        """Raise where `inputs` are not the compiled layer's input ciphertexts (count, level, keys)."""
        raise NotImplementedError(f"{type(self).__name__} runs in-process only")

    def run_share(self, compiled: Any, share: Any, inputs: Mapping[int, Any], backend: Backend) -> dict[int, Any]:
        """One worker's share: its baby steps and groups; {bo: ciphertext}, finished for `share.finals`
        (`finish_output`), partial sums for the rest."""
        raise NotImplementedError(f"{type(self).__name__} runs in-process only")

    def finish_output(self, compiled: Any, bo: int, y: Any, backend: Backend) -> None:
        """Complete output bo's sum in place (its rescale, its bias)."""
        raise NotImplementedError(f"{type(self).__name__} runs in-process only")

    def empty_output(self, compiled: Any, bo: int, backend: Backend) -> Any:
        """Output bo where no term reaches it: its encrypted bias."""
        raise NotImplementedError(f"{type(self).__name__} runs in-process only")

    def share_resources(self, compiled: Any, share: Any) -> tuple[list[Any], set[int]]:
        """The plaintexts and rotation steps a share uses (a forked worker reads each once at start-up)."""
        raise NotImplementedError(f"{type(self).__name__} runs in-process only")

    def network_options(self, context: "NetworkContext") -> dict[str, Any]:
        """Extra `plan` options from the network around the conv (`context`: a residual partner, the
        uploads in its output layout, the planner's traffic objective); none by default."""
        return {}

    def check_placement(self, name: str, plan: Any, partner: Any | None, sum_only: bool) -> None:
        """Raise InputError where `plan` is unsound where a network plan placed it (`partner`: the plan
        of the conv whose output a residual add sums with this one's, else None; `sum_only`: that sum
        is the only way either output reaches the client). A plan made from `network_options` passes;
        one loaded or moved elsewhere may not. Nothing to check by default."""
        return None

    @abstractmethod
    def group_ids(self, plan: Any, shape: tuple[int, int, int, int]) -> Mapping[str, GroupArray]:
        """The pruning groups of a [C_out, C_in, k, k] weight under the plan's layout (take the dense
        plan: the groups must be fixed before training)."""


@dataclass(frozen=True)
class NetworkContext:
    """What the network planner knows around one conv.

    partner_kernel: with a conv whose output a residual add sums with this one's, the larger kernel of
    the two (else None); partner_plan: that conv's plan once planned (else None); partner_shape: its
    weight's shape; sum_only: the two outputs reach the client only as the add's sum (each is read by
    the add alone), so what hides the sum may sit on one of them; output_uploads: residual operands
    the client uploads in this conv's output layout; objective: what a traffic-aware plan minimises
    (heconv.traffic.Objective, None: the default)."""

    partner_kernel: int | None = None
    partner_plan: Any = None
    partner_shape: tuple[int, ...] | None = None
    sum_only: bool = False
    output_uploads: int = 0
    objective: Any = None
    # The largest |value| the conv's output can reach (with its residual partner's or upload's added)
    # when every refreshed input stays within the planner's value bound; None: no bound given.
    output_bound: float | None = None
    params: Any = None  # the network's CKKSParams
    # A residual add sums the conv's output with an encrypted value that is no conv's output (another add's
    # result): that operand's layout is fixed already, so the conv's output must take the plain one.
    summed_with_encrypted: bool = False


def last_level_options(context: NetworkContext) -> dict[str, Any]:
    """The plan options of a slot-packed conv (the slot engine, matvec) at the chain's last level without a
    rescale, where the planner's bound on its output leaves heconv.bounds.last_level_split enough bits and
    a residual partner planned already sits at the same scale; {} otherwise (level 0, one rescale).

    >>> from heconv.params import ckks_params
    >>> last_level_options(NetworkContext(output_bound=20.0, params=ckks_params(depth=1)))
    {'rescale': False, 'input_scale_bits': 30, 'weight_scale_bits': 24}
    >>> last_level_options(NetworkContext(output_bound=1e6, params=ckks_params(depth=1)))
    {}
    """
    if context.output_bound is None or context.params is None:
        return {}
    split = last_level_split(context.params, context.output_bound)
    if split is None:
        return {}
    if context.partner_plan is not None and getattr(context.partner_plan, "output_scale_bits", None) != sum(split):
        return {}  # its output is rescaled (or at another scale): this one's must sit where it does
    return {"rescale": False, "input_scale_bits": split[0], "weight_scale_bits": split[1]}


class ScaleSplitAlgorithm(ConvAlgorithm):
    """An algorithm whose plans carry `heconv.basics.ScaleSplit` (the slot engine, matvec): with a rescale
    at level 0 as by default; without one at the chain's last level, where `last_level_options` puts it."""

    last_level = True

    def output_level(self, plan: Any) -> int:
        return plan.output_level

    def output_scale(self, plan: Any, input_scale: float) -> float:
        """The input's with a rescale; times the weights' 2^weight_scale_bits without (the products are left
        as they are)."""
        return input_scale if plan.rescale else input_scale * 2.0 ** plan.weight_scale_bits

    def bound_point(self, plan: Any) -> tuple:
        """With a rescale, the products at 2^(2s) at the input level; without, at 2^(input + weight bits)."""
        return (plan.level, True) if plan.rescale else (plan.level, False, plan.output_scale_bits)

    def network_options(self, context: NetworkContext) -> dict[str, Any]:
        """At the chain's last level without a rescale where the planner's value bound allows
        (`last_level_options`); else none (level 0, one rescale)."""
        return last_level_options(context)

    # Both run baby steps, then (bo, g) groups of multiply-adds, then finish each output: one share runner.
    def accumulate(self, compiled: Any, rotated: Mapping[int, Mapping[int, Any]], start: int, end: int,
                   backend: Backend) -> dict[int, Any]:
        """Sum the compiled terms[start:end] (whole (bo, g) groups) from the baby steps `rotated`
        ({bi: {shift: ciphertext}}): {bo: partial sum}, not finished."""
        raise NotImplementedError(f"{type(self).__name__} lists no terms to accumulate")

    def run_share(self, compiled: Any, share: Any, inputs: Mapping[int, Any], backend: Backend) -> dict[int, Any]:
        rotated = rotate_inputs({bi: inputs[bi] for bi in share.inputs}, share.input_shifts, backend)
        partial = self.accumulate(compiled, rotated, share.start, share.end, backend)
        for bo in share.finals:
            self.finish_output(compiled, bo, partial[bo], backend)
        return partial

    def empty_output(self, compiled: Any, bo: int, backend: Backend) -> Any:
        return backend.encrypt_plain(compiled.outputs[bo])


@dataclass
class LayerRun:
    """What `run_layer` returns: the plan, the output map, and the counts of the run alone."""

    plan: Any
    output: np.ndarray
    counts: OpCounts


def run_layer(algorithm: ConvAlgorithm, weight: np.ndarray, bias: np.ndarray | None, x: np.ndarray,
              backend: Backend, stride: int = 1, **options: Any) -> LayerRun:
    """Plan, key, compile, encrypt, run (counted) and decrypt one conv on a [C_in, H, W] map.

    >>> from heconv.algorithms import get_algorithm
    >>> from heconv.backends import make_backend
    >>> from heconv.params import ckks_params
    >>> w = np.ones((2, 1, 3, 3)); x = np.ones((1, 4, 4))
    >>> r = run_layer(get_algorithm("matvec"), w, None, x, make_backend("plain", ckks_params(depth=1)))
    >>> r.output[0].round(6).tolist()[0], r.counts == r.plan.predicted
    ([4.0, 6.0, 6.0, 4.0], True)
    """
    h, w = np.shape(x)[1:]
    plan = algorithm.plan(weight, h, w, backend.params, stride=stride, has_bias=bias is not None, **options)
    backend.generate_galois_keys(algorithm.rotation_steps(plan))
    layer = algorithm.compile(plan, weight, bias, backend)
    inputs = encrypt_map(x, algorithm.input_layout(plan), backend, algorithm.input_level(plan))
    backend.reset_counter()
    outputs = algorithm.run(layer, inputs, backend)
    counts = backend.reset_counter()
    return LayerRun(plan, decrypt_map(outputs, algorithm.output_layout(plan), backend), counts)
