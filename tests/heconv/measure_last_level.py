"""Measure a slot conv at the chain's last level (one prime, the scale split between input and weights, no
rescale) against the same conv as the hybrid protocol runs it today (level 0, two primes, one rescale):
time and error against torch, in one process, alternating, inside `paused()`.

    PYTHONPATH=. python tests/heconv/measure_last_level.py [--input-bits 30] [--weight-bits 24] [--rounds 5]

64->64 3x3 on 16x16 at N = 8192 ([60, 40, 60]), output-rotation, Kaiming weights (seed 0), inputs uniform
in [-1, 1]. The last-level variant encodes the weights at 2^weight_bits on level 1, the input at
2^input_bits, and sums the products unrescaled (2^(input + weight) on the 60-bit prime, so the outputs
must stay under 2^(59 - input - weight) in absolute value). It runs the engine's own baby steps and
multiply-adds (`rotate_inputs`, `accumulate_terms`); nothing in heconv plans it yet. Prints one JSON line.
Not a test (no test_ prefix): the measurement behind the next step on issue 22, kept so it can be rerun.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def measure(input_bits: int, weight_bits: int, rounds: int) -> dict:
    import torch
    import torch.nn.functional as F

    from bench.experiments.pause import paused
    from heconv.backends.seal import SealBackend
    from heconv.conv import (
        CompiledConv,
        _term_vectors,
        accumulate_terms,
        compile_conv,
        diagonal_weights,
        plan_conv,
        rotate_inputs,
        run_conv,
    )
    from heconv.geometry import pack, unpack, valid_pixel_masks
    from heconv.params import ckks_params

    rng = np.random.default_rng(0)
    c, hw = 64, 16
    w = rng.normal(0, np.sqrt(2 / (c * 9)), (c, c, 3, 3))
    x = rng.uniform(-1, 1, (c, hw, hw))
    params = ckks_params(depth=1)
    client = SealBackend(params, seed=0)
    plan = plan_conv(w, hw, hw, params)
    client.generate_galois_keys(plan.rotation_steps)
    server = client.public_view()
    today = compile_conv(plan, w, None, server)
    vectors = _term_vectors(diagonal_weights(w, plan.packing), valid_pixel_masks(3, hw, hw, plan.packing.channel_slots),
                            plan.terms, plan.packing, plan.baby_step)
    last = CompiledConv(plan, [server.encode(v, params.depth, 2.0 ** weight_bits) for v in vectors],
                        [None] * plan.packing.n_out)
    packed = pack(x, plan.packing)
    inputs_today = [client.encrypt(v) for v in packed]
    inputs_last = [client.encrypt_plain(client.encode(v, params.depth, 2.0 ** input_bits)) for v in packed]

    def run_today() -> list:
        return run_conv(today, inputs_today, server)

    def run_last() -> list:
        partial = accumulate_terms(last, rotate_inputs(dict(enumerate(inputs_last)), plan.input_shifts, server), 0,
                                   len(plan.terms), server)
        return [partial[bo] for bo in range(plan.packing.n_out)]

    ref = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), padding=1)[0].numpy()
    errors = {name: float(np.abs(unpack([client.decrypt(ct) for ct in run()], plan.packing, c) - ref).max())
              for name, run in (("today", run_today), ("last_level", run_last))}
    seconds: dict[str, list[float]] = {"today": [], "last_level": []}
    with paused() as idle:
        for _ in range(rounds):
            for name, run in (("today", run_today), ("last_level", run_last)):
                t = time.perf_counter()
                run()
                seconds[name].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in seconds.items()}
    return {"shape": "64->64 3x3 16x16", "poly_modulus_degree": params.poly_modulus_degree,
            "input_bits": input_bits, "weight_bits": weight_bits, "rounds": rounds, "idle_share": idle,
            "min_s": best, "today_over_last_level": best["today"] / best["last_level"],
            "max_abs_error": errors, "max_abs_reference": float(np.abs(ref).max()),
            "output_bound": 2.0 ** (59 - input_bits - weight_bits)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--input-bits", type=int, default=30)
    p.add_argument("--weight-bits", type=int, default=24)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    print(json.dumps(measure(args.input_bits, args.weight_bits, args.rounds)))


if __name__ == "__main__":
    main()
