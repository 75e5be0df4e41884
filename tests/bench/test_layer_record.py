"""One layer record type for every registered algorithm (bench/harness/layer_record.py, issue 22): the same
common fields, the algorithm's own figures beside them, and the keys the stored runs hold kept."""

import json
from pathlib import Path

import numpy as np
import pytest

from bench.harness.layer import prepare_layer
from bench.harness.layer_record import LayerRecord, measure_layer
from heconv.algorithms import ALGORITHMS, algorithm_names, get_algorithm
from heconv.algorithms.choice import auto_algorithms, choose_algorithm
from heconv.backends import make_backend
from heconv.cost import DEFAULT_UNIT_COSTS
from heconv.params import ckks_params

ROOT = Path(__file__).resolve().parents[2]
P = ckks_params(depth=1)
COMMON = {"layer", "c_in", "c_out", "hw", "kernel", "stride", "backend", "poly_modulus_degree", "coeff_mod_bit_sizes",
          "algorithm", "schedule", "baby_step", "n_in", "n_out", "input_layout", "output_layout", "output_shape",
          "predicted", "counts", "counts_match_plan", "weight_sparsity", "galois_keys", "galois_key_bytes",
          "encoded_plaintexts", "latency_s", "cpu_s", "floor_s", "latency_over_floor", "meets_floor_target",
          "unit_costs_s", "max_abs_error", "max_abs_reference", "peak_rss_bytes", "seed", "bytes_client_to_server",
          "bytes_server_to_client", "upload", "workers", "serial_predicted", "rotations", "key_switches", "pmuls",
          "adds", "rescales", "predicted_rotations", "predicted_pmuls", "ciphertexts_in", "ciphertexts_out",
          "algorithm_candidates", "algorithm_reason"}
# What the suites add to a record in extra_info (bench/test_layers.py, bench/test_peers.py, the timing plugin)
SUITE_KEYS = {"suite", "network", "weights", "method", "sweep", "prune_diagonals", "prune_positions", "prune_blocks",
              "requested_schedule", "requested_workers", "checkpoint", "engine", "peer", "timed", "rounds",
              "warmup_rounds", "canary_slow", "canary_s", "canary_before_s", "canary_after_s", "timing_protocol",
              "pass_chosen", "passes", "passes_s", "passes_spread"}


def _weights(c_out=5, c_in=3, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.3, (c_out, c_in, k, k)), rng.normal(0, 0.1, c_out)


def _record(name: str, stride: int = 1, **kw) -> tuple[LayerRecord, object]:
    w, bias = _weights()
    prep = prepare_layer(w, bias, 4, 4, stride, make_backend("plain", P), algorithm=name, **kw)
    try:
        return measure_layer(prep, DEFAULT_UNIT_COSTS), prep
    finally:
        prep.close()


