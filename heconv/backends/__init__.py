"""HE backends behind one small interface (`Backend`), and `make_backend` to pick one.

- "encrypted": `heconv.backends.seal.SealBackend`, real CKKS through tenseal.sealapi (the
  only module that imports tenseal);
- "plain": `heconv.backends.plain.PlainBackend`, slot vectors in numpy, identical counts;
- "count": the cleartext backend without slot arithmetic (counts only).

>>> from heconv.params import ckks_params
>>> make_backend("count", ckks_params(depth=1)).tracks_values
False
"""

from __future__ import annotations

from ..errors import InputError
from ..params import CKKSParams
from .base import Backend, OpCounts, Wire

MODES = ("encrypted", "plain", "count")


def make_backend(mode: str, params: CKKSParams, seed: int | None = None) -> Backend:
    """The backend for `mode` (one of MODES); tenseal is imported only for "encrypted"."""
    if mode == "encrypted":
        from .seal import SealBackend

        return SealBackend(params, seed=seed)
    if mode in ("plain", "count"):
        from .plain import PlainBackend

        return PlainBackend(params, track_values=mode == "plain")
    raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


__all__ = ["Backend", "OpCounts", "MODES", "Wire", "make_backend"]
