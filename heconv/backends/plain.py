"""Cleartext backend: slot vectors in numpy, with CKKS bookkeeping but no encryption.

It runs the exact operation sequence of the SEAL backend (same counter, same key
checks, same level and scale rules), so whole networks can be counted in seconds
and the packing logic tested without encryption.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass

import numpy as np

from ..params import CKKSParams, estimated_galois_key_bytes
from ..traffic import SEED_BYTES, ciphertext_bytes, extracted_bytes  # noqa: F401  (SEED_BYTES: the old import path)
from .base import Backend, OpCounts, Wire, normalize_step
from .embedding import negacyclic_product


def _sum_into(acc: np.ndarray, v: np.ndarray) -> np.ndarray:
    """acc + v, in place unless a complex v widens a real acc."""
    if np.iscomplexobj(v) and not np.iscomplexobj(acc):
        return acc + v
    acc += v
    return acc


def _copy(v: np.ndarray | None) -> np.ndarray | None:
    return None if v is None else v.copy()


@dataclass
class PlainVector:
    """A cleartext stand-in for a CKKS plaintext or ciphertext: S slot values, or (`coeffs`)
    the N coefficients of its polynomial, multiplied negacyclically."""

    values: np.ndarray | None
    level: int
    scale: float
    is_cipher: bool
    coeffs: bool = False


class PlainBackend(Backend):
    """Cleartext backend. `track_values=False` only counts: the same operations, levels
    and key checks, no slot arithmetic (whole ResNets at 64x64 in seconds).

    >>> from heconv.params import ckks_params
    >>> b = PlainBackend(ckks_params(depth=1))
    >>> b.generate_galois_keys([1])
    >>> x = b.encrypt(np.arange(4096.0))
    >>> b.decrypt(b.rotate(x, 1))[:3].tolist(), b.counter.rotations
    ([1.0, 2.0, 3.0], 1)
    """

    def __init__(self, params: CKKSParams, track_values: bool = True):
        self.params = params
        self.tracks_values = track_values
        self.counter = OpCounts()
        self._keys: frozenset[int] = frozenset()
        self._secret = True

    def public_view(self) -> "PlainBackend":
        view = PlainBackend(self.params, self.tracks_values)
        view._keys = self._keys
        view._secret = False
        return view

    def generate_galois_keys(self, steps: list[int] | set[int]) -> None:
        if not self._secret:
            raise PermissionError("Galois keys are made by the key owner (client), not by a public view")
        self._keys = frozenset(s for s in (normalize_step(x, self.slots) for x in steps) if s)

    @property
    def galois_steps(self) -> frozenset[int]:
        return self._keys

    def galois_key_bytes(self) -> int:
        return len(self._keys) * estimated_galois_key_bytes(self.params)

    def _check_level(self, level: int) -> None:
        if not 0 <= level <= self.params.depth:
            raise ValueError(f"level {level} is outside the modulus chain (0..{self.params.depth})")

    def _vector(self, values: np.ndarray | None) -> np.ndarray | None:
        if not self.tracks_values:
            return None
        v = np.asarray(values, dtype=np.complex128 if np.iscomplexobj(values) else np.float64)
        if v.shape != (self.slots,):
            raise ValueError(f"expected {self.slots} slot values, got shape {v.shape}")
        return v

    def encode(self, values: np.ndarray, level: int = 0, scale: float | None = None) -> PlainVector:
        self._check_level(level)
        self.counter.encodes += 1
        v = self._vector(values)
        return PlainVector(None if v is None else v.copy(), level, scale or self.params.scale, False)

    def encrypt(self, values: np.ndarray) -> PlainVector:
        return self.encrypt_plain(self.encode(values))

    def encrypt_plain(self, plain: PlainVector) -> PlainVector:
        self.counter.encryptions += 1
        return PlainVector(_copy(plain.values), plain.level, plain.scale, True, plain.coeffs)

    def decrypt(self, ct: PlainVector) -> np.ndarray:
        if not self._secret:
            raise PermissionError("this backend holds no secret key: it cannot decrypt")
        if ct.coeffs:
            raise ValueError("decrypt: a coefficient-encoded ciphertext is read with decode_coefficients")
        self.counter.decryptions += 1
        return np.real(ct.values).copy() if ct.values is not None else np.zeros(self.slots)

    def decrypt_complex(self, ct: PlainVector) -> np.ndarray:
        values = self.decrypt(ct)  # its checks and count
        return ct.values.astype(np.complex128) if ct.values is not None else values.astype(np.complex128)

    def encode_coefficients(self, coeffs: np.ndarray, level: int = 0, scale: float | None = None) -> PlainVector:
        self._check_level(level)
        n = self.params.poly_modulus_degree
        v = None
        if self.tracks_values:
            v = np.array(coeffs, dtype=np.float64)
            if v.shape != (n,):
                raise ValueError(f"expected {n} coefficients, got shape {v.shape}")
        self.counter.encodes += 1
        return PlainVector(v, level, scale or self.params.scale, False, True)

    def decode_coefficients(self, ct: PlainVector) -> np.ndarray:
        if not self._secret:
            raise PermissionError("this backend holds no secret key: it cannot decrypt")
        if not ct.coeffs:
            raise ValueError("decode_coefficients: a slot-encoded ciphertext is read with decrypt")
        self.counter.decryptions += 1
        return ct.values.copy() if ct.values is not None else np.zeros(self.params.poly_modulus_degree)

    def rerandomize(self, ct: PlainVector) -> None:
        self.counter.encryptions += 1  # a fresh encryption of zero: the values stay
        self.counter.adds += 1

    def rotate(self, ct: PlainVector, step: int) -> PlainVector:
        if ct.coeffs:
            raise ValueError("rotate: a coefficient-encoded ciphertext has no slots to rotate")
        s = sum(self._count_rotation(step))
        return PlainVector(None if ct.values is None else np.roll(ct.values, -s), ct.level, ct.scale, True)

    def multiply_plain(self, ct: PlainVector, plain: PlainVector) -> PlainVector:
        if ct.level != plain.level:
            raise ValueError(f"multiply_plain: ciphertext at level {ct.level}, plaintext at {plain.level}")
        if ct.coeffs != plain.coeffs:
            raise ValueError("multiply_plain: one operand is coefficient-encoded, the other slot-encoded")
        self.counter.pmuls += 1
        if ct.values is None:
            values = None
        else:
            values = negacyclic_product(ct.values, plain.values) if ct.coeffs else ct.values * plain.values
        return PlainVector(values, ct.level, ct.scale * plain.scale, True, ct.coeffs)

    def square_inplace(self, ct: PlainVector) -> None:
        if ct.coeffs:
            raise ValueError("square_inplace: not defined here for a coefficient-encoded ciphertext")
        self.counter.cmuls += 1
        if ct.values is not None:
            ct.values *= ct.values
        ct.scale *= ct.scale

    def _same(self, a: PlainVector, b: PlainVector, op: str) -> None:
        if a.coeffs != b.coeffs:
            raise ValueError(f"{op}: one operand is coefficient-encoded, the other slot-encoded")
        if a.level != b.level or abs(a.scale - b.scale) > 1e-9 * max(a.scale, b.scale):
            raise ValueError(
                f"{op}: operands at (level {a.level}, scale 2^{np.log2(a.scale):.2f}) and "
                f"(level {b.level}, scale 2^{np.log2(b.scale):.2f}) differ"
            )

    def add_inplace(self, acc: PlainVector, ct: PlainVector) -> None:
        self._same(acc, ct, "add")
        self.counter.adds += 1
        if acc.values is not None:
            acc.values = _sum_into(acc.values, ct.values)

    def add_plain_inplace(self, ct: PlainVector, plain: PlainVector) -> None:
        self._same(ct, plain, "add_plain")
        self.counter.plain_adds += 1
        if ct.values is not None:
            ct.values = _sum_into(ct.values, plain.values)

    def rescale_inplace(self, ct: PlainVector) -> None:
        if ct.level >= self.params.depth:
            raise ValueError(f"rescale: ciphertext already at the last level {ct.level}")
        self.counter.rescales += 1
        ct.scale /= self.rescale_divisor(ct.level)
        ct.level += 1

    def level(self, ct: PlainVector) -> int:
        return ct.level

    def scale(self, ct: PlainVector) -> float:
        return ct.scale

    def rescale_divisor(self, level: int) -> float:
        self._check_level(level)
        return float(2 ** self.params.coeff_mod_bit_sizes[-2 - level])

    def plaintext_bytes(self, level: int) -> int:
        return self.slots * 16 if self.tracks_values else 64  # complex128 slot values at most, or none when counting

    def save_ciphertext(self, ct: PlainVector, path: str) -> int:
        with open(path, "wb") as f:
            pickle.dump((ct.values, ct.level, ct.scale, ct.is_cipher, ct.coeffs), f, protocol=pickle.HIGHEST_PROTOCOL)
        return os.path.getsize(path)

    def load_ciphertext(self, path: str) -> PlainVector:
        # Only files this backend wrote itself (worker processes of one run) are read back.
        with open(path, "rb") as f:
            values, level, scale, is_cipher, coeffs = pickle.load(f)
        return PlainVector(values, level, scale, is_cipher, coeffs)

    def ciphertext_bytes(self, ct: PlainVector) -> int:
        return ciphertext_bytes(self.params, ct.level)  # SEAL's words, uncompressed (heconv.traffic)

    # the network: the same objects pass, their sizes modelled as SEAL's uncompressed words
    def encrypt_for_upload(self, plain: PlainVector, seeded: bool = True) -> Wire:
        if seeded and not self._secret:
            raise PermissionError("this backend holds no secret key: it cannot encrypt symmetrically (seeded)")
        ct = self.encrypt_plain(plain)
        # seeded: one polynomial and SEAL's 64-byte seed for the other
        return Wire(ct, ciphertext_bytes(self.params, ct.level, seeded))

    def to_wire(self, ct: PlainVector, read: np.ndarray | None = None) -> Wire:
        if read is None:
            return Wire(ct, self.ciphertext_bytes(ct))  # the sender lets go of it: no copy
        if not ct.coeffs:
            raise ValueError("to_wire: only a coefficient-encoded ciphertext is sent with some coefficients read")
        # NaN where nothing was sent (SEAL's receiver decodes noise there): reading it shows
        values = None if ct.values is None else np.where(read, ct.values, np.nan)
        sent = PlainVector(values, self.params.depth, ct.scale, ct.is_cipher, True)  # switched to the last level
        return Wire(sent, extracted_bytes(self.params, self.params.depth, int(np.count_nonzero(read))), read)

    def from_wire(self, wire: Wire, read: np.ndarray | None = None) -> PlainVector:
        read = wire.read if read is None else read
        if read is not None and (wire.read is None or not np.array_equal(read, wire.read)):
            raise ValueError("from_wire: the receiver reads other coefficients than were sent")
        return wire.payload
