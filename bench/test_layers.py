"""ResNet18 and ResNet-20 layer shapes at 16x16 input: synthetic sparsity and real pruned weights.

Cases:
- synthetic: Kaiming weights with a random fraction of the engine's diagonal groups
  zeroed (0/50/90%), and full sweeps (0-95%) of diagonals and of positions on four
  shapes; N = 8192, and a subset at N = 16384 (the non-interactive chain's parameters,
  so the primitives suite's unit costs apply);
- checkpoint: the first conv of each distinct shape of a real pruned model (BN folded,
  as the engine runs it) for every method's checkpoint found under `--pruned DIR`
  (default results/demo/checkpoints, written by `artemis demo`).

Timed: `run_conv` only (keys, encoding and encryption are set up outside). Each case
records its counts, the cost model's prediction, the floor (counts x unit costs
measured in this process) and the latency/floor ratio in extra_info. Exact counts are
asserted; the 1.15 x floor target is recorded (`meets_floor_target`), not asserted.
"""

from functools import lru_cache

import numpy as np
import pytest

from bench.conftest import no_checkpoint_param, pruned_checkpoints
from heconv.conv import decrypt_output, dense_rotations, run_conv
from heconv.cost import floor_seconds
from heconv.experiment import model_layers, prepare_layer, random_conv_weights, representative_layers, torch_conv
from heconv.params import ckks_params

FLOOR_TARGET = 1.15

# network, name, c_in, c_out, hw, k, stride
SHAPES = [
    ("resnet18", "layer1.conv3x3", 64, 64, 16, 3, 1),
    ("resnet18", "layer2.0.conv1", 64, 128, 16, 3, 2),
    ("resnet18", "layer2.conv3x3", 128, 128, 8, 3, 1),
    ("resnet18", "layer3.conv3x3", 256, 256, 4, 3, 1),
    ("resnet18", "layer4.conv3x3", 512, 512, 2, 3, 1),
    ("resnet18", "layer2.0.shortcut", 64, 128, 16, 1, 2),
    ("resnet18", "layer3.0.shortcut", 128, 256, 8, 1, 2),
    ("resnet18", "layer4.0.shortcut", 256, 512, 4, 1, 2),
    ("resnet20", "layer1.conv3x3", 16, 16, 16, 3, 1),
    ("resnet20", "layer2.0.conv1", 16, 32, 16, 3, 2),
    ("resnet20", "layer2.conv3x3", 32, 32, 8, 3, 1),
    ("resnet20", "layer3.0.conv1", 32, 64, 8, 3, 2),
    ("resnet20", "layer3.conv3x3", 64, 64, 4, 3, 1),
]
GRID = [0.0, 0.5, 0.9]
SWEEP = [0.0, 0.25, 0.5, 0.75, 0.9, 0.95]
SWEEP_SHAPES = {("resnet18", "layer1.conv3x3"), ("resnet18", "layer3.conv3x3"),
                ("resnet20", "layer1.conv3x3"), ("resnet20", "layer3.conv3x3")}
N16384_SHAPES = {("resnet18", "layer1.conv3x3"), ("resnet18", "layer2.conv3x3"),
                 ("resnet20", "layer1.conv3x3"), ("resnet20", "layer3.conv3x3")}
QUICK = {("resnet18", "layer1.conv3x3", 8192, "diagonals", 0.0), ("resnet18", "layer1.conv3x3", 8192, "diagonals", 0.9),
         ("resnet20", "layer3.conv3x3", 8192, "positions", 0.5), ("resnet20", "layer1.conv3x3", 16384, "diagonals", 0.0)}


def _synthetic_cases():
    for shape in SHAPES:
        key = shape[:2]
        sweeps = [("diagonals", f) for f in (SWEEP if key in SWEEP_SHAPES else GRID)]
        if key in SWEEP_SHAPES:
            sweeps += [("positions", f) for f in SWEEP]
        for n in (8192, 16384):
            if n == 16384 and key not in N16384_SHAPES:
                continue
            for kind, frac in (sweeps if n == 8192 else [("diagonals", f) for f in GRID]):
                marks = [pytest.mark.quick] if (*key, n, kind, frac) in QUICK else []
                yield pytest.param(shape, n, kind, frac, marks=marks,
                                   id=f"{shape[0]}-{shape[1]}-N{n}-{kind[:4]}{int(round(frac * 100))}")


def _params(n: int):
    # N = 16384 runs the primitives suite's five-level chain at its top level.
    return ckks_params(depth=1 if n == 8192 else 5, poly_modulus_degree=n)


