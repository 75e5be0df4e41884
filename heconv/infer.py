"""Encrypted inference of a whole model: lower, plan, key, compile, run, compare with torch.

`prepare_inference` does the set-up (lowering, Galois keys, encoding unless streaming);
`run_inference` runs images through the hybrid protocol and gathers the figures
`artemis infer` prints and the model benchmarks record.
"""

from __future__ import annotations

import copy
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .cost import UnitCosts, floor_seconds, measure_unit_costs
from .geometry import next_pow2
from .network import (
    Client,
    Network,
    NetworkPlan,
    NetworkRun,
    Server,
    levels_needed,
    plan_network,
    run_network,
)
from .params import SECURE_DEGREES, CKKSParams, ckks_params, max_secure_depth


def safe_torch_load(path: str | Path, what: str = "checkpoint"):
    """torch.load(path, weights_only=True), with a ValueError that names the file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a bad file
        raise ValueError(f"{what} {path}: cannot be read with weights_only=True ({e})") from None


def load_checkpoint(model, path: str | Path) -> None:
    """Load a state dict (or {'state_dict': ...}) with torch.load(weights_only=True)."""
    obj = safe_torch_load(path)
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"checkpoint {path}: expected a state dict, got {type(obj).__name__}")
    try:
        model.load_state_dict(obj)
    except RuntimeError as e:
        raise ValueError(f"checkpoint {path} does not fit the model: {str(e).splitlines()[0]}") from None


def network_params(input_shape: tuple[int, int, int], poly_modulus_degree: int | None = None, toy: bool = False) -> CKKSParams:
    """One level per linear layer (hybrid protocol): the smallest secure N whose slots hold a channel."""
    _, h, w = input_shape
    return ckks_params(depth=1, poly_modulus_degree=poly_modulus_degree, min_slots=next_pow2(h * w), allow_insecure=toy)


@dataclass
class Prepared:
    net: Network
    plan: NetworkPlan
    client: Client
    server: Server
    galois_key_bytes: int
    keygen_seconds: float
    compile_seconds: float


def prepare_inference(model, input_shape: tuple[int, int, int], params: CKKSParams | None = None,
                      mode: str = "encrypted", stream: bool = False, seed: int = 0, protocol: str = "hybrid",
                      poly_modulus_degree: int | None = None, toy: bool = False) -> Prepared:
    """Lower the model, plan it, make the client's keys and the server's plaintexts.

    Without `params`: one level (hybrid) or as many levels as the network needs
    (non-interactive), on the smallest secure N that fits. A network deeper than the
    given parameters fails here, before anything is encrypted.
    """
    from .lower import lower_model

    net = lower_model(model, input_shape)
    if params is None:
        depth = levels_needed(net) if protocol == "non-interactive" else 1
        if poly_modulus_degree is not None and not toy and poly_modulus_degree in SECURE_DEGREES:
            most = max_secure_depth(poly_modulus_degree)
            if depth > most:
                raise ValueError(
                    f"the network needs {depth} multiplicative levels, but N={poly_modulus_degree} holds at most "
                    f"{most} at 128-bit security; use N=16384 (7 levels) or 32768 (19 levels)"
                )
        _, h, w = input_shape
        params = ckks_params(depth=depth, poly_modulus_degree=poly_modulus_degree, min_slots=next_pow2(h * w),
                             allow_insecure=toy)
    plan = plan_network(net, params, protocol)
    if mode == "encrypted":
        from .seal_backend import SealBackend

        backend = SealBackend(params, seed=seed)
    elif mode in ("plain", "count"):
        from .plain_backend import PlainBackend

        backend = PlainBackend(params, track_values=mode == "plain")
    else:
        raise ValueError(f"mode must be 'encrypted', 'plain' or 'count', got {mode!r}")
    client = Client(backend)
    t = time.perf_counter()
    key_bytes = client.setup_keys(plan)
    keygen = time.perf_counter() - t
    t = time.perf_counter()
    server = Server(backend.public_view(), net, plan, stream=stream)
    return Prepared(net, plan, client, server, key_bytes, keygen, time.perf_counter() - t)


def run_inference(prep: Prepared, model, images: np.ndarray, unit: UnitCosts | None = None,
                  progress: Callable[[str], None] | None = None) -> dict:
    """Run every image; return per-layer and total figures (per image where it says so)."""
    import torch

    runs: list[NetworkRun] = []
    for x in images:
        runs.append(run_network(prep.plan, prep.client, prep.server, x, progress))
    with torch.no_grad():  # a float64 copy: the caller's model keeps its dtype
        ref = copy.deepcopy(model).double()(torch.from_numpy(np.asarray(images, dtype=np.float64))).numpy()
    logits = np.stack([r.logits for r in runs])
    last = runs[-1]
    level_of = {r.name: r.level for r in prep.plan.layers}
    units: dict[int, UnitCosts] = {}
    if prep.client.backend.tracks_values:
        # Unit costs at every level a layer runs at: deeper levels have fewer primes and cost less.
        depth = prep.plan.params.depth
        for lv in sorted({min(level_of[r.name], depth - 1) for r in last.layers}):
            units[lv] = unit if (unit is not None and lv == 0) else measure_unit_costs(prep.server.backend, level=lv)
    layers = []
    for i, lr in enumerate(last.layers):
        sec = float(np.mean([r.layers[i].seconds for r in runs]))
        u = units.get(min(level_of[lr.name], prep.plan.params.depth - 1))
        layers.append({
            "layer": lr.name, "kind": lr.kind, "level": level_of[lr.name],
            "predicted_rotations": lr.predicted.rotations, "rotations": lr.counts.rotations,
            "key_switches": lr.counts.key_switches, "pmuls": lr.counts.pmuls, "adds": lr.counts.adds,
            "server_s": sec, "floor_s": floor_seconds(lr.counts, u) if u else None,
            "counts_match_plan": all(r.layers[i].counts == lr.predicted for r in runs),
        })
    counts = last.counts
    tracked = prep.client.backend.tracks_values
    return {
        "images": len(runs),
        "layers": layers,
        "rotations": counts.rotations,
        "predicted_rotations": prep.plan.predicted.rotations,
        "key_switches": counts.key_switches,
        "pmuls": counts.pmuls,
        "adds": counts.adds,
        "rescales": counts.rescales,
        "counts_match_plan": all(layer["counts_match_plan"] for layer in layers),
        "galois_keys": len(prep.plan.galois_steps),
        "galois_key_bytes": prep.galois_key_bytes,
        "server_s": float(np.mean([r.server_seconds for r in runs])),
        "floor_s": sum(layer["floor_s"] for layer in layers) if units else None,
        "client_s": float(np.mean([r.client_seconds for r in runs])),
        "bytes_client_to_server": int(np.mean([r.bytes_client_to_server for r in runs])),
        "bytes_server_to_client": int(np.mean([r.bytes_server_to_client for r in runs])),
        "keygen_s": prep.keygen_seconds,
        "encode_s": prep.server.encode_seconds,
        "top1_agreement": float(np.mean(logits.argmax(1) == ref.argmax(1))) if tracked else None,
        "max_abs_error": float(np.abs(logits - ref).max()) if tracked else None,
        "predictions": logits.argmax(1).tolist() if tracked else None,
        "reference_predictions": ref.argmax(1).tolist(),
        "unit_costs_s": {str(lv): u.to_dict() for lv, u in units.items()} or None,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "poly_modulus_degree": prep.plan.params.poly_modulus_degree,
        "coeff_mod_bit_sizes": list(prep.plan.params.coeff_mod_bit_sizes),
        "stream": prep.server.stream,
        "protocol": prep.plan.protocol,
        "cmuls": counts.cmuls,
    }
