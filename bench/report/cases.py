"""Benchmark runs read into cases: which run a report reads by default, one `Case` a layer or
model benchmark, the primitives' unit costs, and the tidy table of the cases (report.csv).

A run is one pytest-benchmark JSON file. Runs live in pytest-benchmark's storage layout,
results/benchmarks/<machine id>/<NNNN>_<label>.json, whose top-level "artemis" key holds the
provenance and the selection ({"suite": "full" | "quick" | "filtered", ...}), or as the older
flat files results/benchmarks/bench-<UTC time>-<revision>-<suite>.json, labelled by name.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from heconv.algorithms import ALGORITHMS
from heconv.errors import InputError

from ..harness.passes import fitted_seconds

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

OPS = ("key_switches", "pmuls", "adds", "plain_adds", "rescales")
PRIMITIVE_OF = {"key_switches": "rotation", "pmuls": "pmul", "adds": "add", "plain_adds": "plain_add",
                "rescales": "rescale"}
SWEEPS = ("diagonals", "positions")
SUITE_LABELS = ("full", "quick", "filtered")
CSV_COLUMNS = ("name", "suite", "network", "layer", "method", "schedule", "weights", "sweep", "prune_diagonals",
               "prune_positions", "poly_modulus_degree", "latency_s", "cpu_s", *OPS, "rotation_share",
               "predicted_rotation_only_s", "predicted_full_s")
MAKE_A_RUN = "pytest --benchmark-only"
_LEGACY_NAME = re.compile(r"^bench-(?P<stamp>\d{8}T\d{6}Z)-.*-(?P<suite>full|quick)\.json$")
# pytest-benchmark storage names, <NNNN>_<label>.json, the plugin's label being <revision>-<suite>-<time>-<pid>
_STORAGE_NAME = re.compile(r"^\d{4}_[^-]+-(?P<suite>full|quick|filtered)(?:-[^/]*)?\.json$")


@dataclass
class Case:
    """One layer or model case; the last three fields are filled in by the fits."""

    name: str
    suite: str  # layer | model
    n: int
    latency: float
    counts: dict[str, int]
    info: dict
    rotation_share: float = float("nan")
    predicted_rotation_only_s: float = float("nan")
    predicted_full_s: float = float("nan")

    @property
    def network(self) -> str | None:
        """The network a layer was taken from, or the model a model case ran."""
        if self.suite == "model":
            return self.info.get("model", self.info.get("network"))
        return self.info.get("network", "resnet18")

    @property
    def layer(self) -> str | None:
        return self.info.get("layer") if self.suite == "layer" else None

    @property
    def method(self) -> str:
        return self.info.get("method") or "synthetic"

    @property
    def schedule(self) -> str:
        """The rotation schedule the case asked for (runs before schedules: output-rotation)."""
        return self.info.get("requested_schedule") or "output-rotation"

    @property
    def weights(self) -> str:
        return self.info.get("weights") or "synthetic"

    @property
    def sweep(self) -> str | None:
        return self.info.get("sweep") or None

    @property
    def prune_diagonals(self) -> float:
        return float(self.info.get("prune_diagonals") or 0.0)

    @property
    def prune_positions(self) -> float:
        return float(self.info.get("prune_positions") or 0.0)

    @property
    def rotations(self) -> int:
        """Rotations counted; older files only have key switches, which equal them in this engine."""
        c = self.info.get("counts") or {}
        return int(c.get("rotations", self.counts.get("key_switches", 0)))

    @property
    def kind(self) -> str:
        """What the case runs, for grouping: 'whole model', or a layer's kernel and stride.

        >>> Case("c", "layer", 8192, 1.0, {}, {"kernel": 1, "stride": 2}).kind
        '1x1 conv, stride 2'
        >>> Case("c", "layer", 8192, 1.0, {}, {}).kind
        'layer'
        """
        if self.suite == "model":
            return "whole model"
        k, s = self.info.get("kernel"), self.info.get("stride")
        if k is None:
            return "layer"
        return f"{k}x{k} conv" + (f", stride {s}" if s not in (None, 1) else "")

    @property
    def cpu(self) -> float | None:
        """Process CPU seconds of the timed part (cpu_s; server_cpu_s for models); None in older runs."""
        v = self.info.get("server_cpu_s" if self.suite == "model" else "cpu_s")
        return None if v is None else float(v)

    @property
    def wall_over_cpu(self) -> float | None:
        """Wall time over CPU time of the same timed part (a busy machine shows well above 1).

        >>> Case("c", "layer", 8192, 3.0, {}, {"latency_s": 2.0, "cpu_s": 1.0}).wall_over_cpu
        2.0
        """
        cpu = self.cpu
        if not cpu or cpu <= 0:
            return None
        wall = self.latency if self.suite == "model" else float(self.info.get("latency_s", self.latency))
        return wall / cpu


def _case(path: Path, b: dict, e: dict, stats: dict) -> Case:
    name = b.get("name", "?")
    suite = e.get("suite") or ("model" if "model" in e else "layer")
    if suite not in ("layer", "model"):
        raise InputError(f"{path}: {name}: extra_info suite must be 'layer' or 'model', got {suite!r}")
    if e.get("sweep") not in (None, *SWEEPS):
        raise InputError(f"{path}: {name}: extra_info sweep must be one of {SWEEPS} or null, got {e['sweep']!r}")
    if not isinstance(e["counts"], dict):
        raise InputError(  # noqa: TRY004 - a malformed file is bad input like any other, reported the same way
            f"{path}: {name}: extra_info counts must be an object, got {type(e['counts']).__name__}")
    if "poly_modulus_degree" not in e:
        raise InputError(f"{path}: {name}: extra_info has counts but no poly_modulus_degree")
    if suite == "model" and "server_s" not in e:
        raise InputError(f"{path}: {name}: model case without extra_info server_s (the latency fitted)")
    # a layer's least round; a model's least server time per image (the client's refresh is simulated)
    latency = fitted_seconds({"stats": stats, "extra_info": e})
    if not math.isfinite(latency) or latency <= 0:  # it would be fitted as a measurement
        raise InputError(f"{path}: {name}: latency {latency!r} s; expected a finite time > 0")
    return Case(name, suite, int(e["poly_modulus_degree"]), latency,
                {k: int(e["counts"].get(k, 0)) for k in OPS}, e)


def _read_run(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: a folder; expected a pytest-benchmark JSON file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise InputError(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    return data


def run_suite(path: str | Path, data: dict) -> str | None:
    """The run's suite label: artemis.selection.suite, else the label in the file's name (a flat
    file's suffix, or a stored run's <revision>-<suite>-... label, e.g. runs moved in from flat
    files); None when neither says.

    >>> run_suite("x/0004_ab-full.json", {"artemis": {"selection": {"suite": "filtered"}}})
    'filtered'
    >>> run_suite("bench-20260101T000000Z-aa-quick.json", {}), run_suite("0003_72598e67-full-20261124T022242Z.json", {})
    ('quick', 'full')
    >>> run_suite("0001_x.json", {}) is None
    True
    """
    selection = (data.get("artemis") or {}).get("selection") or {}
    if selection.get("suite") in SUITE_LABELS:
        return selection["suite"]
    name = Path(path).name
    m = _LEGACY_NAME.match(name) or _STORAGE_NAME.match(name)
    return m["suite"] if m else None


def run_time(path: str | Path, data: dict) -> datetime:
    """When the run was made: its "datetime" (UTC when it names no zone), else a flat file's name, else mtime."""
    stamp = data.get("datetime")
    if isinstance(stamp, str):
        try:
            t = datetime.fromisoformat(stamp)
            return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
        except ValueError:
            log.warning("%s: datetime %r is not ISO 8601; ordered by its name or file time", path, stamp)
    m = _LEGACY_NAME.match(Path(path).name)
    if m:
        return datetime.strptime(m["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(Path(path).stat().st_mtime, tz=timezone.utc)


def default_benchmark_files(*folders: str | Path) -> list[Path]:
    """The run a report reads by default: [the newest full run] anywhere under the folders, by its datetime.

    Quick and filtered runs (and files that do not say) are never chosen, nor the single passes
    of `artemis bench` (their merged run is); older full runs stay on disk but would repeat the
    same cases, so they are read only when named.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "Linux-CPython-3.11-64bit").mkdir()
    >>> runs = {"bench-20260101T000000Z-aa-full.json": {},
    ...         "bench-20260301T000000Z-bb-quick.json": {},
    ...         "Linux-CPython-3.11-64bit/0002_cc-full.json": {"datetime": "2026-02-01T00:00:00+00:00",
    ...             "artemis": {"selection": {"suite": "full"}}},
    ...         "Linux-CPython-3.11-64bit/0003_dd.json": {"datetime": "2026-04-01T00:00:00",
    ...             "artemis": {"selection": {"suite": "filtered"}}}}
    >>> for name, run in runs.items():
    ...     _ = (d / name).write_text(json.dumps({"benchmarks": [], **run}))
    >>> [p.name for p in default_benchmark_files(d)]
    ['0002_cc-full.json']
    """
    full = []
    for path in sorted(p for folder in folders for p in Path(folder).rglob("*.json")):
        try:
            data = _read_run(path)
        except ValueError as e:
            log.warning("%s; skipped", e)
            continue
        suite = run_suite(path, data)
        if (data.get("artemis") or {}).get("pass"):
            log.debug("%s: one pass of an 'artemis bench' run, not a default run", path)
        elif suite == "full":
            full.append((run_time(path, data), str(path), path))
        else:
            log.debug("%s: suite %s, not a default run", path, suite or "not recorded")
    if not full:
        raise InputError(f"no full benchmark run under {', '.join(map(str, folders))} (quick and filtered runs are "
                         f"read only when "
                         f"named): make one with '{MAKE_A_RUN}', or name the run(s) to read")
    return [max(full)[2]]


def load_benchmarks(paths: list[str | Path]) -> tuple[list[Case], dict[tuple[int, int, str], float], list[dict]]:
    """Cases with counts, primitive unit costs {(N, level, primitive): seconds}, and each file's origin.

    An origin is the file's name, its "artemis" provenance and selection, its suite label
    (None when the file does not say), its datetime and how many cases of each kind it holds.
    """
    if not paths:
        raise InputError(f"no benchmark JSON given (run: {MAKE_A_RUN})")
    cases, units, origins = [], {}, []
    for path in paths:
        path = Path(path)
        data = _read_run(path)
        tally = {"layer_cases": 0, "model_cases": 0, "primitive_cases": 0, "peer_cases": 0}
        for b in data["benchmarks"]:
            try:
                e, stats = b["extra_info"], b["stats"]
            except (KeyError, TypeError):
                raise InputError(f"{path}: benchmark entry without extra_info/stats: {str(b)[:80]}") from None
            if "primitive" in e:
                unit = float(stats["median"])
                if not math.isfinite(unit) or unit <= 0:
                    raise InputError(f"{path}: primitive {e['primitive']}: median {unit!r} s; expected a finite "
                                     "time > 0")
                units[(int(e["poly_modulus_degree"]), int(e["level"]), e["primitive"])] = unit
                tally["primitive_cases"] += 1
            elif e.get("suite") == "peer":  # beside a peer engine (bench.report.peers), not fitted
                tally["peer_cases"] += 1
            elif "counts" in e:
                cases.append(_case(path, b, e, stats))
                tally[f"{cases[-1].suite}_cases"] += 1
        origins.append({"file": path.name, **(data.get("artemis") or {}), "suite": run_suite(path, data),
                        "datetime": data.get("datetime"), **tally})
    if not cases and not units:
        peers = " (peer cases only: name a full run beside them)" if any(o["peer_cases"] for o in origins) else ""
        raise InputError(f"no benchmark with counts or primitives in {[str(p) for p in paths]}{peers}")
    return cases, units, origins


def require_fit_inputs(paths: list[str | Path], cases: list[Case], units: dict) -> None:
    """Refuse runs that lack what the report needs: layer or model cases with counts, and primitive cases."""
    names = ", ".join(str(p) for p in paths)
    if not cases:
        raise InputError(f"{names}: no layer or model cases with counts (extra_info 'counts'): the fits need the "
                         f"layer or model suite; make a full run with '{MAKE_A_RUN}'")
    if not units:
        raise InputError(f"{names}: no primitive cases (extra_info 'primitive'): the full model with measured unit "
                         f"costs needs the primitives suite (bench/test_primitives.py); make a full run with "
                         f"'{MAKE_A_RUN}'")


def tidy_table(cases: list[Case]) -> pd.DataFrame:
    """One row a case with the columns CSV_COLUMNS, sorted so the same input gives the same file.

    `network` is the network a layer case came from, or the model a model case ran; `cpu_s` is
    the process CPU time of the timed part (the server's for a model case) beside the wall
    time `latency_s`; `layer`, `sweep` and `cpu_s` (runs before CPU timing) are empty where
    they do not apply.
    """
    import pandas as pd

    rows = [{"name": c.name, "suite": c.suite, "network": c.network, "layer": c.layer, "method": c.method,
             "schedule": c.schedule,
             "weights": c.weights, "sweep": c.sweep, "prune_diagonals": c.prune_diagonals,
             "prune_positions": c.prune_positions, "poly_modulus_degree": c.n, "latency_s": c.latency,
             "cpu_s": c.cpu, **{op: c.counts[op] for op in OPS}, "rotation_share": c.rotation_share,
             "predicted_rotation_only_s": c.predicted_rotation_only_s, "predicted_full_s": c.predicted_full_s}
            for c in cases]
    df = pd.DataFrame(rows, columns=list(CSV_COLUMNS))
    key = ["suite", "poly_modulus_degree", "network", "layer", "method", "schedule", "weights", "sweep",
           "prune_diagonals",
           "prune_positions", "name", "latency_s"]
    return df.sort_values(key, na_position="first", kind="mergesort").reset_index(drop=True)


def is_coefficient(c: Case) -> bool:
    """Whether a case ran an algorithm that changes the protocol's traffic (the coefficient algorithm), by
    its recorded algorithm or, in older records, its schedule label (heconv.algorithms)."""
    alg = ALGORITHMS.get(c.info.get("algorithm")) or ALGORITHMS.get(c.schedule)
    return alg is not None and alg.changes_traffic
