import json

import numpy as np
import pytest

from bench.cli import main

KEYS = ["c_n", "n_in", "n_out", "predicted_rotations", "rotations", "key_switches", "galois_keys", "galois_key_bytes",
        "pmuls", "adds", "rescales", "latency_s", "floor_s", "max_abs_error", "peak_rss_bytes"]


def _run(capsys, *argv):
    code = main(["layer", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_layer_json_encrypted(capsys):
    code, out, _ = _run(capsys, "--c-in", "16", "--c-out", "32", "--hw", "8", "--kernel", "3", "--json", "--bias",
                        "--schedule", "output-rotation", "--workers", "1")
    assert code == 0
    r = json.loads(out)
    assert set(KEYS) <= set(r)
    assert (r["c_n"], r["n_in"], r["n_out"]) == (32, 1, 1)
    assert r["rotations"] == r["predicted_rotations"] == r["key_switches"] == 8 + 31
    assert r["galois_keys"] == 39 and r["galois_key_bytes"] > 39 * 500_000
    assert r["max_abs_error"] < 1e-3 and r["counts_match_plan"]
    assert 0 < r["floor_s"] and 0 < r["latency_s"]
    assert r["provenance"]["versions"]["tenseal"] == "0.3.18"


def test_layer_pruned_plain_mode(capsys):
    code, out, _ = _run(capsys, "--c-in", "64", "--c-out", "64", "--hw", "16", "--prune-diagonals", "0.5",
                        "--mode", "plain", "--json", "--seed", "3", "--workers", "1", "--algorithm", "slot")
    r = json.loads(out)
    assert code == 0 and r["backend"] == "PlainBackend"
    # 4 input blocks x 8 positions + half of the 4 x 15 nonzero diagonals (random 32 of 64 groups)
    assert r["rotations"] == r["predicted_rotations"] < 92
    assert r["pmuls"] == 2304 // 2 and r["max_abs_error"] < 1e-9


def test_layer_table(capsys):
    code, out, _ = _run(capsys, "--c-in", "4", "--c-out", "4", "--hw", "4", "--mode", "plain")
    assert code == 0
    assert "rotations" in out and "predicted" in out and "max abs error" in out


@pytest.mark.parametrize("suffix", [".npy", ".pt"])
def test_layer_weights_file(capsys, tmp_path, suffix):
    w = np.random.default_rng(0).normal(size=(8, 4, 3, 3))
    w[:, :, 0, :] = 0.0  # the top row of positions: three non-centre rotations saved
    path = tmp_path / f"w{suffix}"
    if suffix == ".npy":
        np.save(path, w)
    else:
        import torch

        torch.save(torch.from_numpy(w), path)
    code, out, _ = _run(capsys, "--c-in", "4", "--c-out", "8", "--hw", "8", "--weights", str(path), "--json",
                        "--mode", "plain", "--schedule", "output-rotation", "--workers", "1")
    r = json.loads(out)
    assert code == 0
    assert r["rotations"] == (9 - 1 - 3) + (8 - 1)


def test_layer_schedules_json_and_table(capsys):
    """The slot engine's auto: 16->32 on 8x8 (c_n = 32) runs B = 2: 1*(9*2 - 1) + 1*(16 - 1) = 32 < OR's 8 + 31
    (across algorithms, matvec's rotated copies win this one)."""
    code, out, _ = _run(capsys, "--c-in", "16", "--c-out", "32", "--hw", "8", "--json", "--mode", "plain",
                        "--workers", "1", "--algorithm", "slot")
    r = json.loads(out)
    assert code == 0 and r["schedule_requested"] == "auto"
    assert (r["schedule"], r["baby_step"]) == ("bsgs:2", 2)
    assert r["rotations"] == r["predicted_rotations"] == r["dense_formula_rotations"] == 32 and r["counts_match_plan"]
    assert [c["baby_step"] for c in r["schedule_candidates"]] == [1, 2, 4, 8, 16, 32]
    assert [c["rotations"] for c in r["schedule_candidates"]][:2] == [39, 32]
    assert r["max_abs_error"] < 1e-9
    code, out, _ = _run(capsys, "--c-in", "16", "--c-out", "32", "--hw", "8", "--json", "--mode", "plain",
                        "--schedule", "input-rotation", "--workers", "1")
    r = json.loads(out)
    assert (r["schedule"], r["rotations"], r["schedule_candidates"]) == ("input-rotation", 9 * 32 - 1, [])
    code, out, _ = _run(capsys, "--c-in", "16", "--c-out", "32", "--hw", "8", "--mode", "plain", "--schedule", "bsgs:4")
    assert code == 0 and "bsgs:4 (baby step B = 4)" in out and "auto chose" not in out
    code, out, _ = _run(capsys, "--c-in", "16", "--c-out", "32", "--hw", "8", "--mode", "plain", "--algorithm", "slot")
    assert "auto chose from B=1: 39 rot, B=2: 32 rot" in out


def test_layer_two_workers(capsys):
    """64->64 on 16x16 on two processes: one output block pair each, the 32 baby steps computed by both."""
    code, out, _ = _run(capsys, "--c-in", "64", "--c-out", "64", "--hw", "16", "--json", "--bias", "--workers", "2",
                        "--schedule", "output-rotation")
    r = json.loads(out)
    assert code == 0 and r["workers"] == 2 and r["counts_match_plan"] and r["max_abs_error"] < 1e-3
    assert r["rotations"] == r["predicted_rotations"] == 92 + 32 == r["serial_predicted"]["rotations"] + 32
    assert r["extra_rotations"] == 32 and r["pmuls"] == 2304 and r["rescales"] == 4
    assert [c["pmuls"] for c in r["worker_counts"]] == [1152, 1152]
    assert [c["rotations"] for c in r["worker_counts"]] == [62, 62]
    assert r["transfer_bytes"] > 0 and r["transfer_s"] > 0 and len(r["worker_floor_s"]) == 2
    assert r["parallel_floor_s"] == pytest.approx(max(r["worker_floor_s"]) + r["transfer_s"])
    code, out, _ = _run(capsys, "--c-in", "16", "--c-out", "16", "--hw", "8", "--mode", "plain", "--workers", "2")
    assert code == 0 and "workers          2 processes" in out and "parallel floor" in out and "transfer" in out


def test_layer_workers_default_to_the_idle_cores(capsys, monkeypatch):
    """The default does not lose on a busy machine: the cores the load average leaves idle, at least 1."""
    import os

    from heconv.parallel_plan import available_cores

    for load, want in ((0.0, available_cores()), (available_cores() + 1.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        code, out, _ = _run(capsys, "--c-in", "16", "--c-out", "16", "--hw", "8", "--mode", "plain", "--json",
                            "--schedule", "output-rotation")
        r = json.loads(out)
        assert code == 0 and r["workers_requested"] == want and r["counts_match_plan"]
        assert r["workers"] == min(want, 16)  # 16 giant-step groups (B = 1)
        assert r["workers_chosen"] == (f"default: {want} of {available_cores()} cores idle by the 1-minute load "
                                       f"average {load:.2f}")
    args = ("--c-in", "16", "--c-out", "16", "--hw", "8", "--mode", "plain", "--workers", "2")
    r = json.loads(_run(capsys, *args, "--json")[1])
    out = _run(capsys, *args)[1]
    assert r["extra_rotations"] > 0 and "2 processes (--workers)" in out
    assert (f"{r['rotations']} counted = {r['rotations'] - r['extra_rotations']} the plan's own + "
            f"{r['extra_rotations']} recomputed by 2 worker(s)") in out  # the split every summary states
    code, out, _ = _run(capsys, "--c-in", "4", "--c-out", "4", "--hw", "8", "--kernel", "1", "--mode", "plain",
                        "--schedule", "input-rotation", "--workers", "3")
    assert code == 0 and "1 (in-process) (--workers); 3 asked, the layer has one giant-step group" in out


@pytest.mark.parametrize("bad, message", [("bsgs:3", "must be a power of two, got 3"), ("bsgs:x", "an integer B"),
                                          ("outputrotation", "unknown rotation schedule")])
def test_layer_bad_schedule(capsys, bad, message):
    code, _, err = _run(capsys, "--c-in", "4", "--c-out", "4", "--hw", "8", "--schedule", bad)
    assert code == 2 and "argument --schedule" in err and message in err


def test_layer_schedule_not_dividing_c_n(capsys):
    code, _, err = _run(capsys, "--c-in", "4", "--c-out", "4", "--hw", "8", "--mode", "plain", "--schedule", "bsgs:8")
    assert code == 2 and "layer conv: schedule 'bsgs:8': the baby step B must divide c_n = 4" in err


def test_layer_errors(capsys, tmp_path):
    code, _, err = _run(capsys, "--c-in", "4", "--c-out", "4", "--hw", "8", "--kernel", "4")
    assert code == 2 and "kernel size must be odd" in err
    np.save(tmp_path / "w.npy", np.ones((4, 4, 3, 3)))
    code, _, err = _run(capsys, "--c-in", "4", "--c-out", "8", "--hw", "8", "--weights", str(tmp_path / "w.npy"))
    assert code == 2 and "shape [4, 4, 3, 3], expected [C_out, C_in, k, k] = [8, 4, 3, 3]" in err
    code, _, err = _run(capsys, "--c-in", "4", "--c-out", "4", "--hw", "8", "--poly-modulus-degree", "4096")
    assert code == 2 and "not one of the supported secure degrees" in err
    code, _, err = _run(capsys, "--c-in", "4", "--c-out", "4", "--hw", "128", "--poly-modulus-degree", "8192")
    assert code == 2 and "N=8192 gives 4096 slots, the layer needs at least 16384" in err
    code, _, err = _run(capsys, "--c-in", "4", "--c-out", "4", "--hw", "256")
    assert code == 2 and "no secure CKKS ring dimension" in err
    code, _, err = _run(capsys, "--c-in", "4", "--c-out", "4", "--hw", "8", "--weights", str(tmp_path / "none.npy"))
    assert code == 2 and "does not exist" in err


def test_layer_toy_params(capsys):
    code, out, _ = _run(capsys, "--c-in", "4", "--c-out", "4", "--hw", "4", "--poly-modulus-degree", "4096",
                        "--toy-params", "--json")
    assert code == 0 and json.loads(out)["poly_modulus_degree"] == 4096


def test_layer_coefficient_plain_with_slot_comparison(capsys):
    code, out, _ = _run(capsys, "--c-in", "16", "--c-out", "32", "--hw", "8", "--algorithm", "coefficient",
                        "--compare-slot", "--mode", "plain", "--json", "--bias")
    r = json.loads(out)
    assert code == 0 and r["algorithm"] == "coefficient" and r["counts_match_plan"]
    assert r["rotations"] == r["predicted_rotations"] == 0 and r["max_abs_error"] < 1e-9
    assert r["encryptions"] == r["n_out"] and r["mask"] and r["hiding_bits_per_coefficient"] > 0
    assert r["slot_or_rotations"] == 8 + 31 and r["latency_over_slot_or"] > 0
    assert r["bytes_client_to_server"] > 0 and r["slot_or_bytes_server_to_client"] > 0


def test_layer_coefficient_options_need_the_algorithm(capsys):
    code, _, err = _run(capsys, "--c-in", "4", "--c-out", "4", "--hw", "4", "--mode", "plain", "--no-mask")
    assert code == 2 and "--compare-slot and --no-mask apply to an algorithm that changes the protocol's traffic" in err
