"""The report's figures: latency against counts per N (latency_fits_N<N>.png), the sparsity
sweeps (sweeps.png) and the accuracy-rotation trade-off of the pruning methods (pareto.png).

Colours name pruning methods the same way in every figure; legends sit outside the axes.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from ..results import atomic_write
from .compare import sweep_fraction
from .fits import NFit
from .text import fmt, seeds_text

METHOD_ORDER = ("synthetic", "dense", "hunter", "artemis-diagonal", "artemis-positional", "artemis-both",
                "unstructured")
SUITE_MARKERS = {"layer": "o", "model": "s"}
SWEEP_STYLES = {"diagonals": ("o", "-"), "positions": ("s", "--")}


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # "tight" keeps a legend outside the axes
    plt.close(fig)
    return buf.getvalue()


def _palette(n: int) -> list:
    """n distinct colours: tab10, tab20, else evenly spaced along a wide colour map."""
    import matplotlib

    if n <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(n)]
    return [matplotlib.colormaps["nipy_spectral"](0.05 + 0.9 * i / (n - 1)) for i in range(n)]


def method_colours(methods) -> dict[str, tuple]:
    """A colour a method, stable across figures: known methods in METHOD_ORDER's order, then others by name.

    >>> c = method_colours({"hunter", "zeta"})
    >>> sorted(c), c["hunter"] == method_colours({"hunter"})["hunter"]
    (['hunter', 'zeta'], True)
    """
    order = list(METHOD_ORDER) + sorted(set(methods) - set(METHOD_ORDER))
    palette = _palette(max(10, len(order)))
    return {m: palette[i] for i, m in enumerate(order) if m in methods}


def _minor_label(v: float, _pos=None) -> str:
    """Plain-number label for the minor ticks at 2 and 5 of a decade, none for the others."""
    m = v / 10 ** math.floor(math.log10(v) + 1e-9)
    return f"{v:g}" if round(m) in (2, 5) and abs(m - round(m)) < 1e-6 else ""


def _log_log(ax) -> None:
    """Both axes logarithmic with plain-number labels; minor ticks (2, 5) labelled on short ranges only.
    Call it after plotting, so the limits it reads are the final ones."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        short = lo > 0 and math.log10(hi / lo) <= 2
        axis.set_minor_formatter(FuncFormatter(_minor_label) if short else NullFormatter())
    ax.grid(True, which="major", alpha=0.25)


def _outside_legend(fig, handles) -> None:
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)


