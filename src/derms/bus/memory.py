"""In-process asyncio bus: the embedded default."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from derms.bus.base import Bus, Handler, Message, Subscription, subject_matches, validate_subject
from derms.core.clock import Clock, SystemClock
from derms.core.tasks import cancel_and_wait

log = structlog.get_logger(__name__)


class _MemorySubscription(Subscription):
    def __init__(self, bus: MemoryBus, pattern: str, handler: Handler, maxsize: int) -> None:
        self.bus = bus
        self.pattern = pattern
        self.handler = handler
        self.queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=maxsize)
        self.task: asyncio.Task[None] = asyncio.create_task(self._run(), name=f"bus:{pattern}")

    async def _run(self) -> None:
        while True:
            message = await self.queue.get()
            try:
                await self.handler(message)
            except Exception:
                log.exception("bus handler failed", pattern=self.pattern, subject=message.subject)
            finally:
                self.queue.task_done()

    async def unsubscribe(self) -> None:
        self.bus._subscriptions.discard(self)
        await cancel_and_wait(self.task)


class MemoryBus(Bus):
    """Publish/subscribe within one process.

    Each subscription has a bounded queue (``maxsize``): a publisher waits when a
    subscriber falls that far behind, so nothing is dropped.
    """

    def __init__(self, clock: Clock | None = None, maxsize: int = 10_000) -> None:
        self._clock = clock or SystemClock()
        self._maxsize = maxsize
        self._subscriptions: set[_MemorySubscription] = set()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            await sub.unsubscribe()

    async def publish(self, subject: str, data: Any) -> None:
        validate_subject(subject, wildcards=False)
        message = Message(subject, data, self._clock.now())
        for sub in list(self._subscriptions):
            if subject_matches(sub.pattern, subject):
                await sub.queue.put(message)

    async def subscribe(self, pattern: str, handler: Handler, *, durable: str | None = None) -> Subscription:
        validate_subject(pattern, wildcards=True)
        sub = _MemorySubscription(self, pattern, handler, self._maxsize)
        self._subscriptions.add(sub)
        return sub

    async def drain(self) -> None:
        """Wait until every message published so far has been handled (tests, shutdown)."""
        for sub in list(self._subscriptions):
            await sub.queue.join()
