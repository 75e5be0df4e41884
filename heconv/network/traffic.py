"""A network plan's predicted phases (docs/design.md, "Bandwidth-aware chunking"): the ciphertexts
each way from its actions, their bytes, the client's and the server's work, before anything runs.

The bytes are the cleartext backends' model of SEAL's words, so a cleartext run counts exactly
these (tests/heconv/test_network_traffic.py); SEAL's compression takes a little off a real one, and
an extracted download is our own format, the same bytes in both.
"""

from __future__ import annotations

import numpy as np

from ..cost import DEFAULT_UNIT_COSTS, DEFAULT_WIRE_COSTS, UnitCosts, WireCosts, floor_seconds
from ..params import CKKSParams
from ..traffic import UPLOADS, Phases, ciphertext_bytes, extracted_bytes
from .actions import Encrypt, NetworkPlan, Refresh


def download_bytes(params: CKKSParams, a: Refresh) -> int:
    """Bytes of one refresh's download: whole ciphertexts, or where the layout reads some coefficients
    alone (a coefficient output), those extracted (heconv.traffic.extracted_bytes)."""
    reads = a.layout.reads() if a.layout is not None else None
    if reads is None:
        return a.ciphertexts * ciphertext_bytes(params, a.level)
    return sum(extracted_bytes(params, params.depth, int(np.count_nonzero(r))) for r in reads)  # sent at the last


def plan_traffic(plan: NetworkPlan, upload: str = "seeded") -> dict[str, int]:
    """Ciphertexts and bytes each way per image, from the plan's uploads and refreshes."""
    seeded = UPLOADS[upload]
    ups = [a for a in plan.actions if isinstance(a, Encrypt)]
    downs = [a for a in plan.actions if isinstance(a, Refresh)]
    return {"ciphertexts_in": sum(a.ciphertexts for a in ups), "ciphertexts_out": sum(a.ciphertexts for a in downs),
            "upload_bytes": sum(a.ciphertexts * ciphertext_bytes(plan.params, a.level, seeded) for a in ups),
            "download_bytes": sum(download_bytes(plan.params, a) for a in downs)}


def predict_phases(plan: NetworkPlan, upload: str = "seeded", unit: UnitCosts | None = None,
                   wire: WireCosts | None = None) -> Phases:
    """The plan's phases per image: the client encodes and encrypts every upload and decrypts every
    ciphertext that comes back (an upload's work in proportion to its primes, heconv.cost.WireCosts;
    an extracted download at its own cost); the server's evaluation is the plan's counts x unit costs
    (the floor: no engine overhead), each layer's multiplications and additions priced at its level,
    its I/O the uploads loaded and the outputs serialized."""
    unit, wire = unit or DEFAULT_UNIT_COSTS, wire or DEFAULT_WIRE_COSTS
    t = plan_traffic(plan, upload)
    downs = [a for a in plan.actions if isinstance(a, Refresh)]
    cut = sum(a.ciphertexts for a in downs if a.layout is not None and a.layout.reads() is not None)
    whole = t["ciphertexts_out"] - cut
    ups = sum(a.ciphertexts * plan.params.level_work(a.level) for a in plan.actions if isinstance(a, Encrypt))
    return Phases(client_s=ups * (unit.encode + wire.encrypt(UPLOADS[upload])) + whole * wire.decrypt
                  + cut * wire.decrypt_extracted,
                  server_s=sum(floor_seconds(r.predicted, unit.at_work(plan.params.level_work(r.level)))
                               for r in plan.layers),
                  server_io_s=ups * wire.load + whole * wire.save + cut * wire.save_extracted,
                  upload_bytes=t["upload_bytes"], download_bytes=t["download_bytes"])
