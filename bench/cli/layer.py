"""`artemis layer`: one convolution under CKKS, counted, timed and checked against PyTorch."""

from __future__ import annotations

import argparse

import numpy as np

from heconv.algorithms import DEFAULT_ALGORITHM, get_algorithm
from heconv.algorithms.base import NetworkContext
from heconv.errors import InputError

from .common import (
    add_algorithm_option,
    add_bandwidth_options,
    add_precision_options,
    add_schedule_option,
    add_workers_option,
    fraction,
    positive,
    resolve_workers,
    seed,
    tolerance_verdict,
)


def add_parser(sub) -> None:
    p = sub.add_parser("layer", help="run one convolution layer under CKKS and count its operations")
    p.add_argument("--c-in", type=positive, required=True, help="input channels")
    p.add_argument("--c-out", type=positive, required=True, help="output channels")
    p.add_argument("--hw", type=positive, required=True, help="input height = width")
    p.add_argument("--kernel", type=positive, default=3, help="odd kernel size (default 3)")
    p.add_argument("--stride", type=int, choices=(1, 2), default=1)
    p.add_argument("--weights", help=".npy or .pt array [C_out, C_in, k, k]; its zeros decide what is skipped")
    p.add_argument("--bias", action="store_true", help="add a random bias")
    p.add_argument("--prune-diagonals", type=fraction, default=0.0,
                   help="fraction of diagonal groups zeroed (random weights)")
    p.add_argument("--prune-positions", type=fraction, default=0.0,
                   help="fraction of positional groups zeroed (random weights)")
    p.add_argument("--poly-modulus-degree", type=int, default=None, help="N (default: the smallest secure N that fits)")
    p.add_argument("--toy-params", action="store_true", help="allow parameters below 128-bit security (testing only)")
    p.add_argument("--mode", choices=("encrypted", "plain"), default="encrypted",
                   help="encrypted: SEAL CKKS; plain: the cleartext backend (same counts, no encryption)")
    add_schedule_option(p)
    add_workers_option(p)
    add_algorithm_option(p, choose=True)
    p.add_argument("--no-mask", action="store_true",
                   help="coefficient algorithm: leave the outputs' second polynomials as the weights made "
                        "them (the unread coefficients still stay behind, but the weights can be solved for: "
                        "no weight privacy)")
    add_bandwidth_options(p)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_precision_options(p, 1e-3)
    p.set_defaults(func=run, render=render)


def run(args: argparse.Namespace) -> dict:
    from heconv.params import params_for_input
    from heconv.traffic import Objective
    from pruning.synthetic import random_conv_weights

    from ..harness.layer import load_weights
    from ..provenance import provenance

    k = args.kernel
    if k % 2 == 0:
        raise InputError(f"layer conv ({args.c_in}->{args.c_out}, {args.hw}x{args.hw}): kernel size must be odd, "
                         f"got {k}")
    params = params_for_input(args.hw, args.hw, args.poly_modulus_degree, allow_insecure=args.toy_params,
                              scale_bits=args.scale_bits)
    shape = (args.c_out, args.c_in, k, k)
    if args.weights:
        if args.prune_diagonals or args.prune_positions:
            raise InputError("--prune-diagonals/--prune-positions apply to random weights, not to --weights")
        weight = load_weights(args.weights, shape)
    else:
        weight = random_conv_weights(args.c_out, args.c_in, k, params.slots, args.hw, args.hw,
                                     args.prune_diagonals, args.prune_positions, args.seed)
    bias = np.random.default_rng(args.seed + 2).normal(0, 0.1, args.c_out) if args.bias else None

    # No --algorithm and --schedule auto: the algorithm of the lowest predicted time (as `artemis infer` per conv).
    choose = args.algorithm is None and args.schedule == "auto"
    args.algorithm = args.algorithm or DEFAULT_ALGORITHM
    alg = get_algorithm(args.algorithm)
    if (args.compare_slot or args.no_mask) and not alg.changes_traffic:
        raise InputError(f"--compare-slot and --no-mask apply to an algorithm that changes the protocol's traffic "
                         f"(masked outputs), not to --algorithm {args.algorithm}")
    if (args.workers or 1) > 1 and not alg.parallel and not choose:
        raise InputError(f"--workers > 1 does not apply to --algorithm {args.algorithm}: it runs in-process")
    workers = resolve_workers(args) if alg.parallel or choose else 1
    # the algorithm's plan options for a lone conv: the coefficient chunking's objective, its mask
    options = alg.network_options(NetworkContext(objective=Objective(args.bandwidth, "seeded", args.chunking)))
    if args.no_mask:
        options["mask"] = False
    result = _measure(args, weight, bias, params, args.algorithm, args.schedule, workers, choose, options)
    if args.compare_slot:
        slot = _measure(args, weight, bias, params, DEFAULT_ALGORITHM, "output-rotation", 1)
        result.update(slot_or_latency_s=slot["latency_s"], slot_or_cpu_s=slot["cpu_s"],
                      slot_or_rotations=slot["rotations"], slot_or_pmuls=slot["pmuls"],
                      slot_or_bytes_client_to_server=slot.get("bytes_client_to_server"),
                      slot_or_bytes_server_to_client=slot.get("bytes_server_to_client"),
                      latency_over_slot_or=result["latency_s"] / slot["latency_s"],
                      cpu_over_slot_or=result["cpu_s"] / slot["cpu_s"],
                      unmasked_latency_over_slot_or=(result["latency_s"] - result.get("mask_s", 0.0))
                      / slot["latency_s"])
    result.update(algorithm_requested="auto" if choose else args.algorithm, mode=args.mode,
                  prune_diagonals=args.prune_diagonals, prune_positions=args.prune_positions, weights=args.weights,
                  insecure=params.allow_insecure, scale_bits=params.scale_bits, provenance=provenance())
    result.update(tolerance_verdict(result, "max_abs_error", "max_abs_reference", args.tolerance))
    return result


