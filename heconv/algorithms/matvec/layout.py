"""matvec's layouts (heconv.algorithms.matvec.geometry): the output multiplexed at the strided resolution; an
input whose replicas are rotated apart; complex packing of either."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...errors import InputError
from ..layout import Layout, SlotLayout
from .complex import pair_vectors, split_vectors
from .geometry import MatvecGeometry, output_slots


@dataclass(frozen=True)
class MultiplexedLayout(Layout):
    """matvec's output (heconv.algorithms.matvec.geometry): L = m*F channels per ciphertext, channel
    q*F + f of a block in frame f at parity q's pixels of the input's frame, at the strided resolution,
    replicated with period T_out = F*P.

    >>> from heconv.algorithms.matvec.geometry import matvec_geometry
    >>> lay = MultiplexedLayout(matvec_geometry(4, 4, 2, 2, 1, 2, 16, out_frames=4), 4)   # 4 parities, c_n = 4
    >>> lay.ciphertexts, lay.pack(np.arange(4.).reshape(4, 1, 1))[0][::4].tolist()     # parity 0 of frames 0..3
    (1, [0.0, 1.0, 2.0, 3.0])
    >>> lay = MultiplexedLayout(matvec_geometry(4, 4, 2, 2, 1, 2, 16), 4)    # one frame of 4 parities, 4 copies
    >>> lay.pack(np.arange(4.).reshape(4, 1, 1))[0].tolist()
    [0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0]
    """

    geometry: MatvecGeometry
    channels: int
    scale_bits: int | None = None  # the map sits at 2^scale_bits (None: the parameters' scale)

    def scale(self, params) -> float:
        return params.scale if self.scale_bits is None else 2.0 ** self.scale_bits

    @property
    def placement(self) -> tuple:
        """What places the values: the frame and the parities (and the scale), not the conv's c_in, c_out or
        kernel."""
        g = self.geometry
        return (type(self).__name__, g.slots, g.height, g.width, g.stride, g.channel_slots, g.out_frames,
                g.parities, self.channels, self.scale_bits)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.geometry.out_height, self.geometry.out_width)

    @property
    def ciphertexts(self) -> int:
        return -(-self.channels // self.geometry.out_channels_per_ct)

    def _index(self) -> tuple[np.ndarray, np.ndarray]:
        """(block, slot) of every (channel, pixel), as [C, out_h*out_w] arrays."""
        g = self.geometry
        o = np.arange(self.channels)
        local = o % g.out_channels_per_ct
        q, f = np.divmod(local, g.out_frames)
        slots = np.stack([output_slots(g, p) for p in range(g.parities)])  # [m, pixels]
        return np.broadcast_to((o // g.out_channels_per_ct)[:, None], (len(o), slots.shape[1])), (
            f[:, None] * g.channel_slots + slots[q])

    def pack(self, x: np.ndarray) -> list[np.ndarray]:
        x, g = self._check(x), self.geometry
        block, slot = self._index()
        buf = np.zeros((self.ciphertexts, g.out_period))
        buf[block, slot] = x.reshape(self.channels, -1)
        return [np.tile(v, g.slots // g.out_period) for v in buf]

    def unpack(self, vectors: list[np.ndarray]) -> np.ndarray:
        block, slot = self._index()
        v = np.stack([np.asarray(u)[: self.geometry.out_period] for u in vectors])
        return v[block, slot].reshape(self.shape)


@dataclass(frozen=True)
class RotatedCopiesLayout(SlotLayout):
    """Gazelle's channel packing (SlotLayout) whose R = S/T replicas are rotated apart: copy r holds the
    period-T block rotated left by r*T/R, so that one diagonal of matvec reads R shifts at once
    (heconv.algorithms.matvec.geometry). Copy 0 is the plain packing.

    >>> lay = RotatedCopiesLayout(8, 1, 2, 2, 2, copies=2)      # T = 4 (2 channels of 2 slots), U = 2
    >>> lay.pack(np.arange(4.).reshape(2, 1, 2))[0].tolist()
    [0.0, 1.0, 2.0, 3.0, 2.0, 3.0, 0.0, 1.0]
    >>> lay.unpack(lay.pack(np.arange(4.).reshape(2, 1, 2)))[:, 0].tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """

    copies: int = 1

    def pack(self, x: np.ndarray) -> list[np.ndarray]:
        replicas = self.packing.replicas
        if self.copies != replicas:
            raise InputError(f"RotatedCopiesLayout: {self.copies} copies of a map with {replicas} replicas "
                             f"({self.channels} channels of {self.height}x{self.width} in {self.slots} slots)")
        period = self.slots // self.copies
        out = []
        for v in super().pack(x):
            block = v[:period]
            out.append(np.concatenate([np.roll(block, -r * period // self.copies) for r in range(self.copies)]))
        return out


@dataclass(frozen=True)
class ComplexLayout(Layout):
    """Complex packing (heconv.algorithms.matvec.complex): the real layout `inner`'s ciphertexts two by two
    as real and imaginary parts. An input (`period` T) carries its conjugate in slots [T, 2T), repeated
    with period 2T; an output (`period` None) is the pair alone, in `inner`'s places.

    >>> lay = ComplexLayout(SlotLayout(8, 1, 1, 2, 4), period=2)     # 4 channels, 2 per real block of T = 2
    >>> lay.ciphertexts, lay.pack(np.arange(4.).reshape(4, 1, 1))[0].tolist()
    (1, [2j, (1+3j), -2j, (1-3j), 2j, (1+3j), -2j, (1-3j)])
    >>> lay.unpack(lay.pack(np.arange(4.).reshape(4, 1, 1))).ravel().tolist()
    [0.0, 1.0, 2.0, 3.0]
    """

    inner: Layout
    period: int | None = None  # an input's T (its conjugate in [T, 2T)); None: an output
    encoding: ClassVar[str] = "complex"
    # |a + i b| <= sqrt(2) max(|a|, |b|); the products before the fold stay within it too (each half's row
    # weights A, B have L1 norms at most the larger real row's, times |Z| <= sqrt(2) max|x|).
    modulus_factor: ClassVar[float] = math.sqrt(2.0)

    def scale(self, params) -> float:
        return self.inner.scale(params)

    @property
    def kind(self) -> str:
        return f"{type(self).__name__}({self.inner.kind})"

    @property
    def placement(self) -> tuple:
        return (type(self).__name__, self.inner.placement, self.period)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.inner.shape

    @property
    def ciphertexts(self) -> int:
        return -(-self.inner.ciphertexts // 2)

    def pack(self, x: np.ndarray) -> list[np.ndarray]:
        out = pair_vectors(self.inner.pack(x))
        if self.period is None:
            return out
        t = self.period
        return [np.tile(np.concatenate([v[:t], np.conj(v[:t])]), len(v) // (2 * t)) for v in out]

    def unpack(self, vectors: list[np.ndarray]) -> np.ndarray:
        vs = [np.asarray(v) for v in vectors]
        if self.period is not None:  # the pair sits in the first T slots; the inner layout reads its period
            vs = [np.tile(v[: self.period], len(v) // self.period) for v in vs]
        return self.inner.unpack(split_vectors(vs, self.inner.ciphertexts))
