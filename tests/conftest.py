import numpy as np
import pytest

from heconv.backends.plain import PlainBackend
from heconv.params import ckks_params


@pytest.fixture(scope="session")
def params():
    """N = 8192, [60, 40, 60]: one multiplicative level, 128-bit secure."""
    return ckks_params(depth=1)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(params=["plain", "seal"])
def backend(request, params):
    """Both backends: every test that takes it runs once per backend."""
    if request.param == "plain":
        return PlainBackend(params)
    from heconv.backends.seal import SealBackend

    return SealBackend(params)


@pytest.fixture(autouse=True)
def _private_pause_file(tmp_path_factory, monkeypatch):
    """Tests that time (artemis bench, results encrypt) pause sweeps through a file of their own, and
    start at once: they must never pause a real sweep on the host, nor wait for its CPUs."""
    import bench.experiments.pause as pause

    monkeypatch.setenv("ARTEMIS_PAUSE_FILE", str(tmp_path_factory.mktemp("pause") / "sweeps.pause"))
    monkeypatch.setattr(pause, "IDLE_TARGET", 0.0)


@pytest.fixture(autouse=True)
def _short_unit_costs(monkeypatch):
    """A model's or layer's floor (its counts x unit costs) comes, in these tests, from a short unit-cost
    measurement: one pass over small operand pools instead of three over pools twice the cache, with up to
    96 Galois keys per level. The figures are still measured; no test here reads their precision, and
    the full measurement has tests of its own (tests/bench/test_unit_costs.py). It was most of the time of
    every encrypted network test (96 of 98 s for the non-interactive small CNN at N = 16384)."""
    import bench.harness.layer_record as layer_record
    import bench.harness.model as model
    from bench.harness.unit_costs import PoolSizes, measure_unit_costs_both

    def short(backend, level: int = 0, **_):
        return measure_unit_costs_both(backend, level, reps=3, passes=1, sizes=PoolSizes(8, 4, 4)).wall

    monkeypatch.setattr(model, "measure_unit_costs", short)
    monkeypatch.setattr(layer_record, "measure_unit_costs", short)
