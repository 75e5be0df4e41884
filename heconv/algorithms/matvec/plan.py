"""What a matvec plan is and how it is made (docs/design.md): per (output block, input block) the
nonzero generalized diagonals k, a baby step B chosen by predicted time, and the exact counts.

With k = g*B + j (0 <= j < B):

    Y[bo] = sum over kept g:  Rot_{g*B}( sum over bi, kept j:  Rot_j(X[bi]) (*) Rot_{-g*B}(diag[bo, bi, k]) )

- baby steps: one rotation of X[bi] per distinct j != 0 over its kept diagonals (shared by all outputs);
- giant steps: one rotation per output bo and kept g != 0 (shared by all inputs);
- one multiplication per nonzero diagonal; the products and the giant sums are added (pmuls minus the
  nonempty outputs additions); one rescale per nonempty output, then the fold's t rotate-and-adds
  (a single output folded from 2^t copies, heconv.algorithms.matvec.geometry), the bias added; an
  empty output is its encrypted bias.

The number of output frames F (the fold) is chosen with B, by predicted time.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field

import numpy as np

from ...basics import OpCounts, ScaleSplit
from ...checks import check_plan_level, check_weight
from ...conv_plan import ConvSpec
from ...cost import DEFAULT_UNIT_COSTS, UnitCosts, floor_seconds
from ...errors import InputError
from ...params import CKKSParams
from .complex import ciphertext_diagonals
from .geometry import MatvecGeometry, allowed_copies, matvec_geometry, term_masks, term_shifts


@dataclass(frozen=True)
class BabyStepCandidate:
    """One baby step considered, with its rotations and predicted time."""

    baby_step: int
    rotations: int
    galois_keys: int
    predicted_s: float


@dataclass(frozen=True)
class MatvecPlan(ScaleSplit):
    """Everything a matvec run does, decided from the weights before any ciphertext exists.

    diagonals[bo][bi]: the nonzero diagonals k of the pair (one plaintext, one multiplication each);
    baby_step: B; input_shifts[bi]: the baby steps j != 0 input bi is rotated by; giants[bo]: the giant
    steps g of output bo (g = 0 costs no rotation); rotation_steps: one Galois key each.
    """

    spec: ConvSpec
    geometry: MatvecGeometry
    params: CKKSParams
    level: int
    has_bias: bool
    diagonals: tuple[tuple[tuple[int, ...], ...], ...]
    baby_step: int
    input_shifts: tuple[tuple[int, ...], ...]
    giants: tuple[tuple[int, ...], ...]
    rotation_steps: tuple[int, ...]
    candidates: tuple[BabyStepCandidate, ...] = ()
    predicted: OpCounts = field(default_factory=OpCounts)
    # Without a rescale, as the slot engine's (heconv.conv_plan.ConvPlan): input at 2^input_scale_bits,
    # weights at 2^weight_scale_bits, the products left at the input's level (the chain's last).
    rescale: bool = True
    input_scale_bits: int | None = None
    weight_scale_bits: int | None = None

    @property
    def empty_outputs(self) -> list[int]:
        """Output ciphertexts with no nonzero diagonal: the server encrypts the bias alone."""
        return [bo for bo, row in enumerate(self.diagonals) if not any(row)]

    @property
    def plaintexts(self) -> int:
        return sum(len(ks) for row in self.diagonals for ks in row)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "MatvecPlan":
        """The inverse of `to_dict` (after a JSON round trip too)."""
        params = dict(d["params"])
        params["coeff_mod_bit_sizes"] = tuple(params["coeff_mod_bit_sizes"])
        geometry = {"out_frames": d["geometry"]["c_n"], **d["geometry"]}  # plans saved before the fold: none
        return cls(spec=ConvSpec(**d["spec"]), geometry=MatvecGeometry(**geometry), params=CKKSParams(**params),
                   level=d["level"], has_bias=d["has_bias"],
                   diagonals=tuple(tuple(tuple(ks) for ks in row) for row in d["diagonals"]),
                   baby_step=d["baby_step"], input_shifts=tuple(map(tuple, d["input_shifts"])),
                   giants=tuple(map(tuple, d["giants"])), rotation_steps=tuple(d["rotation_steps"]),
                   candidates=tuple(BabyStepCandidate(**c) for c in d["candidates"]),
                   predicted=OpCounts(**d["predicted"]), rescale=d.get("rescale", True),
                   input_scale_bits=d.get("input_scale_bits"), weight_scale_bits=d.get("weight_scale_bits"))


def _rotations(diagonals, n_in: int, n_out: int, b: int, slots: int, fold_steps: list[int] = ()):
    """(input_shifts, giants, steps) of baby step b (the fold's steps among the keys)."""
    input_shifts = [sorted({k % b for row in diagonals for k in row[bi]} - {0}) for bi in range(n_in)]
    giants = [sorted({k // b for ks in diagonals[bo] for k in ks}) for bo in range(n_out)]
    steps = set().union(*input_shifts, {g * b % slots for gs in giants for g in gs if g}, fold_steps) - {0}
    return input_shifts, giants, sorted(steps)


def matvec_counts(diagonals, input_shifts, giants, has_bias: bool, rescale: bool = True, folds: int = 0) -> OpCounts:
    """The cost model above, from the plan's diagonals and rotations (no rescale without `rescale`;
    `folds` rotate-and-adds per nonempty output).

    >>> matvec_counts([[[0, 1, 5]]], [[1]], [[0, 1]], False).to_dict() == OpCounts(
    ...     rotations=2, key_switches=2, pmuls=3, adds=2, rescales=1).to_dict()
    True
    """
    pmuls = sum(len(ks) for row in diagonals for ks in row)
    full = sum(1 for row in diagonals if any(row))
    rot = sum(len(s) for s in input_shifts) + sum(sum(1 for g in gs if g) for gs in giants) + full * folds
    return OpCounts(rotations=rot, key_switches=rot, pmuls=pmuls, adds=pmuls - full + full * folds,
                    plain_adds=full if has_bias else 0, rescales=full if rescale else 0,
                    encryptions=len(diagonals) - full)


def frame_candidates(g: MatvecGeometry) -> list[int]:
    """The output frames F tried: c_n (no fold) down to the fewest that hold the output (powers of two apart).

    >>> frame_candidates(matvec_geometry(256, 512, 4, 4, 3, 2, 4096))
    [256, 128]
    """
    out, f = [g.c_n], g.c_n
    while f > g.out_frames:
        f //= 2
        out.append(f)
    return out


def baby_step_candidates(period: int) -> list[int]:
    """The baby steps tried: the powers of two up to the period T (a power of two itself).

    >>> baby_step_candidates(16)
    [1, 2, 4, 8, 16]
    """
    return [1 << e for e in range(period.bit_length()) if (1 << e) <= period]


def _frames(least: MatvecGeometry, out_frames: int | None, fold: bool) -> list[int]:
    """The output frame counts tried for a packing: the one given, else (with a fold allowed) c_n down to
    the fewest that hold the output, else c_n."""
    if out_frames is not None:
        return [least.out_frames]
    return frame_candidates(least) if fold else [least.c_n]


def _real_layouts(name: str, least: MatvecGeometry, c_n: int | None, out_frames: int | None, fold: bool,
                  copies: int | None, slots: int) -> list[MatvecGeometry]:
    """The real packings tried: each output frame count (plain replication), and rotated copies where allowed."""
    g = least
    frames = _frames(g, out_frames, fold)
    fit = allowed_copies(slots, g.period, g.c_n, g.c_n) if g.c_n in frames else 1
    if copies not in (None, 1, fit):
        raise InputError(f"layer {name} ({g.c_in}->{g.c_out}, {g.kernel}x{g.kernel}, {g.height}x{g.width}): matvec "
                         f"copies must be 1 or the input's {slots // g.period} replicas (at most T = {g.period}), "
                         f"with no output fold; got {copies}")
    shape = (g.c_in, g.c_out, g.height, g.width, g.kernel, g.stride, slots, c_n)
    out = [matvec_geometry(*shape, f) for f in frames if copies in (None, 1)]
    if fit > 1 and copies in (None, fit):
        out.append(matvec_geometry(*shape, g.c_n, fit))
    return out


def _complex_layouts(name: str, c_i: int, c_o: int, height: int, width: int, k: int, stride: int, slots: int,
                     c_n: int | None, out_frames: int | None, fold: bool, required: bool) -> list[MatvecGeometry]:
    """The complex packings tried: c_n (given, or the default halved until 2T fits the slots), each output
    frame count. None where it cannot fit, unless `required`: then an InputError says why."""
    real = matvec_geometry(c_i, c_o, height, width, k, stride, slots, c_n)
    cn = real.c_n
    while c_n is None and cn > 1 and 2 * cn * real.channel_slots > slots:
        cn //= 2
    # Where the largest c_n that fits holds the input in one real block there is nothing to pair: half of it too.
    tried = [cn] + ([cn // 2] if c_n is None and cn > 1 and cn >= c_i else [])
    out, refusals = [], []
    for n in tried:
        try:
            least = matvec_geometry(c_i, c_o, height, width, k, stride, slots, n, out_frames, complex_pack=True)
        except ValueError as e:
            refusals.append(e)
            continue
        out += [matvec_geometry(c_i, c_o, height, width, k, stride, slots, n, f, complex_pack=True)
                for f in _frames(least, out_frames, fold)]
    if required and not out:
        raise InputError(f"layer {name} ({c_i}->{c_o}, {k}x{k}, {height}x{width}): {refusals[0]}")
    return out


def plan_matvec(weight: np.ndarray, height: int, width: int, params: CKKSParams, stride: int = 1,
                has_bias: bool = False, name: str = "conv", level: int | None = None, baby_step: int | None = None,
                c_n: int | None = None, unit_costs: UnitCosts | None = None, rescale: bool = True,
                input_scale_bits: int | None = None, weight_scale_bits: int | None = None,
                out_frames: int | None = None, fold: bool = True, copies: int | None = None,
                complex_pack: bool | None = None) -> MatvecPlan:
    """Plan one conv as block matrices between slot vectors; zero diagonals cost nothing.

    `baby_step`: B (any positive integer up to T); None chooses, among the powers of two up to U,
    the lowest predicted time with `unit_costs` (default heconv.cost.DEFAULT_UNIT_COSTS, at the level's
    work), then the fewest Galois keys, then the smallest B. `out_frames`: F (None: chosen with B among
    `frame_candidates`, ties to no fold; with `fold` False, c_n: no fold, as a residual partner needs).
    `copies`: R rotated copies of an input with R > 1 replicas (None: tried beside the plain replication
    where nothing is folded, ties to none; 1: none). `complex_pack`: two real blocks per ciphertext
    (heconv.algorithms.matvec.complex), at c_n halved until T fits twice (None: tried beside the real
    packing where the plan rescales, ties to real; False: never; True: only).
    `rescale` False: at the chain's last level (by default) with the scale split as given, as
    heconv.conv.plan_conv.

    >>> from heconv.params import ckks_params
    >>> p = plan_matvec(np.ones((512, 512, 3, 3)), 2, 2, ckks_params(depth=1))
    >>> p.predicted.pmuls, p.predicted.rotations, p.baby_step, p.geometry.copies   # 2 rotated copies
    (1024, 63, 32, 2)
    >>> plan_matvec(np.ones((512, 512, 3, 3)), 2, 2, ckks_params(depth=1), copies=1, complex_pack=False).predicted.pmuls
    2048
    >>> p = plan_matvec(np.ones((16, 16, 3, 3)), 16, 16, ckks_params(depth=1), complex_pack=False)
    >>> p.predicted.pmuls, p.predicted.rotations, p.baby_step      # 8 baby + 15 giant steps
    (144, 23, 256)
    >>> p = plan_matvec(np.ones((16, 16, 3, 3)), 16, 16, ckks_params(depth=1))   # complex: 8 + 8 channels
    >>> p.predicted.pmuls, p.predicted.rotations, p.geometry.complex_pack
    (72, 16, True)
    >>> p = plan_matvec(np.ones((512, 256, 3, 3)), 4, 4, ckks_params(depth=1), stride=2, complex_pack=False)
    >>> p.geometry.fold, p.predicted.pmuls                         # 3,072 diagonals unfolded
    (2, 2048)
    >>> p = plan_matvec(np.ones((256, 256, 3, 3)), 4, 4, ckks_params(depth=1), complex_pack=False)
    >>> p.predicted.pmuls, p.geometry.n_in                       # 256 x 9 shifts
    (2304, 1)
    >>> p = plan_matvec(np.ones((256, 256, 3, 3)), 4, 4, ckks_params(depth=1), complex_pack=True)
    >>> p.predicted.pmuls, p.geometry.c_n, p.geometry.fold      # two blocks of 128 as Z: 128 x 9 shifts
    (1152, 128, 2)
    """
    w, _ = check_weight(name, weight, None)
    c_o, c_i, k, _ = w.shape
    level = check_plan_level(name, stride, level, params, rescale, input_scale_bits, weight_scale_bits)
    if complex_pack and not rescale:
        raise InputError(f"layer {name}: matvec complex packing runs with a rescale (its output's value bound "
                         f"is not planned without one)")
    if complex_pack and copies not in (None, 1):
        raise InputError(f"layer {name}: matvec complex packing takes no rotated copies (got {copies})")
    layouts, refusals = [], []
    if not complex_pack:
        try:
            least = matvec_geometry(c_i, c_o, height, width, k, stride, params.slots, c_n, out_frames)
            layouts = _real_layouts(name, least, c_n, out_frames, fold, copies, params.slots)
        except ValueError as e:  # out_frames may fit the complex packing alone (two blocks per ciphertext)
            refusals.append(e)
    # Rotated copies asked for fix the real packing; a refusal above is raised unless complex packing plans.
    if complex_pack or (complex_pack is None and rescale and copies in (None, 1)):
        layouts += _complex_layouts(name, c_i, c_o, height, width, k, stride, params.slots, c_n, out_frames, fold,
                                    required=bool(complex_pack) or not layouts)
    if not layouts:
        raise InputError(f"layer {name} ({c_i}->{c_o}, {k}x{k}, {height}x{width}): {refusals[0]}")
    if baby_step is not None:
        top = max(g.period for g in layouts)
        if not 1 <= baby_step <= top:
            raise InputError(f"layer {name}: matvec baby step must be in [1, {top}] (T = c_n*P), got {baby_step}")
        layouts = [g for g in layouts if baby_step <= g.period]
    unit = (unit_costs or DEFAULT_UNIT_COSTS).at_work(params.level_work(level))
    best = None  # (its best candidate, geometry, diagonals, every candidate) of the best F so far
    for g in layouts:
        shifts, masks = term_shifts(g), term_masks(g)[0]
        diagonals = tuple(tuple(tuple(ciphertext_diagonals(w, g, bo, bi, shifts, masks)) for bi in range(g.n_in))
                          for bo in range(g.n_out))
        folds = len(g.fold_steps)
        candidates = []
        for b in [baby_step] if baby_step is not None else baby_step_candidates(g.diag_period):
            ins, gis, steps = _rotations(diagonals, g.n_in, g.n_out, b, g.slots, g.fold_steps)
            counts = matvec_counts(diagonals, ins, gis, has_bias, rescale, folds)
            candidates.append(BabyStepCandidate(b, counts.rotations, len(steps), floor_seconds(counts, unit)))
        pick = min(candidates, key=lambda c: (c.predicted_s, c.galois_keys, c.baby_step))
        if best is None or pick.predicted_s < best[0].predicted_s:
            best = (pick, g, diagonals, tuple(candidates))
    chosen, g, diagonals, candidates = best
    ins, gis, steps = _rotations(diagonals, g.n_in, g.n_out, chosen.baby_step, g.slots, g.fold_steps)
    plan = MatvecPlan(spec=ConvSpec(name, c_i, c_o, k, height, width, stride), geometry=g, params=params,
                      level=level, has_bias=has_bias, diagonals=diagonals, baby_step=chosen.baby_step,
                      input_shifts=tuple(map(tuple, ins)), giants=tuple(map(tuple, gis)), rotation_steps=tuple(steps),
                      candidates=candidates if baby_step is None else (), rescale=rescale,
                      input_scale_bits=None if rescale else input_scale_bits,
                      weight_scale_bits=None if rescale else weight_scale_bits)
    return dataclasses.replace(plan, predicted=matvec_counts(diagonals, ins, gis, has_bias, rescale,
                                                             len(g.fold_steps)))
