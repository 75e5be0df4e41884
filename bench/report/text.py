"""Number and name formatting shared by report.md and the README block, and strict-JSON cleaning."""

from __future__ import annotations

import math

from ..experiments.readings import READINGS


def fmt(x: float | None, spec: str) -> str:
    """`x` formatted, or 'n/a' for None, NaN and infinities.

    >>> fmt(0.25, ".1%"), fmt(float("nan"), ".4f"), fmt(None, ".2f")
    ('25.0%', 'n/a', 'n/a')
    """
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def finite(obj):
    """NaN and infinities as null, so cost_model.json is strict JSON (R^2 of one case is undefined)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def accuracy_text(acc: dict) -> str:
    """'test 84.00%, val 85.50% (fashion-mnist)' from a checkpoint's recorded accuracies.

    >>> accuracy_text({"dataset": "cifar10", "val_accuracy": 85.5})
    'val 85.50% (cifar10)'
    """
    if not acc:
        return ""
    parts = [f"{k.replace('_accuracy', '')} {float(acc[k]):.2f}%"
             for k in ("test_accuracy", "val_accuracy") if k in acc]
    return ", ".join(parts) + (f" ({acc['dataset']})" if "dataset" in acc else "")


def spread(lo: float, median: float, hi: float, spec: str = ".2f") -> str:
    """'0.89' when all equal, else 'median 0.33, 0.22 to 0.50'.

    >>> spread(0.5, 0.5, 0.5), spread(0.22, 0.33, 0.5)
    ('0.50', 'median 0.33, 0.22 to 0.50')
    """
    if fmt(lo, spec) == fmt(hi, spec):
        return fmt(median, spec)
    return f"median {fmt(median, spec)}, {fmt(lo, spec)} to {fmt(hi, spec)}"


def ratio_sides(r: dict, name: str) -> str:
    """A ratio's name with the method standing for each side where validation chose a family's member.

    >>> ratio_sides({"num": "hunter", "num_method": "diagonal-no-lasso", "num_variants": 1, "den": "a",
    ...         "den_method": "a"}, "hunter / a")
    'hunter (diagonal-no-lasso, the best of 1 variant run) / a'
    >>> ratio_sides({"num": "hunter", "num_method": "x", "num_variants": 4, "num_distinct": 3, "den": "a",
    ...         "den_method": "a"}, "hunter / a")
    'hunter (x, the best of 4 variants run, 3 distinct) / a'
    """
    if "num_method" not in r:  # a summary written before the methods were recorded
        return name

    def side(family: str, method: str, variants: int | None, distinct: int | None) -> str:
        if method == family:
            return family
        apart = f", {distinct} distinct" if distinct is not None and distinct != variants else ""
        return f"{family} ({method}, the best of {variants} variant{'s' * (variants != 1)} run{apart})"
    return (f"{side(r['num'], r['num_method'], r.get('num_variants'), r.get('num_distinct'))} / "
            f"{side(r['den'], r['den_method'], r.get('den_variants'), r.get('den_distinct'))}")


def seeds_text(n: int) -> str:
    """'1 seed', '3 seeds'."""
    return f"{n} seed" + ("s" if n != 1 else "")


def encrypted_parts(enc: dict) -> list[str]:
    """A ratio's encrypted readings (bench.report.experiments.encrypted_ratios), one part each in READINGS'
    order: the rotations where they are the chosen step's, the server time, and its seeds.

    >>> encrypted_parts({"coefficient": {"server_time": 1.02, "seeds": [0]},
    ...                  "fixed": {"rotations": 1.5, "server_time": 1.6, "seeds": [0, 1, 2]}})
    ['fixed schedule: rotations 1.50x, server time 1.60x (3 seeds)', 'coefficient encoding: server time 1.02x (1 seed)']
    """
    out = []
    for g in READINGS:
        e = enc.get(g.name)
        if e:
            rot = f"rotations {e['rotations']:.2f}x, " if "rotations" in e else ""
            out.append(f"{g.label}: {rot}server time {e['server_time']:.2f}x ({seeds_text(len(e['seeds']))})")
    return out

