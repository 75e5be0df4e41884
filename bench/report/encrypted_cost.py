"""What one image costs encrypted, per method and reading: the chosen models' server time, the bytes
their ciphertexts take each way, and the two together at a link rate (report.md, under each model's
pruning verdicts).

Server time alone favours the coefficient algorithm, which all but removes rotations but sends
several times the bytes; at a slow link the transfer decides. The client's own work (encoding,
encryption, decryption) is not in these records and is left out of every figure here.
"""

from __future__ import annotations

from heconv.traffic import transfer_seconds

from ..experiments.readings import READINGS
from .engines import BANDWIDTHS
from .selection import MethodResult


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def cost_rows(results: dict[str, MethodResult], names: list[str]) -> list[dict]:
    """One row per (method, reading) measured with its bytes, in `names`' then READINGS' order: the
    seeds, the mean server time and bytes per image, and the mean of server time plus transfer per
    link rate of `BANDWIDTHS`.

    >>> r = MethodResult("dense", (0, 0), [0, 1], {0: 9, 1: 9}, encrypted={"fixed": {0: 1.0, 1: 3.0}},
    ...                  traffic={"fixed": {0: 125e6, 1: 125e6}})
    >>> row = cost_rows({"dense": r}, ["dense"])[0]
    >>> row["reading"], row["seeds"], row["server_s"], row["mb"], row["with_transfer"]["100 Mbit/s"]
    ('fixed schedule', [0, 1], 2.0, 125.0, 12.0)
    """
    rows, seen = [], set()
    for name in names:
        r = results.get(name)
        if r is None or (r.method, r.lambdas) in seen:  # a family's row stands for its chosen member's
            continue
        seen.add((r.method, r.lambdas))
        for g in READINGS:
            t, b = r.encrypted.get(g.name, {}), r.traffic.get(g.name, {})
            seeds = sorted(s for s in t if s in b)
            if not seeds:
                continue
            rows.append({"name": name, "method": r.method, "reading": g.label, "seeds": seeds,
                         "server_s": _mean([t[s] for s in seeds]), "mb": _mean([b[s] for s in seeds]) / 1e6,
                         "with_transfer": {k: _mean([t[s] + transfer_seconds(b[s], bps) for s in seeds])
                                           for k, bps in BANDWIDTHS.items()}})
    return rows


def cost_section(results: dict[str, MethodResult], names: list[str]) -> list[str]:
    """Markdown: the rows of `cost_rows` as a table, and the fastest row by server time and at each
    link rate; nothing when no chosen model recorded its bytes."""
    rows = cost_rows(results, names)
    if not rows:
        return []
    rates = list(BANDWIDTHS)
    md = ["Per image, encrypted (the chosen models; means over the seeds measured; the client's own work left out):",
          "", "| method | reading | seeds | server s | MB both ways | " + " | ".join(f"server + transfer at {k}, s"
                                                                         for k in rates) + " |",
          "|---|---|---|---|---|" + "---|" * len(rates)]
    for row in rows:
        name = row["name"] if row["name"] == row["method"] else f"{row['name']} ({row['method']})"
        md.append(f"| {name} | {row['reading']} | {', '.join(map(str, row['seeds']))} | {row['server_s']:.2f} | "
                  f"{row['mb']:.1f} | " + " | ".join(f"{row['with_transfer'][k]:.2f}" for k in rates) + " |")

    def best(key, what: str) -> str:
        b = min(rows, key=key)
        return f"{what}: {b['name']} under {b['reading']} ({key(b):.2f} s)"
    fastest = [best(lambda r: r["server_s"], "by server time alone")]
    fastest += [best(lambda r, k=k: r["with_transfer"][k], f"with transfer at {k}") for k in rates]
    return md + ["", "Fastest " + "; ".join(fastest) + ".", ""]
