"""Real CKKS through Microsoft SEAL (tenseal.sealapi). The only module that imports tenseal.

Rotations are applied as Galois automorphisms with `Evaluator.apply_galois`, one per
key switch, so the counter sees every key switch SEAL performs: exactly one per
logical rotation when the plan's keys were generated, more when a step has to be
decomposed.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import tenseal.sealapi as seal
import zstandard

from ..errors import InputError
from ..params import CKKSParams, check_security
from .base import Backend, OpCounts, Wire, galois_element, normalize_step
from .embedding import coefficients_to_slots, slots_to_coefficients


def seal_max_bits_128(poly_modulus_degree: int) -> int:
    """SEAL's own 128-bit bound on the coefficient modulus (for cross-checking params)."""
    return seal.CoeffModulus.MaxBitCount(poly_modulus_degree, seal.SEC_LEVEL_TYPE.TC128)


# Where SEAL's serialization goes. tenseal.sealapi binds only save(path) and load(context, path)
# (no stream, no bytes, no save_size; SEAL's own Ciphertext::save_size is compiled in but not
# bound, and the compression mode is SEAL's default, zstd here, with no choice offered), so
# every byte count and every wire message goes through a file: in /dev/shm, which is memory,
# where the machine has it.
_SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@contextmanager
def _scratch_file() -> Iterator[str]:
    """A fresh file path in memory (/dev/shm) where present, else the temporary folder; removed after."""
    fd, path = tempfile.mkstemp(prefix="heconv-", suffix=".seal", dir=_SCRATCH)
    os.close(fd)
    try:
        yield path
    finally:
        os.unlink(path)


def _serialized(obj: object) -> bytes:
    """SEAL's own serialization of a ciphertext, key or seeded `Serializable`, as bytes."""
    with _scratch_file() as path:
        obj.save(path)  # type: ignore[attr-defined]
        with open(path, "rb") as f:
            return f.read()


def _serialized_size(obj: object) -> int:
    with _scratch_file() as path:
        obj.save(path)  # type: ignore[attr-defined]
        return os.path.getsize(path)


_HEADER = seal.Serialization.SEALHeader()  # this SEAL's magic number and version, for the bytes written below
_MEMBERS = struct.Struct("<4QBQQQdQ")  # Ciphertext::save_members: parms_id, NTT form, size, N, primes, scale, factor


def _header(size: int) -> bytes:
    """SEAL's 16-byte serialization header: magic, header size, version, compression none, total size."""
    return struct.pack("<HBBBBHQ", _HEADER.magic, _HEADER.header_size, _HEADER.version_major,
                       _HEADER.version_minor, 0, 0, size)


def _ciphertext_bytes(parms_id: list[int], scale: float, polys: np.ndarray, ntt_form: bool = False) -> bytes:
    """SEAL's serialization (Ciphertext::save_members, uncompressed) of the ciphertext whose polynomials
    are `polys` [size, primes, N] (residues): the only way the binding lets a polynomial be written
    exactly, residue by residue (its encoders go through floating point)."""
    size, primes, n = polys.shape
    data = 8 + 8 * polys.size  # the DynArray: its length, then the residues
    body = _MEMBERS.size + 16 + data
    return b"".join([_header(16 + body), _MEMBERS.pack(*parms_id, ntt_form, size, n, primes, scale, 1),
                     _header(16 + data), struct.pack("<Q", polys.size), polys.astype("<u8").tobytes()])


def _polynomials(data: bytes) -> np.ndarray:
    """The residues [size, primes, N] of a ciphertext SEAL serialized as `data` (zstd-compressed, as the
    binding's save always does, or not)."""
    compression, total = struct.unpack_from("<BxxQ", data, 5)  # the header: magic, sizes, version, mode
    body = data[16:total]
    if compression == seal.COMPR_MODE_TYPE.ZSTD.value:
        body = zstandard.ZstdDecompressor().decompress(body, max_output_size=1 << 28)
    elif compression != seal.COMPR_MODE_TYPE.NONE.value:
        raise ValueError(f"SEAL serialization with compression mode {compression}: not read here")
    *_, size, n, primes, _, _ = _MEMBERS.unpack_from(body)
    return np.frombuffer(body, dtype="<u8", count=size * primes * n, offset=_MEMBERS.size + 24).reshape(size, primes, n)


