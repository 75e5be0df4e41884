"""Packing geometry: where every channel and pixel lives in the CKKS slots.

The one place that decides the layout (docs/design.md, "Packing"): the engine, the cost model
and the pruning groups all read it, so a change here moves them all together.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .basics import next_pow2  # noqa: F401  (re-exported: the old import path)
from .errors import InputError


@dataclass(frozen=True)
class Packing:
    """Slot layout of one layer's input and output feature maps.

    slots: S = N/2 slots per ciphertext.
    channel_slots: P = nextpow2(H*W) slots per channel.
    c_n: channels per ciphertext (the same for input and output of the layer).
    n_in, n_out: ciphertexts holding the input and the output feature map.
    replicas: how many times a block of c_n channels repeats to fill S slots.
    """

    slots: int
    height: int
    width: int
    c_in: int
    c_out: int
    channel_slots: int
    c_n: int
    n_in: int
    n_out: int
    replicas: int

    @property
    def layout(self) -> tuple[int, int, int, int, int]:
        """What fixes where a channel's pixels sit: (S, H, W, P, c_n); channel counts do not."""
        return (self.slots, self.height, self.width, self.channel_slots, self.c_n)

    def to_dict(self) -> dict:
        return asdict(self)


def packing_geometry(c_in: int, c_out: int, height: int, width: int, slots: int, c_n: int | None = None) -> Packing:
    """Gazelle-style channel packing for a layer C_in -> C_out on an H x W input.

    c_n = min(S / P, nextpow2(max(C_in, C_out))) with P = nextpow2(H*W), unless a
    network fixes one c_n for all its layers (the non-interactive mode, where no
    refresh re-packs between layers).

    >>> g = packing_geometry(64, 64, 16, 16, 4096)
    >>> g.channel_slots, g.c_n, g.n_in, g.n_out, g.replicas
    (256, 16, 4, 4, 1)
    >>> g = packing_geometry(3, 16, 8, 8, 4096)
    >>> g.channel_slots, g.c_n, g.n_in, g.n_out, g.replicas
    (64, 16, 1, 1, 4)
    """
    for name, v in (("c_in", c_in), ("c_out", c_out), ("height", height), ("width", width)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise InputError(f"packing: {name} must be a positive integer, got {v!r}")
    if slots < 1 or slots & (slots - 1):
        raise InputError(f"packing: slots must be a power of two, got {slots}")
    p = next_pow2(height * width)
    if p > slots:
        raise InputError(
            f"packing: an {height}x{width} channel needs P = {p} slots, but a ciphertext "
            f"has only S = {slots}; use a larger poly modulus degree (N >= {2 * p}) "
            f"or a smaller input"
        )
    if c_n is None:
        c_n = min(slots // p, next_pow2(max(c_in, c_out)))
    elif c_n < 1 or c_n & (c_n - 1) or c_n * p > slots:
        raise InputError(f"packing: c_n = {c_n} must be a power of two with c_n * P <= S ({p} * c_n <= {slots})")
    return Packing(
        slots=slots,
        height=height,
        width=width,
        c_in=c_in,
        c_out=c_out,
        channel_slots=p,
        c_n=c_n,
        n_in=-(-c_in // c_n),
        n_out=-(-c_out // c_n),
        replicas=slots // (c_n * p),
    )


def kernel_offsets(kernel: int) -> list[tuple[int, int]]:
    """Filter positions (dy, dx) in row-major order of the k x k kernel.

    >>> kernel_offsets(3)[:4]
    [(-1, -1), (-1, 0), (-1, 1), (0, -1)]
    """
    r = kernel // 2
    return [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]


def position_shift(dy: int, dx: int, width: int) -> int:
    """Slot shift sigma(pos) = dy*W + dx that brings pixel (y+dy, x+dx) onto (y, x).

    >>> position_shift(-1, 1, 16)
    -15
    """
    return dy * width + dx


def valid_pixel_masks(kernel: int, height: int, width: int, channel_slots: int) -> np.ndarray:
    """0/1 masks [k*k, P]: 1 where output pixel (y, x) reads a source inside the image.

    Masking replaces zero padding ("same" convolution). Slots past H*W are always 0,
    so the padding slots of a channel stay zero through the layer.

    >>> valid_pixel_masks(3, 2, 2, 4)[0].tolist()   # (dy, dx) = (-1, -1)
    [0.0, 0.0, 0.0, 1.0]
    """
    y, x = np.divmod(np.arange(height * width), width)
    masks = np.zeros((kernel * kernel, channel_slots))
    for j, (dy, dx) in enumerate(kernel_offsets(kernel)):
        ok = (y + dy >= 0) & (y + dy < height) & (x + dx >= 0) & (x + dx < width)
        masks[j, : height * width] = ok
    return masks


def diagonal_index(c_out: int, c_in: int, c_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal group (bo, d) of every weight W[o, i]: bo = o // c_n, d = (i - o) mod c_n.

    Input channel slot c = i mod c_n of block bi meets output o = bo*c_n + (c - d) mod c_n,
    so all weights with the same (bo, d) share one output rotation by d*P slots.

    >>> bo, d = diagonal_index(4, 4, 4)
    >>> d.tolist()
    [[0, 1, 2, 3], [3, 0, 1, 2], [2, 3, 0, 1], [1, 2, 3, 0]]
    """
    o = np.arange(c_out)[:, None]
    i = np.arange(c_in)[None, :]
    bo = np.broadcast_to(o // c_n, (c_out, c_in))
    d = (i % c_n - o % c_n) % c_n
    return bo, d


def positional_index(c_out: int, c_in: int, kernel: int, c_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Positional group (bi, pos) of every weight W[o, i, ky, kx]: bi = i // c_n, pos = ky*k + kx.

    All weights of a group share the one input rotation by sigma(pos) of ciphertext bi.

    >>> bi, pos = positional_index(1, 4, 3, 2)
    >>> bi[0, :, 0, 0].tolist(), pos[0, 0].tolist()
    ([0, 0, 1, 1], [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    """
    shape = (c_out, c_in, kernel, kernel)
    bi = np.broadcast_to((np.arange(c_in) // c_n)[None, :, None, None], shape)
    pos = np.broadcast_to(np.arange(kernel * kernel).reshape(1, 1, kernel, kernel), shape)
    return bi, pos


@dataclass(frozen=True)
class GroupIds:
    """The pruning groups of every weight W[o, i, ky, kx] (docs/pruning.md, "Pruning groups"), as id arrays
    of the weight's shape: a group saves the engine one rotation (diagonal, positional) or
    one plaintext multiplication (plaintext) when all its weights are zero.

    - diagonal  = bo * c_n + d          in [0, n_out * c_n)
    - positional = bi * k * k + pos     in [0, n_in * k * k)
    - plaintext = diagonal * (n_in * k * k) + positional
    """

    diagonal: np.ndarray
    positional: np.ndarray
    plaintext: np.ndarray
    n_diagonal: int
    n_positional: int
    c_n: int
    kernel: int


def group_ids(shape: tuple[int, int, int, int], c_n: int) -> GroupIds:
    """Group ids of a [C_out, C_in, k, k] weight packed with c_n channels per ciphertext.

    >>> g = group_ids((4, 4, 3, 3), c_n=2)
    >>> g.n_diagonal, g.n_positional, int(g.plaintext.max()) + 1
    (4, 18, 72)
    >>> g.diagonal[:, :, 0, 0].tolist()
    [[0, 1, 0, 1], [1, 0, 1, 0], [2, 3, 2, 3], [3, 2, 3, 2]]
    """
    c_out, c_in, k, k2 = shape
    if k != k2:
        raise InputError(f"group_ids: kernel must be square, got {k}x{k2}")
    bo, d = diagonal_index(c_out, c_in, c_n)
    bi, pos = positional_index(c_out, c_in, k, c_n)
    diag = np.broadcast_to((bo * c_n + d)[:, :, None, None], tuple(shape))
    posid = bi * k * k + pos
    n_in, n_out = -(-c_in // c_n), -(-c_out // c_n)
    return GroupIds(diag, posid, diag * (n_in * k * k) + posid, n_out * c_n, n_in * k * k, c_n, k)


@dataclass(frozen=True)
class ScheduleGroupIds:
    """The pruning groups of every weight W[o, i, ky, kx] under baby step B (docs/design.md, "Rotation schedules"),
    as id arrays of the weight's shape. With d = (i - o) mod c_n = g*B + j:

    - giant  = bo * (c_n / B) + g          in [0, n_out * c_n / B): one giant-step rotation
      of output ciphertext bo (none when g = 0);
    - baby   = (bi * B + j) * k * k + pos  in [0, n_in * B * k * k): one baby-step rotation
      of input ciphertext bi (none when (j, pos) = (0, centre)).

    B = 1 gives exactly `group_ids`' diagonal and positional groups.
    """

    giant: np.ndarray
    baby: np.ndarray
    n_giant: int
    n_baby: int
    c_n: int
    kernel: int
    baby_step: int

    def giant_saves(self, ids: np.ndarray) -> np.ndarray:
        """True where zeroing giant group `ids` saves a rotation (g != 0)."""
        return np.asarray(ids) % (self.c_n // self.baby_step) != 0

    def baby_saves(self, ids: np.ndarray) -> np.ndarray:
        """True where zeroing baby group `ids` saves a rotation ((j, pos) != (0, centre)).

        On narrow images two groups of one input may share a shift, hence a rotation.
        """
        kk = self.kernel * self.kernel
        ids = np.asarray(ids)
        return ((ids // kk) % self.baby_step != 0) | (ids % kk != kk // 2)


def schedule_group_ids(shape: tuple[int, int, int, int], c_n: int, baby_step: int = 1) -> ScheduleGroupIds:
    """Giant-step (bo, g) and baby-step (bi, j, pos) group ids of a [C_out, C_in, k, k] weight.

    >>> g = schedule_group_ids((4, 4, 1, 1), c_n=4, baby_step=2)
    >>> g.giant[:, :, 0, 0].tolist()      # d = (i - o) mod 4; g = d // 2
    [[0, 0, 1, 1], [1, 0, 0, 1], [1, 1, 0, 0], [0, 1, 1, 0]]
    >>> g.baby[:, :, 0, 0].tolist()       # j = d mod 2
    [[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]]
    >>> (g.n_giant, g.n_baby), g.giant_saves([0, 1]).tolist(), g.baby_saves([0, 1]).tolist()
    ((2, 2), [False, True], [False, True])
    """
    c_out, c_in, k, k2 = shape
    if k != k2:
        raise InputError(f"schedule_group_ids: kernel must be square, got {k}x{k2}")
    if baby_step < 1 or c_n % baby_step or baby_step & (baby_step - 1):
        raise InputError(f"schedule_group_ids: the baby step B = {baby_step} must be a power of two dividing "
                         f"c_n = {c_n}")
    bo, d = diagonal_index(c_out, c_in, c_n)
    bi, pos = positional_index(c_out, c_in, k, c_n)
    b = baby_step
    giant = np.broadcast_to((bo * (c_n // b) + d // b)[:, :, None, None], tuple(shape))
    baby = (bi * b + (d % b)[:, :, None, None]) * k * k + pos
    n_in, n_out = -(-c_in // c_n), -(-c_out // c_n)
    return ScheduleGroupIds(giant, baby, n_out * (c_n // b), n_in * b * k * k, c_n, k, b)


def pack(x: np.ndarray, packing: Packing) -> list[np.ndarray]:
    """Lay a feature map [C, H, W] out in ceil(C / c_n) slot vectors of length S.

    >>> g = packing_geometry(2, 2, 1, 2, 8)      # P = 2, c_n = 2, replicated twice
    >>> pack(np.array([[[1., 2.]], [[3., 4.]]]), g)[0].tolist()
    [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]
    """
    c, h, w = x.shape
    if (h, w) != (packing.height, packing.width):
        raise InputError(f"pack: feature map is {h}x{w}, the packing expects {packing.height}x{packing.width}")
    n_blocks = -(-c // packing.c_n)
    buf = np.zeros((n_blocks * packing.c_n, packing.channel_slots))
    buf[:c, : h * w] = x.reshape(c, h * w)
    blocks = buf.reshape(n_blocks, packing.c_n * packing.channel_slots)
    return [np.tile(b, packing.replicas) for b in blocks]


def unpack(vectors: list[np.ndarray], packing: Packing, channels: int) -> np.ndarray:
    """Inverse of pack: read [channels, H, W] from the first replica of each vector.

    >>> g = packing_geometry(2, 2, 1, 2, 8)
    >>> unpack([np.arange(8.)], g, 2).tolist()
    [[[0.0, 1.0]], [[2.0, 3.0]]]
    """
    h, w, p, c_n = packing.height, packing.width, packing.channel_slots, packing.c_n
    if len(vectors) * c_n < channels:
        raise ValueError(
            f"unpack: {len(vectors)} vectors of {c_n} channels cannot hold {channels} channels"
        )
    rows = [np.asarray(v)[: c_n * p].reshape(c_n, p) for v in vectors]
    return np.concatenate(rows)[:channels, : h * w].reshape(channels, h, w)


@dataclass(frozen=True)
class CoeffChunking:
    """Coefficient layout of a conv (docs/design.md): an input ciphertext holds c_w channels of one tile,
    each in a (tile_h + k - 1) x (tile_w + k - 1) frame (k - 1 halo, zero outside the image); an output
    ciphertext holds `group` channels of one tile, member u's pixel (i, j) at offset + u*spacing +
    i*frame_w + j (spacing = c_w*A + (k-1)*(frame_w+1), A the frame's area, keeps the members apart).
    `kernel`: the frame's (a smaller kernel is centred); equal `output_layout`s make outputs that add."""

    n: int
    c_in: int
    c_out: int
    height: int
    width: int
    kernel: int
    tile_h: int
    tile_w: int
    c_w: int
    chunks: int
    group: int
    spacing: int

    frame_h = property(lambda s: s.tile_h + s.kernel - 1)
    frame_w = property(lambda s: s.tile_w + s.kernel - 1)
    tiles = property(lambda s: -(-s.height // s.tile_h) * -(-s.width // s.tile_w))
    groups = property(lambda s: -(-s.c_out // s.group))
    offset = property(lambda s: s.spacing - s.frame_h * s.frame_w)
    output_layout = property(lambda s: (s.n, s.height, s.width, s.kernel, s.tile_h, s.tile_w, s.group, s.spacing))

    to_dict = asdict


def chunking_candidates(c_in: int, c_out: int, height: int, width: int, kernel: int, n: int,
                        frame_kernel: int | None = None, align: CoeffChunking | None = None) -> list[CoeffChunking]:
    """Every chunking of a conv the coefficient algorithm could use (heconv.coeff_choice picks one):
    each C_w from 1 to what fits in N beside the halo, with as many output channels per ciphertext
    as fit; the whole map when one channel's frame fits, else the smallest tile of each tile count.
    `align`: that conv's tiles, group and spacing (outputs that are added), so one candidate at most.

    >>> [(c.c_w, c.chunks, c.group) for c in chunking_candidates(4, 4, 4, 4, 3, 128)]   # 6*6 = 36 per channel
    [(1, 4, 2), (2, 2, 1), (3, 2, 1)]
    """
    k = max(kernel, frame_kernel or kernel, align.kernel if align else 1)
    if kernel % 2 == 0 or k % 2 == 0 or k * k > n or n & (n - 1):
        raise InputError(f"coefficient chunking: kernel {kernel} (frame {k}) must be odd, N = {n} a power of 2 >= k*k")
    if align is not None:
        shapes = [(align.tile_h, align.tile_w)]
    elif (height + k - 1) * (width + k - 1) + (k - 1) * (width + k) <= n:  # one channel fits
        shapes = [(height, width)]
    else:  # the smallest tile of each tile count
        shapes = [(th, tw) for th in sorted({-(-height // q) for q in range(1, height + 1)})
                  for tw in sorted({-(-width // q) for q in range(1, width + 1)})]
    out = []
    for th, tw in shapes:
        area, halo = (th + k - 1) * (tw + k - 1), (k - 1) * (tw + k)
        widths = range(1, min(c_in, (n - halo) // area) + 1)
        if align is not None:
            widths = [min(c_in, (align.spacing - halo) // area)] if align.spacing - halo >= area else []
        for c_w in widths:
            spacing = align.spacing if align else c_w * area + halo
            group = align.group if align else min(c_out, n // spacing)
            out.append(CoeffChunking(n, c_in, c_out, height, width, k, th, tw, c_w, -(-c_in // c_w), group, spacing))
    if not out:
        raise InputError(f"coefficient chunking: no {k}x{k} frame fits in N = {n}" + (" when aligned" if align else ""))
    return out


def coefficient_block_ids(shape: tuple[int, int, int, int], chunking: CoeffChunking) -> tuple[np.ndarray, int]:
    """Kernel-block group id (o // group) * chunks + i // C_w of every weight W[o, i, ky, kx] (the
    output ciphertext's channels and one input chunk: one plaintext), and the number of groups. An
    all-zero block saves one plaintext multiplication per tile.

    >>> ids, n = coefficient_block_ids((2, 3, 1, 1), CoeffChunking(8, 3, 2, 1, 1, 1, 1, 1, 2, 2, 1, 2))  # C_w = 2
    >>> ids[:, :, 0, 0].tolist(), n                                        # chunks {0, 1} and {2}
    ([[0, 0, 1], [2, 2, 3]], 4)
    """
    c_out, c_in, k, _ = shape
    if (c_out, c_in) != (chunking.c_out, chunking.c_in):
        raise InputError(f"coefficient_block_ids: weight {list(shape)} does not match the chunking's "
                         f"{chunking.c_in}->{chunking.c_out}")
    ids = (np.arange(c_out) // chunking.group)[:, None] * chunking.chunks + np.arange(c_in)[None, :] // chunking.c_w
    return np.broadcast_to(ids[:, :, None, None], tuple(shape)), chunking.groups * chunking.chunks
