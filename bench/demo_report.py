"""demo.md and the demo's report.md: one story, told from the demo's own run.

Both files are rendered here from the same figures: `bench.demo.run_demo`'s result (the
encrypted measurements of the first seed's chosen models) and the rows of the demo's
experiments database (every training and pruning step). No benchmark run and no other
database is read, so no figure in the demo's folder comes from elsewhere. The one ratio the
demo states is defined once (`RATIO`, `ratios`); the paragraphs and the table demo.md shows
appear in report.md word for word (a test checks it).
"""

from __future__ import annotations

import math
from pathlib import Path

from .experiments.pause import idle_words
from .report.experiments import MIN_SEEDS
from .results import atomic_write

REFERENCE = "artemis-diagonal"
BASELINES = ("dense", "hunter")
RATIO = ("ratio = a baseline's rotations over artemis-diagonal's, each at its chosen step (the step within the "
         "budget with the fewest rotations), per seed, geometric mean over seeds; above 1x artemis-diagonal needs "
         "fewer. The server-time ratio is the same pair's encrypted server time, seed {seed}.")


def _acc(v: float | None) -> str:
    return "-" if v is None else f"{float(v):.2f}"


def _mb(b: float) -> str:
    return f"{b / 1e6:.1f}"


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def ratios(result: dict) -> list[dict]:
    """Each baseline against artemis-diagonal: rotations at the chosen steps per seed (demo's database),
    their geometric mean, and the first seed's encrypted server-time ratio.

    >>> r = ratios({"seeds": [0], "chosen": {"dense": {"0": {"rotations": 826}}, "artemis-diagonal": {"0": {
    ...     "rotations": 413}}}, "rows": [{"method": "dense", "server_s": 3.0}, {"method": "artemis-diagonal",
    ...     "server_s": 1.5}]})
    >>> r[0]["rotations"], r[0]["per_seed"], r[0]["server_time"]
    (2.0, {'0': 2.0}, 2.0)
    """
    chosen, rows = result["chosen"], {r["method"]: r for r in result["rows"]}
    out = []
    for base in BASELINES:
        if base not in chosen or REFERENCE not in chosen:
            continue
        per_seed = {s: chosen[base][s]["rotations"] / chosen[REFERENCE][s]["rotations"]
                    for s in map(str, result["seeds"])
                    if s in chosen[base] and s in chosen[REFERENCE] and chosen[REFERENCE][s]["rotations"]}
        mean = math.exp(sum(map(math.log, per_seed.values())) / len(per_seed)) if per_seed else None
        time = (rows[base]["server_s"] / rows[REFERENCE]["server_s"]
                if base in rows and REFERENCE in rows and rows[REFERENCE]["server_s"] else None)
        out.append({"baseline": base, "rotations": mean, "per_seed": per_seed, "server_time": time})
    return out


