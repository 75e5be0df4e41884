"""`artemis infer`: a whole model through the hybrid (or non-interactive) HE protocol.

With a checkpoint written by `artemis train`/`prune`, the model, input size, channels
and data set come from its metadata (options only override them, with a warning), and
the images are real test images of that data set, scored against their labels. Without
one (or with a plain state dict), the images are random and labelled so.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from heconv.algorithms import ALGORITHMS, algorithm_names, get_algorithm
from heconv.errors import InputError
from heconv.traffic import UPLOADS

from ..harness.bandwidth import show_bandwidth
from .common import (
    MAX_CLASSES,
    MAX_IMAGES,
    MAX_INPUT_SIZE,
    add_algorithm_option,
    add_bandwidth_options,
    add_precision_options,
    add_schedule_option,
    add_workers_option,
    at_most,
    fraction,
    positive_float,
    resolve_workers,
    seed,
    tolerance_verdict,
)

log = logging.getLogger("artemis")

# option -> checkpoint meta key, with the default used when neither names it
FROM_META = {"model": ("model", "resnet18"), "input_size": ("input_size", 16), "in_channels": ("in_channels", 3),
             "num_classes": ("num_classes", 10)}


def add_parser(sub) -> None:
    p = sub.add_parser("infer", help="run a whole model through the hybrid HE protocol")
    p.add_argument("--model", default=None, help="resnet18 (default), resnet50, resnet20, small-cnn, small-cnn-square")
    p.add_argument("--checkpoint", help="checkpoint of 'artemis train'/'prune' (its meta gives model, size, data set) "
                                        "or a plain state dict; read with torch.load(weights_only=True)")
    p.add_argument("--input-size", type=at_most(MAX_INPUT_SIZE), default=None, help="input height = width (default 16)")
    p.add_argument("--in-channels", type=int, choices=(1, 3), default=None, help="default 3")
    p.add_argument("--num-classes", type=at_most(MAX_CLASSES), default=None, help="default 10")
    p.add_argument("--data-dir", help="folder with the checkpoint's data set (default: where it was found)")
    p.add_argument("--images", type=at_most(MAX_IMAGES), default=1, help="number of test images")
    p.add_argument("--mode", choices=("encrypted", "plain", "count"), default="encrypted",
                   help="encrypted: SEAL; plain: cleartext backend; count: cleartext, counts only")
    p.add_argument("--protocol", choices=("hybrid", "non-interactive"), default="hybrid",
                   help="hybrid: server runs linear layers, client refreshes at each ReLU (simulated); "
                        "non-interactive: everything encrypted, square activations (small-cnn-square)")
    add_schedule_option(p)
    add_workers_option(p)
    add_algorithm_option(p, choose=True)
    p.add_argument("--prune-diagonals", type=fraction, default=0.0,
                   help="zero this random fraction of every conv's diagonal groups (synthetic sparsity)")
    p.add_argument("--stream", action="store_true",
                   help="encode each layer's plaintexts just before it runs (memory of one layer, not the model)")
    p.add_argument("--poly-modulus-degree", type=int, default=None)
    p.add_argument("--toy-params", action="store_true", help="allow parameters below 128-bit security (testing only)")
    p.add_argument("--upload", choices=tuple(UPLOADS), default="seeded",
                   help="how the client encrypts what it sends: seeded (default: with its secret key, SEAL's seeded "
                        "form, about half the bytes) or public (with the public key, both polynomials)")
    add_bandwidth_options(p)
    p.add_argument("--value-bound", type=positive_float, default=None, metavar="B",
                   help="hybrid protocol: the largest |value| the client uploads (the image and every refreshed "
                        "activation). A slot conv whose output then fits runs at the chain's last level with no "
                        "rescale: about half the work per rotation and multiplication, errors about 1e-4 to 1e-3 "
                        "where level 0 gives about 1e-7. The harness's bound check (it knows the server's weights) "
                        "refuses, before each stretch from an upload to the next refresh is encrypted, a value whose "
                        "worst case would not fit (default: none, every slot conv at level 0)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_precision_options(p, 1e-2)
    p.set_defaults(func=run, render=render)


def _settings(args: argparse.Namespace, meta: dict) -> dict:
    """Each setting from the option, else the checkpoint's meta, else the default."""
    out = {}
    for opt, (key, default) in FROM_META.items():
        given, stored = getattr(args, opt), meta.get(key)
        if given is not None and stored is not None and given != stored:
            log.warning("--%s %s overrides the checkpoint's %s = %s", opt.replace("_", "-"), given, key, stored)
        out[opt] = given if given is not None else stored if stored is not None else default
    return out


