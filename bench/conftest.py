"""Benchmark configuration: `pytest bench --benchmark-only [--quick]`.

Every run's pytest-benchmark JSON lands in results/benchmarks/, named by time, git
revision and suite so runs never overwrite each other, and moved into place only once
complete (an interrupted run leaves no broken .json behind).
"""

import os
import time
from pathlib import Path

import pytest

from heconv.params import CKKSParams, ckks_params
from heconv.provenance import git_revision, provenance

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "benchmarks"
DEFAULT_PRUNED = ROOT / "results" / "demo" / "checkpoints"
# The methods whose real pruned models the model suite runs (the layer suite takes every method found).
CHECKPOINT_METHODS = ("dense", "hunter", "artemis-diagonal")


def pytest_addoption(parser):
    parser.addoption("--quick", action="store_true", help="artemis: run only a small subset of the benchmark cases")
    parser.addoption("--pruned", action="append", metavar="DIR",
                     help="artemis: a directory holding pruned-<method>.pt checkpoints ('artemis prune', "
                          f"'artemis demo'); repeatable; default {DEFAULT_PRUNED.relative_to(ROOT)}")


def pruned_checkpoints(config, methods: tuple[str, ...] | None = None) -> dict[tuple[str, str], Path]:
    """{(model, method): checkpoint} found under --pruned (once per session), optionally only `methods`."""
    if not hasattr(config, "_artemis_pruned"):
        from pruning.export import find_checkpoints

        dirs = config.getoption("--pruned") or [DEFAULT_PRUNED]
        config._artemis_pruned = dict(sorted(find_checkpoints(dirs).items()))
        config._artemis_pruned_dirs = [str(d) for d in dirs]
    return {k: v for k, v in config._artemis_pruned.items() if methods is None or k[1] in methods}


def no_checkpoint_param(config, argnames: int):
    dirs = getattr(config, "_artemis_pruned_dirs", [str(DEFAULT_PRUNED)])
    reason = (f"no pruned checkpoints (pruned-<method>.pt) under {dirs}: run 'artemis demo' "
              "or 'artemis prune', or pass --pruned DIR")
    return pytest.param(*([None] * argnames), marks=pytest.mark.skip(reason=reason), id="no-checkpoints")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--quick"):
        return
    keep = [i for i in items if "quick" in i.keywords]
    config.hook.pytest_deselected(items=[i for i in items if "quick" not in i.keywords])
    items[:] = keep


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.addinivalue_line("markers", "quick: part of the --quick benchmark subset")
    if config.getoption("benchmark_json", None) is None and not config.getoption("benchmark_disable", False):
        RESULTS.mkdir(parents=True, exist_ok=True)
        suite = "quick" if config.getoption("--quick") else "full"
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        final = RESULTS / f"bench-{stamp}-{git_revision()[:8]}-{suite}.json"
        config._artemis_json = (RESULTS / f".{final.name}.partial", final)
        config.option.benchmark_json = config._artemis_json[0]


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_sessionfinish(session, exitstatus):
    yield  # pytest-benchmark writes its JSON here
    paths = getattr(session.config, "_artemis_json", None)
    if paths and paths[0].exists():
        if exitstatus in (0, 1) and paths[0].stat().st_size:
            os.replace(*paths)
        else:
            paths[0].unlink()


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["artemis"] = provenance()


@pytest.fixture(scope="session")
def params_8192():
    return ckks_params(depth=1, poly_modulus_degree=8192)


@pytest.fixture(scope="session")
def unit_costs_for():
    """Unit costs measured once per session and parameter set, in this process, at level 0."""
    from heconv.cost import measure_unit_costs
    from heconv.seal_backend import SealBackend

    cache = {}

    def get(params: CKKSParams):
        key = (params.poly_modulus_degree, tuple(params.coeff_mod_bit_sizes))
        if key not in cache:
            b = SealBackend(params)
            b.generate_galois_keys([1])
            cache[key] = measure_unit_costs(b, level=0, reps=50)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def unit_costs_8192(params_8192, unit_costs_for):
    return unit_costs_for(params_8192)
