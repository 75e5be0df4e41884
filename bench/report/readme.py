"""The README's results block: rendered from cost_model.json, read and replaced between the markers.

`artemis report --readme PATH` writes it; a test checks that the committed README's block
is what results/cost_model.json renders to, so its numbers are never typed by hand.
"""

from __future__ import annotations

from pathlib import Path

from heconv.errors import InputError

from ..results import atomic_write
from .compare import ratio_name
from .crossval import mask_cost_text
from .paper_claims import claims_lines
from .peers import ratioed
from .text import accuracy_text, encrypted_parts, fmt, ratio_sides, seeds_text

README_BEGIN = "<!-- results:begin -->"
README_END = "<!-- results:end -->"


def render_readme_block(cost_model: dict) -> str:
    """A short Markdown summary of cost_model.json's content, for the README's results block.

    >>> block = render_readme_block({"per_n": {"8192": {"cases": 3, "n_cases": 2, "cv_r2_rotation_only": 0.9,
    ...     "cv_worst_rel_err_rotation_only": 0.1, "cv_r2": 0.99, "cv_worst_rel_err": 0.01, "noise_floor": 0.02,
    ...     "models_worst_rel_err": 0.05, "unit_costs": {"rotations": 1.2e-3}, "rotations_dominate": 2}}})
    >>> print(block.splitlines()[4])
    | 8192 | 2 | 0.9000 | 10.0% | 0.9900 | 1.0% | 2.0% | 5.0% | 2 of 3 |
    >>> print(block.splitlines()[6])
    Fitted unit costs at N = 8192: rotations 1.2000 ms.
    """
    per_n = cost_model.get("per_n", {})
    lines = [("_Written by `artemis report` from `results/cost_model.json`; do not edit by hand. "
              "Full report: [results/report.md](results/report.md)._"), "", *claims_lines(cost_model),
             ("| N | layer cases | R^2 rotations only | worst rel. error | R^2 cost model | worst rel. error "
              "| noise floor | whole models, worst rel. error | rotations dominate (slot cases) |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for n, p in sorted(per_n.items(), key=lambda kv: int(kv[0])):
        k = p.get("rotations_dominate")
        verdict = "n/a" if k is None else f"{k} of {p.get('fitted_cases', p['cases'])}"
        lines.append(f"| {n} | {p.get('n_cases', 'n/a')} | {fmt(p.get('cv_r2_rotation_only'), '.4f')} "
                     f"| {fmt(p.get('cv_worst_rel_err_rotation_only'), '.1%')} | {fmt(p.get('cv_r2'), '.4f')} "
                     f"| {fmt(p.get('cv_worst_rel_err'), '.1%')} | {fmt(p.get('noise_floor'), '.1%')} "
                     f"| {fmt(p.get('models_worst_rel_err'), '.1%')} | {verdict} |")
    lines.append("")
    for n, p in sorted(per_n.items(), key=lambda kv: int(kv[0])):
        units = p.get("unit_costs") or {}
        lines.append(f"Fitted unit costs at N = {n}: "
                     + (", ".join(f"{t} {u * 1e3:.4f} ms" for t, u in units.items()) if units else "n/a") + ".")
    masks = [t for n, p in sorted(per_n.items(), key=lambda kv: int(kv[0]))
             if (t := mask_cost_text(n, p.get("unit_costs") or {}, p.get("mask_kinds")))]
    lines += [""] + masks if masks else []
    if all("rotations_dominate" in p for p in per_n.values()):
        dominant = sum(p["rotations_dominate"] for p in per_n.values())
        total = sum(p.get("fitted_cases", p["cases"]) for p in per_n.values())
    else:  # files written before the per-N count: case names, which may repeat across N
        shares = [s for s in cost_model.get("rotation_share", {}).values() if s is not None]
        dominant, total = sum(s > 0.5 for s in shares), len(shares)
    lines += ["", ("R^2 and worst relative errors are leave-one-out cross-validated on the layer cases. Rotation-only "
                   "model: latency = a x rotations + b; cost model: non-negative unit costs for rotations, "
                   "(pmul + add) pairs, outputs (rescale + bias add), the coefficient algorithm's masks and the "
                   "server's other encryptions (a fully pruned slot output's zero ciphertext). Noise floor: the worst "
                   "(max - min) / (max + min) of "
                   "the times of cases with identical plans. Whole models are predicted from the layer fit. Rotations "
                   f"dominate (more than half of a case's time by measured unit costs) in {dominant} of {total} "
                   "slot-algorithm cases (layers and whole models) with counted operations."), ""]
    pruning = cost_model.get("pruning_ratios") or {}
    if pruning:
        lines += [("Rotation ratios of the pruning methods (each method's most pruned step that kept the "
                   "accuracy budget, engine plan, `pruning_summary.csv`):"), ""]
        lines += [f"- {k}: {v:.2f}x" for k, v in sorted(pruning.items())] + [""]
    for i, (source, verdicts) in enumerate((cost_model.get("experiments") or {}).items()):
        lines += [(f"Pruning verdicts from `{source}`: rotations at each run's accepted step with the "
                   "fewest rotations (chosen on validation, test read there), ratio per seed, geometric mean and 95% "
                   "t-interval on the log ratios over seeds (docs/pruning.md):") if i == 0 else
                  (f"The same from `{source}`, another database, judged apart (the claims table above names the runs "
                   "it shares with another; docs/pruning.md):"), ""]
        for key, e in sorted(verdicts.items()):
            for name, r in sorted((e.get("ratios") or {}).items()):
                if r and r.get("value") is not None:
                    iv = f"[{r['interval'][0]:.2f}, {r['interval'][1]:.2f}]" if r.get("interval") else "(no interval)"
                    n = r["seeds"]
                    words = [f"the 1.2x claim {r['claim']}"] if r.get("claim") else []
                    judged = r.get("better_at_all") not in (None, "not judged")
                    words += [f"better at all: {r['better_at_all']}"] if judged else []
                    words += [f"encrypted, {part}" for part in encrypted_parts(r.get("encrypted") or {})]
                    lines.append(f"- {key}: {ratio_sides(r, name)} = {r['value']:.2f}x {iv} ({seeds_text(n)})"
                                 + ("; " + "; ".join(words) if words else ""))
        lines.append("")
    lines += peers_lines(cost_model.get("peer_runs") or [])
    methods = cost_model.get("method_ratios") or {}
    if methods:
        lines += ["Pruned checkpoints run encrypted by the model benchmark suite (`--pruned` folders of the runs "
                  "named below; the output-rotation schedule, one model per method, from the seed named: the "
                  "verdicts above give the ratios over seeds):", "",
                  "| model | methods | rotations | server latency | accuracy | checkpoints |",
                  "|---|---|---|---|---|---|"]
        for m, d in sorted(methods.items()):
            for k, v in d.items():
                acc = "; ".join(f"{meth}: {accuracy_text(a)}" for meth, a in (v.get("accuracy") or {}).items())
                lines.append(f"| {m} | {ratio_name(k, v)} | {fmt(v.get('rotations'), '.2f')}x "
                             f"| {fmt(v.get('latency'), '.2f')}x | {acc} | {sources_text(v.get('source') or {})} |")
        lines.append("")
    prov = cost_model.get("provenance") or {}
    sources = ", ".join(f"`{o.get('file', '?')}` (revision {o.get('git_revision', '?')})"
                        for o in cost_model.get("sources", []))
    lines.append(f"Report made at git revision {prov.get('git_revision', '?')} from {sources or 'no files'}.")
    return "\n".join(lines)


def sources_text(source: dict[str, str]) -> str:
    """Each side's checkpoint source, said once where both sides share it.

    >>> sources_text({"hunter": "seed 0 of a.sqlite", "artemis-diagonal": "seed 0 of a.sqlite"})
    'seed 0 of a.sqlite'
    >>> sources_text({"hunter": "seed 1 of a.sqlite", "artemis-diagonal": "seed 0 of a.sqlite"})
    'hunter: seed 1 of a.sqlite; artemis-diagonal: seed 0 of a.sqlite'
    """
    if len(set(source.values())) == 1:
        return next(iter(source.values()))
    return "; ".join(f"{m}: {s}" for m, s in source.items()) or "not recorded"


def peers_lines(runs: list[dict]) -> list[str]:
    """Ours / Orion per peers run with its CPU (bench.report.peers.peer_runs), runs with no Orion case left out.

    >>> line = peers_lines([{"file": "r.json", "cpu": "AMD EPYC", "means": {"ours_auto_w1": [1.3, 8],
    ...     "ours_auto_w2": [0.9, 8], "ours_ll_w1": [0.67, 8], "ours_ll_w2": None},
    ...     "worst": {"ours_auto_w1": [1.5, "layer4.conv3x3"], "ours_ll_w1": [0.9, "layer3.conv3x3"]}}])[2]
    >>> print(line.replace("; last", ";\\n  last"))
    - r.json (AMD EPYC): level 0, one worker 1.30 (8 shapes; worst 1.50, layer4.conv3x3), two 0.90 (8);
      last level, one worker 0.67 (8; worst 0.90, layer3.conv3x3), two n/a
    """
    def m(r: dict, v: str) -> str:
        x, w = r["means"].get(v), (r.get("worst") or {}).get(v)
        worst = "" if w is None else f"; worst {w[0]:.2f}, {w[1]}"
        return "n/a" if x is None else f"{x[0]:.2f} ({x[1]}{' shapes' if v == 'ours_auto_w1' else ''}{worst})"
    with_ratio = ratioed(runs)
    if not with_ratio:
        return []
    return [("Beside Orion (`bench/test_peers.py`: ResNet18's 3x3 convs and ResNet-20's 16->16, N = 8192), ours / "
             "Orion as the geometric mean over the shapes, per run and its CPU; the ratios move with the CPU "
             "(docs/benchmarks.md):"), "",
            *(f"- {r['file']} ({r['cpu']}): level 0, one worker {m(r, 'ours_auto_w1')}, two {m(r, 'ours_auto_w2')}; "
              f"last level, one worker {m(r, 'ours_ll_w1')}, two {m(r, 'ours_ll_w2')}" for r in with_ratio), ""]


def _split_readme(path: str | Path) -> tuple[str, str, str]:
    """(text up to and including the begin marker line, the block, the end marker line and the rest)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    lines = text.splitlines(keepends=True)
    begin = [i for i, line in enumerate(lines) if line.strip() == README_BEGIN]
    end = [i for i, line in enumerate(lines) if line.strip() == README_END]
    if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
        raise InputError(f"{path}: needs one line '{README_BEGIN}' and, after it, one line '{README_END}' "
                         f"(found {len(begin)} and {len(end)})")
    b, e = begin[0], end[0]
    return "".join(lines[:b + 1]), "".join(lines[b + 1:e]), "".join(lines[e:])


def read_readme_block(path: str | Path) -> str:
    """The text between the README's results markers, without its final newline."""
    return _split_readme(path)[1].rstrip("\n")


def update_readme(path: str | Path, block: str) -> bool:
    """Replace the text between the results markers of `path` with `block`; False when it was already there."""
    head, old, tail = _split_readme(path)
    body = block.rstrip("\n")
    new = head + (body + "\n" if body else "") + tail
    if new == head + old + tail:
        return False
    atomic_write(path, new.encode())
    return True
