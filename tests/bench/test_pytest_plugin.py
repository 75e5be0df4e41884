"""`pytest` runs the tests only; `pytest --benchmark-only` the benchmark suite (bench.pytest_plugin)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _collect(*args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return [line for line in out.stdout.splitlines() if "::" in line]


def test_plain_pytest_collects_no_benchmark():
    items = _collect()
    assert items and not [i for i in items if i.startswith("bench/test_")]
    assert any(i.startswith("tests/") for i in items)


def test_benchmark_only_collects_the_suite_and_nothing_else():
    quick = _collect("--benchmark-only", "-m", "quick")
    assert len(quick) >= 15
    assert all(i.startswith("bench/test_") for i in quick)
    full = _collect("--benchmark-only")
    assert {i.split("::")[0] for i in full} == {"bench/test_primitives.py", "bench/test_layers.py",
                                                "bench/test_models.py", "bench/test_peers.py"}
    assert len(full) > len(quick)


def test_suite_labels():
    import pytest

    from bench.pytest_plugin import suite_label

    class Config:
        def __init__(self, args, markexpr="not slow", keyword="", paths=None):
            self.invocation_params = type("P", (), {"args": tuple(args), "dir": ROOT})()
            if paths is None:  # what pytest's parser leaves as file_or_dir
                paths = [a for a in args if not a.startswith("-") and a not in (markexpr, keyword)]
            self.args_source = pytest.Config.ArgsSource.ARGS if paths else pytest.Config.ArgsSource.TESTPATHS
            self.args = paths
            self._opts = {"markexpr": markexpr, "keyword": keyword}

        def getoption(self, name, default=None):
            return self._opts.get(name, default)

    assert suite_label(Config(["--benchmark-only"])) == "full"
    assert suite_label(Config(["bench", "--benchmark-only"])) == "full"
    assert suite_label(Config(["--benchmark-only", "-m", "quick"], markexpr="quick")) == "quick"
    assert suite_label(Config(["--benchmark-only", "-k", "resnet20"], keyword="resnet20")) == "filtered"
    assert suite_label(Config(["bench/test_layers.py", "--benchmark-only"])) == "filtered"
    assert suite_label(Config(["--benchmark-only", "-m", "not quick"], markexpr="not quick")) == "filtered"
    # an option's value is no test path
    assert suite_label(Config(["--benchmark-only", "--pruned", "results/demo"], paths=[])) == "full"