def _measure(args: argparse.Namespace, weight, bias, params, algorithm: str, schedule: str, workers: int,
             choose: bool = False, options: dict | None = None) -> dict:
    """One conv through the one layer harness (bench.harness.layer), any algorithm: its record."""
    from heconv.backends import make_backend

    from ..harness.layer import prepare_layer
    from ..harness.layer_record import measure_layer
    from .common import bar

    with bar(2, "layer") as b:
        b.set_postfix_str("keys and encoding")
        prep = prepare_layer(weight, bias, args.hw, args.hw, args.stride, make_backend(args.mode, params, args.seed),
                             seed=args.seed, check_bounds=not args.no_bound_check, schedule=schedule,
                             workers=workers, algorithm=algorithm, choose_algorithm=choose, options=options)
        b.update()
        b.set_postfix_str("run")
        try:
            result = measure_layer(prep).to_dict()
        finally:
            prep.close()
        b.update()
    ran = result["algorithm"]
    result.update(schedule_requested=schedule,
                  workers_chosen=getattr(args, "workers_chosen", "--workers") if get_algorithm(ran).parallel
                  else f"the {ran} algorithm runs in-process")
    return result


def _algorithm_row(result: dict) -> str:
    """The algorithm that ran, what it does, and for --schedule auto why it won (heconv.algorithms.choice)."""
    row = f"{result['algorithm']}: {get_algorithm(result['algorithm']).summary}"
    return row + (f"; {result['algorithm_reason']}" if result.get("algorithm_reason") else "")


def _schedule_row(result: dict) -> str:
    """The schedule that ran, and for auto the rotations of every baby step considered."""
    b = result.get("baby_step")
    row = result["schedule"] + (f" (baby step B = {b})" if b is not None else "")
    cands = result.get("schedule_candidates") or []
    if cands:
        row += "; auto chose from " + ", ".join(f"B={c['baby_step']}: {c['rotations']} rot" for c in cands)
    return row


def _workers_row(result: dict) -> str:
    chosen = f" ({result['workers_chosen']})" if result.get("workers_chosen") else ""
    if result["workers"] == 1:
        return "1 (in-process)" + chosen + (f"; {result['workers_requested']} asked, the layer has one giant-step "
                                            f"group" if result.get("workers_requested", 1) > 1
                                            and get_algorithm(result["algorithm"]).parallel else "")
    return (f"{result['workers']} processes{chosen}, split by giant-step groups (bo, g); "
            f"{result['extra_rotations']} baby-step rotations recomputed by more than one worker")


def _rotations_row(result: dict) -> str:
    """Counted rotations split into the plan's own and those workers recompute (issue 21)."""
    extra = result.get("extra_rotations", 0) or 0
    row = (f"{result['rotations']} counted = {result['rotations'] - extra} the plan's own + {extra} recomputed by "
           f"{result['workers']} worker(s); {result['predicted_rotations']} predicted")
    if result.get("dense_formula_rotations") is not None:
        row += (f"; {result['dense_formula_rotations']} dense formula for one process "
                f"(B = {result['baby_step']})")
    return row


def _parallel_rows(result: dict) -> list[tuple[str, str]]:
    if result["workers"] == 1:
        return []
    floors = ", ".join(f"{f:.4f}" for f in result["worker_floor_s"])
    return [
        ("transfer", f"{result['transfer_bytes'] / 1e6:.2f} MB of ciphertexts, {result['transfer_s'] * 1e3:.1f} ms "
                     f"on the critical path (SEAL serialization)"),
        ("parallel floor", f"{result['parallel_floor_s']:.4f} s (x{result['latency_over_parallel_floor'] or 0:.3f}): "
                           f"the larger worker's floor (workers: {floors} s) + transfer"),
    ]