def setup_lines(result: dict) -> list[str]:
    """What was run: data and sizes, training, pruning budget, schedule, the encrypted run, what its columns count."""
    c, z, seed = result["config"], result["sizes"], result["seeds"][0]
    from pruning.iterative import DEFAULT_FRACTIONS

    prune = result.get("pruning") or {"steps": len(c["fractions"] or DEFAULT_FRACTIONS),
                                       "finetune_epochs": c["finetune_epochs"], "recovery_epochs": None}
    keys = next((r for r in result["rows"]), {})
    trained = "; ".join(f"{'lambda_d = ' + format(t['lambda_d'], 'g') if t['lambda_d'] else 'plain'}, seed "
                        f"{t['seed']}: {t['epochs_run']} epoch(s), validation {_acc(t['val_accuracy'])}"
                        for t in sorted(result.get("trained", []), key=lambda t: (t["seed"], t["lambda_d"])))
    lines = [f"- **Data**: {result['dataset']} at {c['input_size']}x{c['input_size']}"
             + (f" ({result['data_source']})" if result.get("data_source") else "")
             + f": {z['train']:,} training, {z['val']:,} validation and {z['test']:,} test images "
               f"(`--subset {c['subset']}`).",
             f"- **Training**: {c['model']}, at most {c['epochs']} epochs, seed(s) "
             f"{', '.join(map(str, result['seeds']))}; dense and hunter prune the plainly trained model, "
             f"artemis-diagonal the one trained with the proximal diagonal group Lasso, lambda_d = {c['lambda_d']:g}"
             + (f" (ran: {trained})." if trained else "."),
             "- **hunter** here is one reading of Hunter, `hunter` itself (squared norm per second saved, over "
             "plaintexts and diagonal and positional groups); the sweep's verdicts choose Hunter's reading per model "
             "on validation among its variants, diagonal-no-lasso one of them (docs/pruning.md).",
             f"- **Pruning**: a rising global threshold, up to {prune['steps']} steps, "
             + (f"{prune['recovery_epochs']:g} fine-tuning epoch(s) at the first, " if prune["recovery_epochs"]
                else "") + f"{prune['finetune_epochs']:g} at each later one; budget: validation accuracy at most "
             f"{c['max_drop']:g} point(s) below the plainly trained model of the same seed (seed {seed}: "
             f"{_acc(result['dense_val_accuracy'])}); the chosen step is the one within it with the fewest "
             f"rotations, and test accuracy is read there.",
             f"- **Schedule**: {c['schedule']}, fixed before training (its rotation groups are the ones trained and "
             f"pruned).",
             f"- **Encrypted run**: seed {seed}'s chosen models, CKKS N = 8192, {c['mode']}, {c['images']} test "
             f"image(s), {result['workers']} worker (in-process): every rotation counted is the plan's own, none "
             f"recomputed by workers. server s / image is the mean over the {c['images']} image(s); floor s is the "
             f"op counts times unit costs measured in the same process. {_paused(result)}",
             f"- **MB up / down**: the ciphertexts one image sends client -> server / server -> client (every "
             f"round trip of the hybrid protocol), mean over the images; the Galois keys, sent once at setup "
             f"({keys.get('galois_keys', '?')} keys, {_mb(keys.get('galois_key_bytes', 0))} MB for "
             f"{keys.get('method', '?')}), are not included."]
    if result.get("data_note"):
        lines.append(f"- **Note**: {result['data_note']}")
    return lines


def _paused(result: dict) -> str:
    """Whether this host's sweeps waited while the encrypted runs were timed (older demos: unknown).

    >>> _paused({"sweeps_paused": True, "idle_share_at_start": 0.4})[16:]
    'sweeps paused, CPUs 40% idle at the start, short of the 90% the wait asks for: it gave up after 60 s.'
    """
    if "sweeps_paused" not in result:
        return "Whether other work ran beside the encrypted runs was not recorded."
    if not result["sweeps_paused"]:
        return "This host's sweeps were not paused while they ran (`--no-pause`, or plain mode)."
    words = idle_words(result["idle_share_at_start"], result.get("idle_target"), result.get("idle_wait_s"))
    return f"While they ran: {words}."


