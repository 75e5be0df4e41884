"""Our engine beside its peers (bench/test_peers.py, extra_info suite "peer"): per layer shape,
our latency on one and two workers, Orion's, and the ratios ours/Orion.

Latencies are each case's median over its timed rounds (pytest-benchmark's stats), so
one slow round on a busy machine moves them less than the mean.
"""

from __future__ import annotations

import math
from pathlib import Path

from heconv.errors import InputError

from .cases import _read_run
from .compare import last_by

OURS, ORION = "artemis", "orion"
OUR_VARIANTS = ("ours_auto_w1", "ours_auto_w2", "ours_or_w1", "ours_matvec_w1", "ours_ll_w1", "ours_ll_w2")
MEAN_VARIANTS = ("ours_auto_w1", "ours_auto_w2", "ours_matvec_w1", "ours_ll_w1", "ours_ll_w2")
WORST_VARIANTS = ("ours_auto_w1", "ours_ll_w1")  # each run's worst shape on one worker, at level 0 and the last
SHAPE_KEYS = ("poly_modulus_degree", "network", "layer", "c_in", "c_out", "hw", "kernel", "stride")


def _variant(e: dict) -> str | None:
    """Which column a peer case fills: ours_auto_w1, ours_auto_w2, ours_or_w1, ours_matvec_w1, ours_ll_w1,
    ours_ll_w2 (auto at the last level, with the value bound), orion (None: another)."""
    if e.get("peer") == ORION:
        return "orion"
    if e.get("peer") != OURS:
        return None
    sched = {"auto": "auto", "output-rotation": "or", "matvec": "matvec",
             "auto-last-level": "ll"}.get(e.get("requested_schedule") or "")
    workers = e.get("requested_workers", e.get("workers", 1))
    return f"ours_{sched}_w{workers}" if sched and workers in (1, 2) else None


def peer_entries(paths: list[str | Path]) -> list[dict]:
    """The peer cases of the runs, in file order: {variant, key, latency_s, info}."""
    out = []
    for run, path in enumerate(paths):
        for b in _read_run(Path(path))["benchmarks"]:
            e = b.get("extra_info") or {}
            variant = _variant(e) if e.get("suite") == "peer" else None
            if variant is None or "median" not in (b.get("stats") or {}):
                continue
            missing = [k for k in SHAPE_KEYS if k not in e]
            if missing:
                raise InputError(f"{path}: {b.get('name', '?')}: peer case without extra_info {missing}")
            out.append({"run": run, "variant": variant, "key": tuple(e[k] for k in SHAPE_KEYS),
                        "latency_s": float(b["stats"]["median"]), "info": e})
    return out


def peer_runs(paths: list[str | Path]) -> list[dict]:
    """Each run that holds peer cases, on its own: its file, the CPU pytest-benchmark recorded and
    its geometric means ours/Orion. The ratios move with the machine (Lattigo and SEAL gain
    differently from a CPU), so a report that merges runs also gives each one's."""
    out = []
    for path in dict.fromkeys(paths):  # a file named twice is one run
        rows = peer_rows([path])
        if not rows:
            continue
        cpu = (_read_run(Path(path)).get("machine_info") or {}).get("cpu")
        cpu = cpu if isinstance(cpu, dict) else {"brand_raw": cpu}
        out.append({"file": Path(path).name, "cpu": cpu.get("brand_raw") or "not recorded",
                    "means": {v: geomean([r[f"{v}_over_orion"] for r in rows]) for v in MEAN_VARIANTS},
                    "worst": {v: _worst(rows, v) for v in WORST_VARIANTS}})
    return out


def _worst(rows: list[dict], variant: str) -> tuple[float, str] | None:
    """The largest ours/Orion of `variant` over the shapes, with its layer (None: no ratio)."""
    ratios = [(r[f"{variant}_over_orion"], r["layer"]) for r in rows if r[f"{variant}_over_orion"] is not None]
    return max(ratios) if ratios else None


