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
