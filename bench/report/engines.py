"""The convolution algorithms side by side, per model: the slot engine under output-rotation
(slot-OR), "auto" (per conv the algorithm of the lowest predicted time among those that keep the
traffic: slot schedules and matvec, in runs since the model suite asked for it; the slot schedules alone
before), and the coefficient algorithm (docs/design.md, "The coefficient algorithm").

One table per model from the model suite's cases (server time, client time, rotations,
multiplications, bytes each way, server time plus the traffic and the end-to-end time at 1 Gbit/s
and 100 Mbit/s, accuracy where a checkpoint recorded it), dense and pruned where checkpoints were
run, and one sentence per model: at equal accuracy (the same weights, so the same model), which
algorithm is faster, by how much, and what it costs in traffic and end to end. Then the count
models on the coefficient cases (bench.report.fits.fit_coefficient): what rotation count predicts
there.

End to end is the client's time, the server's, the server's I/O and every byte each way at the
rate (bench.harness.model.ModelRecord). Runs before the phases were recorded (no
`client_upload_s`; their `client_s` also timed the byte counting through temporary files, and
the server loaded nothing) give "n/a" there, never a figure made up for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from heconv.algorithms import ALGORITHMS
from heconv.traffic import DEFAULT_BANDWIDTH_BPS, Phases, transfer_seconds

from ..harness.bandwidth import show_bandwidth
from .cases import Case, is_coefficient
from .compare import accuracy, last_by
from .fits import fit_coefficient
from .text import accuracy_text, fmt

# a model case's schedule -> its row label: the slot engine's two schedules, and every algorithm that changes
# the traffic by its registered name (the coefficient algorithm and its rescaled form)
ENGINES = {"output-rotation": "slot-OR", "auto": "auto",
           **{name: name for name, alg in ALGORITHMS.items() if alg.changes_traffic}}
# the link rates the tables give: the default one (--bandwidth) and a tenth of it
BANDWIDTHS = {show_bandwidth(DEFAULT_BANDWIDTH_BPS): DEFAULT_BANDWIDTH_BPS,
              show_bandwidth(DEFAULT_BANDWIDTH_BPS / 10): DEFAULT_BANDWIDTH_BPS / 10}


def slot_cases(cases: list[Case]) -> list[Case]:
    """The slot engine's cases: the ones the rotation cost models are fitted on."""
    return [c for c in cases if not is_coefficient(c)]


def with_traffic(c: Case, bandwidth: float) -> float:
    """Server time plus the bytes each way at `bandwidth` bits per second (the client's time left
    out: `end_to_end` adds it).

    >>> with_traffic(Case("c", "model", 8192, 1.0, {}, {"bytes_client_to_server": 10**8,
    ...                                                  "bytes_server_to_client": 2.5 * 10**7}), 1e9)
    2.0
    """
    up, down = c.info.get("bytes_client_to_server") or 0, c.info.get("bytes_server_to_client") or 0
    return c.latency + transfer_seconds(up + down, bandwidth)


def client_seconds(c: Case) -> float | None:
    """The client's time per image (encoding, encryption, decryption, refresh), or None for a run
    that did not record the phases: its `client_s` timed other work too (see the module's docstring).

    >>> client_seconds(Case("c", "model", 8192, 1.0, {}, {"client_s": 0.5, "client_upload_s": 0.2,
    ...                                                   "server_io_s": 0.1})), client_seconds(
    ...     Case("c", "model", 8192, 1.0, {}, {"client_s": 9.0}))
    (0.5, None)
    """
    e = c.info
    if e.get("client_s") is None or e.get("client_upload_s") is None or e.get("server_io_s") is None:
        return None
    return float(e["client_s"])


