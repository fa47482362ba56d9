"""Telemetry from 2030.5 requests published to the platform in batches.

A POST of MirrorMeterReadings (2030.5-2018 10.5.4.3) is answered 201 once its samples are
in this queue; they reach the bus at the next flush: every ``interval_s`` of wall time,
as soon as ``max_samples`` are waiting, and on :meth:`TelemetryBatcher.stop` (adapter
shutdown). A failed publish keeps the batch for the next flush. Samples of one DER at one
instant are published as one (:func:`merged`): a MirrorMeterReading carries one quantity per
sample and a DERStatus another, and the fleet state keeps only a DER's newest sample of a batch,
so unmerged, a battery's power and state of charge never both reached it. What the queue holds is in
memory only: a process killed without a clean stop loses at most one interval of readings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import datetime

from derms.core.tasks import cancel_and_wait
from derms.core.telemetry import OperationalStatus, Telemetry

log = logging.getLogger(__name__)

_QUANTITIES = ("p_w", "q_var", "v_v", "f_hz", "soc")


def merged(samples: Iterable[Telemetry]) -> list[Telemetry]:
    """Samples of one DER and timestamp merged, in order: a sample joins the last one of its DER
    and timestamp unless both give the same quantity (a repeated reading stays a sample of its
    own). A known status wins over UNKNOWN, unavailable if either says so, the worse quality."""
    out: list[Telemetry] = []
    last: dict[tuple[str, datetime], int] = {}
    for s in samples:
        key = (s.der_id, s.ts)
        given = {q: v for q in _QUANTITIES if (v := getattr(s, q)) is not None}
        at = last.get(key)
        if at is None or any(getattr(out[at], q) is not None for q in given):
            last[key] = len(out)
            out.append(s)
            continue
        have = out[at]
        out[at] = replace(
            have,
            **given,
            status=have.status if s.status is OperationalStatus.UNKNOWN else s.status,
            available=have.available and s.available,
            quality=max(have.quality, s.quality),
        )
    return out


class TelemetryBatcher:
    """Queue of acknowledged samples, published as one batch per flush."""

    def __init__(
        self,
        publish: Callable[[list[Telemetry]], Awaitable[None]],
        interval_s: float = 0.2,
        max_samples: int = 5_000,
    ) -> None:
        self._publish = publish
        self._interval_s = interval_s
        self._max_samples = max_samples
        self._queue: list[Telemetry] = []
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def add(self, samples: list[Telemetry]) -> None:
        """Queue ``samples``; publishes at once when ``max_samples`` are waiting."""
        self._queue += samples
        if len(self._queue) >= self._max_samples:
            await self.flush()

    async def flush(self) -> None:
        """Publish everything queued; on failure the samples stay queued (in order) and the error is logged."""
        async with self._lock:
            batch, self._queue = self._queue, []
            if not batch:
                return
            try:
                await self._publish(merged(batch))
            except BaseException as exc:  # cancelled mid-publish too: keep the batch
                self._queue = batch + self._queue
                if not isinstance(exc, Exception):
                    raise
                log.exception(
                    "2030.5 telemetry publish failed; %d samples kept for the next flush", len(batch)
                )

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.flush()

    async def stop(self) -> None:
        """Stop the timer and publish what is still queued."""
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()