def _bench_conv(benchmark, params, unit, name, w, bias, hw, stride, info: dict, seed: int = 0) -> None:
    from heconv.seal_backend import SealBackend

    backend = SealBackend(params, seed=seed)
    prep = prepare_layer(w, bias, hw, hw, stride, backend, seed=seed, name=name)
    plan = prep.plan
    runs = []

    def run():
        backend.reset_counter()
        out = run_conv(prep.compiled, prep.inputs, backend)
        runs.append(backend.reset_counter())
        return out

    outputs = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    counts = runs[-1]
    assert all(c == plan.predicted for c in runs)
    assert counts.key_switches == counts.rotations
    ref = torch_conv(prep.x, w, bias, stride)
    error = float(np.abs(decrypt_output(outputs, plan, backend) - ref).max())
    assert error < 1e-3 * max(1.0, float(np.abs(ref).max()))

    floor = floor_seconds(counts, unit)
    mean = benchmark.stats.stats.mean
    c_out, c_in, k, _ = w.shape
    benchmark.extra_info.update(
        suite="layer", layer=name, c_in=c_in, c_out=c_out, hw=hw, kernel=k, stride=stride, **info,
        poly_modulus_degree=params.poly_modulus_degree, coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
        c_n=plan.packing.c_n, n_in=plan.packing.n_in, n_out=plan.packing.n_out,
        predicted=plan.predicted.to_dict(), counts=counts.to_dict(),
        dense_formula_rotations=dense_rotations(plan.packing, k),
        kept_diagonals=sum(len(d) for d in plan.diagonals), diagonal_groups=plan.packing.n_out * plan.packing.c_n,
        kept_positions=sum(len(p) for p in plan.positions), positional_groups=plan.packing.n_in * k * k,
        weight_sparsity=float((w == 0).mean()),
        galois_keys=len(backend.galois_steps), galois_key_bytes=prep.galois_key_bytes,
        encoded_plaintexts=prep.setup_counts.encodes, unit_costs_s=unit.to_dict(),
        floor_s=floor, latency_over_floor=mean / floor, meets_floor_target=mean <= FLOOR_TARGET * floor,
        max_abs_error=error, seed=seed,
    )


@pytest.mark.parametrize("shape, n, sweep, fraction", list(_synthetic_cases()))
def test_synthetic_layer(benchmark, unit_costs_for, shape, n, sweep, fraction):
    network, name, c_in, c_out, hw, k, stride = shape
    seed, params = 0, _params(n)
    frac = {"prune_diagonals": fraction if sweep == "diagonals" else 0.0,
            "prune_positions": fraction if sweep == "positions" else 0.0}
    w = random_conv_weights(c_out, c_in, k, params.slots, hw, hw, seed=seed, **frac)
    bias = np.random.default_rng(seed + 2).normal(0, 0.1, c_out)
    _bench_conv(benchmark, params, unit_costs_for(params), name, w, bias, hw, stride,
                {"network": network, "weights": "synthetic", "method": "synthetic", "sweep": sweep, **frac}, seed)


@lru_cache(maxsize=2)
def _checkpoint_layers(path: str):
    from heconv.infer import network_params
    from pruning.export import load_checkpoint_model

    model, meta = load_checkpoint_model(path)
    shape = (meta["in_channels"], meta["input_size"], meta["input_size"])
    params = network_params(shape, meta.get("poly_modulus_degree"))
    return {layer.name: layer for layer in representative_layers(model_layers(model, shape, params))}, meta, params


def pytest_generate_tests(metafunc):
    if metafunc.function.__name__ != "test_checkpoint_layer":
        return
    found = pruned_checkpoints(metafunc.config)
    cases = []
    for (model, method), path in found.items():
        layers, _, _ = _checkpoint_layers(str(path))
        for name in layers:
            quick = model == "resnet20" and name == "layers.0.0.conv1" and method != "hunter"
            cases.append(pytest.param(str(path), name, marks=[pytest.mark.quick] if quick else [],
                                      id=f"{model}-{method}-{name}"))
    metafunc.parametrize("checkpoint, layer_name", cases or [no_checkpoint_param(metafunc.config, 2)])


def test_checkpoint_layer(benchmark, unit_costs_for, checkpoint, layer_name):
    layers, meta, params = _checkpoint_layers(checkpoint)
    layer = layers[layer_name]
    _bench_conv(benchmark, params, unit_costs_for(params), layer.name, layer.weight, layer.bias, layer.height,
                layer.stride, {"network": meta["model"], "weights": "checkpoint", "method": meta["method"],
                               "sweep": None, "prune_diagonals": None, "prune_positions": None,
                               "checkpoint": {k: meta.get(k) for k in ("dataset", "input_size", "fraction",
                                                                       "val_accuracy", "test_accuracy",
                                                                       "git_revision", "seed")}})
