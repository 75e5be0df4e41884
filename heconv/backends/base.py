"""The small interface every HE backend implements, and the operation counter.

Two backends implement it: `heconv.backends.seal.SealBackend` (real CKKS through
tenseal.sealapi) and `heconv.backends.plain.PlainBackend` (slot vectors in numpy).
The engine only talks to this interface, so both run the same sequence of operations
and their counters must agree exactly.

Levels count rescales done so far (0 = fresh ciphertext). Rotation steps are left
rotations by `step` slots, normalised to 1 <= step < S.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..basics import OpCounts  # noqa: F401  (re-exported: the old import path)
from ..params import CKKSParams


def normalize_step(step: int, slots: int) -> int:
    """A rotation step as a left rotation in [0, S).

    >>> normalize_step(-3, 4096), normalize_step(4099, 4096)
    (4093, 3)
    """
    return int(step) % slots


def galois_element(step: int, poly_modulus_degree: int) -> int:
    """SEAL's Galois element for a left rotation by `step` > 0: 3^step mod 2N.

    >>> galois_element(1, 8192)
    3
    """
    if step <= 0:
        raise ValueError(f"a rotation step must be positive once normalised, got {step}")
    return pow(3, step, 2 * poly_modulus_degree)


def naf(n: int) -> list[int]:
    """Non-adjacent form of n as signed powers of two, as SEAL decomposes steps.

    >>> naf(7), naf(5), naf(-3)
    ([-1, 8], [1, 4], [1, -4])
    """
    out = []
    sign = -1 if n < 0 else 1
    n = abs(n)
    bit = 1
    while n:
        if n & 1:
            z = 2 - (n % 4)
            out.append(sign * z * bit)
            n -= z
        n >>= 1
        bit <<= 1
    return out


def key_switch_plan(step: int, key_steps: frozenset[int], slots: int) -> list[int]:
    """The keyed steps a rotation by `step` is carried out with.

    One key switch when the step has its own key; otherwise SEAL's decomposition into
    the signed powers of two of its non-adjacent form, each of which must have a key.

    >>> key_switch_plan(7, frozenset({7}), 4096)
    [7]
    >>> key_switch_plan(7, frozenset({1, 8, 4095}), 4096)
    [4095, 8]
    """
    s = normalize_step(step, slots)
    if s == 0:
        return []
    if s in key_steps:
        return [s]
    # SEAL decomposes the signed step; choose the shorter of s and s - S.
    signed = s if s <= slots // 2 else s - slots
    parts = [normalize_step(p, slots) for p in naf(signed)]
    missing = [p for p in parts if p not in key_steps]
    if missing:
        raise ValueError(
            f"rotation by {s} slots: no Galois key for step {s}, and its decomposition "
            f"{parts} lacks keys for {missing}; generate keys for the plan's steps"
        )
    return parts


@dataclass(frozen=True)
class Wire:
    """One ciphertext as it crosses the network: what the receiver loads (`payload`) and its
    size on the wire in bytes (SEAL: its own serialization, measured; cleartext: modelled)."""

    payload: Any
    nbytes: int
    read: np.ndarray | None = None  # the coefficients the receiver reads, from the plan (not sent): `to_wire`


class Backend(ABC):
    """Operations the engine needs. Every method that does HE work updates `counter`."""

    params: CKKSParams
    counter: OpCounts
    # False for a counting-only backend: the engine may skip building slot values.
    tracks_values: bool = True

    @property
    def slots(self) -> int:
        return self.params.slots

    @property
    def name(self) -> str:
        return type(self).__name__

    # keys ----------------------------------------------------------------
    @abstractmethod
    def generate_galois_keys(self, steps: list[int] | set[int]) -> None:
        """Keys for exactly these left-rotation steps (normalised), replacing any before."""

    @property
    @abstractmethod
    def galois_steps(self) -> frozenset[int]:
        """The steps that currently have a key."""

    @abstractmethod
    def galois_key_bytes(self) -> int:
        """Serialized size of the Galois keys a client would send."""

    @abstractmethod
    def public_view(self) -> "Backend":
        """The same keys without the secret key (the server side): decrypt raises."""

    # encoding and encryption -------------------------------------------------
    @abstractmethod
    def encode(self, values: np.ndarray, level: int = 0, scale: float | None = None) -> Any:
        """A plaintext of S slot values at `level` (rescales done) and `scale`."""

    @abstractmethod
    def encrypt(self, values: np.ndarray) -> Any:
        """A fresh ciphertext (level 0, default scale) of S slot values."""

    @abstractmethod
    def encrypt_plain(self, plain: Any) -> Any:
        """Encrypt an already encoded plaintext at its own level and scale."""

    @abstractmethod
    def decrypt(self, ct: Any) -> np.ndarray:
        """The S slot values of a ciphertext (needs the secret key): their real parts."""

    def decrypt_complex(self, ct: Any) -> np.ndarray:
        """The S complex slot values of a ciphertext (complex packing; needs the secret key)."""
        raise NotImplementedError(f"backend {self.name} decrypts no complex slots")

    @abstractmethod
    def encode_coefficients(self, coeffs: np.ndarray, level: int = 0, scale: float | None = None) -> Any:
        """A plaintext whose polynomial has these N coefficients (times `scale`), at `level`
        (heconv.backends.embedding: the encoding of their canonical embedding). Counted as an encode."""

    @abstractmethod
    def decode_coefficients(self, ct: Any) -> np.ndarray:
        """Decrypt a ciphertext and read the N coefficients of its polynomial (needs the secret key).
        Counted as a decryption."""

    @abstractmethod
    def rerandomize(self, ct: Any) -> None:
        """ct += a fresh public-key encryption of zero, so that its second polynomial no longer tells how it
        was computed. Server side: needs no secret key. Counted as one encryption and one addition."""

    # evaluation --------------------------------------------------------------
    @abstractmethod
    def rotate(self, ct: Any, step: int) -> Any:
        """A new ciphertext rotated left by `step` slots."""

    @abstractmethod
    def multiply_plain(self, ct: Any, plain: Any) -> Any:
        """A new ciphertext ct * plain (scales multiply; no rescale)."""

    @abstractmethod
    def square_inplace(self, ct: Any) -> None:
        """ct = ct * ct, relinearised (scale squares; no rescale)."""

    @abstractmethod
    def add_inplace(self, acc: Any, ct: Any) -> None:
        """acc += ct."""

    @abstractmethod
    def add_plain_inplace(self, ct: Any, plain: Any) -> None:
        """ct += plain."""

    @abstractmethod
    def rescale_inplace(self, ct: Any) -> None:
        """Divide by the last data prime and drop it: level + 1."""

    # introspection -----------------------------------------------------------
    @abstractmethod
    def level(self, ct: Any) -> int:
        """Rescales done on this ciphertext or plaintext."""

    @abstractmethod
    def scale(self, ct: Any) -> float:
        """Current CKKS scale of a ciphertext or plaintext."""

    @abstractmethod
    def rescale_divisor(self, level: int) -> float:
        """The prime a rescale at `level` divides by (exactly 2**scale_bits in cleartext)."""

    @abstractmethod
    def ciphertext_bytes(self, ct: Any) -> int:
        """Serialized size of one ciphertext."""

    # the network between client and server -----------------------------------
    @abstractmethod
    def encrypt_for_upload(self, plain: Any, seeded: bool = True) -> Wire:
        """Encrypt an encoded plaintext and serialize it for the server. `seeded`: with the
        secret key, the second polynomial sent as the seed it is expanded from (about half
        the bytes); else with the public key, both polynomials. Counted as an encryption."""

    @abstractmethod
    def to_wire(self, ct: Any, read: np.ndarray | None = None) -> Wire:
        """Serialize a ciphertext for the other party. Not an HE operation: not counted.

        `read`: for a coefficient-encoded ciphertext, the N coefficients (a boolean mask) the receiver
        reads. The ciphertext is switched to the chain's last level (one prime: fewer bytes, and what the
        receiver decodes where nothing was sent stays within one prime, which the canonical embedding's
        doubles hold), then only its second polynomial c1 and the first, c0, at those coefficients are
        sent (heconv.traffic.extracted_bytes): coefficient j of c0 + c1*s needs c0 at j alone, so the
        receiver decrypts them exactly, and every other coefficient never leaves the sender."""

    @abstractmethod
    def from_wire(self, wire: Wire, read: np.ndarray | None = None) -> Any:
        """The ciphertext a `Wire` carries (a seeded one expanded): needs only the context, so a
        public view loads it. `read`: the receiver's own read mask for an extracted one (from its
        plan; default the wire's). Not counted."""

    # transfer between processes ----------------------------------------------
    @abstractmethod
    def save_ciphertext(self, ct: Any, path: str) -> int:
        """Serialize one ciphertext to the file `path` (level and scale included); returns its size in bytes.
        Not an HE operation: the counter is not touched."""

    @abstractmethod
    def load_ciphertext(self, path: str) -> Any:
        """The ciphertext `save_ciphertext` wrote to `path`, bit for bit. Not counted either."""

    def plaintext_bytes(self, level: int) -> int:
        """Memory one encoded plaintext at `level` holds: N residues per remaining data prime."""
        return self.params.poly_modulus_degree * (len(self.params.coeff_mod_bit_sizes) - 1 - level) * 8

    def reset_counter(self) -> OpCounts:
        """Zero the counter; return what it held."""
        old, self.counter = self.counter, OpCounts()
        return old

    def _count_rotation(self, step: int) -> list[int]:
        parts = key_switch_plan(step, self.galois_steps, self.slots)
        self.counter.rotations += 1
        self.counter.key_switches += len(parts)
        return parts
