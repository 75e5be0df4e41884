"""Where a feature map sits in a list of ciphertexts: the `Layout` an algorithm reads or writes.

A layout is frozen data with `pack` (a map [C, H, W] -> one vector per ciphertext) and `unpack` (the
inverse, from decrypted vectors); `encoding` says whether the vectors are CKKS slots or polynomial
coefficients, so a client encrypts and decrypts any layout the same way (`encrypt_map`, `decrypt_map`).
Two algorithms can hand a map to each other without the client when the one's output layout equals the
other's input layout.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..backends.base import Backend
from ..coeff_pack import pack_coeff_input, pack_coeff_output, read_coefficients, unpack_coeff_output
from ..errors import InputError
from ..geometry import CoeffChunking, Packing, pack, packing_geometry, unpack


@dataclass(frozen=True)
class Layout(ABC):
    """A frozen description of where every value of a [channels, height, width] map sits; equal layouts
    put every value in the same place."""

    encoding: ClassVar[str] = "slots"  # or "complex" (complex slots), "coefficients"

    @property
    @abstractmethod
    def shape(self) -> tuple[int, int, int]:
        """The map's [C, H, W] (after any stride the layout applies)."""

    @property
    @abstractmethod
    def ciphertexts(self) -> int:
        """How many ciphertexts hold the map."""

    @abstractmethod
    def pack(self, x: np.ndarray) -> list[np.ndarray]:
        """One vector per ciphertext (slots or coefficients)."""

    @abstractmethod
    def unpack(self, vectors: list[np.ndarray]) -> np.ndarray:
        """The map back from the decrypted vectors."""

    # A slot's modulus over the bound of the real values it carries (1: real slots); the bounds checks
    # (heconv.network.bounds, the layer harness) scale their bound by it.
    modulus_factor: ClassVar[float] = 1.0

    @property
    def kind(self) -> str:
        """What a record calls the layout: its class name (a wrapper names what it wraps)."""
        return type(self).__name__

    def scale(self, params: Any) -> float:
        """The CKKS scale the client encodes at: the parameters' 2^s unless the layout says otherwise."""
        return params.scale

    def reads(self) -> tuple[np.ndarray, ...] | None:
        """Per ciphertext, the coefficients (a boolean N-vector) `unpack` reads, where only those need to
        cross the network (`Backend.to_wire`); None: every ciphertext is sent whole (slots)."""
        return None

    def encode(self, backend: Backend, vector: np.ndarray, level: int = 0) -> Any:
        """The client's plaintext of one packed vector, in the layout's encoding (slots here)."""
        return backend.encode(vector, level, self.scale(backend.params))

    @property
    def placement(self) -> Any:
        """What places the values (equal placements: a residual add may sum the two maps slot by slot);
        the layout itself unless some field does not place values."""
        return self

    def _check(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape != self.shape:
            raise InputError(f"{type(self).__name__}: the map is {list(x.shape)}, the layout holds {list(self.shape)}")
        return x


@dataclass(frozen=True)
class SlotLayout(Layout):
    """Gazelle's channel packing (heconv.geometry.pack): c_n channels of P = nextpow2(H*W) slots per
    ciphertext, replicated to S; with `stride` s the map is the pixels (s*y, s*x) of the H x W frame (the
    slot engine's strided output, subsampled by the client). Only what places a value is a field, so the
    output layout of one layer equals the input layout of the next when the slots agree.

    >>> from heconv.geometry import packing_geometry
    >>> lay = SlotLayout.of(packing_geometry(2, 3, 2, 2, 16), 2, stride=2)
    >>> lay, lay.shape, lay.unpack(lay.pack(np.array([[[1.]], [[2.]]])))[:, 0, 0].tolist()
    (SlotLayout(slots=16, height=2, width=2, c_n=4, channels=2, stride=2, scale_bits=None), (2, 1, 1), [1.0, 2.0])
    >>> lay == SlotLayout.of(packing_geometry(2, 4, 2, 2, 16), 2, stride=2)      # c_out does not place values
    True
    """

    slots: int
    height: int
    width: int
    c_n: int
    channels: int
    stride: int = 1
    scale_bits: int | None = None  # the map sits at 2^scale_bits (None: the parameters' scale)

    @classmethod
    def of(cls, packing: Packing, channels: int, stride: int = 1, scale_bits: int | None = None) -> "SlotLayout":
        """The layout of `channels` channels in a layer's packing."""
        return cls(packing.slots, packing.height, packing.width, packing.c_n, channels, stride, scale_bits)

    def scale(self, params: Any) -> float:
        return params.scale if self.scale_bits is None else 2.0 ** self.scale_bits

    @property
    def packing(self) -> Packing:
        return packing_geometry(self.channels, self.channels, self.height, self.width, self.slots, self.c_n)

    @property
    def shape(self) -> tuple[int, int, int]:
        s = self.stride
        return (self.channels, -(-self.height // s), -(-self.width // s))

    @property
    def ciphertexts(self) -> int:
        return -(-self.channels // self.c_n)

    def pack(self, x: np.ndarray) -> list[np.ndarray]:
        x, s = self._check(x), self.stride
        frame = np.zeros((self.channels, self.height, self.width))
        frame[:, ::s, ::s] = x
        return pack(frame, self.packing)

    def unpack(self, vectors: list[np.ndarray]) -> np.ndarray:
        return unpack(list(vectors), self.packing, self.channels)[:, :: self.stride, :: self.stride]


@dataclass(frozen=True)
class CoeffLayout(Layout):
    """The coefficient algorithm's input (`role` "input": chunks of channels per tile) or output ("output":
    groups of channels per tile, read at `stride`), heconv.coeff_pack; `scale_bits`: the client encodes
    at 2^scale_bits (None: the parameters' scale)."""

    chunking: CoeffChunking
    channels: int
    role: str = "input"
    stride: int = 1
    scale_bits: int | None = None
    encoding: ClassVar[str] = "coefficients"

    def scale(self, params: Any) -> float:
        return params.scale if self.scale_bits is None else 2.0 ** self.scale_bits

    def encode(self, backend: Backend, vector: np.ndarray, level: int = 0) -> Any:
        return backend.encode_coefficients(vector, level, self.scale(backend.params))

    def reads(self) -> tuple[np.ndarray, ...] | None:
        """An output's read coefficients (heconv.coeff_pack.read_coefficients); an input is not read back."""
        return _output_reads(self.chunking, self.channels, self.stride) if self.role == "output" else None

    @property
    def placement(self) -> Any:
        """An output is placed by the chunking's output layout alone (two convs summed by a residual add
        share it, heconv.coeff_plan, while their input chunks differ)."""
        if self.role == "output":
            return (type(self).__name__, self.chunking.output_layout, self.channels, self.stride)
        return self

    @property
    def shape(self) -> tuple[int, int, int]:
        s = self.stride if self.role == "output" else 1
        return (self.channels, -(-self.chunking.height // s), -(-self.chunking.width // s))

    @property
    def ciphertexts(self) -> int:
        ch = self.chunking
        return ch.tiles * (ch.chunks if self.role == "input" else ch.groups)

    def pack(self, x: np.ndarray) -> list[np.ndarray]:
        if self.role == "input":
            return pack_coeff_input(self._check(x), self.chunking)
        frame = np.zeros((self.channels, self.chunking.height, self.chunking.width))
        frame[:, :: self.stride, :: self.stride] = self._check(x)
        return pack_coeff_output(frame, self.chunking)

    def unpack(self, vectors: list[np.ndarray]) -> np.ndarray:
        if self.role != "output":
            raise InputError("CoeffLayout: only an output layout is read back by the client")
        return unpack_coeff_output(list(vectors), self.chunking, self.channels)[:, :: self.stride, :: self.stride]


@functools.lru_cache(maxsize=64)
def _output_reads(chunking: CoeffChunking, channels: int, stride: int) -> tuple[np.ndarray, ...]:
    reads = tuple(read_coefficients(chunking, channels, stride))
    for r in reads:
        r.flags.writeable = False  # shared between calls
    return reads


def encrypt_map(x: np.ndarray, layout: Layout, backend: Backend, level: int = 0) -> list[Any]:
    """Client side: pack a [C, H, W] map in `layout` and encrypt each vector at `level`."""
    return [backend.encrypt_plain(layout.encode(backend, v, level)) for v in layout.pack(x)]


def decrypt_map(cts: list[Any], layout: Layout, backend: Backend) -> np.ndarray:
    """Client side: decrypt and unpack a map from `layout`."""
    if layout.encoding == "coefficients":
        return layout.unpack([backend.decode_coefficients(c) for c in cts])
    if layout.encoding == "complex":
        return layout.unpack([backend.decrypt_complex(c) for c in cts])
    return layout.unpack([backend.decrypt(c) for c in cts])
