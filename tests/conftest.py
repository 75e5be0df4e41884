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
