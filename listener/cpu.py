"""How many CPU cores this process may use (its affinity, not the machine's size)."""

from __future__ import annotations

import os


def available_cores() -> int:
    """CPU cores this process may run on (containers and ``taskset`` included)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1
