"""End-to-end encrypted ResNet-20 and ResNet18 at 16x16, N = 8192, hybrid protocol.

Two kinds of case: real pruned models (dense, hunter, artemis-diagonal checkpoints from
`--pruned DIR`, default results/demo/checkpoints), run on a test image of their own data
set; and random-weight models with a synthetic fraction of diagonals zeroed (0/50/90%).

Set-up (lowering, Galois keys, encoding every plaintext) is outside the timed part;
the timed part is one image through `run_network` (server evaluation plus the
simulated client refresh). extra_info separates server time, client time, traffic
and the floor (server counts x unit costs measured in this process).
"""

import resource

import numpy as np
import pytest
import torch

import models
from bench.conftest import CHECKPOINT_METHODS, no_checkpoint_param, pruned_checkpoints
from heconv.cost import floor_seconds
from heconv.experiment import prune_model_diagonals
from heconv.infer import network_params, prepare_inference
from heconv.network import run_network

FLOOR_TARGET = 1.15
MEMORY_TARGET = 12 * 2**30
CASES = [("resnet20", 0.0, 3), ("resnet20", 0.5, 3), ("resnet20", 0.9, 3),
         ("resnet18", 0.0, 1), ("resnet18", 0.5, 1), ("resnet18", 0.9, 1)]
QUICK = {("resnet20", 0.0), ("resnet20", 0.9)}


def _cases():
    for name, frac, rounds in CASES:
        marks = [pytest.mark.quick] if (name, frac) in QUICK else []
        yield pytest.param(name, frac, rounds, id=f"{name}-diag{int(frac * 100)}", marks=marks)


@pytest.mark.parametrize("name, prune_diagonals, rounds", list(_cases()))
def test_model_end_to_end(benchmark, unit_costs_8192, name, prune_diagonals, rounds):
    seed, shape = 0, (3, 16, 16)
    torch.manual_seed(seed)
    model = models.build_model(name, 3, 10).eval()
    params = network_params(shape)
    if prune_diagonals:
        prune_model_diagonals(model, shape, params, prune_diagonals, seed)
    x = np.random.default_rng(seed).uniform(-1, 1, shape)
    _bench_model(benchmark, unit_costs_8192, model, shape, params, x, rounds,
                 {"model": name, "method": "synthetic", "weights": "synthetic", "prune_diagonals": prune_diagonals,
                  "input_source": "uniform random in [-1, 1]"}, seed)


def pytest_generate_tests(metafunc):
    if metafunc.function.__name__ != "test_checkpoint_model":
        return
    cases = [pytest.param(str(path), marks=[pytest.mark.quick] if (model == "resnet20" and method != "hunter") else [],
                          id=f"{model}-{method}")
             for (model, method), path in pruned_checkpoints(metafunc.config, CHECKPOINT_METHODS).items()]
    metafunc.parametrize("checkpoint", cases or [no_checkpoint_param(metafunc.config, 1)])


def test_checkpoint_model(benchmark, unit_costs_8192, checkpoint):
    from pruning.data import load_dataset
    from pruning.export import load_checkpoint_model

    model, meta = load_checkpoint_model(checkpoint)
    shape = (meta["in_channels"], meta["input_size"], meta["input_size"])
    params = network_params(shape, meta.get("poly_modulus_degree"))
    seed = int(meta.get("seed", 0))
    data = load_dataset(meta["dataset"], meta["input_size"], subset=meta.get("subset") or None, seed=seed)
    if data.name != meta["dataset"] or data.in_channels != shape[0]:
        x, source = np.random.default_rng(seed).uniform(-1, 1, shape), "uniform random in [-1, 1]"
    else:
        x, source = data.test.x[0].astype(np.float64), f"{data.name} test image 0"
    rounds = 3 if meta["model"] == "resnet20" else 1
    _bench_model(benchmark, unit_costs_8192, model, shape, params, x, rounds,
                 {"model": meta["model"], "method": meta["method"], "weights": "checkpoint", "prune_diagonals": None,
                  "input_source": source,
                  "checkpoint": {k: meta.get(k) for k in ("dataset", "input_size", "subset", "fraction", "val_accuracy",
                                                          "test_accuracy", "max_drop", "git_revision", "seed")}},
                 seed)


def _bench_model(benchmark, unit, model, shape, params, x, rounds, info: dict, seed: int) -> None:
    prep = prepare_inference(model, shape, params, mode="encrypted", seed=seed)
    runs = []
    benchmark.pedantic(lambda: runs.append(run_network(prep.plan, prep.client, prep.server, x)),
                       rounds=rounds, iterations=1, warmup_rounds=0)
    run = runs[-1]
    counts = run.counts
    assert all(layer.counts == layer.predicted for layer in run.layers)
    assert counts.key_switches == counts.rotations == prep.plan.predicted.rotations
    with torch.no_grad():
        ref = model.double()(torch.from_numpy(x)[None])[0].numpy()
    error = float(np.abs(run.logits - ref).max())
    assert error < 1e-2 and int(run.logits.argmax()) == int(ref.argmax())

    server = float(np.mean([r.server_seconds for r in runs]))
    floor = floor_seconds(counts, unit)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    benchmark.extra_info.update(
        suite="model", **info, input_size=shape[1], in_channels=shape[0], seed=seed,
        poly_modulus_degree=params.poly_modulus_degree, coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
        counts=counts.to_dict(), predicted=prep.plan.predicted.to_dict(),
        layers=[{"layer": r.name, "kind": r.kind, "rotations": r.counts.rotations, "pmuls": r.counts.pmuls,
                 "server_s": r.seconds, "floor_s": floor_seconds(r.counts, unit)} for r in run.layers],
        galois_keys=len(prep.plan.galois_steps), galois_key_bytes=prep.galois_key_bytes,
        bytes_client_to_server=run.bytes_client_to_server, bytes_server_to_client=run.bytes_server_to_client,
        server_s=server, client_s=float(np.mean([r.client_seconds for r in runs])),
        floor_s=floor, server_over_floor=server / floor, meets_floor_target=server <= FLOOR_TARGET * floor,
        encode_s=prep.server.encode_seconds, keygen_s=prep.keygen_seconds,
        peak_rss_bytes_so_far=peak, under_memory_target=peak < MEMORY_TARGET,
        predicted_label=int(run.logits.argmax()), max_abs_error=error, unit_costs_s=unit.to_dict(),
    )