def end_to_end(c: Case, bandwidth: float) -> float | None:
    """Client + server (the case's least) + server I/O + the bytes each way at `bandwidth` bits per
    second; None where the run did not record the client's phases.

    >>> end_to_end(Case("c", "model", 8192, 1.0, {}, {"client_s": 0.5, "client_upload_s": 0.2, "server_io_s": 0.25,
    ...     "bytes_client_to_server": 10**8, "bytes_server_to_client": 2.5 * 10**7}), 1e9)
    2.75
    """
    client = client_seconds(c)
    if client is None:
        return None
    return Phases(client_s=client, server_s=c.latency, server_io_s=float(c.info["server_io_s"]),
                  upload_bytes=c.info.get("bytes_client_to_server") or 0,
                  download_bytes=c.info.get("bytes_server_to_client") or 0).end_to_end_s(bandwidth)


@dataclass
class EnginesSection:
    md: list[str]
    summary: dict


def _variant(c: Case) -> str:
    """A model case's weights: its checkpoint's method, or synthetic weights and their pruned fraction
    (so a trained dense checkpoint and dense synthetic weights stay two rows)."""
    if c.weights == "checkpoint":
        return c.method
    return "synthetic dense" if not c.prune_diagonals else f"synthetic {c.prune_diagonals:.0%} diagonals"


def _mb(c: Case) -> float:
    """Megabytes each way per image, together."""
    return ((c.info.get("bytes_client_to_server") or 0) + (c.info.get("bytes_server_to_client") or 0)) / 1e6


def _key(name: str) -> str:
    """A bandwidth's name as a summary key: '1 Gbit/s' -> '1_Gbitps'."""
    return name.replace(" ", "_").replace("/", "p")


def _sentence(model: str, rows: dict[tuple[str, str], Case]) -> str | None:
    """At equal accuracy (same weights), the fastest engine that changes the traffic against the fastest
    that keeps it, their traffic and, where both runs recorded the client's phases, the end-to-end times."""
    for variant in sorted({v for v, _ in rows}, key=lambda v: (v not in ("dense", "synthetic dense"), v)):
        got = {e: rows[(variant, e)] for e in ENGINES.values() if (variant, e) in rows}
        changing = [e for e in got if is_coefficient(got[e])]
        keeping = [e for e in got if e not in changing]
        if not changing or not keeping:
            continue
        pair = (min(changing, key=lambda e: got[e].latency), min(keeping, key=lambda e: got[e].latency))
        fast, slow = sorted(pair, key=lambda e: got[e].latency)
        a, b = got[fast], got[slow]
        nets = ", ".join(f"{name}: {fast} {with_traffic(a, bw):.2f} s vs {slow} {with_traffic(b, bw):.2f} s"
                         for name, bw in BANDWIDTHS.items())
        if client_seconds(a) is not None and client_seconds(b) is not None:
            ends = "; end to end (client {:.2f} s against {:.2f} s, server and traffic), ".format(
                client_seconds(a), client_seconds(b)) + ", ".join(
                f"{name}: {fast} {end_to_end(a, bw):.2f} s vs {slow} {end_to_end(b, bw):.2f} s"
                for name, bw in BANDWIDTHS.items())
        else:
            ends = "; end to end: n/a (the client's time is not recorded in these runs)"
        return (f"**{model}** ({variant}, the same weights so the same accuracy): {fast} is faster than {slow}, "
                f"{a.latency:.2f} s against {b.latency:.2f} s of server time ({b.latency / a.latency:.1f}x), and "
                f"moves {_mb(a):.1f} MB against {_mb(b):.1f} MB per image ({_mb(a) / max(_mb(b), 1e-9):.1f}x); with "
                f"the traffic, {nets}{ends}.")
    return None


