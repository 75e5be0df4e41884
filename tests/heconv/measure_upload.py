"""Measure what one uploaded ciphertext costs: bytes and client seconds, seeded (secret key) against
public-key encryption, and the scratch file's cost, per N.

    PYTHONPATH=. python tests/heconv/measure_upload.py [--degrees 8192,16384] [--count 50]

Per N (the hybrid protocol's chain, one level: [60, 40, 60] at 8192, the same at 16384): `count` random
slot vectors encoded once, then encrypted and serialized each way, timed (minimum and median per
ciphertext); the server's load (seed expansion) timed too. Bytes are SEAL's own serialization with its
default compression (the binding offers no other; the header says which), against the raw 64-bit words
of the polynomials. Also the scratch file's cost: /dev/shm against the temporary folder. Prints one JSON
line per N. Not a test (no test_ prefix): a measurement the issue asks for, kept so it can be rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np
import tenseal.sealapi as seal

from heconv.backends import seal as seal_backend
from heconv.backends.seal import SealBackend
from heconv.params import ckks_params


def _timed(fn, items):
    out, seconds = [], []
    for item in items:
        t = time.perf_counter()
        out.append(fn(item))
        seconds.append(time.perf_counter() - t)
    return out, {"min_ms": 1e3 * min(seconds), "median_ms": 1e3 * statistics.median(seconds)}


def _spread(wires) -> dict:
    sizes = [w.nbytes for w in wires]  # zstd: each ciphertext's size differs a little
    return {"mean": statistics.mean(sizes), "min": min(sizes), "max": max(sizes)}


def _compression(data: bytes) -> str:
    fd, path = tempfile.mkstemp(dir=seal_backend._SCRATCH)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    header = seal.Serialization.SEALHeader()
    seal.Serialization.LoadHeader(path, header, True)
    os.unlink(path)
    return str(header.compr_mode).rsplit(".", 1)[-1]


def measure(degree: int, count: int) -> dict:
    b = SealBackend(ckks_params(depth=1, poly_modulus_degree=degree), seed=0)
    rng = np.random.default_rng(0)
    plains = [b.encode(rng.uniform(-1, 1, b.slots)) for _ in range(count)]
    seeded, seeded_t = _timed(lambda p: b.encrypt_for_upload(p), plains)
    public, public_t = _timed(lambda p: b.encrypt_for_upload(p, seeded=False), plains)
    server = b.public_view()
    _, load_seeded_t = _timed(server.from_wire, seeded)
    _, load_public_t = _timed(server.from_wire, public)
    ct = server.from_wire(public[0])
    _, shm_t = _timed(lambda _: seal_backend._serialized(ct), range(count))
    saved, seal_backend._SCRATCH = seal_backend._SCRATCH, None  # the temporary folder instead
    try:
        _, tmp_t = _timed(lambda _: seal_backend._serialized(ct), range(count))
    finally:
        seal_backend._SCRATCH = saved
    words = degree * 2 * 8  # one polynomial: N residues for each of the 2 primes left at level 0
    return {
        "poly_modulus_degree": degree, "coeff_mod_bit_sizes": list(b.params.coeff_mod_bit_sizes),
        "ciphertexts": count, "compression": _compression(seeded[0].payload),
        "bytes": {"seeded": _spread(seeded), "public": _spread(public)},
        "seeded_over_public": sum(w.nbytes for w in seeded) / sum(w.nbytes for w in public),
        "raw_words_bytes": {"seeded": words, "public": 2 * words},
        "client_encrypt_and_serialize": {"seeded": seeded_t, "public": public_t},
        "server_load": {"seeded": load_seeded_t, "public": load_public_t},
        "serialize_one": {"scratch " + str(saved): shm_t, "scratch " + tempfile.gettempdir(): tmp_t},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--degrees", default="8192,16384")
    p.add_argument("--count", type=int, default=50)
    args = p.parse_args()
    for degree in (int(d) for d in args.degrees.split(",")):
        print(json.dumps(measure(degree, args.count)))


if __name__ == "__main__":
    main()
