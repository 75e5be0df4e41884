"""Measure the work around the network per ciphertext, the figures behind `heconv.cost.DEFAULT_WIRE_COSTS`:
the client encoding a coefficient vector and encrypting it for upload (seeded or with the public key),
the server loading an upload and serializing a rescaled output (whole, and extracted: c1 and the
coefficients of c0 a dense 64->64 layer's client reads, a quarter of them), the client loading,
decrypting and decoding that output; and the bytes of each.

    PYTHONPATH=. python tests/heconv/measure_wire_costs.py [--degree 8192] [--count 30] [--level 1]

Median per ciphertext, one thread, the hybrid protocol's chain ([60, 40, 60] at 8192), the uploads at
`--level` (0: two primes, the output rescaled one level down; 1, the last: one prime, the output there
too). Prints one JSON line. Not a test (no test_ prefix): a measurement kept so it can be rerun.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from heconv.backends.seal import SealBackend
from heconv.coeff_choice import coefficient_chunking
from heconv.coeff_pack import read_coefficients
from heconv.params import ckks_params


def _timed(fn, items) -> tuple[list, float]:
    out, seconds = [], []
    for item in items:
        t = time.perf_counter()
        out.append(fn(item))
        seconds.append(time.perf_counter() - t)
    return out, 1e3 * statistics.median(seconds)


def measure(degree: int, count: int, level: int = 0) -> dict:
    client = SealBackend(ckks_params(depth=1, poly_modulus_degree=degree), seed=0)
    server = client.public_view()
    rng = np.random.default_rng(0)
    vectors = [rng.uniform(-1, 1, degree) for _ in range(count)]
    plains, encode_ms = _timed(lambda v: client.encode_coefficients(v, level), vectors)
    seeded, seeded_ms = _timed(lambda p: client.encrypt_for_upload(p, True), plains)
    public, public_ms = _timed(lambda p: client.encrypt_for_upload(p, False), plains)
    loaded, load_ms = _timed(server.from_wire, seeded)
    for ct in loaded if level < client.params.depth else ():
        server.rescale_inplace(ct)  # what goes back: one level down (at the last level: there)
    down, save_ms = _timed(server.to_wire, loaded)
    _, decrypt_ms = _timed(lambda w: client.decode_coefficients(client.from_wire(w)), down)
    read = read_coefficients(coefficient_chunking(64, 64, 16, 16, 3, degree), 64)[0]
    cut, extract_ms = _timed(lambda ct: server.to_wire(ct, read), loaded)
    _, decrypt_cut_ms = _timed(lambda w: client.decode_coefficients(client.from_wire(w)), cut)
    return {"poly_modulus_degree": degree, "coeff_mod_bit_sizes": list(client.params.coeff_mod_bit_sizes),
            "level": level,
            "ciphertexts": count, "median_ms": {"encode": encode_ms, "encrypt_seeded": seeded_ms,
                                                "encrypt_public": public_ms, "load": load_ms, "save": save_ms,
                                                "decrypt": decrypt_ms, "save_extracted": extract_ms,
                                                "decrypt_extracted": decrypt_cut_ms},
            "read_fraction": float(read.mean()),
            "mean_bytes": {"seeded": statistics.mean(w.nbytes for w in seeded),
                           "public": statistics.mean(w.nbytes for w in public),
                           "download": statistics.mean(w.nbytes for w in down),
                           "download_extracted": statistics.mean(w.nbytes for w in cut)}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--degree", type=int, default=8192)
    p.add_argument("--count", type=int, default=30)
    p.add_argument("--level", type=int, default=0)
    args = p.parse_args()
    print(json.dumps(measure(args.degree, args.count, args.level)))


if __name__ == "__main__":
    main()
