"""NATS JetStream implementation of the bus, for several processes or hosts.

Every subject is stored in one JetStream stream under a prefix (default ``derms``), so a
durable consumer can resume after a restart. Payloads travel as UTF-8 JSON; the publisher's
clock time travels in the ``Derms-Published-At`` header.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import nats
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from derms.bus.base import Bus, Handler, Message, Subscription, validate_subject
from derms.core.clock import Clock, SystemClock

log = structlog.get_logger(__name__)
PUBLISHED_AT = "Derms-Published-At"


class _NatsSubscription(Subscription):
    def __init__(self, sub: JetStreamContext.PushSubscription) -> None:
        self._sub = sub

    async def unsubscribe(self) -> None:
        await self._sub.unsubscribe()


class NatsBus(Bus):
    """Bus over NATS JetStream at ``url``; ``prefix`` namespaces subjects and names the stream."""

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        prefix: str = "derms",
        clock: Clock | None = None,
        max_age_s: float = 24 * 3600,
    ) -> None:
        validate_subject(prefix, wildcards=False)
        self._url = url
        self._prefix = prefix
        self._stream = prefix.replace(".", "_").upper()
        self._clock = clock or SystemClock()
        self._max_age_s = max_age_s
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    @property
    def stream(self) -> str:
        return self._stream

    async def start(self) -> None:
        self._nc = await nats.connect(self._url, connect_timeout=2, max_reconnect_attempts=3)
        self._js = self._nc.jetstream()
        config = StreamConfig(name=self._stream, subjects=[f"{self._prefix}.>"], max_age=self._max_age_s)
        try:
            await self._js.stream_info(self._stream)
            await self._js.update_stream(config)
        except NotFoundError:
            await self._js.add_stream(config)

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.drain()
        self._nc = None
        self._js = None

    async def delete_stream(self) -> None:
        """Remove this bus's stream and every stored message (tests, decommissioning)."""
        await self._jetstream().delete_stream(self._stream)

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("NatsBus is not started")
        return self._js

    async def publish(self, subject: str, data: Any) -> None:
        validate_subject(subject, wildcards=False)
        body = json.dumps(data, separators=(",", ":")).encode()
        headers = {PUBLISHED_AT: self._clock.now().isoformat()}
        await self._jetstream().publish(f"{self._prefix}.{subject}", body, headers=headers)

    async def subscribe(self, pattern: str, handler: Handler, *, durable: str | None = None) -> Subscription:
        validate_subject(pattern, wildcards=True)
        strip = len(self._prefix) + 1

        async def on_message(msg: Msg) -> None:
            try:
                published = (msg.headers or {}).get(PUBLISHED_AT)
                message = Message(
                    msg.subject[strip:],
                    json.loads(msg.data),
                    datetime.fromisoformat(published) if published else self._clock.now(),
                )
                await handler(message)
            except Exception:
                log.exception("bus handler failed", pattern=pattern, subject=msg.subject)
            finally:
                await msg.ack()

        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL if durable else DeliverPolicy.NEW, ack_wait=30
        )
        sub = await self._jetstream().subscribe(
            f"{self._prefix}.{pattern}",
            cb=on_message,
            durable=durable,
            stream=self._stream,
            manual_ack=True,
            config=config,
        )
        return _NatsSubscription(sub)

    async def flush(self) -> None:
        if self._nc is not None:
            await self._nc.flush()
            await asyncio.sleep(0)
