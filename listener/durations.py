"""Parsing and printing of human durations such as ``15m``, ``1h30m``, ``2d``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.I)


def parse_duration(value: object) -> timedelta:
    """Parse ``15m``/``1h30m``/``90`` (seconds) or a number of seconds into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        return timedelta(seconds=float(value))
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}")
    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return timedelta(seconds=float(text))
    pos = 0
    seconds = 0.0
    for m in _PART.finditer(text):
        if text[pos : m.start()].strip():
            break
        seconds += float(m.group(1)) * _UNITS[m.group(2).lower()]
        pos = m.end()
    if pos == 0 or text[pos:].strip():
        raise ValueError(f"invalid duration {value!r} (use e.g. 30s, 15m, 1h, 2d)")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """Short human form: ``1h 5m``, ``45s``, ``-3m`` for overdue."""
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size or (unit == "s" and not parts):
            parts.append(f"{total // size}{unit}")
            total %= size
        if len(parts) == 2:
            break
    return sign + " ".join(parts)