def _figure_rows(result: dict) -> list[tuple[str, str]]:
    """Rows of the figures an algorithm supplies (ConvAlgorithm.figures), each shown where present."""
    rows = []
    if "channel_slots" in result:
        rows.append(("packing", f"c_n={result['c_n']}, P={result['channel_slots']}, n_in={result['n_in']}, "
                                f"n_out={result['n_out']}" + (f", {result['parities']} parities multiplexed"
                                                              if result.get("parities", 1) > 1 else "")))
    if "chunking" in result:
        ch = result["chunking"]
        rows.append(("chunking", f"C_w={result['c_w']} channels per chunk, {result['chunks']} chunks, "
                                 f"{result['group']} output channels per ciphertext, {result['tiles']} tile(s) of "
                                 f"{ch['tile_h']}x{ch['tile_w']}"))
    return rows + _choice_rows(result)


def _privacy(result: dict) -> str:
    """What the coefficient algorithm's server does to what goes back, in one line (heconv.coeff_mask)."""
    sent = "the unread coefficients are not sent (c1 and the read part of c0 go back)"
    if not result["mask"]:
        return f"NONE (--no-mask): {sent}, but c1 is the weights' map of the client's own upload"
    return (f"masked: {sent}; {result['encryptions']} fresh encryptions of zero re-randomise c1, "
            f"{result['mask_s'] * 1e3:.1f} ms (stated as {result['hiding_bits_per_coefficient']:.0f} bits)")


def _choice_rows(result: dict) -> list[tuple[str, str]]:
    """Why this chunking: the plan's record of its candidates (heconv.coeff_choice)."""
    choice, p = result.get("chunk_choice"), result.get("predicted_phases")
    if not choice:
        return []
    return [("chunking choice", choice["reason"]),
            ("predicted", f"{result['predicted_end_to_end_s'] * 1e3:.1f} ms end to end at "
                          f"{result['bandwidth_bps'] / 1e6:g} Mbit/s = client {p['client_s'] * 1e3:.1f} + server "
                          f"{p['server_s'] * 1e3:.1f} + server I/O {p['server_io_s'] * 1e3:.1f} ms + "
                          f"{(p['upload_bytes'] + p['download_bytes']) / 1e6:.2f} MB on the wire")]


def render(result: dict) -> str:
    """One table for every algorithm: the common rows, and the rows of the figures its record holds."""
    kept = (f" ({result['kept_blocks']} of {result['block_groups']} kernel blocks kept)"
            if "kept_blocks" in result else "")
    rows = [
        ("layer", f"{result['c_in']}->{result['c_out']}, {result['kernel']}x{result['kernel']}, "
                  f"stride {result['stride']}, {result['hw']}x{result['hw']}"),
        ("mode", f"{result['mode']} (N={result['poly_modulus_degree']}, moduli {result['coeff_mod_bit_sizes']})"
                 + (" INSECURE toy parameters" if result.get("insecure") else "")),
        ("algorithm", _algorithm_row(result)),
        *_figure_rows(result),
        ("layouts", f"{result['n_in']} ciphertexts in ({result['input_layout']}, "
                    f"{result['bytes_client_to_server'] / 1e6:.2f} MB, {result.get('upload', 'seeded')}), "
                    f"{result['n_out']} out ({result['output_layout']}, map {result['output_shape']}, "
                    f"{result['bytes_server_to_client'] / 1e6:.2f} MB)"),
        ("schedule", _schedule_row(result)),
        ("rotations", _rotations_row(result)),
        ("key switches", str(result["key_switches"])),
        ("galois keys", f"{result['galois_keys']} ({result['galois_key_bytes'] / 1e6:.2f} MB)"),
        ("plaintext mults", f"{result['pmuls']} counted, {result['predicted_pmuls']} predicted{kept}"),
        ("additions", f"{result['adds']} ct-ct, {result['plain_adds']} ct-pt"),
        ("rescales", str(result["rescales"])),
        ("counts", "equal the plan's" if result["counts_match_plan"] else "DIFFER from the plan's"),
        *([("weight privacy", _privacy(result))] if "mask" in result else []),
        ("workers", _workers_row(result)),
        ("latency", f"{result['latency_s']:.4f} s wall, {result['cpu_s']:.4f} s CPU"
                    + (" (all workers)" if result["workers"] > 1 else "")),
        ("floor", f"{result['floor_s']:.4f} s (x{result['latency_over_floor'] or 0:.3f}): counts x unit costs, "
                  f"the time with no engine overhead" + (" on one core" if result["workers"] > 1 else "")),
        *_parallel_rows(result),
    ]
    if "slot_or_latency_s" in result:
        rows.append(("vs slot OR", f"{result['slot_or_latency_s']:.4f} s wall "
                                   f"({result['slot_or_rotations']} rotations), "
                                   f"{result['algorithm']}/slot x{result['latency_over_slot_or']:.3f} wall, "
                                   f"x{result['cpu_over_slot_or']:.3f} CPU (same process, one worker)"))
    rows += [
        ("max abs error", f"{result['max_abs_error']:.3e} vs torch conv2d (limit {result['error_limit']:.1e}: "
                          f"{'ok' if result['within_tolerance'] else 'EXCEEDED'})"),
        ("peak RSS", f"{result['peak_rss_bytes'] / 2**20:.0f} MiB"),
    ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)
