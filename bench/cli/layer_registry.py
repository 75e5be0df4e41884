"""`artemis layer --algorithm NAME` for an algorithm with no harness of its own: any registered
heconv.algorithms.ConvAlgorithm (today matvec), run through the interface alone, counted, timed and checked
against PyTorch. (The slot and coefficient algorithms keep their own harnesses until the harness seam.)"""

from __future__ import annotations

import argparse
import time

import numpy as np


def run_registered(args: argparse.Namespace, weight: np.ndarray, bias: np.ndarray | None, params) -> dict:
    """Plan, key, compile and encrypt a random input in [-1, 1] (client), run once (server, timed and
    counted), decrypt and compare with torch."""
    from heconv.backends import make_backend
    from heconv.bounds import check_bound, output_gain
    from heconv.cost import DEFAULT_UNIT_COSTS, floor_seconds

    from ..harness.layer import INPUT_BOUND
    from ..harness.memory import check_memory
    from ..harness.registered import prepare_registered

    backend = make_backend(args.mode, params, args.seed)

    def check_plan(alg, plan) -> None:
        if not args.no_bound_check:
            bias_max = 0.0 if bias is None else float(np.abs(bias).max())
            check_bound("conv", output_gain(weight) * INPUT_BOUND + bias_max, params, 0)
        check_memory(f"layer conv ({args.c_in}->{args.c_out}, {args.hw}x{args.hw}, {alg.plaintexts(plan)} "
                     "plaintexts)", alg.plaintexts(plan) * backend.plaintext_bytes(0))

    prep = prepare_registered(args.algorithm, weight, bias, args.hw, args.stride, backend, args.seed, check_plan)
    alg, plan, inputs = prep.alg, prep.plan, prep.inputs
    t, c = time.perf_counter(), time.process_time()
    outputs = prep.run()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    checked = prep.check(outputs)
    counts, predicted, y = checked["counts"], checked["predicted"], checked["output"]
    floor = floor_seconds(counts, DEFAULT_UNIT_COSTS)
    return {
        "algorithm": args.algorithm, "c_in": args.c_in, "c_out": args.c_out, "hw": args.hw, "kernel": weight.shape[2],
        "stride": args.stride, "poly_modulus_degree": params.poly_modulus_degree,
        "coeff_mod_bit_sizes": list(params.coeff_mod_bit_sizes),
        "input_layout": type(alg.input_layout(plan)).__name__, "output_layout": type(alg.output_layout(plan)).__name__,
        "n_in": len(inputs), "n_out": len(outputs), "output_shape": list(y.shape),
        **counts.to_dict(), **{f"predicted_{k}": v for k, v in predicted.to_dict().items()},
        "counts_match_plan": counts == predicted, "galois_keys": len(backend.galois_steps),
        "galois_key_bytes": backend.galois_key_bytes(),
        "bytes_client_to_server": sum(backend.ciphertext_bytes(ct) for ct in inputs),
        "bytes_server_to_client": sum(backend.ciphertext_bytes(ct) for ct in outputs),
        "latency_s": wall, "cpu_s": cpu, "floor_s": floor, "floor_unit_costs": "planning defaults (heconv.cost)",
        "latency_over_floor": wall / floor if floor else None,
        "max_abs_error": checked["max_abs_error"], "max_abs_reference": checked["max_abs_reference"],
        "workers": 1, "workers_requested": 1, "schedule_requested": None,
    }


def render_registered(result: dict) -> str:
    """The human-readable rows of `run_registered`'s result."""
    rows = [
        ("layer", f"{result['c_in']}->{result['c_out']}, {result['kernel']}x{result['kernel']}, "
                  f"stride {result['stride']}, {result['hw']}x{result['hw']}"),
        ("mode", f"{result['mode']} (N={result['poly_modulus_degree']}, moduli {result['coeff_mod_bit_sizes']})"
                 + (" INSECURE toy parameters" if result.get("insecure") else "")),
        ("algorithm", f"{result['algorithm']} (in-process, one worker)"),
        ("layouts", f"{result['n_in']} ciphertexts in ({result['input_layout']}), {result['n_out']} out "
                    f"({result['output_layout']}, map {result['output_shape']})"),
        ("rotations", f"{result['rotations']} counted, {result['predicted_rotations']} predicted; "
                      f"{result['key_switches']} key switches, {result['galois_keys']} Galois keys "
                      f"({result['galois_key_bytes'] / 1e6:.2f} MB)"),
        ("plaintext mults", f"{result['pmuls']} counted, {result['predicted_pmuls']} predicted"),
        ("additions", f"{result['adds']} ct-ct, {result['plain_adds']} ct-pt"),
        ("rescales", str(result["rescales"])),
        ("counts", "equal the plan's" if result["counts_match_plan"] else "DIFFER from the plan's"),
        ("latency", f"{result['latency_s']:.4f} s wall, {result['cpu_s']:.4f} s CPU"),
        ("floor", f"{result['floor_s']:.4f} s: counts x the planning unit costs (not measured in this run)"),
        ("max abs error", f"{result['max_abs_error']:.3e} vs torch conv2d (limit {result['error_limit']:.1e}: "
                          f"{'ok' if result['within_tolerance'] else 'EXCEEDED'})"),
    ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)