@pytest.mark.parametrize("name", algorithm_names())
@pytest.mark.parametrize("stride", [1, 2])
def test_every_algorithm_gives_the_one_record(name, stride):
    r, prep = _record(name, stride)
    alg = get_algorithm(name)
    d = r.to_dict()
    assert type(r) is LayerRecord and r.algorithm == name == d["algorithm"]
    assert COMMON <= set(d), COMMON - set(d)
    assert r.counts_match_plan and d["counts"] == r.counts and d["rotations"] == r.counts["rotations"]
    assert d["predicted"] == alg.predicted(prep.plan).to_dict() == d["serial_predicted"]
    assert r.max_abs_error < 1e-9 and r.output_shape == [5, 4 // stride, 4 // stride]
    assert (r.schedule, r.baby_step) == (alg.label(prep.plan), alg.baby_step(prep.plan))
    assert (r.n_in, r.n_out) == (alg.input_layout(prep.plan).ciphertexts, alg.output_layout(prep.plan).ciphertexts)
    assert r.output_layout == type(alg.output_layout(prep.plan)).__name__
    assert r.algorithm_candidates is None and r.algorithm_reason is None  # the algorithm was given
    # the algorithm's own figures, at the top level of the dict and as attributes
    own = alg.figures(prep.plan, 1.0)
    assert set(own) <= set(d) and not set(own) & set(COMMON)
    for key in own:
        assert getattr(r, key) == d[key]
    for part in alg.timed_parts:
        assert d[f"{part}_s"] >= 0.0
    with pytest.raises(AttributeError):
        r.no_such_figure  # noqa: B018


def test_the_figures_are_the_algorithms_own():
    slot, coeff, matvec = (_record(n)[0].to_dict() for n in ("slot", "coefficient", "matvec"))
    assert slot["schedule_candidates"] == [] and slot["dense_formula_rotations"] >= slot["rotations"]
    assert "chunking" not in slot and "mask_s" not in slot
    assert coeff["schedule"] == "coefficient" and coeff["baby_step"] is None and coeff["mask"]
    assert coeff["kept_blocks"] == coeff["pmuls"] // coeff["tiles"] and coeff["mask_s"] >= 0
    assert coeff["encryptions"] == coeff["n_out"] and coeff["hiding_bits_per_coefficient"] > 0
    assert "c_n" not in coeff
    copies = f" copies:{matvec['copies']}" if matvec["copies"] > 1 else ""
    assert matvec["schedule"] == f"matvec bsgs:{matvec['baby_step']}{copies}" and matvec["nonzero_diagonals"] > 0
    assert [c["baby_step"] for c in matvec["schedule_candidates"]][:1] == [1]


def _stored_layer_keys() -> dict[str, tuple[str, dict]]:
    """algorithm -> (file, extra_info) of the newest stored layer-suite case of that algorithm."""
    found: dict[str, tuple[str, dict]] = {}
    for path in sorted((ROOT / "results" / "benchmarks").glob("*/*.json"), reverse=True):
        for b in json.loads(path.read_text()).get("benchmarks", []):
            e = b.get("extra_info") or {}
            if e.get("suite") == "layer" and e.get("algorithm") in ALGORITHMS:
                found.setdefault(e["algorithm"], (path.name, e))
        if {"slot", "coefficient"} <= set(found):
            break
    return found


def _kind(v):
    return "number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v).__name__


def test_the_record_keeps_the_keys_and_kinds_of_the_stored_runs():
    """Every key a stored layer case holds (but those its suite adds) is still in the record, with a value of
    the same kind: the report reads old and new runs alike."""
    stored = _stored_layer_keys()
    if not stored:
        pytest.skip("no stored layer-suite run under results/benchmarks")
    for name, (file, old) in stored.items():
        new = _record(name)[0].to_dict()
        missing = set(old) - set(new) - SUITE_KEYS
        assert not missing, f"{name}: keys of {file} the record lost: {sorted(missing)}"
        differ = [k for k in set(old) & set(new) - SUITE_KEYS
                  if old[k] is not None and new[k] is not None and _kind(old[k]) != _kind(new[k])]
        assert not differ, f"{name}: keys whose kind changed against {file}: {sorted(differ)}"


def test_auto_across_algorithms_is_the_networks_choice():
    """prepare_layer(choose_algorithm=True) under "auto": heconv.algorithms.choice on the same candidates;
    the record names every candidate (the chosen first) and why."""
    w, bias = _weights(8, 8, 3, seed=1)
    for workers in (1, 2):
        prep = prepare_layer(w, bias, 4, 4, 2, make_backend("plain", P), schedule="auto", workers=workers,
                             choose_algorithm=True)
        try:
            r = measure_layer(prep, DEFAULT_UNIT_COSTS)
        finally:
            prep.close()

        def plan_with(n):
            alg = get_algorithm(n)
            return alg.plan(w, 4, 4, P, stride=2, has_bias=True, **({"schedule": "auto"} if alg.takes_schedule
                                                                     else {}))

        want = choose_algorithm(ALGORITHMS, auto_algorithms(ALGORITHMS, "hybrid"), plan_with, workers)
        assert r.algorithm == want.algorithm and r.algorithm_reason == want.reason
        cands = r.algorithm_candidates
        assert [c["algorithm"] for c in cands] == [c.algorithm for c in want.candidates]
        assert {c["algorithm"] for c in cands} == set(auto_algorithms(ALGORITHMS, "hybrid"))
        assert "coefficient" not in {c["algorithm"] for c in cands}  # it changes the traffic: never auto's
        assert cands[0]["predicted_s"] <= min(c["predicted_s"] for c in cands)
        assert r.counts_match_plan and r.max_abs_error < 1e-9
        assert r.workers == (min(workers, prep.parallel.workers) if prep.parallel else 1)


def test_auto_needs_the_auto_schedule_to_choose():
    w, bias = _weights()
    prep = prepare_layer(w, bias, 4, 4, 1, make_backend("plain", P), schedule="output-rotation",
                         choose_algorithm=True)
    assert prep.algorithm == "slot" and prep.choice is None and prep.plan.baby_step == 1
