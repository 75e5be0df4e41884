"""The pruning methods compared: ratios on real pruned checkpoints (model suite), the layer
suite's sparsity sweeps, and the rows and ratios of `pruning_summary.csv` files.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from heconv.errors import InputError

from .cases import SWEEPS, Case

log = logging.getLogger(__name__)

REFERENCE_METHOD = "artemis-diagonal"
BASELINE_METHODS = ("hunter", "dense")
PRUNING_COLUMNS = ("model", "dataset", "input_size", "method", "fraction", "accuracy", "rotations", "accepted")


def last_by(cases: list[Case], key) -> dict:
    """{key(c): c}, the last case winning: files come in the order given, so the newest run when named last."""
    out = {}
    for c in cases:
        out[key(c)] = c
    return out


def accuracy(c: Case) -> dict:
    """The checkpoint's dataset and accuracies the benchmark recorded in extra_info["checkpoint"]."""
    ckpt = c.info.get("checkpoint") or {}
    return {k: ckpt[k] for k in ("dataset", "val_accuracy", "test_accuracy") if k in ckpt}


def chosen_member(c: Case) -> str | None:
    """The family member a checkpoint case's method stands for, where it is another name (hunter: a variant)."""
    variant = (c.info.get("checkpoint") or {}).get("variant")
    return variant if variant not in (None, c.method) else None


def checkpoint_source(c: Case, with_member: bool = True) -> str:
    """Where a checkpoint case's model came from, as its benchmark recorded it (`artemis results
    checkpoints` records the database and, said unless `with_member` is False, the family's member chosen
    on validation).

    >>> def mk(ckpt):
    ...     return Case("x", "model", 8192, 1.0, {}, {"model": "resnet20", "method": "hunter", "checkpoint": ckpt})
    >>> checkpoint_source(mk({"seed": 0, "database": "results/a.sqlite", "variant": "diagonal-no-lasso"}))
    'seed 0 of results/a.sqlite (hunter: diagonal-no-lasso)'
    >>> checkpoint_source(mk({"seed": 0, "git_revision": "1e6afe02c207b7ea"}))
    'seed 0, made at revision 1e6afe02 (database not recorded)'
    """
    ckpt = c.info.get("checkpoint") or {}
    seed = f"seed {ckpt['seed']}" if ckpt.get("seed") is not None else "seed not recorded"
    member = f" ({c.method}: {chosen_member(c)})" if with_member and chosen_member(c) else ""
    if ckpt.get("database"):
        return f"{seed} of {ckpt['database']}{member}"
    rev = (ckpt.get("git_revision") or "")[:8]
    return f"{seed}, made at revision {rev or 'not recorded'} (database not recorded){member}"


def ratio_name(key: str, entry: dict) -> str:
    """A method_ratios key with the family member chosen on validation beside each side that has one.

    >>> ratio_name("hunter/artemis-diagonal", {"members": {"hunter": "diagonal-no-lasso"}})
    'hunter (diagonal-no-lasso)/artemis-diagonal'
    """
    members = entry.get("members", {})
    return "/".join(f"{s} ({members[s]})" if s in members else s for s in key.split("/"))


def checkpoint_models(cases: list[Case], schedule: str = "output-rotation") -> dict[tuple, Case]:
    """Checkpoint model cases under `schedule` by (model, method), the last one winning."""
    return last_by([c for c in cases if c.suite == "model" and c.weights == "checkpoint" and c.schedule == schedule],
                   lambda c: (c.network, c.method))


def method_ratios(cases: list[Case]) -> dict[str, dict[str, dict]]:
    """Per model, rotations and server latency of hunter and dense over artemis-diagonal (checkpoint model cases).

    Each entry also holds both methods' accuracies from extra_info["checkpoint"] when the
    benchmark recorded them. Where a (model, method) ran more than once the last case wins.

    >>> def mk(m, r, t):
    ...     return Case(m, "model", 8192, t, {"key_switches": r},
    ...                 {"model": "resnet20", "method": m, "weights": "checkpoint"})
    >>> r = method_ratios([mk("hunter", 300, 3.0), mk("artemis-diagonal", 100, 1.5), mk("dense", 400, 4.0)])
    >>> h = r["resnet20"]["hunter/artemis-diagonal"]
    >>> h["rotations"], h["latency"], list(r["resnet20"])
    (3.0, 2.0, ['hunter/artemis-diagonal', 'dense/artemis-diagonal'])
    >>> h["source"]["hunter"]
    'seed not recorded, made at revision not recorded (database not recorded)'
    """
    chosen = checkpoint_models(cases)
    out: dict[str, dict[str, dict]] = {}
    for model in sorted({m for m, _ in chosen}, key=str):
        ref = chosen.get((model, REFERENCE_METHOD))
        if ref is None:
            continue
        for other in BASELINE_METHODS:
            o = chosen.get((model, other))
            if o is None:
                continue
            entry = {"rotations": o.rotations / ref.rotations if ref.rotations else None,
                     "latency": o.latency / ref.latency if ref.latency else None}
            acc = {m: accuracy(c) for m, c in ((other, o), (REFERENCE_METHOD, ref)) if accuracy(c)}
            if acc:
                entry["accuracy"] = acc
            sides = ((other, o), (REFERENCE_METHOD, ref))
            entry["source"] = {m: checkpoint_source(c, with_member=False) for m, c in sides}
            members = {m: chosen_member(c) for m, c in sides if chosen_member(c)}
            if members:  # a family's member chosen on validation (hunter: one of its variants)
                entry["members"] = members
            out.setdefault(model, {})[f"{other}/{REFERENCE_METHOD}"] = entry
    return out


