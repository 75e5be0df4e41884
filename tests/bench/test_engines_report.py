"""bench.report.engines: the per-model algorithm tables, the sentences and the coefficient fit."""

from bench.report.cases import Case
from bench.report.engines import engines_section, slot_cases


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
    assert "### resnet18" in text and "| synthetic dense | slot-OR | 10.000 | 5000 |" in text
    sentence = section.summary["sentences"]["resnet18"]
    assert "coefficient is faster than slot-auto" in sentence and "(6.0x)" in sentence
    assert "130.0 MB against 20.0 MB" in sentence and "100 Mbit/s" in sentence
    assert section.summary["sentences"]["resnet20"] is None  # no slot case to compare with
    fit = section.summary["coefficient_fit"]
    assert fit["rotations"] == [0] and fit["r2_rotation_only"] <= 0.0
    assert "rotation count predicts nothing" in text
    assert [c.name for c in slot_cases(cases)] == ["resnet18-output-rotation", "resnet18-auto"]
