"""The report's schedule verdicts: output-rotation against auto for the same model case."""

from bench.report.cases import Case
from bench.report.compare import schedule_gains
from bench.report.verdict import schedule_verdict


def _case(schedule: str, rotations: int, seconds: float, weights: str, **info) -> Case:
    return Case(f"{weights}-{schedule}", "model", 8192, seconds, {"key_switches": rotations},
                {"suite": "model", "model": "resnet18", "requested_schedule": schedule, "weights": weights, **info})


def test_a_checkpoint_is_named_with_its_accuracy_and_a_synthetic_case_with_its_fraction():
    ckpt = {"method": "hunter", "checkpoint": {"test_accuracy": 90.175}}
    synth = {"method": "synthetic", "prune_diagonals": 0.5}
    gains = schedule_gains([_case("output-rotation", 4917, 12.6, "checkpoint", **ckpt),
                            _case("auto", 1684, 8.4, "checkpoint", **ckpt),
                            _case("output-rotation", 2666, 7.0, "synthetic", **synth),
                            _case("auto", 1548, 5.6, "synthetic", **synth)])
    lines = schedule_verdict(gains)
    assert len(lines) == 2
    assert ("resnet18 (hunter checkpoint, test accuracy 90.17%, the same under both): 4917 -> 1684 rotations "
            "(2.92x fewer), server time 12.60 s -> 8.40 s (1.50x faster).") in lines
    assert any(line.startswith("resnet18 (synthetic, 50% of diagonals pruned): 2666 -> 1548") for line in lines)
