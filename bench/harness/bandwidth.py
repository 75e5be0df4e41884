"""Link rates (`--bandwidth 1gbit`) and the time bytes take to cross one.

An inference's end-to-end time at a rate is the client's work, the server's and the
transfer of every byte each way at that rate (`bench.harness.model.ModelRecord`).
"""

from __future__ import annotations

import math
import re

from heconv.errors import InputError

# unit -> bits per second of one of it; rates are in bits, as links are sold
UNITS: dict[str, float] = {"bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12}
_SHOWN = {"bit": "bit", "kbit": "kbit", "mbit": "Mbit", "gbit": "Gbit", "tbit": "Tbit"}
DEFAULT_BANDWIDTH = "1gbit"
_RATE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]+)\s*(?:/s|ps)?\s*")


def parse_bandwidth(text: str) -> float:
    """Bits per second of a rate given as a number and a unit (bit, kbit, mbit, gbit, tbit; any
    case, an optional "/s" or "ps").

    >>> parse_bandwidth("1gbit"), parse_bandwidth("100mbit"), parse_bandwidth("2.5 Gbit/s")
    (1000000000.0, 100000000.0, 2500000000.0)
    """
    m = _RATE.fullmatch(text.lower())
    if m is None or m.group(2) not in UNITS or not math.isfinite(float(m.group(1))) or float(m.group(1)) <= 0:
        raise InputError(f"bandwidth {text!r}: expected a rate > 0 such as 1gbit or 100mbit "
                         f"(units: {', '.join(UNITS)})")
    return float(m.group(1)) * UNITS[m.group(2)]


def transfer_seconds(nbytes: float, bits_per_second: float) -> float:
    """Seconds `nbytes` take at `bits_per_second` (no latency, no protocol overhead).

    >>> transfer_seconds(125_000_000, parse_bandwidth("1gbit"))
    1.0
    """
    return 8.0 * nbytes / bits_per_second


def show_bandwidth(bits_per_second: float) -> str:
    """A rate in the largest unit that keeps it at least 1.

    >>> show_bandwidth(1e9), show_bandwidth(1e8), show_bandwidth(2.5e9)
    ('1 Gbit/s', '100 Mbit/s', '2.5 Gbit/s')
    """
    unit = max((u for u, size in UNITS.items() if bits_per_second >= size), key=UNITS.__getitem__, default="bit")
    return f"{bits_per_second / UNITS[unit]:g} {_SHOWN[unit]}/s"


DEFAULT_BANDWIDTH_BPS = parse_bandwidth(DEFAULT_BANDWIDTH)