def _images(args, meta: dict, s: dict) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Real test images of the checkpoint's data set; random ones (labelled so) only when the
    checkpoint names none. Never random in place of real ones: a data set that is not here as
    trained, or too few test images, is an error that says which."""
    shape = (s["in_channels"], s["input_size"], s["input_size"])
    if meta.get("dataset"):
        from pruning.data import load_dataset

        data = load_dataset(meta["dataset"], s["input_size"], args.data_dir, subset=meta.get("subset") or None,
                            seed=int(meta.get("seed", 0)))
        if data.name != meta["dataset"]:
            raise InputError(f"checkpoint {args.checkpoint}: its data set {meta['dataset']} is not on this machine "
                             f"({data.note or 'loaded ' + data.name}); pass --data-dir")
        if data.in_channels != shape[0]:
            raise InputError(f"--in-channels {shape[0]}: the checkpoint's data set {data.name} has "
                             f"{data.in_channels} channel(s)")
        if len(data.test.y) < args.images:
            raise InputError(f"--images {args.images}: the checkpoint's {data.name} test split holds "
                             f"{len(data.test.y)} images" + (f" (subset {meta['subset']})" if meta.get("subset")
                                                             else "") + f"; ask for at most {len(data.test.y)}")
        return (data.test.x[: args.images].astype(np.float64), data.test.y[: args.images],
                f"{data.name} test images 0-{args.images - 1} ({data.source})")
    x = np.random.default_rng(args.seed).uniform(-1.0, 1.0, (args.images,) + shape)
    return x, None, "random uniform [-1, 1] (no labels)"


def run(args: argparse.Namespace) -> dict:
    import torch

    from heconv.params import params_for_input
    from models import build_model
    from models.checkpoint import check_meta, load_state, safe_torch_load
    from pruning.synthetic import prune_model_diagonals

    from ..harness.model import measure_model, prepare_model
    from ..provenance import provenance
    from .common import bar

    meta, state = {}, None
    if args.checkpoint:
        obj = safe_torch_load(args.checkpoint)
        if isinstance(obj, dict) and "state_dict" in obj:
            state, meta = obj["state_dict"], dict(check_meta(obj.get("meta") or {}, args.checkpoint))
        elif isinstance(obj, dict):
            state = obj
        else:
            raise InputError(f"checkpoint {args.checkpoint}: expected a state dict, got {type(obj).__name__}")
    s = _settings(args, meta)
    torch.manual_seed(args.seed)
    model = build_model(s["model"], s["in_channels"], s["num_classes"])
    if state is not None:
        load_state(model, state, args.checkpoint)
    model.eval()
    shape = (s["in_channels"], s["input_size"], s["input_size"])
    if args.prune_diagonals:
        if args.protocol != "hybrid":
            raise InputError("--prune-diagonals uses the hybrid protocol's per-layer packing")
        params = params_for_input(shape[1], shape[2], args.poly_modulus_degree, allow_insecure=args.toy_params,
                                  scale_bits=args.scale_bits)
        prune_model_diagonals(model, shape, params, args.prune_diagonals, args.seed)
    images, labels, source = _images(args, meta, s)
    log.info("lowering %s, generating keys and encoding plaintexts", s["model"])
    # No --algorithm and --schedule auto: every conv by the algorithm of the lowest predicted time.
    choose = args.algorithm is None and args.schedule == "auto"
    args.algorithm = args.algorithm or algorithm_names()[0]
    alg = get_algorithm(args.algorithm)
    workers = resolve_workers(args)
    in_process = (args.stream and args.workers is None) or not alg.parallel
    if in_process:
        workers = 1  # streaming encodes after the fork; an algorithm that cannot split a conv runs in-process
    if args.compare_slot and not alg.changes_traffic:
        raise InputError(f"--compare-slot applies to an algorithm that changes the protocol's traffic, not to "
                         f"--algorithm {args.algorithm}")

    def measure(algorithm: str, schedule: str, workers: int):
        prep = prepare_model(model, shape, None, args.mode, args.stream, args.seed, args.protocol,
                             args.poly_modulus_degree, args.toy_params, args.scale_bits, schedule, workers, algorithm,
                             args.upload, args.bandwidth, args.chunking, choose_algorithm=choose,
                             value_bound=args.value_bound)
        try:
            with bar(len(prep.plan.layers) * args.images, f"{s['model']} ({args.mode}, {algorithm})") as b:
                return prep, measure_model(prep, model, images, labels=labels, check_bounds=not args.no_bound_check,
                                           progress=lambda name: (b.set_postfix_str(name), b.update()),
                                           bandwidth_bps=args.bandwidth)
        finally:
            prep.close()

    prep, record = measure(args.algorithm, args.schedule, workers)
    result = record.to_dict()
    if args.compare_slot:
        del prep.server  # the coefficient plaintexts go before the slot engine encodes its own
        _, slot = measure("slot", "output-rotation", 1)
        result.update(slot_or_server_s=slot.server_s, slot_or_server_cpu_s=slot.server_cpu_s,
                      slot_or_rotations=slot.rotations, slot_or_pmuls=slot.pmuls,
                      slot_or_bytes_client_to_server=slot.bytes_client_to_server,
                      slot_or_bytes_server_to_client=slot.bytes_server_to_client,
                      slot_or_top1_agreement=slot.top1_agreement, slot_or_max_abs_error=slot.max_abs_error,
                      slot_or_over_server_s=slot.server_s / record.server_s,
                      slot_or_over_unmasked_server_s=slot.server_s / (record.server_s - record.mask_s))
    from heconv.network.actions import ServerConv

    recomputed = {a.name: a.parallel.extra_rotations for a in prep.plan.actions
                  if isinstance(a, ServerConv) and a.parallel is not None}
    for layer in result["layers"]:
        layer["recomputed_rotations"] = recomputed.get(layer["layer"], 0)
    result.update(recomputed_rotations=sum(recomputed.values()), workers_requested=workers,
                  workers_chosen=f"--stream or the {args.algorithm} algorithm runs in-process" if in_process
                  else getattr(args, "workers_chosen", None))
    if choose:
        ran = [layer["algorithm"] for layer in result["layers"] if layer["kind"] == "conv"]
        result.update(algorithm="auto", algorithms={n: ran.count(n) for n in dict.fromkeys(ran)})
    result.update(model=s["model"], input_size=s["input_size"], in_channels=s["in_channels"], mode=args.mode,
                  schedule=args.schedule if alg.takes_schedule else args.algorithm,
                  prune_diagonals=args.prune_diagonals, seed=args.seed, checkpoint=args.checkpoint,
                  checkpoint_meta=meta or None, inputs=source, insecure=prep.plan.params.allow_insecure,
                  refresh="simulated in-process (decrypt, ReLU, re-encrypt)" if args.protocol == "hybrid" else "none",
                  scale_bits=prep.plan.params.scale_bits, provenance=provenance())
    result.update(tolerance_verdict(result, "max_abs_error", "max_abs_reference", args.tolerance, "top1_agreement"))
    return result


def _algorithm_row(r: dict) -> str:
    """The algorithm, and what auto chose per conv, the masking (time and what it hides, heconv.coeff_mask)
    or the slot comparison."""
    row = r.get("algorithm", "slot")
    if r.get("algorithms"):
        ran = ", ".join(f"{n} {k} conv(s)" for n, k in r["algorithms"].items())
        row += f" (per conv the lowest predicted time: {ran}; why: 'reason' per layer in --json)"
    alg = ALGORITHMS.get(r.get("algorithm"))
    if alg is not None and alg.changes_traffic:  # masked outputs
        bits = r.get("hiding_bits_per_coefficient")
        hidden = "c1 not re-randomised" if bits is None else f"unread coefficients withheld, {bits:.0f} bits"
        row += f" (masks {r['mask_s']:.3f} s per image, inside the server time; {hidden})"
    if "slot_or_server_s" in r:
        row += (f"; slot output-rotation in this process: {r['slot_or_server_s']:.3f} s per image, "
                f"x{r['slot_or_over_server_s']:.2f} the coefficient server time, "
                f"{r['slot_or_bytes_client_to_server'] / 1e6:.1f} MB up, "
                f"{r['slot_or_bytes_server_to_client'] / 1e6:.1f} MB down")
    return row


def _predicted(r: dict) -> list[str]:
    """The plan's prediction of the phases, and what the coefficient chunking minimised."""
    p = r.get("predicted_phases")
    if not p:
        return []
    return [f"predicted        {r['predicted_end_to_end_s']:.3f} s per image at {show_bandwidth(r['bandwidth_bps'])}"
            f" = client {p['client_s']:.3f} + server {p['server_s']:.3f} (floor) + server I/O {p['server_io_s']:.3f} "
            f"+ transfer; {p['upload_bytes'] / 1e6:.2f} MB up ({p['ciphertexts_in']}), {p['download_bytes'] / 1e6:.2f}"
            f" MB down ({p['ciphertexts_out']}), SEAL's words uncompressed"
            + (f"; chunking: {r['chunking_objective']}" if r.get("chunking_objective") else "")]


