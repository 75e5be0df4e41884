"""Link rates (`--bandwidth 1gbit`) and the time bytes take to cross one.

An inference's end-to-end time at a rate is the client's work, the server's and the
transfer of every byte each way at that rate (`bench.harness.model.ModelRecord`).
"""

from __future__ import annotations

import math
import re

from heconv.errors import InputError
from heconv.traffic import DEFAULT_BANDWIDTH_BPS, transfer_seconds  # noqa: F401  (one source of truth; re-exported)

# prefix -> bits per second of one of its unit; rates are in bits, as links are sold
PREFIXES: dict[str, float] = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
UNITS = tuple(f"{p}bit" for p in PREFIXES)  # also written .../s or ...bps
_SHOWN = {"": "bit", "k": "kbit", "m": "Mbit", "g": "Gbit", "t": "Tbit"}
_RATE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgt]?)(?:bit/s|bit|bps)\s*")


def parse_bandwidth(text: str) -> float:
    """Bits per second of a rate given as a number and a unit: bit, kbit, mbit, gbit or tbit, in
    any case, also written .../s or as bps (1gbps); bytes are refused, not guessed.

    >>> parse_bandwidth("1gbit"), parse_bandwidth("100mbit"), parse_bandwidth("2.5 Gbit/s")
    (1000000000.0, 100000000.0, 2500000000.0)
    """
    m = _RATE.fullmatch(text.lower())
    rate = float(m.group(1)) if m else math.nan
    if not (math.isfinite(rate) and rate > 0):
        raise InputError(f"bandwidth {text!r}: expected a rate > 0 in bits such as 1gbit or 100mbit "
                         f"(units: {', '.join(UNITS)}, also .../s or ...bps)")
    return rate * PREFIXES[m.group(2)]


def show_bandwidth(bits_per_second: float) -> str:
    """A rate in the largest unit that keeps it at least 1.

    >>> show_bandwidth(1e9), show_bandwidth(1e8), show_bandwidth(2.5e9)
    ('1 Gbit/s', '100 Mbit/s', '2.5 Gbit/s')
    """
    prefix = max((p for p, size in PREFIXES.items() if bits_per_second >= size), key=PREFIXES.__getitem__,
                 default="")
    return f"{bits_per_second / PREFIXES[prefix]:g} {_SHOWN[prefix]}/s"


DEFAULT_BANDWIDTH = show_bandwidth(DEFAULT_BANDWIDTH_BPS)  # the --bandwidth default as the CLI shows it (1 Gbit/s)
