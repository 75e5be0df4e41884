"""bench/test_models.py's cases: ResNet50 runs on both algorithms, and only when asked for (slow)."""

import tomllib
from pathlib import Path

from bench import test_models
from bench.pytest_plugin import DEFAULT_MARKEXPR

ROOT = Path(__file__).resolve().parents[2]


def test_resnet50_has_a_slow_case_per_algorithm_and_the_defaults_leave_them_out():
    cases = {p.id: p for p in test_models._cases()}
    r50 = {i: p for i, p in cases.items() if p.values[0] == "resnet50"}
    assert sorted(r50) == ["resnet50-diag0-auto", "resnet50-diag0-coefficient"]
    assert {p.values[3] for p in r50.values()} == {"auto", "coefficient"}  # slot auto, and the coefficient algorithm
    assert all([m.name for m in p.marks] == ["slow"] for p in r50.values())  # slow, and not in the quick subset
    assert not any(m.name == "slow" for i, p in cases.items() if i not in r50 for m in p.marks)
    # `pytest` and `artemis bench` (whose default -m is the plugin's) both deselect slow cases
    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    assert DEFAULT_MARKEXPR == "not slow" and "-m 'not slow'" in addopts
    # only slow cases stream (encoding inside the rounds would change what the default cases time)
    assert test_models.STREAMED and test_models.STREAMED <= set(test_models.SLOW_CASES)
