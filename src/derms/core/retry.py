"""Retry schedules."""

from __future__ import annotations


def exponential_delay(failures: int, *, first: float, factor: float, cap: float) -> float:
    """Capped exponential back-off: ``first · factor^(failures − 1)`` seconds, at most ``cap``,
    after the ``failures``-th failure in a row (1-based)."""
    return min(cap, first * factor ** (failures - 1))
