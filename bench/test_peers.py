"""Our engine beside Orion on the same conv layers, in one run (group peers-N8192).

Cases, for every 3x3 conv shape of ResNet18 at 16x16 input and ResNet-20's 16->16 (the
shapes of bench/test_layers.py), dense Kaiming weights, the same bias and the same input
(uniform in [-1, 1]) on both sides, N = 8192 with primes [60, 40 | 60] and scale 2^40:

- ours (`peer` artemis): auto on one worker and on two (`heconv.parallel`, the workers forked
  after compile): the algorithm `artemis layer` and `artemis infer` choose per conv by predicted
  time on that many workers (heconv.algorithms.choice: the slot schedules and matvec; extra_info
  `algorithm`, `algorithm_candidates`, `algorithm_reason`), output-rotation on one worker where
  the slot engine's auto picks another schedule, matvec on one worker, and auto on one and two workers
  planned with a value bound (`auto-last-level`: the slot engine and matvec at the chain's last level,
  one prime, no rescale; errors about 1e-4 where level 0 gives about 1e-7);
- Orion (`peer` orion, `bench.peers.orion_conv`): skipped, with the command that installs
  it, when orion-fhe is not installed (its own environment, as the README says).

Timed, one warm-up round then ROUNDS rounds each: ours `bench.harness.layer.run_layer` (as
the layer suite, one LayerRecord for every algorithm), Orion the compiled conv's forward on its
ciphertext. Set-up (keys, plaintexts, encryption; Orion's fit and compile) is never timed. Each output is decrypted
once, outside the timing, and checked against torch (max_abs_error in extra_info).
extra_info["suite"] is "peer", so the cost-model fits leave these cases out; the report's
peers section (bench.report.peers) puts ours beside Orion per shape with the ratios.
"""

import numpy as np
import pytest

from bench.harness.layer import prepare_layer, run_layer
from bench.harness.layer_record import layer_record
from bench.harness.protocol import VALUE_BOUND
from bench.peers.orion_conv import INSTALL_HINT, orion_record, orion_version, prepare_orion_conv, run_orion_conv
from bench.test_layers import SHAPES as LAYER_SHAPES
from heconv.algorithms import DEFAULT_ALGORITHM, algorithm_names
from heconv.backends import make_backend
from heconv.conv import plan_conv
from heconv.params import ckks_params
from pruning.synthetic import random_conv_weights

N = 8192
GROUP = f"peers-N{N}"
ROUNDS = 5
SEED = 0
# network, layer, c_in, c_out, hw, k, stride: the layer suite's 3x3 convs of ResNet18 and ResNet-20's 16->16
# ResNet18's strided 3x3 convs past the first are not in the layer suite (its hour budget): here only
STRIDED = [("resnet18", "layer3.0.conv1", 128, 256, 8, 3, 2), ("resnet18", "layer4.0.conv1", 256, 512, 4, 3, 2)]
SHAPES = [s for s in LAYER_SHAPES if s[5] == 3 and (s[0] == "resnet18" or s[1] == "layer1.conv3x3")] + STRIDED
SHAPE_OF = {(s[0], s[1]): s for s in SHAPES}
LAST_LEVEL = "auto-last-level"  # auto planned with bench.harness.protocol.VALUE_BOUND (the model suite's cases)
NO_ORION = f"orion-fhe is not installed; to run Orion beside our engine, {INSTALL_HINT}"


def _params():
    return ckks_params(depth=1, poly_modulus_degree=N)


def _layer(shape):
    """The weights and bias both engines run (the layer suite's, for the same seed)."""
    _, _, c_in, c_out, hw, k, _ = shape
    w = random_conv_weights(c_out, c_in, k, _params().slots, hw, hw, seed=SEED)
    return w, np.random.default_rng(SEED + 2).normal(0, 0.1, c_out)


def _auto_differs(shape) -> bool:
    _, _, _, _, hw, _, stride = shape
    return plan_conv(_layer(shape)[0], hw, hw, _params(), stride=stride, schedule="auto").baby_step != 1


def _cases():
    orion_missing = orion_version() is None
    for shape in SHAPES:
        net, layer, c_in, c_out = shape[:4]
        base = f"{net}-{layer}-{c_in}to{c_out}"
        ours = [("auto", 1), ("auto", 2)] + ([("output-rotation", 1)] if _auto_differs(shape) else [])
        ours += [("matvec", 1)]  # the matvec algorithm (heconv.algorithms.matvec), one worker
        ours += [(LAST_LEVEL, 1), (LAST_LEVEL, 2)]  # auto with the value bound: at the chain's last level
        for schedule, workers in ours:
            tag = "or" if schedule == "output-rotation" else schedule
            yield pytest.param(net, layer, N, "artemis", schedule, workers, id=f"{base}-ours-{tag}-w{workers}")
        yield pytest.param(net, layer, N, "orion", None, 1, id=f"{base}-orion",
                           marks=[pytest.mark.skip(reason=NO_ORION)] if orion_missing else [])


@pytest.mark.parametrize("network, layer, n, peer, schedule, workers", list(_cases()))
def test_peer_layer(benchmark, unit_costs_for, network, layer, n, peer, schedule, workers):
    shape = SHAPE_OF[(network, layer)]
    _, _, c_in, c_out, hw, k, stride = shape
    params, (w, bias) = _params(), _layer(shape)
    benchmark.group = GROUP
    info = {"suite": "peer", "network": network, "layer": layer, "weights": "synthetic", "method": "dense",
            "requested_schedule": schedule, "requested_workers": workers, "rounds": ROUNDS, "warmup_rounds": 1}
    if peer == "orion":
        prep = prepare_orion_conv(w, bias, hw, hw, stride, params, seed=SEED)
        try:
            runs = []
            benchmark.pedantic(lambda: runs.append(run_orion_conv(prep)), rounds=ROUNDS, iterations=1,
                               warmup_rounds=1)
            record = orion_record(prep, runs[-1], runs[-ROUNDS:], latency_s=benchmark.stats.stats.mean)
        finally:
            prep.close()
        assert record["max_abs_error"] < 1e-3 * max(1.0, record["max_abs_reference"])
        benchmark.extra_info.update(record | info)
        return
    # "auto": the choice `artemis layer` and `artemis infer` make (heconv.algorithms.choice: the slot schedules
    # and matvec by predicted time on `workers` processes); an algorithm's name: that algorithm.
    algorithm = schedule if schedule in algorithm_names() else DEFAULT_ALGORITHM
    bound = VALUE_BOUND if schedule == LAST_LEVEL else None
    prep = prepare_layer(w, bias, hw, hw, stride, make_backend("encrypted", params, SEED), seed=SEED, name=layer,
                         schedule="auto" if bound else schedule, workers=workers, algorithm=algorithm,
                         choose_algorithm=True, value_bound=bound)
    try:
        runs = []
        benchmark.pedantic(lambda: runs.append(run_layer(prep)), rounds=ROUNDS, iterations=1, warmup_rounds=1)
        runs = runs[-ROUNDS:]
        record = layer_record(prep, runs[-1], unit_costs_for(params), runs, latency_s=benchmark.stats.stats.mean)
    finally:
        prep.close()
    assert record.counts_match_plan
    assert record.max_abs_error < 1e-3 * max(1.0, record.max_abs_reference)
    benchmark.extra_info.update(record.to_dict() | info | {
        "peer": "artemis", "engine": "artemis (SEAL through tenseal.sealapi)",
        "timed": "bench.harness.layer.run_layer: the compiled conv on the encrypted input"
                 + (", split over the worker processes" if record.workers > 1 else "")})