def render(r: dict) -> str:
    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    lines = [f"{'layer':<28} {'kind':<6} {'schedule':<15} {'wk':>2} {'rot pred':>8} {'rot':>6} {'ksw':>6} "
             f"{'pmuls':>7} {'server s':>9} {'floor s':>8}"]
    for layer in r["layers"]:
        lines.append(f"{layer['layer']:<28} {layer['kind']:<6} {layer.get('schedule') or '-':<15} "
                     f"{layer.get('workers', 1):>2} {layer['predicted_rotations']:>8} {layer['rotations']:>6} "
                     f"{layer['key_switches']:>6} {layer['pmuls']:>7} {layer['server_s']:>9.3f} "
                     f"{fmt(layer['floor_s'], '>8.3f')}")
    accuracy = ("no labels (random images)" if r["reference_accuracy"] is None else
                f"encrypted {fmt(r['accuracy'], '.2%')}, PyTorch {r['reference_accuracy']:.2%} "
                f"on {r['images']} image(s)")
    lines += [
        "",
        f"model            {r['model']} {r['in_channels']}x{r['input_size']}x{r['input_size']}, "
        f"{r['images']} image(s), "
        f"{r['mode']}, {r['protocol']} (N={r['poly_modulus_degree']}, moduli {r['coeff_mod_bit_sizes']})"
        + (" INSECURE toy parameters" if r.get("insecure") else ""),
        f"inputs           {r['inputs']}",
        f"schedule         {r['schedule']} (per conv in the table above)",
        f"rotations        {r['rotations']} counted = {r['rotations'] - r.get('recomputed_rotations', 0)} the plan's "
        f"own + {r.get('recomputed_rotations', 0)} recomputed by workers; {r['predicted_rotations']} predicted, "
        f"{r['key_switches']} key switches",
        f"multiplications  {r['pmuls']} plaintext, {r['cmuls']} ciphertext, {r['adds']} additions, "
        f"{r['rescales']} rescales",
        f"algorithm        {_algorithm_row(r)}",
        f"server time      {r['server_s']:.3f} s per image (floor {fmt(r['floor_s'], '.3f')} s: counts x unit costs, "
        f"no engine overhead" + (")" if r.get("workers", 1) == 1 else
                                 f"; per conv the larger worker's, plus transfer; {fmt(r['serial_floor_s'], '.3f')} s "
                                 f"on one core)"),
        f"workers          {r.get('workers', 1)} per conv"
        + (f" ({r['workers_chosen']})" if r.get("workers_chosen") else "")
        + (" (in-process)" if r.get("workers", 1) == 1 else
                                                               f", forked after compile; transfer "
                                                               f"{r['transfer_bytes'] / 1e6:.1f} MB, "
                                                               f"{r['transfer_s']:.3f} s per image"),
        f"client time      {r['client_s']:.3f} s per image = {r['client_upload_s']:.3f} s encoding and encrypting "
        f"({r['upload']} uploads, every re-encryption included) + {r['client_refresh_s']:.3f} s loading, "
        f"decrypting and refreshing (refresh: {r['refresh']})",
        f"server I/O       {r['server_io_s']:.3f} s per image (loading the uploads, serializing the results)",
        f"traffic          {r['upload_bytes'] / 1e6:.2f} MB up ({r['ciphertexts_in']} ciphertexts, {r['upload']}), "
        f"{r['download_bytes'] / 1e6:.2f} MB down ({r['ciphertexts_out']}) per image",
        f"end to end       {r['end_to_end_s']:.3f} s per image at {show_bandwidth(r['bandwidth_bps'])} = client "
        f"{r['client_s']:.3f} + server {r['server_s']:.3f} + server I/O {r['server_io_s']:.3f} + transfer "
        f"{r['network_s']:.3f} s",
        *_predicted(r),
        f"galois keys      {r['galois_keys']} ({r['galois_key_bytes'] / 1e6:.1f} MB, sent once)",
        f"agreement        top-1 {fmt(r['top1_agreement'], '.2f')}, "
        f"max abs logit error {fmt(r['max_abs_error'], '.2e')}"
        + ("" if r["within_tolerance"] is None else
           f" (limit {r['error_limit']:.1e} and top-1 1.00: {'ok' if r['within_tolerance'] else 'EXCEEDED'})"),
        f"accuracy         {accuracy}",
        f"peak RSS         {r['peak_rss_bytes'] / 2**30:.2f} GiB",
    ]
    return "\n".join(lines)
