"""The benchmark suite's pytest plugin (loaded from pyproject's addopts with -p).

- `pytest` runs the tests only: bench/test_*.py are not even collected unless the run
  asks for benchmarks (`--benchmark-only`, or a path under bench/ on the command line).
- `pytest --benchmark-only` runs the whole benchmark suite and deselects everything
  else; `-m quick` the quick subset.
- Runs are stored in pytest-benchmark's own layout under results/benchmarks (so that
  `pytest-benchmark --storage results/benchmarks list|compare` read them), labelled
  `<revision>-<suite>-<time>-<pid>`, suite being full, quick or filtered (-k, another
  -m, or a narrower path), never overwritten by a run started in the same second.
- Machine and commit information are pytest-benchmark's own, extended with library
  versions and HE parameters; the dirty flag counts untracked source files too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from .provenance import git_revision, provenance, versions
from .results import atomic_write, clean_stale

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
STORAGE = ROOT / "results" / "benchmarks"
DEFAULT_MARKEXPR = "not slow"  # pyproject's addopts
HE_PARAMETERS = {"hybrid": {"poly_modulus_degree": 8192, "coeff_mod_bit_sizes": [60, 40, 60]},
                 "five-level chain": {"poly_modulus_degree": 16384, "coeff_mod_bit_sizes": [60, 40, 40, 40, 40, 40, 60]}}


def pytest_addoption(parser):
    parser.addoption("--pruned", action="append", metavar="DIR",
                     help="artemis: a directory holding pruned-<method>.pt checkpoints ('artemis prune', "
                          "'artemis demo'); repeatable; default runs/demo/checkpoints (the demo's), else "
                          "results/demo/checkpoints (the published demo's)")


def _explicit_paths(config) -> list[Path]:
    """The test paths named on the command line (not option values, not testpaths)."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return []
    out = []
    for arg in config.args:
        path = (config.invocation_params.dir / str(arg).split("::")[0]).resolve()
        if path.exists():
            out.append(path)
    return out


def _benchmarking(config) -> bool:
    if config.getoption("benchmark_only", False):
        return True
    return any(p == BENCH or BENCH in p.parents for p in _explicit_paths(config))


def suite_label(config) -> str:
    """full, quick or filtered: what this run selected."""
    markexpr = config.getoption("markexpr", "") or ""
    keyword = config.getoption("keyword", "") or ""
    narrow = any(p not in (ROOT, BENCH) for p in _explicit_paths(config))
    if keyword or narrow:
        return "filtered"
    if markexpr.strip() == "quick":
        return "quick"
    return "full" if markexpr.strip() in ("", DEFAULT_MARKEXPR) else "filtered"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.addinivalue_line("markers", "quick: part of the quick benchmark subset (pytest --benchmark-only -m quick)")
    if not _benchmarking(config) or config.getoption("benchmark_disable", False):
        return
    opt = config.option
    if str(getattr(opt, "benchmark_storage", "")) in ("", "file://./.benchmarks"):
        opt.benchmark_storage = f"file://{STORAGE}"
    if not (opt.benchmark_save or opt.benchmark_autosave or opt.benchmark_json):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        rev = git_revision(ROOT)
        label = rev[:8] + ("-dirty" if rev.endswith("+dirty") else "")
        opt.benchmark_save = f"{label}-{suite_label(config)}-{stamp}-{os.getpid()}"


def pytest_sessionstart(session):
    """Runs are written through a temporary file and a rename: a killed run leaves no broken JSON."""
    storage = getattr(getattr(session.config, "_benchmarksession", None), "storage", None)
    if storage is None or not hasattr(storage, "get"):
        return
    from pytest_benchmark.utils import safe_dumps

    def save(output_json, name):
        path = storage.get(f"{storage._next_num}_{name}.json")
        if path.exists():
            raise FileExistsError(f"{path} exists: a benchmark run is never overwritten")
        atomic_write(path, safe_dumps(output_json, ensure_ascii=True, indent=4).encode())
        storage.logger.info(f"Saved benchmark data in: {path}")

    storage.save = save
    clean_stale(storage.path, *[p for p in Path(storage.path).iterdir() if p.is_dir()])


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path)
    if path.name.startswith("test_") and path.suffix == ".py" and BENCH in path.parents:
        return None if _benchmarking(config) else True
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    if not config.getoption("benchmark_only", False):
        return
    # Deselect (not skip) what is not a benchmark, so the summary counts benchmark cases only.
    keep = [i for i in items if "benchmark" in getattr(i, "fixturenames", ())]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["versions"] = versions()
    machine_info["he_parameters"] = HE_PARAMETERS
    machine_info["cpus"] = os.cpu_count()


def pytest_benchmark_update_commit_info(config, commit_info):
    rev = git_revision(ROOT)
    commit_info["dirty"] = rev.endswith("+dirty")
    commit_info["artemis_revision"] = rev


def pytest_deselected(items):
    config = items[0].config if items else None
    if config is not None:
        config._artemis_deselected = getattr(config, "_artemis_deselected", 0) + len(items)


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["artemis"] = provenance() | {"selection": {
        "suite": suite_label(config),
        "markexpr": config.getoption("markexpr", "") or "",
        "keyword": config.getoption("keyword", "") or "",
        "args": list(config.invocation_params.args),
        "selected": len(benchmarks),
        "deselected": getattr(config, "_artemis_deselected", 0),
    }}
