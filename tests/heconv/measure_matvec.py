"""Measure matvec against the slot engine (schedule auto), encrypted (SEAL), one process, same weights.

    PYTHONPATH=. python tests/heconv/measure_matvec.py [--rounds 5] [--shapes 16-16-16,64-64-16,...]

A shape is C_in-C_out-H[-s2]. Per shape: both layers planned, keyed (each on its own SEAL context, keys
for exactly its steps), compiled and checked against torch; one warm-up run each; then `rounds` rounds,
each running both (the order alternates), timed by wall clock and by process CPU time. Prints one JSON
line per shape: minimum wall and CPU seconds of each, matvec/slot ratios, counts. Not a test (no test_
prefix): a measurement the issue asks for, kept so it can be rerun.
"""

from __future__ import annotations

import argparse
import gc
import json
import time

import numpy as np

from heconv.algorithms import get_algorithm
from heconv.algorithms.layout import decrypt_map, encrypt_map
from heconv.backends.seal import SealBackend
from heconv.params import ckks_params

DEFAULT = "16-16-16,64-64-16,64-128-16-s2,512-512-2,128-128-8,128-256-8-s2,256-256-4,256-512-4-s2"


def _prepare(name, options, w, x, params):
    alg, backend = get_algorithm(name), SealBackend(params, seed=0)
    plan = alg.plan(w, x.shape[1], x.shape[2], params, stride=options.pop("stride"), **options)
    backend.generate_galois_keys(alg.rotation_steps(plan))
    layer = alg.compile(plan, w, None, backend)
    inputs = encrypt_map(x, alg.input_layout(plan), backend)
    return alg, backend, plan, layer, inputs


def _run(prep):
    alg, backend, plan, layer, inputs = prep
    backend.reset_counter()
    t0, c0 = time.perf_counter(), time.process_time()
    out = alg.run(layer, inputs, backend)
    return time.perf_counter() - t0, time.process_time() - c0, out, backend.reset_counter()


def measure(shape: str, rounds: int, params) -> dict:
    parts = shape.split("-")
    c_in, c_out, hw = map(int, parts[:3])
    stride = 2 if parts[3:] == ["s2"] else 1
    rng = np.random.default_rng(0)
    w = rng.normal(0.0, np.sqrt(2.0 / (c_in * 9)), (c_out, c_in, 3, 3))
    x = rng.uniform(-1, 1, (c_in, hw, hw))
    import torch
    import torch.nn.functional as F
    ref = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), stride=stride, padding=1)[0].numpy()
    preps = {"slot": _prepare("slot", {"stride": stride, "schedule": "auto"}, w, x, params),
             "matvec": _prepare("matvec", {"stride": stride}, w, x, params)}
    row: dict = {"shape": shape}
    for name, prep in preps.items():  # warm-up, checked against torch and the plan
        _, _, out, counts = _run(prep)
        alg, backend, plan, _, _ = prep
        err = float(np.abs(decrypt_map(out, alg.output_layout(plan), backend) - ref).max())
        row[name] = {"wall": [], "cpu": [], "max_err": err, "counts_match": counts == alg.predicted(plan),
                     "rotations": counts.rotations, "pmuls": counts.pmuls, "outputs": len(out),
                     "plan": getattr(plan, "schedule_name", None) or f"B={plan.baby_step}"}
    for r in range(rounds):
        for name in (("slot", "matvec") if r % 2 == 0 else ("matvec", "slot")):
            wall, cpu, _, _ = _run(preps[name])
            row[name]["wall"].append(wall)
            row[name]["cpu"].append(cpu)
    for name in preps:
        row[name]["wall_min"], row[name]["cpu_min"] = min(row[name]["wall"]), min(row[name]["cpu"])
    row["ratio_wall"] = row["matvec"]["wall_min"] / row["slot"]["wall_min"]
    row["ratio_cpu"] = row["matvec"]["cpu_min"] / row["slot"]["cpu_min"]
    del preps
    gc.collect()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shapes", default=DEFAULT)
    args = ap.parse_args()
    params = ckks_params(depth=1)  # N = 8192, [60, 40, 60], scale 2^40
    rows = []
    for shape in args.shapes.split(","):
        rows.append(measure(shape, args.rounds, params))
        print(json.dumps(rows[-1]), flush=True)
    ratios = [r["ratio_wall"] for r in rows]
    print(json.dumps({"geomean_ratio_wall": float(np.exp(np.mean(np.log(ratios)))),
                      "geomean_ratio_cpu": float(np.exp(np.mean(np.log([r["ratio_cpu"] for r in rows]))))}))


if __name__ == "__main__":
    main()
