"""What a coefficient-encoding convolution plan is (docs/design.md, "The coefficient algorithm"): its chunking, its
kept kernel blocks, its mask, its counts.

Frozen data only (built by `heconv.coeff.plan_coeff_conv`, executed by
`heconv.coeff.run_coeff_conv`), with a JSON round trip:
`CoeffPlan.from_dict(json.loads(plan.to_json())) == plan`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from .basics import OpCounts
from .coeff_choice import ChunkChoice
from .conv_plan import ConvSpec
from .geometry import CoeffChunking
from .params import CKKSParams


def coefficient_counts(blocks: list[list[int]], tiles: int, has_bias: bool, mask: bool,
                       rescale: bool = False, covered: tuple[int, ...] = ()) -> OpCounts:
    """The cost model of the coefficient algorithm from its kept blocks (blocks[g]: the input chunks
    whose kernel block of output group g is nonzero).

    Per (output group g, tile): one plaintext multiplication per kept chunk, their sum, a rescale
    where the plan rescales, the bias, and with `mask` a re-randomisation (an encryption of zero and an
    addition) unless its group is `covered` (a residual partner's covers the sum); an output with no
    kept block is the encrypted bias alone. No rotation.

    >>> c = coefficient_counts([list(range(64))] * 3, 1, False, True)   # dense 64->64 3x3 on 16x16, N = 8192
    >>> c.rotations, c.pmuls, c.adds, c.rescales, c.encryptions
    (0, 192, 192, 0, 3)
    >>> coefficient_counts([list(range(64))] * 3, 1, False, True, rescale=True).rescales
    3
    >>> coefficient_counts([list(range(64))] * 3, 1, False, True, covered=(0, 2)).encryptions   # one mask left
    1
    """
    kept = sum(len(b) for b in blocks)
    full = sum(1 for b in blocks if b)
    masks = tiles * sum(1 for g, b in enumerate(blocks) if b and g not in covered) if mask else 0
    return OpCounts(pmuls=tiles * kept, adds=tiles * (kept - full) + masks, plain_adds=tiles * full if has_bias else 0,
                    rescales=tiles * full if rescale else 0, encryptions=tiles * (len(blocks) - full) + masks)


def dense_coefficient_counts(chunking: CoeffChunking, has_bias: bool = False, mask: bool = True,
                             rescale: bool = False) -> OpCounts:
    """The closed formula of a dense layer, with G = ceil(C_out / group) output groups:
    pmuls = G*tiles*chunks, adds = G*tiles*(chunks - 1 + mask), rescales = rescale*G*tiles,
    encryptions = mask*G*tiles.

    >>> from heconv.geometry import chunking_candidates
    >>> c = dense_coefficient_counts(chunking_candidates(64, 64, 16, 16, 3, 8192)[0], rescale=True)
    >>> c.pmuls, c.adds, c.rescales                    # C_w = 1: G = 3 groups of 22 channels, 64 chunks
    (192, 192, 3)
    """
    ch = chunking
    outs = ch.groups * ch.tiles
    return OpCounts(pmuls=outs * ch.chunks, adds=outs * (ch.chunks - 1 + mask), plain_adds=outs if has_bias else 0,
                    rescales=outs if rescale else 0, encryptions=outs * mask)


@dataclass(frozen=True)
class CoeffPlan:
    """Everything `run_coeff_conv` will do, decided before any ciphertext exists.

    chunking: C_w, chunks, output groups, tiles and the frame (heconv.coeff_choice); choice: every
    chunking considered with its predicted phases, and why this one won (None: not recorded);
    blocks[g]: the input chunks whose kernel block K[channels of group g, chunk] is nonzero (one
    plaintext, one multiplication per tile each); mask: whether every output ciphertext is
    re-randomised by a fresh public-key encryption of zero (its unread coefficients, the weights'
    partial sums, never go back: `heconv.coeff_mask`); covered: the output groups left as they are
    because a residual add sums them, before anything reaches the client, with the re-randomised
    outputs of a partner conv of the same layout (one re-randomisation covers the sum). Input ciphertexts
    t * chunks + b, outputs g * tiles + t.

    level, rescale: the input's level, and whether the products are rescaled. Without a rescale (the
    default) the client encrypts at the chain's last level (one prime: half the bytes of level 0) at
    scale 2^(s - s//2), the weights are encoded at 2^(s//2), and the output stays at that level at
    scale 2^s, with the same headroom a rescaled output has (heconv.bounds). With one (the earlier
    way), the input is at 2^s, the weights at the prime the rescale divides by, and the output one
    level down at 2^s.
    """

    spec: ConvSpec
    chunking: CoeffChunking
    params: CKKSParams
    level: int
    has_bias: bool
    mask: bool
    blocks: list[list[int]]
    predicted: OpCounts = field(default_factory=OpCounts)
    choice: ChunkChoice | None = None
    rescale: bool = False
    covered: tuple[int, ...] = ()

    @property
    def output_level(self) -> int:
        return self.level + self.rescale

    @property
    def input_scale_bits(self) -> int:
        """log2 of the scale the client encrypts the input at (the weights take the rest of 2^s)."""
        s = self.params.scale_bits
        return s if self.rescale else s - s // 2

    @property
    def rotation_steps(self) -> list[int]:
        """No Galois key: the coefficient algorithm never rotates."""
        return []

    @property
    def n_in(self) -> int:
        return self.chunking.chunks * self.chunking.tiles

    @property
    def n_out(self) -> int:
        return self.chunking.groups * self.chunking.tiles

    @property
    def plaintexts(self) -> int:
        """Weight plaintexts the compile encodes (one per kept block, shared by the tiles)."""
        return sum(len(b) for b in self.blocks)

    @property
    def empty_outputs(self) -> list[int]:
        """Output groups with no kept block: the server encrypts the bias alone."""
        return [g for g, b in enumerate(self.blocks) if not b]

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "CoeffPlan":
        params = dict(d["params"])
        params["coeff_mod_bit_sizes"] = tuple(params["coeff_mod_bit_sizes"])
        return cls(spec=ConvSpec(**d["spec"]), chunking=CoeffChunking(**d["chunking"]), params=CKKSParams(**params),
                   level=d["level"], has_bias=d["has_bias"], mask=d["mask"], blocks=d["blocks"],
                   predicted=OpCounts(**d["predicted"]),
                   choice=ChunkChoice.from_dict(d["choice"]) if d.get("choice") else None,
                   rescale=d.get("rescale", True),  # plans written before the option rescaled
                   covered=tuple(d.get("covered", ())))
