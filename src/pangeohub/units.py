"""Unit-bearing config values: byte sizes ("2G", "512M") and durations ("30m", "7d").

They validate from strings or plain numbers and serialise back to the short human form, so that
``pangeohub config show`` prints what an operator would have written.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_size(value: object) -> int:
    """Bytes from ``"2G"``, ``"512MiB"``, ``"1.5T"`` or an int (bytes). Binary multiples (G = 2**30)."""
    if isinstance(value, bool):
        raise ValueError("a size must be a number of bytes or a string like '2G'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return int(value)
    if not isinstance(value, str):
        raise ValueError("a size must be a string like '2G' or '512M'")
    match = _SIZE_RE.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a size: write a number with K, M, G or T, e.g. '2G'")
    number, unit = match.groups()
    return int(float(number) * _SIZE_UNITS[unit.upper()])


def format_size(nbytes: int) -> str:
    for unit in ("T", "G", "M", "K"):
        factor = _SIZE_UNITS[unit]
        if nbytes >= factor and nbytes % factor == 0:
            return f"{nbytes // factor}{unit}"
    for unit in ("T", "G", "M", "K"):
        if nbytes >= _SIZE_UNITS[unit]:
            return f"{nbytes / _SIZE_UNITS[unit]:.1f}{unit}"
    return str(nbytes)


def parse_duration(value: object) -> float:
    """Seconds from ``"30m"``, ``"7d"``, ``"90s"``, ``"1.5h"`` or a number (seconds)."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '30m'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("a duration must be a string like '30s', '30m', '1h' or '7d'")
    match = _DURATION_RE.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a duration: write a number with s, m, h, d or w, e.g. '30m'")
    number, unit = match.groups()
    return float(number) * _DURATION_UNITS[unit or "s"]


def format_duration(seconds: float) -> str:
    for unit in ("w", "d", "h", "m"):
        factor = _DURATION_UNITS[unit]
        if seconds >= factor and seconds % factor == 0:
            return f"{int(seconds // factor)}{unit}"
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds}s"


ByteSize = Annotated[
    int,
    BeforeValidator(parse_size),
    PlainSerializer(format_size, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": r"^\d+(\.\d+)?[KMGTkmgt]?(i?B)?$"},
                              {"type": "integer", "minimum": 0}]}),
]
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": r"^\d+(\.\d+)?[smhdw]?$"},
                              {"type": "number", "minimum": 0}]}),
]
