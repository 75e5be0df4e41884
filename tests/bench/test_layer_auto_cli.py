"""`artemis layer --schedule auto` (the default) with no --algorithm: the choice `artemis infer` makes per conv
(heconv.algorithms.choice, among the slot schedules and matvec by predicted time on the workers), said and
recorded; --algorithm keeps the one given."""

import json

from bench.cli import main
from heconv.algorithms import ALGORITHMS, get_algorithm
from heconv.algorithms.choice import auto_algorithms, choose_algorithm
from heconv.params import params_for_input
from pruning.synthetic import random_conv_weights


def _run(capsys, *argv):
    code = main(["layer", "--mode", "plain", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _network_choice(c_in, c_out, hw, workers, seed=0):
    """What the network planner's choice picks for the conv `artemis layer` draws (the same weights)."""
    params = params_for_input(hw, hw)
    w = random_conv_weights(c_out, c_in, 3, params.slots, hw, hw, seed=seed)

    def plan_with(n):
        alg = get_algorithm(n)
        return alg.plan(w, hw, hw, params, **({"schedule": "auto"} if alg.takes_schedule else {}))

    return choose_algorithm(ALGORITHMS, auto_algorithms(ALGORITHMS, "hybrid"), plan_with, workers)


def test_auto_picks_by_predicted_time_on_the_workers(capsys):
    """32->32 on 2x2 and 16->16 on 16x16, on one worker and on two: the network planner's choice, and the
    chosen algorithm split over both workers where it splits (matvec and the slot engine both do). At level 0
    matvec now wins both (16->16 by complex packing: 72 terms against the slot engine's 144); the slot
    engine's wins at the last level are in tests/heconv/test_algorithm_choice.py."""
    for ch, hw, want in ((32, 2, "matvec"), (16, 16, "matvec")):
        for workers in ("1", "2"):
            code, out, _ = _run(capsys, "--c-in", str(ch), "--c-out", str(ch), "--hw", str(hw), "--workers", workers,
                                "--json")
            r = json.loads(out)
            choice = _network_choice(ch, ch, hw, int(workers))
            assert code == 0 and r["algorithm"] == want == choice.algorithm
            assert r["algorithm_requested"] == "auto" and r["schedule_requested"] == "auto"
            assert r["algorithm_reason"] == choice.reason and r["algorithm_reason"].startswith("auto: ")
            assert [c["algorithm"] for c in r["algorithm_candidates"]] == [want, ({"slot", "matvec"} - {want}).pop()]
            times = [c["predicted_s"] for c in r["algorithm_candidates"]]
            assert times == sorted(times) and r["algorithm_candidates"][0]["label"] == r["schedule"]
            assert r["counts_match_plan"] and r["max_abs_error"] < 1e-9 and r["within_tolerance"]
            assert r["workers"] == int(workers) and r["extra_rotations"] >= 0


def test_auto_says_which_ran_and_why(capsys):
    code, out, _ = _run(capsys, "--c-in", "5", "--c-out", "7", "--hw", "2", "--workers", "1")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("algorithm "))
    assert "matvec: " in row and "; auto: matvec bsgs:" in row and "(slot)" in row and "predicted" in row
    assert "MultiplexedLayout" not in out and "ComplexLayout(SlotLayout)" in out  # stride 1: Gazelle's places, paired
    assert "equal the plan's" in out and "ok)" in out


def test_a_given_algorithm_or_schedule_makes_no_choice(capsys):
    for argv in (["--algorithm", "slot"], ["--schedule", "output-rotation"], ["--algorithm", "coefficient"]):
        code, out, _ = _run(capsys, "--c-in", "5", "--c-out", "7", "--hw", "2", "--workers", "1", "--json", *argv)
        r = json.loads(out)
        assert code == 0 and r["algorithm_candidates"] is None and r["algorithm_reason"] is None
        assert r["algorithm"] == (argv[1] if argv[0] == "--algorithm" else "slot") == r["algorithm_requested"]
        assert r["counts_match_plan"]
