"""The benchmark suite's pytest plugin (loaded from pyproject's addopts with -p).

- `pytest` runs the tests only: bench/test_*.py are not even collected unless the run
  asks for benchmarks (`--benchmark-only`, or a path under bench/ on the command line).
- `pytest --benchmark-only` runs the whole benchmark suite and deselects everything
  else; `-m quick` the quick subset.
- The timing protocol (bench.harness.protocol) is pytest-benchmark's own options
  (`--benchmark-min-rounds`, `--benchmark-warmup`, `--benchmark-warmup-iterations`,
  `--benchmark-disable-gc`), set to the protocol's values unless the command line names them.
- Runs are stored in pytest-benchmark's own layout under runs/benchmarks (git-ignored; `artemis bench
  --publish` stores into the committed results/benchmarks; `pytest-benchmark --storage DIR
  list|compare` read either), labelled
  `<revision>-<suite>-<time>-<pid>`, suite being full, quick or filtered (-k, another
  -m, or a narrower path). pytest-benchmark writes the run to the path of its public
  `--benchmark-json` option, a temporary file, which is then put in place numbered and
  never overwriting another (bench.harness.passes.store_run). `--benchmark-save`,
  `--benchmark-autosave` or `--benchmark-json` on the command line leave it to pytest-benchmark.
- `artemis bench` runs passes with `--artemis-shuffle SEED` (the case order, shuffled) and
  `--artemis-pass NAME` `--artemis-run STAMP` (the label `<revision>-<suite>-<STAMP>-<NAME>`).
- Every case's canary (bench.harness.canary) is judged against the pass's median canary
  (or `--artemis-canary-reference`) when the run is written.
- Machine and commit information are pytest-benchmark's own, extended with library
  versions and HE parameters; the dirty flag counts untracked source files too.

Only pytest-benchmark's documented hooks and options are used; plugin state is in
`config.stash`. What it relies on beyond them (the options' dest names, set in
`pytest_configure` before pytest-benchmark reads them, and `--benchmark-json` taking a
path) is pytest-benchmark 5's behaviour, so pyproject pins that major version.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

import pytest

from .harness.canary import flag_run
from .harness.passes import machine_id, shuffled, store_run
from .harness.protocol import TimingProtocol, unnamed_defaults
from .provenance import git_revision, provenance, versions
from .results import clean_stale

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
STORAGE = ROOT / "runs" / "benchmarks"  # git-ignored; `artemis bench --publish` stores into results/benchmarks
DEFAULT_MARKEXPR = "not slow"  # pyproject's addopts
HE_PARAMETERS = {"hybrid": {"poly_modulus_degree": 8192, "coeff_mod_bit_sizes": [60, 40, 60]},
                 "five-level chain": {"poly_modulus_degree": 16384,
                                      "coeff_mod_bit_sizes": [60, 40, 40, 40, 40, 40, 60]}}
_TOKEN = re.compile(r"^[A-Za-z0-9]+$")

DESELECTED = pytest.StashKey[int]()
SAVE_TO = pytest.StashKey[tuple[Path, Path, str]]()  # (temporary JSON, storage folder, label)


def _token(text: str) -> str:
    if not _TOKEN.match(text):
        raise pytest.UsageError(f"expected letters and digits only, got {text!r}")
    return text


def pytest_addoption(parser):
    parser.addoption("--pruned", action="append", metavar="DIR",
                     help="artemis: a directory holding pruned-<method>.pt checkpoints ('artemis prune', "
                          "'artemis demo'); repeatable; default runs/demo/checkpoints (the demo's), else "
                          "results/demo/checkpoints (the published demo's)")
    group = parser.getgroup("artemis", "artemis benchmark passes (see 'artemis bench')")
    group.addoption("--artemis-shuffle", type=int, metavar="SEED", default=None,
                    help="run the cases in an order shuffled by SEED (recorded in the run)")
    group.addoption("--artemis-pass", type=_token, metavar="NAME", default=None,
                    help="this run is pass NAME of an 'artemis bench' run (letters and digits)")
    group.addoption("--artemis-run", type=_token, metavar="STAMP", default=None,
                    help="the 'artemis bench' run this pass belongs to (letters and digits)")
    group.addoption("--artemis-canary-reference", type=float, metavar="SECONDS", default=None,
                    help="judge the canaries against this time instead of the run's median canary")


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


def _storage_dir(value) -> Path:
    text = str(value)
    return Path(text[len("file://"):] if text.startswith("file://") else text)


def run_label(config) -> str:
    """`<revision>-<suite>-<time>-<pid>`, or `<revision>-<suite>-<run>-<pass>` for a pass of `artemis bench`."""
    rev = git_revision(ROOT)
    head = rev[:8] + ("-dirty" if rev.endswith("+dirty") else "") + f"-{suite_label(config)}"
    run, name = config.getoption("artemis_run"), config.getoption("artemis_pass")
    if run and name:
        return f"{head}-{run}-{name}"
    return f"{head}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.addinivalue_line("markers", "quick: part of the quick benchmark subset (pytest --benchmark-only -m quick)")
    config.addinivalue_line("markers", "shuffle_block(*params): cases with equal values of these parameters share "
                                       "a set-up and stay together when --artemis-shuffle reorders the cases")
    config.stash[DESELECTED] = 0
    if not _benchmarking(config) or config.getoption("benchmark_disable", False):
        return
    opt = config.option
    for dest, value in unnamed_defaults(config.invocation_params.args).items():
        setattr(opt, dest, value)
    if str(getattr(opt, "benchmark_storage", "")) in ("", "file://./.benchmarks"):
        opt.benchmark_storage = f"file://{STORAGE}"
    if not (opt.benchmark_save or opt.benchmark_autosave or opt.benchmark_json):
        storage = _storage_dir(opt.benchmark_storage)
        label = run_label(config)
        folder = storage / machine_id()
        folder.mkdir(parents=True, exist_ok=True)
        # named so that bench.results.clean_stale removes it when this process dies before it is stored
        tmp = folder / f".{label}.json.artemis-{os.getpid()}-{secrets.token_hex(4)}.tmp"
        opt.benchmark_json = tmp
        config.stash[SAVE_TO] = (tmp, storage, label)


def pytest_sessionstart(session):
    saving = session.config.stash.get(SAVE_TO, None)
    if saving is not None:
        storage = saving[1]
        clean_stale(storage, *[p for p in storage.iterdir() if p.is_dir()])


def pytest_unconfigure(config):
    """Put the run pytest-benchmark wrote into the storage layout, numbered (never overwriting)."""
    saving = config.stash.get(SAVE_TO, None)
    if saving is None:
        return
    tmp, storage, label = saving
    if tmp.is_file():
        try:
            store_run(storage, label, tmp.read_bytes())
        finally:
            tmp.unlink(missing_ok=True)


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path)
    if path.name.startswith("test_") and path.suffix == ".py" and BENCH in path.parents:
        return None if _benchmarking(config) else True
    return None


def _shuffle_block(item):
    """The key of the set-up a case shares with others (its `shuffle_block` marker's parameters), or None."""
    marker = item.get_closest_marker("shuffle_block")
    callspec = getattr(item, "callspec", None)
    if marker is None or callspec is None:
        return None
    return (item.module.__name__, item.originalname, *(callspec.params.get(p) for p in marker.args))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    if not config.getoption("benchmark_only", False):
        return
    # Deselect (not skip) what is not a benchmark, so the summary counts benchmark cases only.
    keep = [i for i in items if "benchmark" in getattr(i, "fixturenames", ())]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    seed = config.getoption("artemis_shuffle")
    items[:] = keep if seed is None else shuffled(keep, seed, _shuffle_block)


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
        config.stash[DESELECTED] = config.stash.get(DESELECTED, 0) + len(items)


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["artemis"] = provenance() | {"selection": {
        "suite": suite_label(config),
        "markexpr": config.getoption("markexpr", "") or "",
        "keyword": config.getoption("keyword", "") or "",
        "args": list(config.invocation_params.args),
        "selected": len(benchmarks),
        "deselected": config.stash.get(DESELECTED, 0),
        "shuffle_seed": config.getoption("artemis_shuffle"),
    }, "timing_protocol": TimingProtocol.from_options(config.getoption).to_dict()}
    if config.getoption("artemis_pass"):
        output_json["artemis"]["pass"] = {"name": config.getoption("artemis_pass"),
                                          "run": config.getoption("artemis_run")}
    flag_run(output_json, config.getoption("artemis_canary_reference"))
