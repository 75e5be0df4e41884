"""Benchmark configuration: `pytest bench --benchmark-only [--quick]`.

Every run's pytest-benchmark JSON lands in results/benchmarks/, named by time, git
revision and suite so runs never overwrite each other, and moved into place only once
complete (an interrupted run leaves no broken .json behind).
"""

import os
import time
from pathlib import Path

import pytest

from heconv.params import ckks_params
from heconv.provenance import git_revision, provenance

RESULTS = Path(__file__).resolve().parent.parent / "results" / "benchmarks"


def pytest_addoption(parser):
    parser.addoption("--quick", action="store_true", help="artemis: run only a small subset of the benchmark cases")


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
def unit_costs_8192(params_8192):
    """Unit costs measured once per session, in this process, at the layer's level."""
    from heconv.cost import measure_unit_costs
    from heconv.seal_backend import SealBackend

    b = SealBackend(params_8192)
    b.generate_galois_keys([1])
    return measure_unit_costs(b, level=0, reps=50)