def fits_figure(f: NFit, path: Path) -> None:
    """Log-log latency against rotations, one panel for layers and one for whole models (with the
    rotation-only fit drawn), and latency against the full count model; colour = method, marker = suite."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    groups = [(title, [c for c in f.fitted if c.suite == suite])
              for title, suite in (("layers", "layer"), ("whole models", "model"))]
    groups = [(title, g) for title, g in groups if g]
    fig, axes = plt.subplots(1, len(groups) + 1, figsize=(5.0 * (len(groups) + 1), 4.4), squeeze=False)
    axes = list(axes[0])
    colours = method_colours({c.method for c in f.fitted})
    a, b = f.rot.coef["a"], f.rot.coef["b"]
    for ax, (title, group) in zip(axes, groups):
        for method, colour in colours.items():
            pts = [c for c in group if c.method == method and c.counts["key_switches"] > 0]
            if pts:
                ax.scatter([c.counts["key_switches"] for c in pts], [c.latency for c in pts], s=16, alpha=0.8,
                           color=colour, marker=SUITE_MARKERS[pts[0].suite], edgecolors="none")
        ks = [c.counts["key_switches"] for c in group if c.counts["key_switches"] > 0]
        if ks:
            xs = np.geomspace(min(ks), max(ks), 100)
            ys = a * xs + b
            ax.plot(xs[ys > 0], ys[ys > 0], "k-", lw=1)
        _log_log(ax)
        ylabel = "server latency (s)" if group[0].suite == "model" else "latency (s)"
        ax.set(xlabel="rotations (key switches)", ylabel=ylabel, title=f"N = {f.n}, {title}: latency vs rotations")
    ax = axes[-1]
    pts = [c for c in f.fitted if c.predicted_full_s > 0]
    for method, colour in colours.items():
        for suite, marker in SUITE_MARKERS.items():
            sel = [c for c in pts if c.method == method and c.suite == suite]
            if sel:
                ax.scatter([c.predicted_full_s for c in sel], [c.latency for c in sel], s=16, alpha=0.8,
                           color=colour, marker=marker, edgecolors="none")
    if pts:
        vals = [c.predicted_full_s for c in pts] + [c.latency for c in pts]
        lo, hi = min(vals) / 1.2, max(vals) * 1.2
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    _log_log(ax)
    ax.set(xlabel="full count model, fitted unit costs (s)", ylabel="measured latency (s)",
           title=f"N = {f.n}: latency vs full count model")
    handles = [Line2D([0], [0], marker="o", ls="", color=c, label=m) for m, c in colours.items()]
    handles += [Line2D([0], [0], marker=SUITE_MARKERS[s], ls="", color="0.4", label=f"{s} suite")
                for s in ("layer", "model") if any(c.suite == s for c in f.fitted)]
    handles += [Line2D([0], [0], color="k", lw=1, label=(f"rotation-only fit: R^2 {fmt(f.rot.r2, '.4f')}, "
                                                         f"worst {fmt(f.rot.max_rel_err, '.1%')}")),
                Line2D([0], [0], color="k", ls="--", lw=1, label=(f"y = x; full model R^2 {fmt(f.full.r2, '.4f')}, "
                                                                  f"worst {fmt(f.full.max_rel_err, '.1%')}"))]
    _outside_legend(fig, handles)
    atomic_write(path, _png(fig))


def sweeps_figure(series: dict, path: Path) -> None:
    """Rotations and latency against the pruned fraction, a row of two panels per (N, network): a
    colour per layer, solid lines with circles for diagonal sweeps, dashed with squares for positions."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    rows = sorted({(n, net) for n, net, _, _ in series})
    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 3.6 * len(rows)), squeeze=False)
    for (n, net), (ax_rot, ax_lat) in zip(rows, axes):
        mine = {k: cs for k, cs in series.items() if k[:2] == (n, net)}
        layers = sorted({k[2] for k in mine})
        colour = dict(zip(layers, _palette(len(layers))))
        for (_, _, layer, kind), cs in mine.items():
            marker, ls = SWEEP_STYLES[kind]
            fr = [sweep_fraction(c) for c in cs]
            ax_rot.plot(fr, [c.rotations for c in cs], marker=marker, ls=ls, ms=4, color=colour[layer])
            ax_lat.plot(fr, [c.latency for c in cs], marker=marker, ls=ls, ms=4, color=colour[layer])
        ax_rot.set(xlabel="pruned fraction", ylabel="rotations", title=f"{net}, N = {n}: rotations vs pruned fraction")
        ax_lat.set(xlabel="pruned fraction", ylabel="latency (s)", title=f"{net}, N = {n}: latency vs pruned fraction")
        for ax in (ax_rot, ax_lat):
            ax.grid(True, alpha=0.2)
        handles = [Line2D([0], [0], color=colour[layer], lw=2, label=layer) for layer in layers]
        handles += [Line2D([0], [0], color="0.3", marker=m, ls=ls, label=f"{kind} pruned")
                    for kind, (m, ls) in SWEEP_STYLES.items() if any(k[3] == kind for k in mine)]
        ax_lat.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False, fontsize=8)
    atomic_write(path, _png(fig))


def _true(v) -> bool:
    """A chosen/accepted flag as the database (1) or a CSV ("1", "True") gives it."""
    return str(v).strip().lower() in ("1", "true")


