"""Where every channel, pixel and weight lives in the coefficients (docs/design.md, "The coefficient algorithm").

Given a `heconv.geometry.CoeffChunking` (frame F = (tile_h + k - 1) x (tile_w + k - 1),
A = F's area, output offset O, spacing D, m = group), input ciphertext t * chunks + b holds
chunk b of tile t:

    x[c*A + y*frame_w + x'] = X[b*C_w + c, ty*tile_h + y - p, tx*tile_w + x' - p]   (p = (k-1)/2; 0 outside)

the plaintext of output group g and chunk b holds the flipped kernels of its m channels

    w[O + u*D - c*A - l*frame_w - l'] = K[g*m + u, b*C_w + c, l, l']

and output ciphertext g * tiles + t holds pixel (ty*tile_h + i, tx*tile_w + j) of channel
g*m + u at coefficient O + u*D + i*frame_w + j. Pure numpy: nothing here touches a backend.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .geometry import CoeffChunking


def _tile_grid(ch: CoeffChunking) -> tuple[int, int]:
    return -(-ch.height // ch.tile_h), -(-ch.width // ch.tile_w)


def _padded(x: np.ndarray, ch: CoeffChunking, channels: int) -> np.ndarray:
    """[channels, tiles_y*tile_h + k - 1, tiles_x*tile_w + k - 1]: x with the halo and edge padding."""
    p = (ch.kernel - 1) // 2
    c, h, w = x.shape
    if (h, w) != (ch.height, ch.width):
        raise InputError(f"coefficient packing: feature map is {h}x{w}, the chunking expects {ch.height}x{ch.width}")
    ty, tx = _tile_grid(ch)
    out = np.zeros((channels, ty * ch.tile_h + ch.kernel - 1, tx * ch.tile_w + ch.kernel - 1))
    out[:c, p : p + h, p : p + w] = x
    return out


def tile_origins(ch: CoeffChunking) -> list[tuple[int, int]]:
    """Top-left output pixel of every tile, in tile order (row-major).

    >>> from heconv.coeff_choice import coefficient_chunking
    >>> tile_origins(coefficient_chunking(3, 8, 16, 16, 3, 256))
    [(0, 0), (8, 0)]
    """
    ny, nx = _tile_grid(ch)
    return [(ty * ch.tile_h, tx * ch.tile_w) for ty in range(ny) for tx in range(nx)]


def pack_coeff_input(x: np.ndarray, ch: CoeffChunking) -> list[np.ndarray]:
    """A feature map [C_in, H, W] as chunks * tiles coefficient vectors (index t * chunks + b).

    >>> from heconv.coeff_choice import coefficient_chunking
    >>> ch = coefficient_chunking(1, 1, 2, 2, 3, 32)           # one 4x4 frame: the 2x2 map with its halo
    >>> pack_coeff_input(np.array([[[1., 2.], [3., 4.]]]), ch)[0][:16].reshape(4, 4).tolist()[1]
    [0.0, 1.0, 2.0, 0.0]
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] != ch.c_in:
        raise InputError(f"coefficient packing: {x.shape[0]} input channels, the chunking expects {ch.c_in}")
    padded = _padded(x, ch, ch.chunks * ch.c_w)
    fh, fw, area = ch.frame_h, ch.frame_w, ch.frame_h * ch.frame_w
    out = []
    for y0, x0 in tile_origins(ch):
        frame = padded[:, y0 : y0 + fh, x0 : x0 + fw].reshape(ch.chunks, ch.c_w * area)
        for b in range(ch.chunks):
            v = np.zeros(ch.n)
            v[: ch.c_w * area] = frame[b]
            out.append(v)
    return out


def read_index(ch: CoeffChunking) -> np.ndarray:
    """[group, tile_h, tile_w]: the coefficient holding pixel (i, j) of member u, O + u*D + i*frame_w + j.

    >>> from heconv.coeff_choice import coefficient_chunking
    >>> read_index(coefficient_chunking(1, 1, 2, 2, 3, 32)).tolist()     # D = 16 + 2*5 = 26, O = D - 16 = 10
    [[[10, 11], [14, 15]]]
    """
    u = np.arange(ch.group)[:, None, None] * ch.spacing
    return ch.offset + u + np.arange(ch.tile_h)[None, :, None] * ch.frame_w + np.arange(ch.tile_w)[None, None, :]


def pack_coeff_output(y: np.ndarray, ch: CoeffChunking) -> list[np.ndarray]:
    """A map [C, H, W] in the output layout (index g * tiles + t, C <= groups * group): what a
    residual operand the client uploads must look like to be added to the conv's outputs."""
    y = np.asarray(y, dtype=np.float64)
    ty, tx = _tile_grid(ch)
    full = np.zeros((ch.groups * ch.group, ty * ch.tile_h, tx * ch.tile_w))
    full[: y.shape[0], : ch.height, : ch.width] = y
    idx = read_index(ch)
    out = []
    for g in range(ch.groups):
        for y0, x0 in tile_origins(ch):
            v = np.zeros(ch.n)
            v[idx] = full[g * ch.group : (g + 1) * ch.group, y0 : y0 + ch.tile_h, x0 : x0 + ch.tile_w]
            out.append(v)
    return out


