"""Which chunking a coefficient conv uses (docs/design.md, "Bandwidth-aware chunking"): of every candidate
(`heconv.geometry.chunking_candidates`), the one with the least predicted end-to-end time at the
objective's bandwidth, and a record of all of them and why it won.

A candidate with C_w channels per input chunk has n_in = chunks * tiles input ciphertexts and
n_out = groups * tiles outputs (outs). Its share of one inference, for the dense shape:

    client     = n_in * (encode + encrypt, seeded or public) + n_out * decrypt
    server     = outs * (chunks * pmul + (chunks - 1 + mask) * add + rescale? + mask * encrypt)
    server I/O = n_in * load + n_out * save (extracted)
    wire       = (n_in * bytes of an upload + bytes of the outputs) * 8 / bandwidth

where an output goes back extracted (heconv.coeff_mask), at the chain's last level: its second
polynomial whole and the first at the coefficients the client reads, C_out * ceil(H/s) * ceil(W/s)
of them in all (s the stride).

and, where a residual add sums the output with a value the client uploads in the output layout
(`output_uploads` = 1: an identity shortcut), n_out more uploads at the output's level (one down
where the plan rescales); where it sums the output with another conv's (`partner`: a projection
shortcut, laid out like this one), that conv's uploads and evaluation too (without masks where
this conv's re-randomisation covers the sum), the sum going back once.

Wider chunks mean fewer inputs but fewer output channels per ciphertext, so more outputs: the
multiplications stay about the same, and what moves is the ciphertexts each way. Server time
alone favours one channel per chunk (few outputs: few rescales and masks) and uploads many;
the end-to-end time balances the two sides, and the slower the link the more it weighs bytes.
The unit costs are level 0's (two primes at [60, 40, 60]): a plan at a level with fewer primes left
pays pmul and add in proportion to them (both work prime by prime), and a rescale only if it rescales;
an upload's encoding, encryption and loading likewise (heconv.cost.WireCosts).
Ties: fewest ciphertexts both ways, then the largest tiles. Pure: nothing here touches a backend.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .cost import DEFAULT_UNIT_COSTS, DEFAULT_WIRE_COSTS, UnitCosts, WireCosts
from .geometry import CoeffChunking, chunking_candidates
from .params import CKKSParams, ckks_params
from .traffic import Objective, Phases, ciphertext_bytes, extracted_bytes


@dataclass(frozen=True)
class ChunkCandidate:
    """One chunking considered, with its predicted phases and what the objective makes of them."""

    c_w: int
    tile_h: int
    tile_w: int
    chunks: int
    group: int
    n_in: int
    n_out: int
    phases: Phases
    cost_s: float  # the objective's figure: end to end at its bandwidth, or the server's evaluation


@dataclass(frozen=True)
class ChunkChoice:
    """The objective, every candidate considered (in the order enumerated) and the winner's index,
    with one line on why it won."""

    objective: Objective
    candidates: tuple[ChunkCandidate, ...]
    chosen: int
    reason: str

    @property
    def winner(self) -> ChunkCandidate:
        return self.candidates[self.chosen]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ChunkChoice":
        cands = tuple(ChunkCandidate(**{**c, "phases": Phases(**c["phases"])}) for c in d["candidates"])
        return cls(Objective(**d["objective"]), cands, d["chosen"], d["reason"])


def chunking_phases(ch: CoeffChunking, params: CKKSParams, level: int, mask: bool, upload_seeded: bool,
                    unit: UnitCosts = DEFAULT_UNIT_COSTS, wire: WireCosts = DEFAULT_WIRE_COSTS,
                    output_uploads: int = 0, rescale: bool = True, covered: int = 0, stride: int = 1) -> Phases:
    """The predicted phases of one dense conv under chunking `ch` (the formulas above), its input at
    `level` and its output there too, or one level down where it rescales; `covered` output groups
    (their tiles) unmasked, a partner's mask covering them.

    >>> from heconv.geometry import chunking_candidates
    >>> one, eight = [c for c in chunking_candidates(64, 64, 16, 16, 3, 8192) if c.c_w in (1, 8)]
    >>> p = ckks_params(depth=1)
    >>> [(c.chunks * c.tiles, c.groups * c.tiles) for c in (one, eight)]         # (n_in, n_out)
    [(64, 3), (8, 22)]
    >>> [round(chunking_phases(c, p, 0, True, True).upload_bytes / 1e6, 2) for c in (one, eight)]   # MB up
    [8.39, 1.05]
    >>> [round(chunking_phases(c, p, 1, True, True, rescale=False).upload_bytes / 1e6, 2) for c in (one, eight)]
    [4.2, 0.52]
    """
    n_in, outs = ch.chunks * ch.tiles, ch.groups * ch.tiles
    extra = output_uploads * outs  # residual operands, uploaded in the output layout at the output's level
    out_level = level + rescale
    work = params.level_work(level)
    u = unit.at_work(work)  # multiplications and additions at the input's level
    # a mask's public-key encryption of zero is not scaled: SEAL encrypts one level up and switches
    # down, so at the last level it costs about level 0's (1.87 against 1.82 ms, run 0051's unit costs)
    masks = mask * (outs - min(covered, ch.groups) * ch.tiles)
    server = (outs * ch.chunks * u.pmul + (outs * (ch.chunks - 1) + masks) * u.add + rescale * outs * unit.rescale
              + masks * unit.encrypt + extra * unit.add)
    ups = n_in * work + extra * params.level_work(out_level)  # uploads in level-0 equivalents
    last = params.depth  # outputs go back at the last level (Backend.to_wire)
    read = ch.c_out * -(-ch.height // stride) * -(-ch.width // stride)  # read back in all: the stride grid's pixels
    return Phases(client_s=ups * (unit.encode + wire.encrypt(upload_seeded)) + outs * wire.decrypt_extracted,
                  server_s=server, server_io_s=ups * wire.load + outs * wire.save_extracted,
                  upload_bytes=n_in * ciphertext_bytes(params, level, upload_seeded)
                  + extra * ciphertext_bytes(params, out_level, upload_seeded),
                  download_bytes=outs * extracted_bytes(params, last, 0) + 8 * read * params.primes(last))


def choose_chunking(c_in: int, c_out: int, height: int, width: int, kernel: int, params: CKKSParams, level: int = 0,
                    frame_kernel: int | None = None, align: CoeffChunking | None = None, mask: bool = True,
                    objective: Objective | None = None, unit_costs: UnitCosts | None = None,
                    wire_costs: WireCosts | None = None, output_uploads: int = 0,
                    partner: tuple[int, int] | None = None, rescale: bool = True,
                    partner_masks: bool = True, covered: int = 0, stride: int = 1) -> tuple[CoeffChunking, ChunkChoice]:
    """The chunking with the least predicted cost under `objective` (default: end to end at the
    default bandwidth, seeded uploads), and the record of the choice. `output_uploads`: values the
    client uploads in this conv's output layout (1 where an identity shortcut is added to it);
    `partner`: (C_in, kernel) of a conv on the same output grid whose output is added to this
    one's, planned after it with this layout (`align`), priced with each candidate (with its masks
    unless `partner_masks` is False: this conv's masks cover the sum); `covered`: output groups whose
    masks a partner's cover (`CoeffPlan.covered`), priced without theirs. `level`, `rescale`:
    the input's level and whether the plan rescales (here by default, as `coefficient-rescale` plans;
    `plan_coeff_conv`'s default passes the chain's last level and no rescale).

    >>> slow, fast = (choose_chunking(512, 512, 4, 4, 3, ckks_params(depth=1), objective=Objective(bw))[1].winner
    ...               for bw in (1e8, 1e9))                                # 100 Mbit/s and 1 Gbit/s
    >>> (slow.c_w, slow.n_in, slow.n_out), (fast.c_w, fast.n_in, fast.n_out)   # fewer, fuller at 100 Mbit/s
    ((20, 26, 47), (17, 31, 40))
    """
    objective = objective or Objective()
    unit, wire = unit_costs or DEFAULT_UNIT_COSTS, wire_costs or DEFAULT_WIRE_COSTS
    if objective.kind == "server":  # the earlier rule exactly, kept to compare: each conv alone
        output_uploads, partner = 0, None
    chunkings = chunking_candidates(c_in, c_out, height, width, kernel, params.poly_modulus_degree, frame_kernel,
                                    align)
    cands = []
    for ch in chunkings:
        ph = chunking_phases(ch, params, level, mask, objective.seeded, unit, wire, output_uploads, rescale,
                             covered, stride)
        if partner is not None:
            ph = _with_partner(ph, ch, partner, params, level, mask and partner_masks, objective.seeded, unit, wire,
                               rescale, stride)
        cands.append(ChunkCandidate(ch.c_w, ch.tile_h, ch.tile_w, ch.chunks, ch.group, ch.chunks * ch.tiles,
                                    ch.groups * ch.tiles, ph, ph.cost(objective)))

    def key(i: int) -> tuple:
        c = cands[i]
        return (c.cost_s, c.n_in + c.n_out, -c.tile_h * c.tile_w)

    best = min(range(len(cands)), key=key)
    return chunkings[best], ChunkChoice(objective, tuple(cands), best, _reason(cands, best, key, objective))


def _with_partner(ph: Phases, ch: CoeffChunking, partner: tuple[int, int], params: CKKSParams, level: int,
                  mask: bool, seeded: bool, unit: UnitCosts, wire: WireCosts, rescale: bool = True,
                  stride: int = 1) -> Phases:
    """`ph` plus the partner conv aligned with `ch`: its uploads, evaluation and masks; nothing more
    comes back (the residual add's sum is `ph`'s download)."""
    c_in, kernel = partner
    other = chunking_candidates(c_in, ch.c_out, ch.height, ch.width, kernel, ch.n, ch.kernel, ch)[0]
    q = chunking_phases(other, params, level, mask, seeded, unit, wire, rescale=rescale, stride=stride)
    outs = other.groups * other.tiles
    return Phases(client_s=ph.client_s + q.client_s - outs * wire.decrypt_extracted,
                  server_s=ph.server_s + q.server_s,
                  server_io_s=ph.server_io_s + q.server_io_s - outs * wire.save_extracted,
                  upload_bytes=ph.upload_bytes + q.upload_bytes, download_bytes=ph.download_bytes)


def _reason(cands: list[ChunkCandidate], best: int, key, objective: Objective) -> str:
    """One line: what won, by how much against the runner-up, under which objective."""
    w = cands[best]
    what = (f"least predicted end-to-end time at {objective.bandwidth_bps / 1e6:g} Mbit/s with {objective.upload} "
            f"uploads" if objective.kind == "end-to-end" else "least predicted server time (traffic and client "
                                                               "left out)")
    line = (f"C_w={w.c_w}, {w.n_in} in / {w.n_out} out ciphertexts: {what}, {w.cost_s * 1e3:.2f} ms "
            f"of {len(cands)} candidate(s)")
    others = sorted((i for i in range(len(cands)) if i != best), key=key)
    if others:
        r = cands[others[0]]
        line += f"; runner-up C_w={r.c_w} ({r.n_in} in / {r.n_out} out) {r.cost_s * 1e3:.2f} ms"
    return line


def coefficient_chunking(c_in: int, c_out: int, height: int, width: int, kernel: int, n: int,
                         frame_kernel: int | None = None, align: CoeffChunking | None = None, mask: bool = True,
                         unit_costs: UnitCosts | None = None, objective: Objective | None = None,
                         params: CKKSParams | None = None) -> CoeffChunking:
    """`choose_chunking`'s chunking alone, on `params` (default: the hybrid protocol's one-level
    chain at N = n, as every coefficient conv runs).

    >>> c = coefficient_chunking(64, 64, 16, 16, 3, 8192)     # 18*18 = 324 per channel, at 1 Gbit/s
    >>> c.c_w, c.chunks, c.group, c.groups, c.tiles
    (3, 22, 8, 8, 1)
    >>> coefficient_chunking(64, 64, 16, 16, 3, 8192, objective=Objective(kind="server")).c_w   # the old rule
    1
    """
    params = params or ckks_params(depth=1, poly_modulus_degree=n, allow_insecure=True)
    if params.poly_modulus_degree != n:
        raise ValueError(f"coefficient_chunking: N = {n}, the parameters' is {params.poly_modulus_degree}")
    return choose_chunking(c_in, c_out, height, width, kernel, params, params.depth, frame_kernel, align, mask,
                           objective, unit_costs, rescale=False)[0]  # as plan_coeff_conv's default plan