def sweep_fraction(c: Case) -> float:
    """The pruned fraction a sweep case varies: diagonals or positions.

    >>> sweep_fraction(Case("c", "layer", 8192, 1.0, {}, {"sweep": "positions", "prune_positions": 0.3}))
    0.3
    """
    return c.prune_positions if c.sweep == "positions" else c.prune_diagonals


def sweep_series(cases: list[Case]) -> dict[tuple[int, str, str, str], list[Case]]:
    """Layer sweep cases by (N, network, layer, sweep kind), each sorted by pruned fraction."""
    series: dict[tuple[int, str, str, str], list[Case]] = {}
    for c in cases:
        if c.suite == "layer" and c.sweep in SWEEPS and c.schedule == "output-rotation":
            series.setdefault((c.n, str(c.network), str(c.layer), c.sweep), []).append(c)
    return {k: sorted(v, key=sweep_fraction) for k, v in sorted(series.items())}


def schedule_gains(cases: list[Case]) -> list[dict]:
    """Cases run under both output-rotation and auto (the same everything else): the
    rotations and latency of each, and output-rotation's over auto's.

    >>> def mk(s, r, t):
    ...     return Case("c", "model", 8192, t, {"key_switches": r},
    ...                 {"model": "resnet18", "method": "synthetic", "requested_schedule": s})
    >>> g = schedule_gains([mk("output-rotation", 5041, 30.0), mk("auto", 1779, 20.0)])
    >>> round(g[0]["rotation_ratio"], 2), g[0]["latency_ratio"]
    (2.83, 1.5)
    """
    def key(c: Case) -> tuple:
        return (c.suite, c.n, str(c.network), str(c.layer), c.method, c.weights, c.sweep,
                c.prune_diagonals, c.prune_positions)

    by = {s: last_by([c for c in cases if c.schedule == s], key) for s in ("output-rotation", "auto")}
    out = []
    for k, auto in by["auto"].items():
        orr = by["output-rotation"].get(k)
        if orr is None:
            continue
        out.append({"suite": auto.suite, "n": auto.n, "network": auto.network, "layer": auto.layer,
                    "method": auto.method, "weights": auto.weights, "prune_diagonals": auto.prune_diagonals,
                    "test_accuracy": (auto.info.get("checkpoint") or {}).get("test_accuracy"),
                    "baby_step": auto.info.get("baby_step"),
                    "rotations_or": orr.rotations, "rotations_auto": auto.rotations,
                    "latency_or": orr.latency, "latency_auto": auto.latency,
                    "rotation_ratio": orr.rotations / auto.rotations if auto.rotations else None,
                    "latency_ratio": orr.latency / auto.latency if auto.latency else None})
    return sorted(out, key=lambda g: (g["suite"] != "model", str(g["network"]), str(g["layer"]), str(g["method"]),
                                      g["prune_diagonals"] or 0.0))


def as_paths(pruning_csv: str | Path | list[str | Path] | tuple | None) -> list[Path]:
    """One path, several, or none, as a list."""
    if pruning_csv is None:
        return []
    if isinstance(pruning_csv, (str, Path)):
        return [Path(pruning_csv)]
    return [Path(p) for p in pruning_csv]


def read_pruning(csv_paths: list[Path]) -> tuple[list[dict], dict[str, float]]:
    """Rows of the pruning_summary.csv files (missing ones left out with a warning), and the rotation
    ratios of each baseline's over artemis-diagonal's most pruned step that kept the accuracy budget."""
    rows = []
    for path in csv_paths:
        if not path.is_file():
            log.warning("%s: pruning summary not found, left out of the report", path)
            continue
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [k for k in PRUNING_COLUMNS if k not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: not a pruning summary, missing columns {missing}")
            rows += list(reader)
    chosen = {}
    for r in rows:
        if r["accepted"] in ("True", "1"):
            key = (r["model"], r["dataset"], r["input_size"], r["method"])
            if key not in chosen or float(r["fraction"]) > float(chosen[key]["fraction"]):
                chosen[key] = r
    ratios = {}
    for (model, dataset, size, method), r in chosen.items():
        if method != REFERENCE_METHOD:
            continue
        for other in BASELINE_METHODS:
            o = chosen.get((model, dataset, size, other))
            if o:
                ratios[f"{model}/{dataset}/{size}: {other} / {REFERENCE_METHOD} rotations"] = (
                    int(o["rotations"]) / int(r["rotations"]))
    return rows, ratios
