"""Webhook delivery of 3.0.1 notifications.

A subscription's ``objectOperations`` name a ``callbackUrl`` and ``bearerToken``; the VTN POSTs
each ``notification`` there (``openadr3.yaml`` 3.0.1, ``subscription`` and ``notification``
schemas; the 3.0.1 User Guide, "Subscriptions"). The specification leaves retries to the VTN.
Here:

* one ordered queue per (subscription, callbackUrl): a subscriber receives its notifications
  in the order of the changes, and a slow or dead subscriber delays no one else;
* a connection error, timeout, HTTP 5xx or 429 is retried after an exponentially growing
  delay with "equal jitter" (half of it random; Brooker, *Exponential Backoff and Jitter*,
  AWS Architecture Blog, 2015), or after the receiver's ``Retry-After`` (RFC 9110 §10.2.3:
  seconds or an HTTP-date) when that is longer; other HTTP errors are not retried;
* a notification is given up after ``attempts`` tries or ``give_up_after_s`` from its first
  try, whichever comes first (a warning log ``openadr3.webhook.given_up`` and the
  ``given_up`` counter); a queue holds at most ``max_queued`` notifications, the oldest
  waiting one is dropped beyond that (``dropped``);
* enqueueing never waits, so the request that caused a change never waits for its webhooks;
  back-off waits are on the injected clock; deleting a subscription drops its queue and stops
  its retries; :meth:`WebhookDelivery.stop` cancels every delivery and counts what was still
  queued as dropped.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx
import structlog

from derms.core.clock import Clock
from derms.core.retry import exponential_delay
from derms.core.tasks import cancel_and_wait

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 8
    """Tries per notification, the first included."""
    first_delay_s: float = 1.0
    factor: float = 2.0
    max_delay_s: float = 300.0
    give_up_after_s: float = 3600.0
    """No retry starts later than this after the first try."""
    timeout_s: float = 5.0
    """Per POST (connect, write, read)."""
    max_queued: int = 1000
    """Per (subscription, callbackUrl)."""

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Wait after failed try ``attempt`` (1-based): half of the capped exponential delay
        fixed, half uniformly random."""
        base = exponential_delay(attempt, first=self.first_delay_s, factor=self.factor, cap=self.max_delay_s)
        return base / 2 + rng.uniform(0.0, base / 2)


@dataclass(slots=True)
class WebhookStats:
    delivered: int = 0
    retries: int = 0
    given_up: int = 0
    """Notifications abandoned: retries exhausted, out of time, or refused (4xx)."""
    dropped: int = 0
    """Notifications abandoned untried or in flight: queue overflow, subscription deleted, stop."""


@dataclass(frozen=True, slots=True)
class Webhook:
    subscription_id: str
    url: str
    token: str | None
    notification: dict[str, object]


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3), or None if absent or
    unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


class WebhookDelivery:
    """Queues notifications per (subscription, callbackUrl) and POSTs them in order."""

    def __init__(
        self, clock: Clock, policy: RetryPolicy | None = None, rng: random.Random | None = None
    ) -> None:
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        self.stats = WebhookStats()
        self._queues: dict[tuple[str, str], deque[Webhook]] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._http: httpx.AsyncClient | None = None

    @property
    def running(self) -> bool:
        return self._http is not None

    async def start(self) -> None:
        """Begin delivering, including whatever was queued before."""
        self._http = httpx.AsyncClient(timeout=self.policy.timeout_s)
        for key in self._queues:
            self._launch(key)

    async def stop(self) -> None:
        workers = list(self._workers.values())
        await cancel_and_wait(*workers)
        abandoned = sum(len(q) for q in self._queues.values())
        if abandoned:
            self.stats.dropped += abandoned
            log.warning("openadr3.webhook.abandoned_at_stop", notifications=abandoned)
        self._queues.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def enqueue(self, hook: Webhook) -> None:
        """Queue one notification; never waits."""
        key = (hook.subscription_id, hook.url)
        queue = self._queues.setdefault(key, deque())
        if len(queue) >= self.policy.max_queued:
            old = queue.popleft()
            self.stats.dropped += 1
            log.warning(
                "openadr3.webhook.dropped",
                subscription=old.subscription_id,
                url=old.url,
                reason="queue full",
                max_queued=self.policy.max_queued,
            )
        queue.append(hook)
        if self.running and key not in self._workers:
            self._launch(key)

    def forget(self, subscription_id: str) -> None:
        """A deleted subscription: its queued notifications are dropped and its retries stop."""
        for key in [k for k in self._queues if k[0] == subscription_id]:
            self.stats.dropped += len(self._queues.pop(key))
            task = self._workers.pop(key, None)
            if task is not None:
                task.cancel()

    def pending(self) -> list[Webhook]:
        """Notifications queued and not yet being tried, oldest first per queue."""
        return [hook for queue in self._queues.values() for hook in queue]

    def _launch(self, key: tuple[str, str]) -> None:
        self._workers[key] = asyncio.create_task(self._drain(key))

    async def _drain(self, key: tuple[str, str]) -> None:
        queue = self._queues[key]
        try:
            while queue:
                hook = queue.popleft()
                try:
                    await self._deliver(hook)
                except asyncio.CancelledError:
                    self.stats.dropped += 1
                    raise
                except Exception:  # a bug must not stall the queue behind it
                    self.stats.given_up += 1
                    log.exception("openadr3.webhook.failed", subscription=hook.subscription_id, url=hook.url)
        finally:
            # no await since the last check: nothing can have been queued in between
            if self._workers.get(key) is asyncio.current_task():
                del self._workers[key]
            if not queue and self._queues.get(key) is queue:
                del self._queues[key]

    async def _deliver(self, hook: Webhook) -> None:
        assert self._http is not None
        policy = self.policy
        headers = {"Authorization": f"Bearer {hook.token}"} if hook.token else {}
        first = self.clock.now()
        reason = ""
        attempt = 0
        for attempt in range(1, policy.attempts + 1):
            hint: float | None = None
            try:
                response = await self._http.post(hook.url, json=hook.notification, headers=headers)
            except httpx.TransportError as exc:  # connection errors and timeouts
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if response.is_success:
                    self.stats.delivered += 1
                    return
                reason = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    break
                hint = retry_after(response.headers.get("retry-after"), self.clock.now())
            if attempt == policy.attempts:
                break
            wait = policy.delay(attempt, self.rng)
            if hint is not None:
                wait = max(wait, hint)
            if (self.clock.now() - first).total_seconds() + wait > policy.give_up_after_s:
                break
            self.stats.retries += 1
            log.info(
                "openadr3.webhook.retry",
                subscription=hook.subscription_id,
                url=hook.url,
                attempt=attempt,
                reason=reason,
                wait_s=round(wait, 3),
            )
            await self.clock.sleep(wait)
        self.stats.given_up += 1
        log.warning(
            "openadr3.webhook.given_up",
            subscription=hook.subscription_id,
            url=hook.url,
            attempts=attempt,
            elapsed_s=round((self.clock.now() - first).total_seconds(), 3),
            reason=reason,
            object_type=hook.notification.get("objectType"),
            operation=hook.notification.get("operation"),
        )
