"""Subscription/Notification (IEEE 2030.5-2018 9.5): push changed resources to subscribers.

When a resource changes, every subscription to its path gets a ``Notification`` whose
``Resource`` is the resource as the subscriber would GET it (first ``limit`` items of a
list), rendered by the server's own routes under the subscriber's scope. Delivery is an
HTTPS POST with the server's certificate to the subscriber's ``notificationURI``, retried
with exponential back-off (2030.5-2018 9.5.2: the server SHOULD retry a failed notification).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from lxml import etree

from derms.adapters.ieee2030_5 import hrefs
from derms.adapters.ieee2030_5.records import SubscriptionRecord
from derms.adapters.ieee2030_5.repository import Repository
from derms.adapters.ieee2030_5.schema import NS, SEP_XML
from derms.core.clock import Clock
from derms.core.retry import exponential_delay

log = structlog.get_logger(__name__)
XSI = "http://www.w3.org/2001/XMLSchema-instance"
INTERNAL_SCOPE = "derms.ieee2030_5.scope"
"""ASGI scope extension carrying an in-process caller's LFDI (unreachable from the network)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    first_delay_s: float = 1.0
    factor: float = 2.0
    timeout_s: float = 10.0


async def internal_get(app: FastAPI, lfdi: str, path: str) -> tuple[int, bytes]:
    """GET ``path`` from ``app`` in-process as the device with ``lfdi``."""
    raw_path, _, query = path.partition("?")
    scope: MutableMapping[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "headers": [(b"accept", SEP_XML.encode())],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
        "extensions": {INTERNAL_SCOPE: lfdi},
    }
    status, chunks = 500, []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def notification(sub: SubscriptionRecord, resource: bytes | None, status: int = 0) -> bytes:
    """Notification XML with the resource embedded as ``<Resource xsi:type=...>``."""
    root = etree.Element(f"{{{NS}}}Notification", nsmap={None: NS, "xsi": XSI})
    etree.SubElement(root, f"{{{NS}}}subscribedResource").text = sub.resource
    if resource is not None:
        doc = etree.fromstring(resource)
        element = etree.SubElement(root, f"{{{NS}}}Resource")
        element.set(f"{{{XSI}}}type", etree.QName(doc).localname)
        for key, value in doc.attrib.items():
            element.set(key, value)
        element.extend(list(doc))
    etree.SubElement(root, f"{{{NS}}}status").text = str(status)
    etree.SubElement(root, f"{{{NS}}}subscriptionURI").text = hrefs.sub(sub.edev_id, sub.id)
    return etree.tostring(root, xml_declaration=False)


class Notifier:
    """Queues notifications for changed paths and delivers them with retry and back-off."""

    def __init__(
        self,
        repo: Repository,
        app: FastAPI,
        clock: Clock,
        client_tls: ssl.SSLContext | None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._repo = repo
        self._app = app
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._client = httpx.AsyncClient(verify=client_tls or True, timeout=self._retry.timeout_s)
        self._tasks: set[asyncio.Task[None]] = set()
        self.delivered: list[tuple[int, str, int]] = []
        """(subscription id, path, attempts) of every notification delivered."""

    async def changed(self, path: str) -> None:
        for sub in self._repo.subscribers(path):
            task = asyncio.create_task(self._deliver(sub))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, sub: SubscriptionRecord) -> None:
        edev = self._repo.end_devices.get(sub.edev_id)
        if edev is None:
            return
        owner = self._repo.end_devices.get(edev.aggregator_id) if edev.aggregator_id else edev
        lfdi = owner.lfdi if owner else edev.lfdi
        sep = "&" if "?" in sub.resource else "?"
        status, body = await internal_get(self._app, lfdi, f"{sub.resource}{sep}l={max(sub.limit, 1)}")
        resource = body if status == 200 and sub.limit > 0 else None
        payload = notification(sub, resource, 4 if status == 404 else 0)  # 4: resource deleted
        retry = self._retry
        for attempt in range(1, retry.attempts + 1):
            try:
                response = await self._client.post(
                    sub.notification_uri, content=payload, headers={"Content-Type": SEP_XML}
                )
                if response.status_code < 300:
                    self.delivered.append((sub.id, sub.resource, attempt))
                    return
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            log.info("notification failed", uri=sub.notification_uri, attempt=attempt, reason=reason)
            if attempt < retry.attempts:
                await self._clock.sleep(
                    exponential_delay(attempt, first=retry.first_delay_s, factor=retry.factor, cap=math.inf)
                )
        log.warning("notification dropped", uri=sub.notification_uri, attempts=self._retry.attempts)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._client.aclose()
