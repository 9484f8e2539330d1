"""Expiry as SeaweedFS understands it: a TTL of 1-255 of one unit (m, h, d, w), at minute granularity."""

from __future__ import annotations

_UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60))
MAX_COUNT = 255  # SeaweedFS stores the count in one byte


def seaweed_ttl(seconds: float) -> str:
    """``7d`` for 7 days: the largest unit that divides ``seconds`` exactly, with a count SeaweedFS can store."""
    for unit, factor in _UNITS:
        if seconds >= factor and seconds % factor == 0 and seconds // factor <= MAX_COUNT:
            return f"{int(seconds // factor)}{unit}"
    raise ValueError(
        f"{seconds:g}s cannot be an object-store expiry: it must be whole minutes, at least 1m, and at most "
        f"{MAX_COUNT} of one unit (m, h, d or w), e.g. '90m', '36h', '7d' or '12w'"
    )
