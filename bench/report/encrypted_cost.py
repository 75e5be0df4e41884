"""What one image costs encrypted, per method and reading: the chosen models' server time, the bytes
their ciphertexts take each way, and the two together at a link rate (report.md, under each model's
pruning verdicts).

Pruning leaves the bytes about as they are, so between methods the server time decides; between
readings the bytes may not: the coefficient algorithm all but removes rotations and sends several
times the bytes. The table puts both side by side. The client's own work (encoding, encryption,
decryption), the link's latency and the Galois keys sent once at setup are not in these records and
are left out of every figure here.
"""

from __future__ import annotations

from collections import Counter

from heconv.traffic import transfer_seconds

from ..experiments.readings import READINGS
from .engines import BANDWIDTHS
from .selection import MethodResult


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def cost_rows(results: dict[str, MethodResult], names: list[str]) -> list[dict]:
    """One row per (method, reading) measured with its bytes, in `names`' then READINGS' order: the
    seeds (those within the budget, as in the ratios), the mean server time and bytes per image, and
    the mean of server time plus transfer per link rate of `BANDWIDTHS`. A family's row stands for
    its chosen member, which is then not listed again.

    >>> r = MethodResult("dense", (0, 0), [0, 1], {0: 9, 1: 9}, encrypted={"fixed": {0: 1.0, 1: 3.0}},
    ...                  traffic={"fixed": {0: 125e6, 1: 125e6}})
    >>> row = cost_rows({"dense": r}, ["dense"])[0]
    >>> row["reading"], row["seeds"], row["server_s"], row["mb"], row["with_transfer"]["100 Mbit/s"]
    ('fixed schedule', [0, 1], 2.0, 125.0, 12.0)
    """
    rows, seen = [], set()
    for name in names:
        r = results.get(name)
        if r is None or (r.method, r.lambdas) in seen:
            continue
        seen.add((r.method, r.lambdas))
        for g in READINGS:
            t, b = r.encrypted.get(g.name, {}), r.traffic.get(g.name, {})
            seeds = [s for s in r.within if s in t and s in b]
            if not seeds:
                continue
            rows.append({"name": name, "method": r.method, "reading": g.label, "seeds": seeds,
                         "server_s": _mean([t[s] for s in seeds]), "mb": _mean([b[s] for s in seeds]) / 1e6,
                         "with_transfer": {k: _mean([t[s] + transfer_seconds(b[s], bps) for s in seeds])
                                           for k, bps in BANDWIDTHS.items()}})
    return rows


def _label(row: dict) -> str:
    return row["name"] if row["name"] == row["method"] else f"{row['name']} ({row['method']})"


def fastest(rows: list[dict], key, what: str, noise: float | None = None) -> str:
    """The row of the least `key`, with every row that ties with it: within the timings' noise floor
    `noise` where given ((b - a) / (b + a) at most it, the floor's own measure), else at the table's
    precision (2 decimals).

    >>> rows = [{"name": n, "method": n, "reading": "r", "s": v} for n, v in (("a", 0.104), ("b", 0.101), ("c", 2))]
    >>> fastest(rows, lambda r: r["s"], "by server time alone")
    'by server time alone: b under r (0.10 s), tied with a under r'
    >>> fastest(rows[:2] + [dict(rows[2], s=0.11)], lambda r: r["s"], "alone", noise=0.05)
    'alone: b under r (0.10 s), within the 5.0% noise floor of a under r, c under r'
    """
    ranked = sorted(rows, key=key)
    least = key(ranked[0])
    best = f"{least:.2f}"
    if noise is None:
        ties, words = [r for r in ranked[1:] if f"{key(r):.2f}" == best], "tied with"
    else:
        ties = [r for r in ranked[1:] if (key(r) - least) / (key(r) + least) <= noise]
        words = f"within the {noise:.1%} noise floor of"
    tied = f", {words} " + ", ".join(f"{_label(r)} under {r['reading']}" for r in ties) if ties else ""
    return f"{what}: {_label(ranked[0])} under {ranked[0]['reading']} ({best} s){tied}"


def cost_section(results: dict[str, MethodResult], names: list[str], noise: float | None = None) -> list[str]:
    """Markdown: the rows of `cost_rows` as a table, and the fastest row by server time and at each
    link rate among the rows measured on the seeds most rows share, with those within the timings'
    noise floor `noise` of it (`fastest`); nothing when no chosen model recorded its bytes.

    >>> r = MethodResult("dense", (0, 0), [0], {0: 9}, encrypted={"fixed": {0: 1.0}}, traffic={"fixed": {0: 125e6}})
    >>> md = cost_section({"dense": r}, ["dense"])
    >>> md[4], md[6]
    ('| dense | fixed schedule | 0 | 1.00 | 125.0 | 2.00 | 11.00 |', 'Fastest by server time alone: dense under fixed \
schedule (1.00 s); with transfer at 1 Gbit/s: dense under fixed schedule (2.00 s); with transfer at 100 Mbit/s: \
dense under fixed schedule (11.00 s).')
    """
    rows = cost_rows(results, names)
    if not rows:
        return []
    rates = list(BANDWIDTHS)
    md = ["Per image, encrypted (the chosen models of the methods compared above; means over the seeds measured "
          "within the budget; transfer at the link rate with no latency; the client's own work and the Galois keys "
          "sent once at setup left out):", "",
          "| method | reading | seeds | server s | MB both ways | "
          + " | ".join(f"server + transfer at {k}, s" for k in rates) + " |",
          "|---|---|---|---|---|" + "---|" * len(rates)]
    md += [f"| {_label(row)} | {row['reading']} | {', '.join(map(str, row['seeds']))} | {row['server_s']:.2f} | "
           f"{row['mb']:.1f} | " + " | ".join(f"{row['with_transfer'][k]:.2f}" for k in rates) + " |"
           for row in rows]
    # means over different seeds are not ranked against each other
    common = Counter(tuple(r["seeds"]) for r in rows).most_common(1)[0][0]
    ranked = [r for r in rows if tuple(r["seeds"]) == common]
    parts = [fastest(ranked, lambda r: r["server_s"], "by server time alone", noise)]
    parts += [fastest(ranked, lambda r, k=k: r["with_transfer"][k], f"with transfer at {k}", noise) for k in rates]
    apart = (f" Rows on other seeds than {', '.join(map(str, common))} are not ranked."
             if len(ranked) < len(rows) else "")
    return md + ["", "Fastest " + "; ".join(parts) + "." + apart, ""]