def ratioed(runs: list[dict]) -> list[dict]:
    """The runs of peer_runs that hold an Orion case (a ratio)."""
    return [r for r in runs if any(m is not None for m in r["means"].values())]


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def peer_rows(paths: list[str | Path]) -> list[dict]:
    """One row per layer shape: each variant's median latency and max error, and ours/Orion.

    A shape's cases all come from one run, so that no ratio divides times from two machines: the
    last run (in the order given) that holds Orion's case of the shape, else the last that holds any.
    """
    entries = peer_entries(paths)
    source = {e["key"]: e["run"] for e in entries}  # the last run of each shape, then of each Orion case
    source |= {e["key"]: e["run"] for e in entries if e["variant"] == "orion"}
    chosen = last_by([e for e in entries if e["run"] == source[e["key"]]], lambda p: (p["key"], p["variant"]))
    rows = []
    for key in sorted({k for k, _ in chosen}, key=lambda k: tuple(map(str, k))):
        row = dict(zip(SHAPE_KEYS, key))
        for variant in (*OUR_VARIANTS, "orion"):
            p = chosen.get((key, variant))
            row[f"{variant}_s"] = p["latency_s"] if p else None
            row[f"{variant}_max_abs_error"] = p["info"].get("max_abs_error") if p else None
        w2 = chosen.get((key, "ours_auto_w2"))
        row["ours_auto_w2_workers"] = w2["info"].get("workers") if w2 else None
        orion = chosen.get((key, "orion"))
        row["orion_version"] = orion["info"].get("orion_version") if orion else None
        row["orion_key_switches_estimate"] = orion["info"].get("key_switches_estimate") if orion else None
        row["ours_auto_w1_rotations"] = (chosen[(key, "ours_auto_w1")]["info"].get("rotations")
                                         if (key, "ours_auto_w1") in chosen else None)
        mv = chosen.get((key, "ours_matvec_w1"))
        row["ours_matvec_w1_pmuls"] = mv["info"].get("pmuls") if mv else None
        for variant in OUR_VARIANTS:
            row[f"{variant}_over_orion"] = _ratio(row[f"{variant}_s"], row["orion_s"])
        rows.append(row)
    return rows


def geomean(values: list[float | None]) -> tuple[float, int] | None:
    """(geometric mean, count) of the values that are there; None when none is.

    >>> geomean([2.0, None, 0.5, 1.0])
    (1.0, 3)
    """
    v = [x for x in values if x is not None and x > 0]
    return (math.exp(sum(math.log(x) for x in v) / len(v)), len(v)) if v else None


def _cell(v, spec: str) -> str:
    """`v` formatted, or '-' where the case did not run."""
    return "-" if v is None else format(v, spec)


def _mean_cell(m: tuple[float, int] | None) -> str:
    return "-" if m is None else f"{m[0]:.2f} ({m[1]})"


def _worst_cell(w: tuple[float, str] | None) -> str:
    return "-" if w is None else f"{w[0]:.2f} ({w[1]})"


