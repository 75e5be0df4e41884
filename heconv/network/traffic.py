"""A network plan's predicted phases (docs/design.md, "Bandwidth-aware chunking"): the ciphertexts
each way from its actions, their bytes, the client's and the server's work, before anything runs.

The bytes are the cleartext backends' model of SEAL's words, so a cleartext run counts exactly
these (tests/heconv/test_network_traffic.py); SEAL's compression takes a little off a real one.
"""

from __future__ import annotations

from ..cost import DEFAULT_UNIT_COSTS, DEFAULT_WIRE_COSTS, UnitCosts, WireCosts, floor_seconds
from ..traffic import UPLOADS, Phases, ciphertext_bytes
from .actions import Encrypt, NetworkPlan, Refresh


def plan_traffic(plan: NetworkPlan, upload: str = "seeded") -> dict[str, int]:
    """Ciphertexts and bytes each way per image, from the plan's uploads and refreshes."""
    seeded = UPLOADS[upload]
    ups = [a for a in plan.actions if isinstance(a, Encrypt)]
    downs = [a for a in plan.actions if isinstance(a, Refresh)]
    return {"ciphertexts_in": sum(a.ciphertexts for a in ups), "ciphertexts_out": sum(a.ciphertexts for a in downs),
            "upload_bytes": sum(a.ciphertexts * ciphertext_bytes(plan.params, a.level, seeded) for a in ups),
            "download_bytes": sum(a.ciphertexts * ciphertext_bytes(plan.params, a.level) for a in downs)}


def predict_phases(plan: NetworkPlan, upload: str = "seeded", unit: UnitCosts | None = None,
                   wire: WireCosts | None = None) -> Phases:
    """The plan's phases per image: the client encodes and encrypts every upload and decrypts every
    ciphertext that comes back (an upload's work in proportion to its primes, heconv.cost.WireCosts);
    the server's evaluation is the plan's counts x unit costs (the floor: no engine overhead), each
    layer's multiplications and additions priced at its level, its I/O the uploads loaded and the
    outputs serialized."""
    unit, wire = unit or DEFAULT_UNIT_COSTS, wire or DEFAULT_WIRE_COSTS
    t = plan_traffic(plan, upload)
    n_out = t["ciphertexts_out"]
    ups = sum(a.ciphertexts * plan.params.level_work(a.level) for a in plan.actions if isinstance(a, Encrypt))
    return Phases(client_s=ups * (unit.encode + wire.encrypt(UPLOADS[upload])) + n_out * wire.decrypt,
                  server_s=sum(floor_seconds(r.predicted, unit.at_work(plan.params.level_work(r.level)))
                               for r in plan.layers),
                  server_io_s=ups * wire.load + n_out * wire.save,
                  upload_bytes=t["upload_bytes"], download_bytes=t["download_bytes"])