def _loaded(context: seal.SEALContext, data: bytes) -> seal.Ciphertext:
    """The ciphertext SEAL serialized as `data` (a seeded one expanded from its seed)."""
    ct = seal.Ciphertext()
    with _scratch_file() as path:
        with open(path, "wb") as f:
            f.write(data)
        ct.load(context, path)
    return ct


class SealBackend(Backend):
    """CKKS backend over tenseal.sealapi.

    `secret=False` builds a context that holds the public key, relinearisation and
    Galois keys only; decrypt then raises. Use `public_view()` to hand a server the
    evaluation side of a client's keys.
    """

    def __init__(self, params: CKKSParams, seed: int | None = None):
        check_security(params.poly_modulus_degree, params.coeff_mod_bit_sizes, params.allow_insecure)
        self.params = params
        self.counter = OpCounts()
        parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
        parms.set_poly_modulus_degree(params.poly_modulus_degree)
        parms.set_coeff_modulus(seal.CoeffModulus.Create(params.poly_modulus_degree, list(params.coeff_mod_bit_sizes)))
        level = seal.SEC_LEVEL_TYPE.NONE if params.allow_insecure else seal.SEC_LEVEL_TYPE.TC128
        self.context = seal.SEALContext(parms, True, level)
        if not self.context.parameters_set():
            raise InputError(
                f"SEAL rejected CKKS parameters N={params.poly_modulus_degree}, "
                f"moduli {list(params.coeff_mod_bit_sizes)}: {self.context.parameters_error_message()}"
            )
        # SEAL draws its keys from the OS CSPRNG; `seed` only documents the run.
        self.seed = seed
        keygen = seal.KeyGenerator(self.context)
        self._keygen: seal.KeyGenerator | None = keygen
        self._secret: seal.SecretKey | None = keygen.secret_key()
        self.public_key = seal.PublicKey()
        keygen.create_public_key(self.public_key)
        self.relin_keys = seal.RelinKeys()
        keygen.create_relin_keys(self.relin_keys)
        self.galois_keys = seal.GaloisKeys()
        self._key_steps: frozenset[int] = frozenset()
        self._encoder = seal.CKKSEncoder(self.context)
        self._evaluator = seal.Evaluator(self.context)
        self._encryptor = seal.Encryptor(self.context, self.public_key)
        self._symmetric: seal.Encryptor | None = seal.Encryptor(self.context, self._secret)  # holds the secret key
        self._decryptor: seal.Decryptor | None = seal.Decryptor(self.context, self._secret)
        self._parms_ids = self._chain()

    def _chain(self) -> list:
        ids = []
        data = self.context.first_context_data()
        while data is not None:
            ids.append(data.parms_id())
            data = data.next_context_data()
        return ids

    @property
    def has_secret_key(self) -> bool:
        return self._secret is not None

    def public_view(self) -> "SealBackend":
        """The same context and evaluation keys without the secret key (server side)."""
        view = object.__new__(SealBackend)
        view.__dict__.update(self.__dict__)
        view.counter = OpCounts()
        view._keygen = None
        view._secret = None
        view._symmetric = None
        view._decryptor = None
        return view

    # keys ----------------------------------------------------------------
    def generate_galois_keys(self, steps: list[int] | set[int]) -> None:
        if self._keygen is None:
            raise PermissionError("Galois keys are made by the key owner (client), not by a public view")
        key_steps = frozenset(s for s in (normalize_step(x, self.slots) for x in steps) if s)
        self.galois_keys = seal.GaloisKeys()
        if key_steps:
            elts = [galois_element(s, self.params.poly_modulus_degree) for s in sorted(key_steps)]
            self._keygen.create_galois_keys(elts, self.galois_keys)
        self._key_steps = key_steps

    @property
    def galois_steps(self) -> frozenset[int]:
        return self._key_steps

    def galois_key_bytes(self) -> int:
        return _serialized_size(self.galois_keys) if self._key_steps else 0

    # encoding and encryption -------------------------------------------------
    def _values(self, values: np.ndarray) -> list[float] | list[complex]:
        v = np.asarray(values, dtype=np.complex128 if np.iscomplexobj(values) else np.float64)
        if v.shape != (self.slots,):
            raise ValueError(f"expected {self.slots} slot values, got shape {v.shape}")
        return v.tolist()

    def encode(self, values: np.ndarray, level: int = 0, scale: float | None = None) -> seal.Plaintext:
        if not 0 <= level <= self.params.depth:
            raise ValueError(f"level {level} is outside the modulus chain (0..{self.params.depth})")
        pt = seal.Plaintext()
        self._encoder.encode(self._values(values), self._parms_ids[level], scale or self.params.scale, pt)
        self.counter.encodes += 1
        return pt

    def encrypt(self, values: np.ndarray) -> seal.Ciphertext:
        return self.encrypt_plain(self.encode(values))

    def encrypt_plain(self, plain: seal.Plaintext) -> seal.Ciphertext:
        ct = seal.Ciphertext()
        self._encryptor.encrypt(plain, ct)
        self.counter.encryptions += 1
        return ct

    def _decrypted(self, ct: seal.Ciphertext) -> seal.Plaintext:
        if self._decryptor is None:
            raise PermissionError("this backend holds no secret key: it cannot decrypt")
        pt = seal.Plaintext()
        self._decryptor.decrypt(ct, pt)
        self.counter.decryptions += 1
        return pt

    def decrypt(self, ct: seal.Ciphertext) -> np.ndarray:
        return np.array(self._encoder.decode_double(self._decrypted(ct)))

    def decrypt_complex(self, ct: seal.Ciphertext) -> np.ndarray:
        return np.array(self._encoder.decode_complex(self._decrypted(ct)))

    def encode_coefficients(self, coeffs: np.ndarray, level: int = 0, scale: float | None = None) -> seal.Plaintext:
        if not 0 <= level <= self.params.depth:
            raise ValueError(f"level {level} is outside the modulus chain (0..{self.params.depth})")
        c = np.asarray(coeffs, dtype=np.float64)
        if c.shape != (self.params.poly_modulus_degree,):
            raise ValueError(f"expected {self.params.poly_modulus_degree} coefficients, got shape {c.shape}")
        pt = seal.Plaintext()
        self._encoder.encode(coefficients_to_slots(c).tolist(), self._parms_ids[level], scale or self.params.scale, pt)
        self.counter.encodes += 1
        return pt

    def rerandomize(self, ct: seal.Ciphertext) -> None:
        zero = seal.Ciphertext()
        self._encryptor.encrypt_zero(ct.parms_id(), zero)  # public key: fresh u, e0, e1 from SEAL's CSPRNG
        zero.scale = ct.scale
        self._evaluator.add_inplace(ct, zero)
        self.counter.encryptions += 1
        self.counter.adds += 1

    def decode_coefficients(self, ct: seal.Ciphertext) -> np.ndarray:
        if self._decryptor is None:
            raise PermissionError("this backend holds no secret key: it cannot decrypt")
        pt = seal.Plaintext()
        self._decryptor.decrypt(ct, pt)
        self.counter.decryptions += 1
        return slots_to_coefficients(np.array(self._encoder.decode_complex(pt)))

    # evaluation --------------------------------------------------------------
    def rotate(self, ct: seal.Ciphertext, step: int) -> seal.Ciphertext:
        parts = self._count_rotation(step)
        n = self.params.poly_modulus_degree
        out = seal.Ciphertext()
        self._evaluator.apply_galois(ct, galois_element(parts[0], n), self.galois_keys, out)
        for p in parts[1:]:
            self._evaluator.apply_galois_inplace(out, galois_element(p, n), self.galois_keys)
        return out

    def multiply_plain(self, ct: seal.Ciphertext, plain: seal.Plaintext) -> seal.Ciphertext:
        out = seal.Ciphertext()
        self._evaluator.multiply_plain(ct, plain, out)
        self.counter.pmuls += 1
        return out

    def square_inplace(self, ct: seal.Ciphertext) -> None:
        self._evaluator.square_inplace(ct)
        self._evaluator.relinearize_inplace(ct, self.relin_keys)
        self.counter.cmuls += 1

    def add_inplace(self, acc: seal.Ciphertext, ct: seal.Ciphertext) -> None:
        self._evaluator.add_inplace(acc, ct)
        self.counter.adds += 1

    def add_plain_inplace(self, ct: seal.Ciphertext, plain: seal.Plaintext) -> None:
        self._evaluator.add_plain_inplace(ct, plain)
        self.counter.plain_adds += 1

    def rescale_inplace(self, ct: seal.Ciphertext) -> None:
        self._evaluator.rescale_to_next_inplace(ct)
        self.counter.rescales += 1

    # introspection -----------------------------------------------------------
    def level(self, ct: seal.Ciphertext | seal.Plaintext) -> int:
        return self._parms_ids.index(ct.parms_id())

    def scale(self, ct: seal.Ciphertext | seal.Plaintext) -> float:
        return ct.scale

    def rescale_divisor(self, level: int) -> float:
        data = self.context.get_context_data(self._parms_ids[level])
        return float(data.parms().coeff_modulus()[-1].value())

    def ciphertext_bytes(self, ct: seal.Ciphertext) -> int:
        return _serialized_size(ct)

    def save_ciphertext(self, ct: seal.Ciphertext, path: str) -> int:
        ct.save(str(path))  # SEAL's own format, with its default compression
        return os.path.getsize(path)

    # the network ------------------------------------------------------------
    def encrypt_for_upload(self, plain: seal.Plaintext, seeded: bool = True) -> Wire:
        if not seeded:
            return self.to_wire(self.encrypt_plain(plain))
        if self._symmetric is None:
            raise PermissionError("this backend holds no secret key: it cannot encrypt symmetrically (seeded)")
        data = _serialized(self._symmetric.encrypt_symmetric(plain))  # c1 saved as its seed
        self.counter.encryptions += 1
        return Wire(data, len(data))

    def to_wire(self, ct: seal.Ciphertext, read: np.ndarray | None = None) -> Wire:
        if read is None:
            data = _serialized(ct)
            return Wire(data, len(data))
        last = seal.Ciphertext()
        self._evaluator.mod_switch_to(ct, self._parms_ids[-1], last)  # one prime: what the client decodes stays small
        self._evaluator.transform_from_ntt_inplace(last)  # c0's coefficients, not its NTT values, can be cut
        c0, c1 = _polynomials(_serialized(last))
        data = b"".join([struct.pack("<Qd", self.params.depth, ct.scale), c1.tobytes(), c0[:, read].tobytes()])
        return Wire(data, len(data), read)

    def from_wire(self, wire: Wire, read: np.ndarray | None = None) -> seal.Ciphertext:
        read = wire.read if read is None else read
        if read is None:
            return _loaded(self.context, wire.payload)
        level, scale = struct.unpack_from("<Qd", wire.payload)
        primes, n = self.params.primes(self.params.depth), self.params.poly_modulus_degree
        if level != self.params.depth or len(wire.payload) != 16 + 8 * primes * (n + int(np.count_nonzero(read))):
            raise ValueError(f"from_wire: an extracted ciphertext of {len(wire.payload)} bytes at level {level}, "
                             f"expected level {self.params.depth} with {int(np.count_nonzero(read))} read coefficients")
        polys = np.zeros((2, primes, n), dtype=np.uint64)  # c0 zero where not read: those are never decrypted
        words = np.frombuffer(wire.payload, dtype="<u8", offset=16)
        polys[1] = words[: primes * n].reshape(primes, n)
        polys[0][:, read] = words[primes * n:].reshape(primes, -1)
        ct = _loaded(self.context, _ciphertext_bytes(self._parms_ids[level], scale, polys))
        self._evaluator.transform_to_ntt_inplace(ct)
        return ct

    def load_ciphertext(self, path: str) -> seal.Ciphertext:
        ct = seal.Ciphertext()
        try:
            ct.load(self.context, str(path))
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"ciphertext file {path}: not a ciphertext of this context ({e})") from None
        return ct