def engines_section(cases: list[Case]) -> EnginesSection:
    """The per-model tables and sentences, and the coefficient cases' cost-model fit."""
    models = last_by([c for c in cases if c.suite == "model" and c.schedule in ENGINES],
                     lambda c: (c.network, _variant(c), ENGINES[c.schedule]))
    md = ["## Convolution algorithms: slot output-rotation, auto and coefficient encoding", ""]
    if models:
        md += ["Per image. Server s: the least over the timed images. Client s: encoding, encryption, "
               "decryption and the refresh at every ReLU. Server + traffic: the server's time and every byte each "
               "way at the rate. End to end: client + server + the server's I/O (loading uploads, serializing "
               "results) + traffic. n/a: the run did not record the client's phases (runs before them timed "
               "the byte counting as client work).", ""]
    summary: dict = {"models": {}, "sentences": {}}
    for model in sorted({m for m, _, _ in models}):
        rows = {(v, e): c for (m, v, e), c in models.items() if m == model}
        md += [f"### {model}", "",
               "| weights | algorithm | server s | client s | rotations | pmuls | MB up | MB down | "
               + " | ".join(f"server + traffic s at {name}" for name in BANDWIDTHS) + " | "
               + " | ".join(f"end to end s at {name}" for name in BANDWIDTHS) + " | masks s | accuracy |",
               "|---|---|---|---|---|---|---|---|" + "---|" * (2 * len(BANDWIDTHS)) + "---|---|"]
        for (variant, engine), c in sorted(rows.items()):
            up = (c.info.get("bytes_client_to_server") or 0) / 1e6
            down = (c.info.get("bytes_server_to_client") or 0) / 1e6
            md.append(f"| {variant} | {engine} | {c.latency:.3f} | {fmt(client_seconds(c), '.3f')} | {c.rotations} | "
                      f"{c.counts['pmuls']} | {up:.1f} | {down:.1f} | "
                      + " | ".join(f"{with_traffic(c, bw):.2f}" for bw in BANDWIDTHS.values()) + " | "
                      + " | ".join(fmt(end_to_end(c, bw), ".2f") for bw in BANDWIDTHS.values())
                      + f" | {fmt(c.info.get('mask_s'), '.3f') if is_coefficient(c) else '-'} | "
                      f"{accuracy_text(accuracy(c)) or 'same weights'} |")
            summary["models"].setdefault(model, {})[f"{variant}/{engine}"] = {
                "server_s": c.latency, "client_s": client_seconds(c),
                "server_io_s": c.info.get("server_io_s") if client_seconds(c) is not None else None,
                "rotations": c.rotations, "pmuls": c.counts["pmuls"],
                "bytes_client_to_server": c.info.get("bytes_client_to_server"),
                "bytes_server_to_client": c.info.get("bytes_server_to_client"),
                **{f"s_at_{_key(k)}": with_traffic(c, bw) for k, bw in BANDWIDTHS.items()},
                **{f"end_to_end_s_at_{_key(k)}": end_to_end(c, bw) for k, bw in BANDWIDTHS.items()}}
        sentence = _sentence(model, rows)
        md += [""] + ([sentence, ""] if sentence else [])
        summary["sentences"][model] = sentence
    if not models:
        md += ["No model case ran the coefficient algorithm or both slot schedules.", ""]
    md += coefficient_fit_section([c for c in cases if is_coefficient(c)], summary)
    return EnginesSection(md, summary)


def coefficient_fit_section(cases: list[Case], summary: dict) -> list[str]:
    """What the count models say on the coefficient cases."""
    fit = fit_coefficient(cases)
    if fit is None:
        return []
    summary["coefficient_fit"] = fit.summary()
    return ["### Cost model on the coefficient cases", "",
            f"{len(cases)} cases, every one with {', '.join(map(str, fit.summary()['rotations']))} rotations: the "
            f"rotation-only model (latency = a x rotations + b) can only fit a constant, R^2 = "
            f"{fmt(fit.rot.r2, '.3f')}, worst relative error {fit.rot.max_rel_err:.0%}, so rotation count predicts "
            f"nothing there. The full count model on the operations the algorithm does (plaintext multiplications, "
            f"additions, rescales, the masks' encryptions and encodes; NNLS) gives R^2 = {fmt(fit.full.r2, '.4f')}, "
            f"worst relative error {fit.full.max_rel_err:.1%}; fitted unit costs: "
            + ", ".join(f"{k} {v * 1e3:.4f} ms" for k, v in fit.full.coef.items()) + ".", ""]
