"""What crosses the network and what an inference costs end to end (docs/design.md, "What crosses the
network" and "Bandwidth-aware chunking"): the link's default rate, how uploads are encrypted, the
bytes of one ciphertext, and the phases whose sum is the end-to-end time.

One source of truth: the CLI's `--bandwidth` default, the harness's end-to-end time, the
cleartext backends' modelled sizes and the planners' objective all read this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import InputError
from .params import CKKSParams

DEFAULT_BANDWIDTH_BPS = 1e9  # 1 Gbit/s, the link rate when none is given (no latency)

# How the client encrypts what it uploads: name -> seeded. "seeded": with its secret key, each
# ciphertext's second polynomial sent as SEAL's seed (about half the bytes); "public": with the
# public key, both polynomials (what anyone could send).
UPLOADS: dict[str, bool] = {"seeded": True, "public": False}
SEED_BYTES = 64  # SEAL's PRNG seed (prng_seed_byte_count), which a seeded ciphertext sends for its c1
EXTRACT_HEADER_BYTES = 16  # an extracted download's level and scale (heconv.backends.seal: `to_wire` with `read`)

# What a choice minimises: "end-to-end" (client + server + every byte at the bandwidth) or
# "server" (the server's evaluation alone: the rule before bandwidth-aware choices, kept to compare).
OBJECTIVES = ("end-to-end", "server")


def polynomial_bytes(params: CKKSParams, level: int) -> int:
    """One polynomial at `level` as SEAL's words: N residues per remaining prime, 8 bytes each.

    >>> from heconv.params import ckks_params
    >>> polynomial_bytes(ckks_params(depth=1), 0), polynomial_bytes(ckks_params(depth=1), 1)
    (131072, 65536)
    """
    return params.poly_modulus_degree * params.primes(level) * 8


def ciphertext_bytes(params: CKKSParams, level: int, seeded: bool = False) -> int:
    """Bytes of one ciphertext on the wire, modelled as SEAL's uncompressed words: two polynomials,
    or one and the 64-byte seed when `seeded`. (SEAL's zstd takes about 12% off a seeded upload at
    N = 8192 and next to nothing off a full one: 115.5 and 131.2 kB measured, against 131.1 modelled.)

    >>> from heconv.params import ckks_params
    >>> p = ckks_params(depth=1)                                       # [60, 40, 60], N = 8192
    >>> ciphertext_bytes(p, 0, seeded=True), ciphertext_bytes(p, 0), ciphertext_bytes(p, 1)
    (131136, 262144, 131072)
    """
    return polynomial_bytes(params, level) + SEED_BYTES if seeded else 2 * polynomial_bytes(params, level)


def extracted_bytes(params: CKKSParams, level: int, read: int) -> int:
    """Bytes of one coefficient-encoded ciphertext at `level` sent with only the `read` coefficients of
    its first polynomial (`Backend.to_wire`, which sends at the chain's last level): the second
    polynomial whole, `read` residues per prime of the first, and a 16-byte header. The positions come
    from the plan, so they are not sent.

    >>> from heconv.params import ckks_params
    >>> p = ckks_params(depth=1)
    >>> extracted_bytes(p, 1, 2048), ciphertext_bytes(p, 1)     # a quarter read: 39% fewer bytes
    (81936, 131072)
    """
    return EXTRACT_HEADER_BYTES + polynomial_bytes(params, level) + 8 * read * params.primes(level)


def transfer_seconds(nbytes: float, bits_per_second: float) -> float:
    """Seconds `nbytes` take at `bits_per_second` (no latency, no protocol overhead).

    >>> transfer_seconds(125_000_000, 1e9)
    1.0
    """
    return 8.0 * nbytes / bits_per_second


@dataclass(frozen=True)
class Objective:
    """What a plan's choices minimise: `kind` (one of OBJECTIVES) at `bandwidth_bps` bits per
    second, with uploads encrypted as `upload` (one of UPLOADS)."""

    bandwidth_bps: float = DEFAULT_BANDWIDTH_BPS
    upload: str = "seeded"
    kind: str = "end-to-end"

    def __post_init__(self) -> None:
        if self.upload not in UPLOADS:
            raise InputError(f"upload must be one of {', '.join(UPLOADS)}, got {self.upload!r}")
        if self.kind not in OBJECTIVES:
            raise InputError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.kind!r}")
        if not self.bandwidth_bps > 0:
            raise InputError(f"bandwidth must be > 0 bits per second, got {self.bandwidth_bps}")

    @property
    def seeded(self) -> bool:
        return UPLOADS[self.upload]


@dataclass(frozen=True)
class Phases:
    """The predicted phases of an inference (or of one layer's share of it), per image.

    client_s: encoding and encrypting the uploads, loading, decrypting and decoding what comes
    back; server_s: the evaluation (counts x unit costs); server_io_s: the server loading the
    uploads and serializing what goes back; the bytes each way.

    >>> p = Phases(client_s=0.1, server_s=0.2, server_io_s=0.05, upload_bytes=12_500_000, download_bytes=0)
    >>> round(p.end_to_end_s(1e9), 3), round(p.end_to_end_s(1e8), 3)      # + 0.1 s, + 1 s on the wire
    (0.45, 1.35)
    """

    client_s: float
    server_s: float
    server_io_s: float
    upload_bytes: int
    download_bytes: int

    def transfer_s(self, bandwidth_bps: float) -> float:
        return transfer_seconds(self.upload_bytes + self.download_bytes, bandwidth_bps)

    def end_to_end_s(self, bandwidth_bps: float) -> float:
        """Client + server + server I/O + every byte each way at the rate."""
        return self.client_s + self.server_s + self.server_io_s + self.transfer_s(bandwidth_bps)

    def cost(self, objective: Objective) -> float:
        """What `objective` minimises: the end-to-end time, or the server's evaluation alone."""
        return self.end_to_end_s(objective.bandwidth_bps) if objective.kind == "end-to-end" else self.server_s

    def to_dict(self) -> dict:
        return asdict(self)
