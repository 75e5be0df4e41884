"""bench.report.engines: the per-model algorithm tables, the sentences and the coefficient fit."""

import pytest

from bench.report.cases import Case
from bench.report.engines import client_seconds, end_to_end, engines_section, slot_cases


def _case(model, schedule, server, rot, pmuls, up, down, extra=None):
    counts = {"key_switches": rot, "pmuls": pmuls, "adds": pmuls, "plain_adds": 0, "rescales": 4}
    info = {"model": model, "requested_schedule": schedule, "weights": "synthetic", "bytes_client_to_server": up,
            "bytes_server_to_client": down, "counts": {**counts, "rotations": rot, "encryptions": pmuls // 50,
                                                        "encodes": pmuls // 50}, **(extra or {})}
    if schedule == "coefficient":
        info.update(algorithm="coefficient", mask_s=0.1)
    return Case(f"{model}-{schedule}", "model", 8192, server, counts, info)


def test_tables_sentence_and_fit():
    cases = [_case("resnet18", "output-rotation", 10.0, 5000, 50000, 10**7, 10**7),
             _case("resnet18", "auto", 7.5, 1800, 50000, 10**7, 10**7),
             _case("resnet18", "coefficient", 1.25, 0, 6000, 10**8, 3 * 10**7),
             _case("resnet20", "coefficient", 0.2, 0, 400, 10**7, 10**6),
             Case("l1", "layer", 8192, 0.03, {"key_switches": 0, "pmuls": 192}, {"algorithm": "coefficient",
                  "counts": {"pmuls": 192, "encryptions": 3, "encodes": 3}}),
             Case("l2", "layer", 8192, 0.1, {"key_switches": 0, "pmuls": 576}, {"algorithm": "coefficient",
                  "counts": {"pmuls": 576, "encryptions": 20, "encodes": 20}})]
    section = engines_section(cases)
    text = "\n".join(section.md)
    assert "### resnet18" in text and "| synthetic dense | slot-OR | 10.000 | n/a | 5000 |" in text
    sentence = section.summary["sentences"]["resnet18"]
    assert "coefficient is faster than auto" in sentence and "(6.0x)" in sentence
    assert "130.0 MB against 20.0 MB" in sentence and "100 Mbit/s" in sentence
    assert section.summary["sentences"]["resnet20"] is None  # no slot case to compare with
    fit = section.summary["coefficient_fit"]
    assert fit["rotations"] == [0] and fit["r2_rotation_only"] <= 0.0
    assert "rotation count predicts nothing" in text
    assert [c.name for c in slot_cases(cases)] == ["resnet18-output-rotation", "resnet18-auto"]


PHASES = {"client_s": 0.5, "client_upload_s": 0.3, "client_refresh_s": 0.2, "server_io_s": 0.25}


def test_end_to_end_adds_the_client_and_old_runs_say_n_a():
    # 1.25 s server, 0.5 s client, 0.25 s server I/O, 130 MB = 1.04 s at 1 Gbit/s and 10.4 s at 100 Mbit/s
    new = _case("resnet18", "coefficient", 1.25, 0, 6000, 10**8, 3 * 10**7, PHASES)
    old = _case("resnet18", "auto", 7.5, 1800, 50000, 10**7, 10**7, {"client_s": 15.0})  # before the phases
    assert end_to_end(new, 1e9) == pytest.approx(0.5 + 1.25 + 0.25 + 1.04)
    assert end_to_end(new, 1e8) == pytest.approx(0.5 + 1.25 + 0.25 + 10.4)
    assert client_seconds(old) is None and end_to_end(old, 1e9) is None  # its client_s timed other work
    section = engines_section([new, old])
    rows = {line.split(" | ")[1]: line for line in section.md if line.startswith("| synthetic dense |")}
    assert "| 1.250 | 0.500 |" in rows["coefficient"] and "| 3.04 | 12.40 |" in rows["coefficient"]
    assert "| 7.500 | n/a |" in rows["auto"] and rows["auto"].count("n/a") == 3
    got = section.summary["models"]["resnet18"]
    assert got["synthetic dense/coefficient"]["end_to_end_s_at_1_Gbitps"] == pytest.approx(3.04)
    assert got["synthetic dense/coefficient"]["client_s"] == 0.5
    assert got["synthetic dense/auto"]["end_to_end_s_at_100_Mbitps"] is None
    assert "end to end: n/a" in section.summary["sentences"]["resnet18"]


def test_the_sentence_gives_end_to_end_when_both_runs_recorded_the_client():
    # slot: 7.5 s server, 2 s client, 0.1 s I/O, 20 MB (0.16 s at 1 Gbit/s, 1.6 s at 100 Mbit/s)
    slot = _case("resnet18", "auto", 7.5, 1800, 50000, 10**7, 10**7, {**PHASES, "client_s": 2.0, "server_io_s": 0.1})
    coeff = _case("resnet18", "coefficient", 1.25, 0, 6000, 10**8, 3 * 10**7, PHASES)
    sentence = engines_section([slot, coeff]).summary["sentences"]["resnet18"]
    assert "client 0.50 s against 2.00 s" in sentence
    assert "1 Gbit/s: coefficient 3.04 s vs auto 9.76 s" in sentence
    assert "100 Mbit/s: coefficient 12.40 s vs auto 11.20 s" in sentence