def pareto_figure(rows: list[dict], path: Path) -> None:
    """Validation accuracy against rotations, one panel a (model, dataset, input size), a line a method."""
    import matplotlib.pyplot as plt

    panels = sorted({(r["model"], r["dataset"], r["input_size"]) for r in rows},
                    key=lambda k: (k[0], k[1], int(k[2]) if k[2].isdigit() else k[2]))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    colours = method_colours({r["method"] for r in rows})
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, 4.2 * nrows), squeeze=False)
    for ax, (model, dataset, size) in zip(axes.flat, panels):
        sel = [r for r in rows if (r["model"], r["dataset"], r["input_size"]) == (model, dataset, size)]
        # dense last and largest: its one point often lies on another method's first step
        for method in sorted({r["method"] for r in sel}, key=lambda m: (m == "dense", m)):
            mine = [r for r in sel if r["method"] == method]
            pts = sorted((int(r["rotations"]), float(r["accuracy"])) for r in mine)
            dense = method == "dense"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "D" if dense else "o-", color=colours[method],
                    label=method, ms=9 if dense else 5, zorder=4 if dense else 2,
                    mec="black" if dense else colours[method])
            chosen = [(int(r["rotations"]), float(r["accuracy"])) for r in mine if _true(r.get("chosen"))]
            if chosen:
                labelled = any(line.get_label() == "chosen step" for line in ax.lines)
                ax.plot([p[0] for p in chosen], [p[1] for p in chosen], "*", ms=15, mfc="none", mec="black",
                        zorder=5, label=None if labelled else "chosen step")
        ax.set(xlabel="rotations (engine plan)", ylabel="validation accuracy (%)",
               title=f"{model}, {dataset}, {size}x{size}: accuracy vs rotations")
        ax.grid(True, alpha=0.2)
        ax.legend(loc="best", fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    atomic_write(path, _png(fig))


def experiments_figure(rows: list[dict], path: Path, max_drop: float = 1.0) -> None:
    """Per model, each method's front at its chosen lambdas (a family: its member chosen on validation):
    per pruning step, mean rotations against mean validation accuracy over seeds with its 95% interval
    (test is read at the chosen step only); the dashed line is the dense mean less `max_drop`."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .experiments import groups_by_model, mean_interval, model_results

    panels = groups_by_model(rows)
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(7.5 * ncols, 4.8 * nrows), squeeze=False)
    results = {key: model_results(sel, max_drop) for key, sel in panels.items()}
    # a family (hunter) is drawn under its own name, which no row need carry
    colours = method_colours({r["method"] for r in rows} | {m for chosen in results.values() for m in chosen})
    for ax, (key, sel) in zip(axes.flat, panels.items()):
        chosen = results[key]
        for method, res in sorted(chosen.items()):
            if method != res.family and res.family in chosen:
                continue  # drawn as its family
            steps: dict[int, list[tuple[int, float]]] = {}
            for r in sel:
                if r["method"] == res.method and (float(r["lambda_p"]), float(r["lambda_d"])) == res.lambdas:
                    steps.setdefault(int(r["step"]), []).append((int(r["rotations"]), float(r["val_accuracy"])))
            xs, ys, lo, hi = [], [], [], []
            for _, pts in sorted(steps.items()):
                m, a, b = mean_interval([p[1] for p in pts])
                xs.append(float(np.mean([p[0] for p in pts])))
                ys.append(m)
                lo.append(m - a)
                hi.append(b - m)
            dense = method == "dense"
            n = len(res.seeds)
            ax.errorbar(xs, ys, yerr=[lo, hi] if n > 1 else None, fmt="D" if dense else "o-", ms=8 if dense else 3,
                        capsize=2, color=colours[method], zorder=4 if dense else 2,
                        mec="black" if dense else colours[method],
                        label=f"{method if method == res.method else f'{method}: {res.method}'} "
                              f"({seeds_text(n)})")
            picked = [(int(r["rotations"]), float(r["val_accuracy"])) for r in sel if r["method"] == res.method
                      and (float(r["lambda_p"]), float(r["lambda_d"])) == res.lambdas and _true(r.get("chosen"))]
            ax.plot([p[0] for p in picked], [p[1] for p in picked], "*", ms=14, mfc="none", mec="black", zorder=5,
                    label="chosen step (per seed)" if picked and not any(
                        t.get_label().startswith("chosen") for t in ax.lines) else None)
        dense = [float(r["val_accuracy"]) for r in sel if r["method"] == "dense" and int(r["step"]) == 0]
        if dense:
            ax.axhline(float(np.mean(dense)) - max_drop, ls="--", color="grey", lw=0.8,
                       label=f"budget: dense validation accuracy - {max_drop:g} point{'' if max_drop == 1 else 's'}")
        model, dataset, size, n = key
        ax.set(xlabel="rotations (engine plan)", ylabel="validation accuracy (%)",
               title=f"{model}, {dataset}, {size}x{size}, N = {n}")
        ax.grid(True, alpha=0.2)
        ax.legend(loc="lower right", fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    atomic_write(path, _png(fig))
