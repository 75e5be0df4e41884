"""`artemis layer --algorithm matvec`: through the registry (bench/cli/layer_registry.py)."""

import json

from bench.cli import main


def _run(capsys, *argv):
    code = main(["layer", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_layer_matvec_strided_encrypted(capsys):
    code, out, _ = _run(capsys, "--c-in", "8", "--c-out", "12", "--hw", "8", "--stride", "2", "--algorithm", "matvec",
                        "--bias", "--json")
    r = json.loads(out)
    assert code == 0 and r["algorithm"] == "matvec" and r["counts_match_plan"]
    assert r["output_layout"] == "MultiplexedLayout" and r["output_shape"] == [12, 4, 4] and r["n_out"] == 1
    assert r["rotations"] == r["predicted_rotations"] == r["key_switches"] > 0
    assert r["max_abs_error"] < 1e-3 and r["within_tolerance"]
    assert r["bytes_server_to_client"] > 0 and r["provenance"]["versions"]["tenseal"] == "0.3.18"


def test_layer_matvec_plain_text_and_two_workers(capsys):
    code, out, _ = _run(capsys, "--c-in", "5", "--c-out", "7", "--hw", "2", "--algorithm", "matvec", "--mode", "plain")
    assert code == 0 and "equal the plan's" in out
    assert "SlotLayout" in out and "ok)" in out  # stride 1: the output is in Gazelle's packing
    code, out, _ = _run(capsys, "--c-in", "32", "--c-out", "32", "--hw", "2", "--algorithm", "matvec", "--workers",
                        "2", "--mode", "plain", "--json")
    r = json.loads(out)  # one output ciphertext, split by its giant steps
    assert code == 0 and r["workers"] == 2 and r["counts_match_plan"] and r["max_abs_error"] < 1e-9
    code, _, err = _run(capsys, "--c-in", "5", "--c-out", "7", "--hw", "2", "--algorithm", "coefficient",
                        "--workers", "2")
    assert code == 2 and "does not apply to --algorithm coefficient" in err
