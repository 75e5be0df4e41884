"""The `artemis` command line.

    artemis layer --c-in 64 --c-out 64 --hw 16 --kernel 3 [--json]
    artemis infer --model resnet18 --input-size 16 --images 2 [--mode encrypted|plain|count] [--json]
    artemis train --model resnet18 --dataset fashion-mnist --input-size 16 --lambda-d 1e-4 --out DIR
    artemis prune --method artemis-diagonal --checkpoint DIR/model.pt --max-drop 1.0 --out DIR
    artemis report [bench.json ...] [--pruning-csv CSV ...] [--readme PATH | --no-readme]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

log = logging.getLogger("artemis")


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {v}")
    return v


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="artemis", description="Encrypted-inference benchmark suite (CKKS, HE-aware pruning).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("layer", help="run one convolution layer under CKKS and count its operations")
    p.add_argument("--c-in", type=_positive, required=True, help="input channels")
    p.add_argument("--c-out", type=_positive, required=True, help="output channels")
    p.add_argument("--hw", type=_positive, required=True, help="input height = width")
    p.add_argument("--kernel", type=_positive, default=3, help="odd kernel size (default 3)")
    p.add_argument("--stride", type=int, choices=(1, 2), default=1)
    p.add_argument("--weights", help=".npy or .pt array [C_out, C_in, k, k]; its zeros decide what is skipped")
    p.add_argument("--bias", action="store_true", help="add a random bias")
    p.add_argument("--prune-diagonals", type=_fraction, default=0.0, help="fraction of diagonal groups zeroed (random weights)")
    p.add_argument("--prune-positions", type=_fraction, default=0.0, help="fraction of positional groups zeroed (random weights)")
    p.add_argument("--poly-modulus-degree", type=int, default=None, help="N (default: the smallest secure N that fits)")
    p.add_argument("--toy-params", action="store_true", help="allow parameters below 128-bit security (testing only)")
    p.add_argument("--mode", choices=("encrypted", "plain"), default="encrypted",
                   help="encrypted: SEAL CKKS; plain: the cleartext backend (same counts, no encryption)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_layer)

    p = sub.add_parser("infer", help="run a whole model through the hybrid HE protocol")
    p.add_argument("--model", default="resnet18", help="resnet18, resnet50, resnet20, small-cnn")
    p.add_argument("--checkpoint", help="state dict loaded with torch.load(weights_only=True); random weights otherwise")
    p.add_argument("--input-size", type=_positive, default=16, help="input height = width (default 16)")
    p.add_argument("--in-channels", type=int, choices=(1, 3), default=3)
    p.add_argument("--num-classes", type=_positive, default=10)
    p.add_argument("--images", type=_positive, default=1, help="number of (random) test images")
    p.add_argument("--mode", choices=("encrypted", "plain", "count"), default="encrypted",
                   help="encrypted: SEAL; plain: cleartext backend; count: cleartext, counts only")
    p.add_argument("--protocol", choices=("hybrid", "non-interactive"), default="hybrid",
                   help="hybrid: server runs linear layers, client refreshes at each ReLU (simulated); "
                        "non-interactive: everything encrypted, square activations (small-cnn-square)")
    p.add_argument("--prune-diagonals", type=_fraction, default=0.0,
                   help="zero this random fraction of every conv's diagonal groups (synthetic sparsity)")
    p.add_argument("--stream", action="store_true",
                   help="encode each layer's plaintexts just before it runs (memory of one layer, not the model)")
    p.add_argument("--poly-modulus-degree", type=int, default=None)
    p.add_argument("--toy-params", action="store_true", help="allow parameters below 128-bit security (testing only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("report", help="fit the cost model to benchmark JSON and write results/report.md")
    p.add_argument("files", nargs="*", help="pytest-benchmark JSON (default: the newest results/benchmarks/bench-*-full.json, "
                        "else the newest bench-*.json)")
    p.add_argument("--out", default=str(RESULTS), help="folder for report.md, report.csv, cost_model.json, plots")
    p.add_argument("--pruning-csv", action="append", metavar="CSV",
                   help="pruning summary for the Pareto plot; repeat for several "
                        "(default: results/pruning_summary.csv)")
    readme = p.add_mutually_exclusive_group()
    readme.add_argument("--readme", metavar="PATH",
                        help="README whose block between <!-- results:begin --> and <!-- results:end --> is "
                             "rewritten (default: ./README.md when it has the markers)")
    readme.add_argument("--no-readme", action="store_true", help="leave every README alone")
    p.set_defaults(func=cmd_report)

    from pruning.cli import add_parsers

    add_parsers(sub, _positive, _fraction)
    return parser


def cmd_infer(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch
    from tqdm import tqdm

    from models import build_model

    from .infer import load_checkpoint, network_params, prepare_inference, run_inference
    from .provenance import provenance

    torch.manual_seed(args.seed)
    model = build_model(args.model, args.in_channels, args.num_classes)
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint)
    model.eval()
    shape = (args.in_channels, args.input_size, args.input_size)
    if args.prune_diagonals:
        if args.protocol != "hybrid":
            raise ValueError("--prune-diagonals uses the hybrid protocol's per-layer packing")
        from .experiment import prune_model_diagonals

        params = network_params(shape, args.poly_modulus_degree, args.toy_params)
        prune_model_diagonals(model, shape, params, args.prune_diagonals, args.seed)
    images = np.random.default_rng(args.seed).uniform(-1.0, 1.0, (args.images,) + shape)
    log.info("lowering %s, generating keys and encoding plaintexts", args.model)
    prep = prepare_inference(model, shape, None, args.mode, args.stream, args.seed, args.protocol,
                             args.poly_modulus_degree, args.toy_params)
    with tqdm(total=len(prep.plan.layers) * args.images, desc=f"{args.model} ({args.mode})", unit="layer",
              file=sys.stderr, disable=None) as bar:
        result = run_inference(prep, model, images, progress=lambda name: (bar.set_postfix_str(name), bar.update()))
    result.update(model=args.model, input_size=args.input_size, in_channels=args.in_channels, mode=args.mode,
                  prune_diagonals=args.prune_diagonals,
                  seed=args.seed, checkpoint=args.checkpoint, inputs="random uniform [-1, 1]",
                  refresh="simulated in-process (decrypt, ReLU, re-encrypt)" if args.protocol == "hybrid" else "none",
                  provenance=provenance())
    result["_table"] = "infer"
    return result


def _infer_table(r: dict) -> str:
    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    lines = [f"{'layer':<28} {'kind':<6} {'rot pred':>8} {'rot':>6} {'ksw':>6} {'pmuls':>7} {'server s':>9} {'floor s':>8}"]
    for layer in r["layers"]:
        lines.append(f"{layer['layer']:<28} {layer['kind']:<6} {layer['predicted_rotations']:>8} {layer['rotations']:>6} "
                     f"{layer['key_switches']:>6} {layer['pmuls']:>7} {layer['server_s']:>9.3f} {fmt(layer['floor_s'], '>8.3f')}")
    lines += [
        "",
        f"model            {r['model']} {r['in_channels']}x{r['input_size']}x{r['input_size']}, {r['images']} image(s), "
        f"{r['mode']}, {r['protocol']} (N={r['poly_modulus_degree']}, moduli {r['coeff_mod_bit_sizes']})",
        f"rotations        {r['rotations']} counted, {r['predicted_rotations']} predicted, {r['key_switches']} key switches",
        f"multiplications  {r['pmuls']} plaintext, {r['cmuls']} ciphertext, {r['adds']} additions, {r['rescales']} rescales",
        f"server time      {r['server_s']:.3f} s per image (floor {fmt(r['floor_s'], '.3f')} s)",
        f"client time      {r['client_s']:.3f} s per image (refresh: {r['refresh']})",
        f"traffic          {r['bytes_client_to_server'] / 1e6:.2f} MB client->server, "
        f"{r['bytes_server_to_client'] / 1e6:.2f} MB server->client per image",
        f"galois keys      {r['galois_keys']} ({r['galois_key_bytes'] / 1e6:.1f} MB, sent once)",
        f"agreement        top-1 {fmt(r['top1_agreement'], '.2f')}, max abs logit error {fmt(r['max_abs_error'], '.2e')}",
        f"peak RSS         {r['peak_rss_bytes'] / 2**30:.2f} GiB",
    ]
    return "\n".join(lines)


RESULTS = Path(__file__).resolve().parent.parent / "results"


def cmd_report(args: argparse.Namespace) -> dict:
    from .report import (
        default_benchmark_files,
        read_readme_block,
        render_readme_block,
        update_readme,
        write_report,
    )

    readme = None
    if args.readme:
        readme = Path(args.readme)
        read_readme_block(readme)  # a README without the markers fails before any result file is rewritten
    elif not args.no_readme:
        try:
            read_readme_block("README.md")
            readme = Path("README.md")
        except ValueError as e:
            log.warning("README not updated: %s", e)
    files = args.files or default_benchmark_files(RESULTS / "benchmarks")
    model = write_report(files, args.out, args.pruning_csv or [RESULTS / "pruning_summary.csv"])
    if readme is not None:
        update_readme(readme, render_readme_block(model))
    return {k: model[k] for k in ("r2_rotation_only", "r2_full", "max_rel_err_rotation_only", "max_rel_err_full",
                                  "pruning_ratios", "method_ratios")} | {
        "report": str(Path(args.out) / "report.md"), "readme": str(readme) if readme is not None else None}


def cmd_layer(args: argparse.Namespace) -> dict:
    import numpy as np
    from tqdm import tqdm

    from .experiment import (
        layer_params,
        load_weights,
        measure_layer,
        prepare_layer,
        random_conv_weights,
    )
    from .provenance import provenance

    k = args.kernel
    if k % 2 == 0:
        raise ValueError(f"layer conv ({args.c_in}->{args.c_out}, {args.hw}x{args.hw}): kernel size must be odd, got {k}")
    params = layer_params(args.hw, args.poly_modulus_degree, args.toy_params)
    shape = (args.c_out, args.c_in, k, k)
    if args.weights:
        if args.prune_diagonals or args.prune_positions:
            raise ValueError("--prune-diagonals/--prune-positions apply to random weights, not to --weights")
        weight = load_weights(args.weights, shape)
    else:
        weight = random_conv_weights(args.c_out, args.c_in, k, params.slots, args.hw, args.hw,
                                     args.prune_diagonals, args.prune_positions, args.seed)
    bias = np.random.default_rng(args.seed + 2).normal(0, 0.1, args.c_out) if args.bias else None

    with tqdm(total=3, desc="layer", unit="step", file=sys.stderr, disable=None) as bar:
        bar.set_postfix_str("keys and encoding")
        if args.mode == "encrypted":
            from .seal_backend import SealBackend

            backend = SealBackend(params, seed=args.seed)
        else:
            from .plain_backend import PlainBackend

            backend = PlainBackend(params)
        prep = prepare_layer(weight, bias, args.hw, args.hw, args.stride, backend, seed=args.seed)
        bar.update()
        bar.set_postfix_str("run")
        result = measure_layer(prep, unit=None)
        bar.update()
        bar.update()
    result.update(mode=args.mode, seed=args.seed, prune_diagonals=args.prune_diagonals,
                  prune_positions=args.prune_positions, weights=args.weights, provenance=provenance())
    return result


def _table(result: dict) -> str:
    rows = [
        ("layer", f"{result['c_in']}->{result['c_out']}, {result['kernel']}x{result['kernel']}, "
                  f"stride {result['stride']}, {result['hw']}x{result['hw']}"),
        ("mode", f"{result['mode']} (N={result['poly_modulus_degree']}, moduli {result['coeff_mod_bit_sizes']})"),
        ("packing", f"c_n={result['c_n']}, P={result['channel_slots']}, n_in={result['n_in']}, n_out={result['n_out']}"),
        ("rotations", f"{result['rotations']} counted, {result['predicted_rotations']} predicted, "
                      f"{result['dense_formula_rotations']} dense formula"),
        ("key switches", str(result["key_switches"])),
        ("galois keys", f"{result['galois_keys']} ({result['galois_key_bytes'] / 1e6:.2f} MB)"),
        ("plaintext mults", f"{result['pmuls']}"),
        ("additions", f"{result['adds']} ct-ct, {result['plain_adds']} ct-pt"),
        ("rescales", str(result["rescales"])),
        ("latency", f"{result['latency_s']:.4f} s"),
        ("floor", f"{result['floor_s']:.4f} s (x{result['latency_over_floor'] or 0:.3f})"),
        ("max abs error", f"{result['max_abs_error']:.3e} vs torch conv2d"),
        ("peak RSS", f"{result['peak_rss_bytes'] / 2**20:.0f} MiB"),
    ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def _summary(result: dict) -> str:
    return json.dumps(result, indent=2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        result = args.func(args)
    except (ValueError, PermissionError) as e:
        print(f"artemis {args.command}: error: {e}", file=sys.stderr)
        return 2
    kind = result.pop("_table", None)
    table = _infer_table if kind == "infer" else _table if "latency_s" in result else _summary
    if args.command == "demo":
        return 0
    if getattr(args, "json", False) or args.command in ("train", "prune", "report"):
        print(json.dumps(result))
    else:
        print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