def peers_section(rows: list[dict], runs: list[dict] | None = None) -> list[str]:
    """report.md's section: ours beside Orion per shape (empty when the runs hold no peer case);
    with `runs` (peer_runs), the CPU behind the table and, for several runs, each one's means."""
    if not rows:
        return []
    md = ["## Beside Orion (bench/test_peers.py)", "",
          "The same weights, bias and input on both sides, N = 8192, primes [60, 40 | 60], scale 2^40; latency "
          "is each case's median timed round in seconds. Ours: `run_layer` under the auto schedule, on one worker "
          "(w1) and on two (w2; in brackets, the workers the layer's split used). Orion: the compiled conv's "
          "forward on its ciphertext. Rotations: ours counted; Orion's key switches estimated from each block's "
          "Galois keys (Lattigo counts nothing).", "",
          "| network | layer | C_in->C_out, HxW, stride | ours w1 | ours w2 | matvec w1 | Orion | ours w1 / Orion "
          "| ours w2 / Orion | matvec w1 / Orion | rotations ours / Orion | max error ours / Orion |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    last = [r for r in rows if r["ours_ll_w1_s"] is not None or r["ours_ll_w2_s"] is not None]
    for r in rows:
        w2 = _cell(r["ours_auto_w2_s"], ".4f") + (f" ({r['ours_auto_w2_workers']})"
                                                  if r["ours_auto_w2_workers"] else "")
        md.append(
            f"| {r['network']} | {r['layer']} | {r['c_in']}->{r['c_out']}, {r['hw']}x{r['hw']}, {r['stride']} "
            f"| {_cell(r['ours_auto_w1_s'], '.4f')} | {w2} | {_cell(r['ours_matvec_w1_s'], '.4f')} "
            f"| {_cell(r['orion_s'], '.4f')} "
            f"| {_cell(r['ours_auto_w1_over_orion'], '.2f')} | {_cell(r['ours_auto_w2_over_orion'], '.2f')} "
            f"| {_cell(r['ours_matvec_w1_over_orion'], '.2f')} "
            f"| {_cell(r['ours_auto_w1_rotations'], 'd')} / {_cell(r['orion_key_switches_estimate'], 'd')} "
            f"| {_cell(r['ours_auto_w1_max_abs_error'], '.1e')} / {_cell(r['orion_max_abs_error'], '.1e')} |")
    if last:
        md += ["", "Ours at the chain's last level (`auto-last-level`: auto planned with the value bound "
               "bench.harness.protocol.VALUE_BOUND, one prime, no rescale; Orion keeps its 2^40 precision):", "",
               "| network | layer | ours w1 | ours w2 | ours w1 / Orion | ours w2 / Orion "
               "| max error ours / Orion |",
               "|---|---|---|---|---|---|---|"]
        md += [f"| {r['network']} | {r['layer']} | {_cell(r['ours_ll_w1_s'], '.4f')} "
               f"| {_cell(r['ours_ll_w2_s'], '.4f')} "
               f"| {_cell(r['ours_ll_w1_over_orion'], '.2f')} | {_cell(r['ours_ll_w2_over_orion'], '.2f')} "
               f"| {_cell(r['ours_ll_w1_max_abs_error'], '.1e')} / {_cell(r['orion_max_abs_error'], '.1e')} |"
               for r in last]
    means = {v: geomean([r[f"{v}_over_orion"] for r in rows]) for v in MEAN_VARIANTS}
    md += ["", "Geometric means over the shapes where both ran: " + "; ".join(
        f"{v.removeprefix('ours_').replace('_', ' ')} / Orion {m[0]:.2f} ({m[1]} shapes)"
        for v, m in means.items() if m is not None) + "." if any(m is not None for m in means.values())
        else "No shape ran on both sides, so no geometric mean."]
    md.append("")
    if runs:
        md += ["Each shape's cases come from one run: the last named that holds Orion's case of it; CPUs: "
               + ", ".join(f"{r['file']} on {r['cpu']}" for r in runs) + ".", ""]
    with_ratio = ratioed(runs or [])
    if len(with_ratio) > 1:
        md += ["Run by run, each run's own geometric means (shapes in brackets). Both sides run in one process "
               "on the same machine in every run, but the ratios move with the CPU: Lattigo (Go) and SEAL do "
               "not gain alike from one CPU to another, so a ratio holds for the CPU it was measured on.", "",
               "| run | CPU | auto w1 | auto w2 | matvec w1 | last level w1 | last level w2 | worst auto w1 "
               "| worst last level w1 |",
               "|---|---|---|---|---|---|---|---|---|"]
        md += [f"| {r['file']} | {r['cpu']} | " + " | ".join(_mean_cell(r["means"][v]) for v in MEAN_VARIANTS)
               + " | " + " | ".join(_worst_cell(r.get("worst", {}).get(v)) for v in WORST_VARIANTS) + " |"
               for r in with_ratio]
        md.append("")
    versions = sorted({r["orion_version"] for r in rows if r["orion_version"]})
    if not versions:
        md += ["No Orion case ran (orion-fhe not installed: give it its own environment, README section "
               "'Beside Orion'), so no ratio.", ""]
    else:
        md += [f"Orion {', '.join(versions)}.", ""]
    rot = [r for r in rows if r["ours_or_w1_s"] is not None]
    if rot:
        md += ["Ours under output-rotation on one worker, where auto picks another schedule: "
               + ", ".join(f"{r['layer']} {r['ours_or_w1_s']:.4f} s ({_cell(r['ours_or_w1_over_orion'], '.2f')} "
                           "of Orion's)" for r in rot) + ".", ""]
    return md
