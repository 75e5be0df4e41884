"""Where matvec reads and writes (docs/design.md): the input in Gazelle's channel packing, the output
either in the same packing (stride 1) or multiplexed at the strided resolution (stride 2).

Input block bi holds channel bi*c_n + c in slots c*P + y*W + x (replicated with period T = c_n*P). Output
block bo holds L = m*c_n channels; local channel l = q*c_n + f sits in frame f at the parity offset
(a, b) = divmod(q, 2) of the input's frame: output pixel (y, x) of stride s at slot f*P + (s*y + a)*W + s*x + b.
Stride 1: m = 1, the Gazelle layout. Stride 2 on even maps: m = 4 parities share a frame, so the output is
a quarter of the ciphertexts and nothing is computed the client would throw away. (Stride 2 on an odd
map: m = 1, the output sits at the even pixels of the input's frame.)

Output slot i of term (l, c, pos = (dy, dx)) reads input slot j = c*P + (s*y + dy)*W + s*x + dx, so
j - i = (c - f)*P + (dy - a)*W + (dx - b) is the same for every pixel: each term lies on one generalized
diagonal k = (j - i) mod T of the block's matrix, and terms with the same k share one plaintext.

A single output ciphertext with room to spare (fewer channels than m*c_n) takes only the frames it
needs, F = c_n / 2^t of them, and is replicated with period T_out = F*P (Halevi-Shoup's wide matrix):
term k is computed on diagonal k mod T_out at output slot i + (k - k mod T_out), and t rotate-and-adds
by T_out, 2*T_out, ... fold the 2^t copies into the output. Diagonals drop up to 2^t-fold; nothing is
left in the unused slots but copies of the output.

An input with room to spare (R = S/T > 1 replicas of its period) can carry more than copies: with copy r
rotated left by r*U (U = T/R, `RotatedCopiesLayout`), diagonal d < U of the rotated input brings output slot
i of copy r the input at shift d + r'*U, r' = r (or r + 1 where i + d >= T: the read crosses into the next
copy, rotated U further), so the R copies together see every shift k = d + j*U once. Term k is computed on
diagonal k mod U at copy (j - [i + d >= T]) mod R, and log2(R) rotate-and-adds by T, 2T, ... sum the copies
into the output (replicated with period T, as without). Diagonals drop up to R-fold: 512->512 on 2x2 takes
1,024 plaintexts where the replicated input takes 2,048. (Only where nothing is folded: F = c_n.)

Complex packing (heconv.algorithms.matvec.complex) pairs the real blocks: input ciphertext a holds
Z = X[2a] + i X[2a+1] and its conjugate in the next T slots, output ciphertext c gets Y[2c] + i Y[2c+1];
the real blocks keep every place above (`blocks_in`, `blocks_out`, `block_weights`), and the fold sums
the 2T/T_out copies of the output.
Pure numpy: nothing here touches a backend.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ...geometry import kernel_offsets, packing_geometry


@dataclass(frozen=True)
class MatvecGeometry:
    """Shape and packing of one matvec conv: c_n input channels per ciphertext, m output channels per
    frame, P slots per frame, period T = c_n*P of the input; out_frames F (c_n / 2^t) frames per output
    ciphertext, replicated with period T_out = F*P; copies R: the input's replicas rotated apart (1: none)."""

    slots: int
    c_in: int
    c_out: int
    height: int
    width: int
    kernel: int
    stride: int
    channel_slots: int
    c_n: int
    parities: int
    out_frames: int
    copies: int = 1  # R: the input's replicas, copy r rotated left by r*T/R (1: plain replication)
    complex_pack: bool = False  # Z = X[2a] + i X[2a+1] in T slots, its conjugate in the next T

    @property
    def period(self) -> int:
        return self.c_n * self.channel_slots

    @property
    def out_period(self) -> int:
        return self.out_frames * self.channel_slots

    @property
    def diag_period(self) -> int:
        """U: the diagonals' period, T_out / R (T_out without rotated copies)."""
        return self.out_period // self.copies

    @property
    def fold(self) -> int:
        """The copies (T / T_out, or R of a rotated-copies input) that the output's rotate-and-adds fold
        (1: none)."""
        return self.c_n // self.out_frames * self.copies * (2 if self.complex_pack else 1)

    @property
    def fold_steps(self) -> list[int]:
        """The rotate-and-add steps of the fold: T_out, 2*T_out, ... below T (or T, 2T, ... below S)."""
        return [self.out_period << e for e in range(self.fold.bit_length() - 1)]

    @property
    def out_channels_per_ct(self) -> int:
        return self.out_frames * self.parities

    @property
    def blocks_in(self) -> int:
        """Real input blocks of c_n channels (two per ciphertext with complex packing)."""
        return -(-self.c_in // self.c_n)

    @property
    def blocks_out(self) -> int:
        """Real output blocks of m*F channels."""
        return -(-self.c_out // self.out_channels_per_ct)

    @property
    def n_in(self) -> int:
        """Input ciphertexts."""
        return -(-self.blocks_in // 2) if self.complex_pack else self.blocks_in

    @property
    def n_out(self) -> int:
        """Output ciphertexts."""
        return -(-self.blocks_out // 2) if self.complex_pack else self.blocks_out

    @property
    def out_height(self) -> int:
        return -(-self.height // self.stride)

    @property
    def out_width(self) -> int:
        return -(-self.width // self.stride)

    to_dict = asdict


def matvec_geometry(c_in: int, c_out: int, height: int, width: int, kernel: int, stride: int, slots: int,
                    c_n: int | None = None, out_frames: int | None = None, copies: int = 1,
                    complex_pack: bool = False) -> MatvecGeometry:
    """The input packing of the slot engine (heconv.geometry.packing_geometry), m = 4 output channels
    per frame for a stride-2 conv on an even map, and `out_frames` frames per output ciphertext (None:
    the fewest, halving c_n, that hold every output channel in one ciphertext; c_n where they need several).

    >>> g = matvec_geometry(64, 128, 16, 16, 3, 2, 4096)
    >>> g.c_n, g.parities, g.n_in, g.n_out, (g.out_height, g.out_width)     # 8 -> 2 output ciphertexts
    (16, 4, 4, 2, (8, 8))
    >>> g = matvec_geometry(512, 512, 2, 2, 3, 1, 4096)
    >>> g.c_n, g.period, g.n_in, g.n_out, g.fold
    (512, 2048, 1, 1, 1)
    >>> g = matvec_geometry(256, 512, 4, 4, 3, 2, 4096)     # 512 channels in 128 frames of 4 parities
    >>> g.out_frames, g.out_period, g.fold, g.fold_steps
    (128, 2048, 2, [2048])
    >>> g = matvec_geometry(512, 512, 2, 2, 3, 1, 4096, copies=2)   # two copies, the second rotated by 1,024
    >>> g.diag_period, g.fold, g.fold_steps
    (1024, 2, [2048])
    >>> g = matvec_geometry(256, 256, 4, 4, 3, 1, 4096, c_n=128, complex_pack=True)   # Z and conj Z, 2,048 each
    >>> g.blocks_in, g.n_in, g.n_out, g.fold_steps
    (2, 1, 1, [2048])
    """
    packing = packing_geometry(c_in, c_out, height, width, slots, c_n)
    if stride not in (1, 2):
        raise ValueError(f"matvec: stride must be 1 or 2, got {stride}")
    parities = 4 if stride == 2 and height % 2 == 0 and width % 2 == 0 else 1
    frames = packing.c_n
    pair = 2 if complex_pack else 1  # a complex output ciphertext holds two real blocks
    if out_frames is None:
        while frames % 2 == 0 and frames // 2 * parities * pair >= c_out:
            frames //= 2
    elif out_frames < 1 or packing.c_n % out_frames or (packing.c_n // out_frames) & (packing.c_n // out_frames - 1):
        raise ValueError(f"matvec: out_frames must be c_n = {packing.c_n} over a power of two, got {out_frames}")
    elif out_frames < packing.c_n and out_frames * parities * pair < c_out:
        raise ValueError(f"matvec: out_frames {out_frames} x {parities} parities{' x 2 (complex)' * (pair - 1)} "
                         f"hold fewer than the {c_out} output channels")
    else:
        frames = out_frames
    if copies not in (1, allowed_copies(slots, packing.c_n * packing.channel_slots, packing.c_n, frames)):
        raise ValueError(f"matvec: rotated copies must be the input's {packing.replicas} replicas, with no "
                         f"output fold (F = c_n = {packing.c_n}, got {frames}); got {copies}")
    period = packing.c_n * packing.channel_slots
    if complex_pack and (copies != 1 or 2 * period > slots):
        raise ValueError(f"matvec: complex packing needs T = {period} in half the {slots} slots and no rotated "
                         f"copies (got {copies})")
    return MatvecGeometry(slots, c_in, c_out, height, width, kernel, stride, packing.channel_slots, packing.c_n,
                          parities, frames, copies, complex_pack)


def allowed_copies(slots: int, period: int, c_n: int, out_frames: int) -> int:
    """The rotated copies an input of period T can be read as: its R = S/T replicas where 1 < R <= T (one
    diagonal period U = T/R at least) and nothing is folded at the output (F = c_n); else 1.

    >>> allowed_copies(4096, 2048, 512, 512), allowed_copies(4096, 2048, 512, 256), allowed_copies(4096, 32, 8, 8)
    (2, 1, 1)
    """
    replicas = slots // period
    return replicas if 1 < replicas <= period and out_frames == c_n else 1


def parity(q: int, geometry: MatvecGeometry) -> tuple[int, int]:
    """The offset (a, b) of parity q in the input's frame: (0, 0) unless multiplexed.

    >>> g = matvec_geometry(4, 4, 4, 4, 3, 2, 64)
    >>> [parity(q, g) for q in range(4)]
    [(0, 0), (0, 1), (1, 0), (1, 1)]
    """
    return divmod(q, 2) if geometry.parities == 4 else (0, 0)


def output_slots(geometry: MatvecGeometry, q: int) -> np.ndarray:
    """Frame slots [out_h * out_w] of parity q's output pixels, row-major.

    >>> output_slots(matvec_geometry(4, 4, 4, 4, 3, 2, 64), 3).tolist()     # (2y + 1)*4 + 2x + 1
    [5, 7, 13, 15]
    """
    g = geometry
    a, b = parity(q, g)
    y, x = np.divmod(np.arange(g.out_height * g.out_width), g.out_width)
    return (g.stride * y + a) * g.width + g.stride * x + b


def term_masks(geometry: MatvecGeometry) -> tuple[np.ndarray, np.ndarray]:
    """For every parity q and filter position pos: the 0/1 mask [m, k*k, out_h*out_w] of output pixels
    whose source (s*y + dy, s*x + dx) is in the image (masking replaces zero padding), and the frame
    shift [m, k*k] = (dy - a)*W + (dx - b) that the term adds to (c - f)*P.

    >>> masks, shifts = term_masks(matvec_geometry(1, 1, 2, 2, 3, 1, 16))
    >>> masks[0, 0].tolist(), shifts[0].tolist()                    # (dy, dx) = (-1, -1): only pixel (1, 1)
    ([0.0, 0.0, 0.0, 1.0], [-3, -2, -1, -1, 0, 1, 1, 2, 3])
    """
    g = geometry
    y, x = np.divmod(np.arange(g.out_height * g.out_width), g.out_width)
    offsets = kernel_offsets(g.kernel)
    masks = np.zeros((g.parities, len(offsets), len(y)))
    shifts = np.zeros((g.parities, len(offsets)), dtype=np.int64)
    for q in range(g.parities):
        a, b = parity(q, g)
        for p, (dy, dx) in enumerate(offsets):
            sy, sx = g.stride * y + dy, g.stride * x + dx
            masks[q, p] = (sy >= 0) & (sy < g.height) & (sx >= 0) & (sx < g.width)
            shifts[q, p] = (dy - a) * g.width + (dx - b)
    return masks, shifts


def block_weights(weight: np.ndarray, geometry: MatvecGeometry, bo: int, bi: int) -> np.ndarray:
    """Weights of one (output block, input block) pair as [m, F (frame f), c_n (input c), k*k]:
    entry [q, f, c, pos] = W[bo*L + q*F + f, bi*c_n + c, pos], zero past the channel counts.

    >>> w = np.arange(4.).reshape(2, 2, 1, 1)
    >>> block_weights(w, matvec_geometry(2, 2, 1, 1, 1, 1, 8, out_frames=2), 0, 0)[0, :, :, 0].tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """
    g = geometry
    c_o, c_i, k, _ = weight.shape
    big_l = g.out_channels_per_ct
    out = np.zeros((big_l, g.c_n, k * k))
    o0, i0 = bo * big_l, bi * g.c_n
    part = weight[o0 : o0 + big_l, i0 : i0 + g.c_n].reshape(-1, min(g.c_n, c_i - i0), k * k)
    out[: part.shape[0], : part.shape[1]] = part
    return out.reshape(g.parities, g.out_frames, g.c_n, k * k)


def term_shifts(geometry: MatvecGeometry) -> np.ndarray:
    """The shift k = ((c - f)*P + shift[q, pos]) mod T of every term, as [m, F (f), c_n (c), k*k]; the
    term's diagonal is k mod T_out (`fold_shift`).

    >>> k = term_shifts(matvec_geometry(2, 2, 1, 1, 1, 1, 8, out_frames=2))       # P = 1, T = 2
    >>> k[0, :, :, 0].tolist()
    [[0, 1], [1, 0]]
    """
    g = geometry
    _, shifts = term_masks(g)
    d = (np.arange(g.c_n)[None, :] - np.arange(g.out_frames)[:, None]) * g.channel_slots  # [f, c]
    return (d[None, :, :, None] + shifts[:, None, None, :]) % g.period


def fold_shift(k: np.ndarray | int, geometry: MatvecGeometry) -> tuple:
    """(diagonal, offset) of shift k: the term sits on diagonal d = k mod U, and k - d is the offset it
    leaves to the fold. Without rotated copies (U = T_out) the term sits at its output slot plus that
    offset (the copy the fold brings back); with them, `copy_rows` places it.

    >>> fold_shift(np.array([5, 2053]), matvec_geometry(256, 512, 4, 4, 3, 2, 4096))    # T_out = 2048
    (array([5, 5]), array([   0, 2048]))
    """
    d = np.asarray(k) % geometry.diag_period
    return d, np.asarray(k) - d


def copy_rows(slots: np.ndarray, d: np.ndarray, offset: np.ndarray, geometry: MatvecGeometry) -> np.ndarray:
    """Where diagonal d's weight for output slot i (< T) of a term at `offset` = j*U sits among the R*T slots
    of a rotated-copies input: copy (j - [i + d >= T]) mod R, at i.

    >>> g = matvec_geometry(1, 1, 2, 2, 1, 1, 16, copies=4)    # T = 4, U = 1: shift k = j
    >>> copy_rows(np.array([0, 3]), np.array([0, 0]), np.array([2, 2]), g).tolist()   # no read crosses a copy
    [8, 11]
    >>> g = matvec_geometry(1, 1, 2, 2, 1, 1, 8, copies=2)     # T = 4, U = 2
    >>> copy_rows(np.array([1, 3]), np.array([1, 1]), np.array([2, 2]), g).tolist()   # slot 3 + 1 crosses
    [5, 3]
    """
    g = geometry
    j = offset // g.diag_period
    return (j - (slots + d >= g.period)) % g.copies * g.period + slots


def pair_diagonals(weight: np.ndarray, geometry: MatvecGeometry, bo: int, bi: int,
                   shifts: np.ndarray | None = None, masks: np.ndarray | None = None) -> list[int]:
    """The nonzero generalized diagonals of pair (bo, bi), sorted: the distinct k mod U of its terms
    with a nonzero weight and at least one output pixel inside the image.

    >>> w = np.ones((512, 512, 3, 3))
    >>> len(pair_diagonals(w, matvec_geometry(512, 512, 2, 2, 3, 1, 4096), 0, 0))   # 512 x 7 terms, 2048 k
    2048
    >>> len(pair_diagonals(np.ones((512, 256, 3, 3)), matvec_geometry(256, 512, 4, 4, 3, 2, 4096), 0, 0))
    2048
    """
    shifts = term_shifts(geometry) if shifts is None else shifts
    masks = term_masks(geometry)[0] if masks is None else masks
    live = (block_weights(weight, geometry, bo, bi) != 0) & masks.any(axis=2)[:, None, None, :]
    return [int(k) for k in np.unique(fold_shift(shifts[live], geometry)[0])]


def diagonal_vectors(weight: np.ndarray, geometry: MatvecGeometry, bo: int, bi: int,
                     diagonals: list[int]) -> np.ndarray:
    """The T-slot vectors [len(diagonals), T] (R*T with rotated copies) of the pair's diagonals:
    diag_d[i] = M'[i, i + d], where output slot i of term (q, f, c, pos) (plus its fold offset, or in the
    copy `copy_rows` gives) receives its weight at every pixel its mask keeps."""
    g = geometry
    masks, _ = term_masks(g)
    diag, offset = fold_shift(term_shifts(g), g)
    wb = block_weights(weight, g, bo, bi)
    row = {k: r for r, k in enumerate(diagonals)}
    lookup = np.full(g.diag_period, -1, dtype=np.int64)
    lookup[list(row)] = list(row.values())
    out = np.zeros((len(diagonals), g.period * g.copies))
    for q in range(g.parities):
        slots = output_slots(g, q)
        for p in range(masks.shape[1]):
            kept = slots[masks[q, p] != 0]
            f, c = np.nonzero(wb[q, :, :, p])
            if not len(kept) or not len(f):
                continue
            rows = lookup[diag[q, f, c, p]]
            if g.copies == 1:
                cols = (f * g.channel_slots + offset[q, f, c, p])[:, None] + kept[None, :]
            else:
                cols = copy_rows((f * g.channel_slots)[:, None] + kept[None, :], diag[q, f, c, p][:, None],
                                 offset[q, f, c, p][:, None], g)
            np.add.at(out, (np.broadcast_to(rows[:, None], cols.shape), cols),
                      np.broadcast_to(wb[q, f, c, p][:, None], cols.shape))
    return out