def table_lines(result: dict) -> list[str]:
    """The chosen models' encrypted figures, one row a method."""
    seed, chosen, many = str(result["seeds"][0]), result["chosen"], len(result["seeds"]) > 1
    lines = ["| method | chosen step (fraction) | val acc | test acc | rotations predicted / counted (plan's own "
             "+ recomputed by workers) | pmuls | server s / image | floor s | MB up / down | top-1 agreement |"
             + (" test acc, mean of seeds |" if many else ""),
             "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if many else "")]
    for r in result["rows"]:
        step = chosen.get(r["method"], {}).get(seed, {})
        floor = "-" if r["floor_s"] is None else f"{r['floor_s']:.2f}"
        agree = "-" if r["top1_agreement"] is None else f"{r['top1_agreement']:.2f}"
        frac = "-" if step.get("fraction") is None else f"{float(step['fraction']):g}"
        line = (f"| {r['method']} | {step.get('step', '-')} ({frac}) | {_acc(r['val_accuracy'])} | "
                f"{_acc(r['test_accuracy'])} | {r['predicted_rotations']} / {r['rotations']} "
                f"({r['rotations'] - r['recomputed_rotations']} + {r['recomputed_rotations']}) | {r['pmuls']} | "
                f"{r['server_s']:.2f} | {floor} | {_mb(r['bytes_client_to_server'])} / "
                f"{_mb(r['bytes_server_to_client'])} | {agree} |")
        if many:
            accs = [s["test_accuracy"] for s in chosen.get(r["method"], {}).values()
                    if s["test_accuracy"] is not None]
            mean = sum(accs) / len(accs) if accs else None
            line += f" {_acc(mean)} ({len(accs)} seed{'' if len(accs) == 1 else 's'}) |"
        lines.append(line)
    return lines


def ratio_lines(result: dict) -> list[str]:
    """The one ratio, stated once per baseline, with its definition."""
    seed = result["seeds"][0]
    lines = [RATIO.format(seed=seed), ""]
    for r in ratios(result):
        per = ", ".join(f"seed {s}: {v:.2f}x" for s, v in r["per_seed"].items())
        n = len(r["per_seed"])
        lines.append(f"- {r['baseline']} / {REFERENCE}: {_x(r['rotations'])} rotations ({per}); "
                     f"{_x(r['server_time'])} server time (seed {seed}, {result['config']['images']} image(s))"
                     + ("" if n >= MIN_SEEDS else f"; not judged on {n} seed{'' if n == 1 else 's'} "
                                                  f"(a verdict needs at least {MIN_SEEDS})."))
    return lines


def render_demo(result: dict) -> str:
    """demo.md."""
    c = result["config"]
    lines = [f"# Demo: {c['model']} on {result['dataset']} {c['input_size']}x{c['input_size']}", "",
             *setup_lines(result), "", *table_lines(result), "", *ratio_lines(result), "",
             "Every figure here comes from this folder's run: its database (experiments.sqlite), its checkpoints "
             "and its encrypted measurements; report.md beside it gives every pruning step and the figures.", "",
             f"Made at git revision {result['provenance']['git_revision']}.", ""]
    return "\n".join(lines)


def steps_lines(experiments: list[dict]) -> list[str]:
    """Every pruning step of every run in the demo's database."""
    lines = ["| method | seed | step | fraction | val acc | test acc | rotations (plan) | pmuls | within budget "
             "| chosen |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(experiments, key=lambda r: (r["method"], int(r["seed"]), int(r["step"]))):
        lines.append(f"| {r['method']} | {r['seed']} | {r['step']} | {float(r['fraction'] or 0):g} | "
                     f"{_acc(r['val_accuracy'])} | {_acc(r['test_accuracy'])} | {r['rotations']} | {r['pmuls']} | "
                     f"{'yes' if int(r['accepted'] or 0) else 'no'} | "
                     f"{'**chosen**' if int(r['chosen'] or 0) else ''} |")
    return lines


def write_demo_report(result: dict, experiments: list[dict], out: Path) -> None:
    """report.md, pareto.png (validation accuracy against rotations, every step) and experiments_pareto.png
    (test accuracy, the budget line) into the demo's folder, from the demo's own rows alone."""
    import matplotlib

    matplotlib.use("Agg")
    from .report.plots import experiments_figure, pareto_figure

    c = result["config"]
    # the experiments rows as pruning_summary.csv rows (validation accuracy), with the chosen flag
    pareto_figure([{**{k: "" if v is None else str(v) for k, v in r.items()}, "accuracy": str(r["val_accuracy"])}
                   for r in experiments], out / "pareto.png")
    experiments_figure(experiments, out / "experiments_pareto.png", c["max_drop"])
    md = ["# The demo's report", "",
          "Made from this folder alone: its experiments database (experiments.sqlite: the training and pruning "
          "runs and the encrypted measurements of the chosen steps) and demo.json (the encrypted run). No "
          "benchmark run and no other database is read. The cost-model report of the benchmark suites is "
          "`artemis report` (runs/report/ by default).", "", "## Setup", "", *setup_lines(result), "",
          "## The chosen models, run encrypted", "", *table_lines(result), "", "## The ratio", "",
          *ratio_lines(result), "", "## Every pruning step", "", *steps_lines(experiments), "",
          "![accuracy against rotations, chosen steps marked](pareto.png)", "",
          "![test accuracy against rotations, the budget line](experiments_pareto.png)", "",
          f"Made at git revision {result['provenance']['git_revision']}.", ""]
    atomic_write(out / "report.md", "\n".join(md).encode())
