"""Fixtures and helpers of the pytest-benchmark suites (options and run storage: bench.pytest_plugin).

`timed` is how a suite times its case: `benchmark.pedantic` under the timing protocol
(bench.harness.protocol: warm-up and timed rounds from pytest-benchmark's options), with
the canary (bench.harness.canary) timed just before and just after, recorded in extra_info.
"""

from pathlib import Path
from typing import Any, Callable

import pytest

from heconv.params import CKKSParams, ckks_params

ROOT = Path(__file__).resolve().parent.parent
# `artemis demo` writes runs/demo/ (its --publish, results/demo/): this machine's own demo first.
PRUNED_CANDIDATES = (ROOT / "runs" / "demo" / "checkpoints", ROOT / "results" / "demo" / "checkpoints")


def default_pruned() -> Path:
    """runs/demo/checkpoints when it holds checkpoints, else results/demo/checkpoints."""
    return next((d for d in PRUNED_CANDIDATES if any(d.glob("pruned-*.pt"))), PRUNED_CANDIDATES[-1])

# What a checkpoint case records of its checkpoint's meta (the report names where the model came from).
CHECKPOINT_INFO = ("dataset", "input_size", "subset", "fraction", "val_accuracy", "test_accuracy", "max_drop",
                   "git_revision", "seed", "variant", "database", "run_id")


def checkpoint_info(meta: dict) -> dict:
    return {k: meta.get(k) for k in CHECKPOINT_INFO}


# The methods whose real pruned models the model suite runs (the layer suite takes every method found).
CHECKPOINT_METHODS = ("dense", "hunter", "artemis-diagonal")
PRUNED = pytest.StashKey[tuple[dict, list[str]]]()  # ({(model, method): checkpoint}, the folders searched)


def pruned_checkpoints(config, methods: tuple[str, ...] | None = None) -> dict[tuple[str, str], Path]:
    """{(model, method): checkpoint} found under --pruned (once per session), optionally only `methods`."""
    if PRUNED not in config.stash:
        from models.checkpoint import find_checkpoints

        dirs = config.getoption("--pruned") or [default_pruned()]
        config.stash[PRUNED] = (dict(sorted(find_checkpoints(dirs).items())), [str(d) for d in dirs])
    found = config.stash[PRUNED][0]
    return {k: v for k, v in found.items() if methods is None or k[1] in methods}


def no_checkpoint_param(config, argnames: int):
    dirs = config.stash[PRUNED][1] if PRUNED in config.stash else [str(default_pruned())]
    reason = (f"no pruned checkpoints (pruned-<method>.pt) under {dirs}: run 'artemis demo' "
              "or 'artemis prune' (or 'artemis results checkpoints' for a sweep's), or pass --pruned DIR")
    return pytest.param(*([None] * argnames), marks=pytest.mark.skip(reason=reason), id="no-checkpoints")


@pytest.fixture(scope="session")
def params_8192():
    return ckks_params(depth=1, poly_modulus_degree=8192)


@pytest.fixture(scope="session")
def unit_costs_for():
    """Unit costs measured once per session and parameter set, in this process, at level 0."""
    from bench.harness.unit_costs import measure_unit_costs
    from heconv.backends import make_backend

    cache = {}

    def get(params: CKKSParams):
        key = (params.poly_modulus_degree, tuple(params.coeff_mod_bit_sizes))
        if key not in cache:
            b = make_backend("encrypted", params)
            b.generate_galois_keys([1])
            cache[key] = measure_unit_costs(b, level=0, reps=50)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def unit_costs_8192(params_8192, unit_costs_for):
    return unit_costs_for(params_8192)


@pytest.fixture(scope="session")
def canary():
    """The canary workload (built once per session: its keys take about a second)."""
    from bench.harness.canary import Canary

    return Canary()


@pytest.fixture(scope="session")
def protocol(pytestconfig):
    """The timing protocol of this run, from pytest-benchmark's options."""
    from bench.harness.protocol import TimingProtocol

    return TimingProtocol.from_options(pytestconfig.getoption)


@pytest.fixture
def timed(benchmark, canary, protocol) -> Callable[..., None]:
    """`timed(target, rounds=None, setup=None)`: time `target` with benchmark.pedantic under the protocol
    (`rounds` defaults to the protocol's), the canary run just before and just after."""

    def run(target: Callable[..., Any], rounds: int | None = None, setup: Callable[[], Any] | None = None) -> None:
        before = canary()
        benchmark.pedantic(target, setup=setup, rounds=rounds or protocol.rounds,
                           warmup_rounds=protocol.warmup_rounds, iterations=1)
        after = canary()
        benchmark.extra_info.update(canary_before_s=before, canary_after_s=after,
                                    timing_protocol=protocol.to_dict() | {"rounds": rounds or protocol.rounds})

    return run
