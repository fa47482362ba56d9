"""Injectable clocks, so the simulator and tests can run hours of grid time in seconds.

Every component that needs "now" takes a :class:`Clock`; none calls ``datetime.now``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


def utc(value: datetime) -> datetime:
    """Return ``value`` as a UTC-aware datetime; naive datetimes are refused."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone; derms uses UTC-aware times")
    return value.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    """Source of the current time and of waiting."""

    def now(self) -> datetime:
        """Current UTC-aware time."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Accelerated time: ``speed`` seconds of clock time pass per wall-clock second.

    Starts at ``start`` (UTC) when constructed. ``sleep`` waits ``seconds / speed`` of wall time.
    """

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._start = utc(start)
        self._speed = speed
        self._t0 = time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self._speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._speed)


class ManualClock:
    """A clock that only moves when told to; ``sleep`` advances it immediately.

    Used by tests and by the simulator in "as fast as possible" mode.
    """

    def __init__(self, start: datetime) -> None:
        self._now = utc(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, value: datetime) -> None:
        value = utc(value)
        if value < self._now:
            raise ValueError("a clock cannot go backwards")
        self._now = value

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)
