"""CKKS parameters and the 128-bit security check.

The bound is SEAL's standard table (HomomorphicEncryption.org standard, classical
128-bit security, ternary secret): the largest total coefficient-modulus size in
bits for each ring dimension N. It mirrors seal::CoeffModulus::MaxBitCount(N, tc128);
tests/heconv check the copy against SEAL itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .basics import next_pow2
from .errors import InputError

MAX_BITS_128 = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}
SECURE_DEGREES = (8192, 16384, 32768)


@dataclass(frozen=True)
class CKKSParams:
    """Ring dimension, coefficient-modulus chain and scale of one CKKS context.

    coeff_mod_bit_sizes: [first, data primes..., special]; the special (last) prime is
    only for key switching, so `depth` = len - 2 rescales are available.

    >>> p = ckks_params(depth=1)
    >>> p.poly_modulus_degree, p.coeff_mod_bit_sizes, p.slots, p.depth
    (8192, (60, 40, 60), 4096, 1)
    """

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int = 40
    allow_insecure: bool = field(default=False)

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def depth(self) -> int:
        return len(self.coeff_mod_bit_sizes) - 2

    @property
    def scale(self) -> float:
        return float(2**self.scale_bits)

    @property
    def total_bits(self) -> int:
        return sum(self.coeff_mod_bit_sizes)

    def primes(self, level: int) -> int:
        """Data primes a ciphertext at `level` holds: what its multiplications and additions work on,
        prime by prime (the special prime left out).

        >>> ckks_params(depth=1).primes(0), ckks_params(depth=1).primes(1)
        (2, 1)
        """
        return len(self.coeff_mod_bit_sizes) - 1 - level

    def level_work(self, level: int) -> float:
        """What a multiplication or an addition at `level` costs against one at level 0: they work prime
        by prime, so the primes left over level 0's.

        >>> ckks_params(depth=1).level_work(1)
        0.5
        """
        return self.primes(level) / self.primes(0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["coeff_mod_bit_sizes"] = list(self.coeff_mod_bit_sizes)
        return d


def check_security(n: int, coeff_mod_bit_sizes: tuple[int, ...] | list[int], allow_insecure: bool) -> None:
    """Refuse parameters below 128-bit security unless toy parameters are asked for.

    >>> check_security(8192, (60, 40, 60), False)
    >>> check_security(8192, (60, 40, 40, 40, 60), False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    heconv.errors.InputError: CKKS parameters N=8192 with a 240-bit coefficient modulus are below 128-bit security ...
    """
    if n < 2 or n & (n - 1):
        raise InputError(f"poly modulus degree must be a power of two, got {n}")
    bits = sum(coeff_mod_bit_sizes)
    if allow_insecure:
        return
    if n not in SECURE_DEGREES:
        raise InputError(
            f"poly modulus degree N={n} is not one of the supported secure degrees "
            f"{SECURE_DEGREES}; pass allow_insecure=True (--toy-params) for toy parameters"
        )
    if bits > MAX_BITS_128[n]:
        raise InputError(
            f"CKKS parameters N={n} with a {bits}-bit coefficient modulus are below 128-bit "
            f"security (at most {MAX_BITS_128[n]} bits for N={n}); use a larger N or fewer "
            f"levels, or pass allow_insecure=True (--toy-params) for toy parameters"
        )


def max_secure_depth(poly_modulus_degree: int, scale_bits: int = 40, outer_bits: int = 60) -> int:
    """The most rescales a [60, 40 x d, 60] chain can have at 128-bit security.

    >>> max_secure_depth(8192), max_secure_depth(16384), max_secure_depth(32768)
    (2, 7, 19)
    """
    if poly_modulus_degree not in MAX_BITS_128:
        raise InputError(f"no 128-bit bound for N={poly_modulus_degree}")
    return max(0, (MAX_BITS_128[poly_modulus_degree] - 2 * outer_bits) // scale_bits)


def ckks_params(
    depth: int,
    poly_modulus_degree: int | None = None,
    min_slots: int = 1,
    scale_bits: int = 40,
    outer_bits: int = 60,
    allow_insecure: bool = False,
) -> CKKSParams:
    """CKKS parameters for `depth` rescales: [60, 40 x depth, 60].

    Without an explicit N, the smallest secure N whose slots hold `min_slots` and whose
    modulus budget holds the chain.

    >>> ckks_params(depth=1, min_slots=8192).poly_modulus_degree
    16384
    >>> ckks_params(depth=6).poly_modulus_degree
    16384
    """
    if depth < 1:
        raise InputError(f"CKKS depth must be at least 1, got {depth}")
    if not 20 <= scale_bits <= 60 or scale_bits >= outer_bits + 1:
        raise InputError(f"scale_bits must be in [20, 60] and at most {outer_bits}, got {scale_bits}")
    bits = (outer_bits,) + (scale_bits,) * depth + (outer_bits,)
    if poly_modulus_degree is None:
        for n in SECURE_DEGREES:
            if n // 2 >= min_slots and sum(bits) <= MAX_BITS_128[n]:
                poly_modulus_degree = n
                break
        else:
            raise InputError(
                f"no secure CKKS ring dimension in {SECURE_DEGREES} gives {min_slots} slots "
                f"and a {sum(bits)}-bit modulus for depth {depth}"
            )
    check_security(poly_modulus_degree, bits, allow_insecure)
    if poly_modulus_degree // 2 < min_slots:
        raise InputError(
            f"N={poly_modulus_degree} gives {poly_modulus_degree // 2} slots, "
            f"the layer needs at least {min_slots}"
        )
    return CKKSParams(poly_modulus_degree, bits, scale_bits, allow_insecure)


def params_for_input(height: int, width: int, poly_modulus_degree: int | None = None, depth: int = 1,
                     allow_insecure: bool = False, scale_bits: int = 40) -> CKKSParams:
    """Parameters for feature maps of height x width: the smallest secure N whose slots hold
    one channel (next power of two of H*W) and the chain `depth`. One level per linear
    layer is the hybrid protocol's choice.

    >>> params_for_input(16, 16).poly_modulus_degree, params_for_input(128, 128).poly_modulus_degree
    (8192, 32768)
    """
    return ckks_params(depth=depth, poly_modulus_degree=poly_modulus_degree, min_slots=next_pow2(height * width),
                       scale_bits=scale_bits, allow_insecure=allow_insecure)


def estimated_galois_key_bytes(params: CKKSParams) -> int:
    """Size of one serialized Galois key, from its shape (for the cleartext backend).

    A key holds one key-switching ciphertext (2 polynomials over all primes, special
    included) per data prime; SEAL stores 60-bit residues in 64-bit words and
    compresses them to about 60/64 of that. Measured on SEAL: 729,576 bytes at N=8192,
    [60, 40, 60]; this gives 737,280.

    >>> estimated_galois_key_bytes(ckks_params(depth=1))
    737280
    """
    k = len(params.coeff_mod_bit_sizes)
    raw = (k - 1) * 2 * params.poly_modulus_degree * k * 8
    return raw * 60 // 64
