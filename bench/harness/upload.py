"""A layer case's input as `artemis infer` sends it: the client (the backend that holds the secret key)
encodes and encrypts each packed vector for upload, seeded by default (heconv.traffic.UPLOADS), and
the server, a public view with no secret key, loads what crossed the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from heconv.backends import Backend
from heconv.traffic import UPLOADS


def upload_inputs(vectors: list[np.ndarray], encode: Callable[[np.ndarray], Any], client: Backend, server: Backend,
                  upload: str = "seeded") -> tuple[list[Any], int]:
    """The ciphertexts the server holds once `vectors` are uploaded, and the bytes that crossed.
    `encode`: the client's encoding of one vector (slots or coefficients, at the layer's level)."""
    inputs, nbytes = [], 0
    for v in vectors:  # one plaintext and one wire alive at a time
        wire = client.encrypt_for_upload(encode(v), UPLOADS[upload])
        nbytes += wire.nbytes
        inputs.append(server.from_wire(wire))
    return inputs, nbytes