def unpack_coeff_output(vectors: list[np.ndarray], ch: CoeffChunking, channels: int) -> np.ndarray:
    """Inverse of `pack_coeff_output`: [channels, H, W] from groups * tiles coefficient vectors.

    >>> from heconv.coeff_choice import coefficient_chunking
    >>> ch = coefficient_chunking(1, 2, 2, 2, 3, 32)
    >>> y = np.arange(8.).reshape(2, 2, 2)
    >>> bool((unpack_coeff_output(pack_coeff_output(y, ch), ch, 2) == y).all())
    True
    """
    groups = -(-channels // ch.group)
    if len(vectors) != groups * ch.tiles:
        raise ValueError(f"coefficient unpacking: {len(vectors)} vectors, expected {groups} groups of {ch.group} "
                         f"channels x {ch.tiles} tiles for {channels} channels")
    idx = read_index(ch)
    ty, tx = _tile_grid(ch)
    full = np.zeros((groups * ch.group, ty * ch.tile_h, tx * ch.tile_w))
    origins = tile_origins(ch)
    for i, v in enumerate(vectors):
        (y0, x0), g = origins[i % ch.tiles], i // ch.tiles
        full[g * ch.group : (g + 1) * ch.group, y0 : y0 + ch.tile_h, x0 : x0 + ch.tile_w] = np.asarray(v)[idx]
    return full[:channels, : ch.height, : ch.width]


def kernel_polynomial(weight: np.ndarray, g: int, b: int, ch: CoeffChunking) -> np.ndarray:
    """The plaintext of output group g and input chunk b: K[g*m + u, chunk b] flipped and shifted by
    u*D for each member u, a smaller kernel centred in the frame's.

    >>> from heconv.coeff_choice import coefficient_chunking
    >>> ch = coefficient_chunking(1, 1, 2, 2, 3, 32)
    >>> v = kernel_polynomial(np.arange(9.).reshape(1, 1, 3, 3), 0, 0, ch)
    >>> v[[10, 0, 2]].tolist()              # K[0,0,0,0] at O = 10; K[..,2,2] at O - 2*4 - 2; K[..,2,0] at O - 2*4
    [0.0, 8.0, 6.0]
    """
    c_out, c_in, k, _ = weight.shape
    kf, pad = ch.kernel, (ch.kernel - k) // 2
    block = np.zeros((ch.group, ch.c_w, kf, kf))
    lo, hi = b * ch.c_w, min(c_in, (b + 1) * ch.c_w)
    members = weight[g * ch.group : (g + 1) * ch.group, lo:hi]
    block[: len(members), : hi - lo, pad : pad + k, pad : pad + k] = members
    u, c, l1, l2 = np.meshgrid(np.arange(ch.group), np.arange(ch.c_w), np.arange(kf), np.arange(kf), indexing="ij")
    v = np.zeros(ch.n)
    v[ch.offset + u * ch.spacing - c * ch.frame_h * ch.frame_w - l1 * ch.frame_w - l2] = block
    return v


def read_coefficients(ch: CoeffChunking, channels: int, stride: int = 1) -> list[np.ndarray]:
    """Per output ciphertext (g * tiles + t), a boolean N-vector: True where the client reads a pixel of
    one of the `channels` (inside the image, on the stride grid); what an extracted download sends of c0.

    >>> from heconv.coeff_choice import coefficient_chunking
    >>> ch = coefficient_chunking(1, 2, 2, 2, 3, 32)                       # 2 groups of 1 channel
    >>> [np.nonzero(m)[0].tolist() for m in read_coefficients(ch, 2, 2)]
    [[10], [10]]
    """
    tiles = needed_coefficients(ch, stride)
    out = []
    for g in range(-(-channels // ch.group)):
        members = np.zeros(ch.n, dtype=bool)
        members[read_index(ch)[: channels - g * ch.group]] = True  # the last group may hold fewer channels
        out.extend(m & members for m in tiles)
    return out


def needed_coefficients(ch: CoeffChunking, stride: int = 1) -> list[np.ndarray]:
    """Per tile, a boolean N-vector: True where the client reads an output pixel (inside the
    image and on the stride grid) of any of the tile's `group` members. Every other coefficient
    stays on the server (`read_coefficients`, per output ciphertext).

    >>> from heconv.coeff_choice import coefficient_chunking
    >>> [np.nonzero(m)[0].tolist() for m in needed_coefficients(coefficient_chunking(1, 1, 2, 2, 3, 32), 2)]
    [[10]]
    """
    idx = read_index(ch)
    out = []
    for y0, x0 in tile_origins(ch):
        rows, cols = y0 + np.arange(ch.tile_h)[:, None], x0 + np.arange(ch.tile_w)[None, :]
        keep = (rows < ch.height) & (cols < ch.width) & (rows % stride == 0) & (cols % stride == 0)
        m = np.zeros(ch.n, dtype=bool)
        m[idx[:, keep]] = True
        out.append(m)
    return out
