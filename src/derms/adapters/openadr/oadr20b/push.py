"""Push delivery of the 2.0b VTN (simple HTTP push model, 2.0b sections 8.4 and 13).

A VEN that registered with ``oadrHttpPullModel=false`` and an ``oadrTransportAddress`` (its
root URL) is called by the VTN: each change of its events is POSTed as ``oadrDistributeEvent``
to ``<address>/OpenADR2/Simple/2.0b/EiEvent``, queued messages (``oadrCreateReport``,
``oadrRequestReregistration``, ...) to their service. The VEN's HTTP reply, an ``oadrResponse``
or its ``oadrCreatedEvent``/``oadrCreatedReport`` itself, goes through the VTN's checks
(:meth:`Vtn.push_reply`). A failed push (connection error, HTTP error, refusal, malformed
reply) is retried with exponential back-off; until it succeeds the message stays queued, so
a VEN that also polls receives it at its next ``oadrPoll``. As for polling VENs, an event that
needs a response and has had none for three poll periods is sent again (a sweep each period).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import httpx
import structlog

from derms.adapters.openadr.oadr20b.security import fingerprint
from derms.adapters.openadr.oadr20b.server import PATH, TlsFiles
from derms.adapters.openadr.oadr20b.vtn import Outgoing, VenRecord, Vtn
from derms.core.retry import exponential_delay
from derms.core.tasks import cancel_and_wait

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry schedule: ``first`` seconds, times ``factor`` per failure, at most ``cap``."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    attempts: int = 10
    """Failures in a row before the delivery rests until the next change (or the VEN's poll)."""

    def delay(self, failures: int) -> float:
        return exponential_delay(failures, first=self.first, factor=self.factor, cap=self.cap)


def endpoint(transport_address: str, service: str) -> str:
    """The VEN's service URL: its root address plus the simple-HTTP path, unless already there."""
    root = transport_address.rstrip("/")
    if not root.endswith(PATH):
        root += PATH
    return f"{root}/{service}"


class PushDelivery:
    """One delivery task per push VEN with something to receive; plug into ``Vtn.pusher``."""

    def __init__(
        self,
        vtn: Vtn,
        *,
        tls: TlsFiles | None = None,
        backoff: Backoff = Backoff(),
        timeout_s: float = 10.0,
        sweep_s: float | None = None,
        max_in_flight: int = 100,
    ) -> None:
        self.vtn = vtn
        self.backoff = backoff
        self.sweep_s = sweep_s if sweep_s is not None else vtn.poll_freq.total_seconds()
        """Wall-clock period of the search for unacknowledged events (default: the poll period)."""
        verify: ssl.SSLContext | bool = True
        if tls is not None:  # mutual TLS: the VEN's CA, and our certificate as the client's
            verify = ssl.create_default_context(cafile=tls.ca_certs)
            verify.load_cert_chain(tls.certfile, tls.keyfile)
        # pushes to one VEN are minutes apart: no idle connections kept to thousands of VENs
        limits = httpx.Limits(max_keepalive_connections=0)
        self.http = httpx.AsyncClient(timeout=timeout_s, verify=verify, limits=limits)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(max_in_flight)
        """Pushes in flight at once; a fleet-wide event to thousands of VENs waits its turn here."""
        self._sweeper: asyncio.Task[None] | None = None
        self.delivered = 0
        self.failures = 0
        vtn.pusher = self.notify

    def start(self) -> None:
        """Push what is pending (after a restart, every push VEN's events) and start the sweep."""
        for ven in list(self.vtn.vens.values()):
            if ven.push and (ven.events_dirty or ven.outbox):
                self.notify(ven)
        self._sweeper = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_s)
            for ven in list(self.vtn.vens.values()):
                if ven.push and self.vtn.unacknowledged(ven):
                    ven.events_dirty = True
                    self.notify(ven)

    async def stop(self) -> None:
        self.vtn.pusher = None
        tasks = list(self._tasks.values()) + ([self._sweeper] if self._sweeper is not None else [])
        await cancel_and_wait(*tasks)
        await self.http.aclose()

    def notify(self, ven: VenRecord) -> None:
        """The VEN has something to receive: start its delivery (a running one picks it up)."""
        task = self._tasks.get(ven.ven_id)
        if task is not None and not task.done():
            return
        self._tasks[ven.ven_id] = asyncio.create_task(self._deliver(ven.ven_id))

    async def idle(self) -> None:
        """Wait until no delivery is running (tests, shutdown)."""
        while running := [t for t in self._tasks.values() if not t.done()]:
            await asyncio.gather(*running, return_exceptions=True)

    async def _deliver(self, ven_id: str) -> None:
        failures = 0
        while True:
            ven = self.vtn.vens.get(ven_id)
            if ven is None or not ven.push:
                return
            sent = self.vtn.next_push(ven)
            if sent is None:
                return
            if await self._push(ven, sent):
                self.delivered += 1
                failures = 0
                continue
            self.failures += 1
            failures += 1
            self.vtn.push_failed(ven, sent)
            if failures >= self.backoff.attempts:
                log.warning("openadr.push.resting", ven=ven.ven_name, failures=failures)
                return
            await asyncio.sleep(self.backoff.delay(failures))

    async def _push(self, ven: VenRecord, sent: Outgoing) -> bool:
        assert ven.registration.transport_address is not None
        url = endpoint(ven.registration.transport_address, sent.service)
        try:
            async with self._slots:
                response = await self.http.post(
                    url, content=sent.data, headers={"content-type": "application/xml"}
                )
        except httpx.HTTPError as exc:
            log.info("openadr.push.failed", ven=ven.ven_name, url=url, error=str(exc) or type(exc).__name__)
            return False
        if response.status_code != 200:
            log.info("openadr.push.refused", ven=ven.ven_name, url=url, status=response.status_code)
            return False
        return await self.vtn.push_reply(ven, sent, response.content, _peer_fingerprint(response))


def _peer_fingerprint(response: httpx.Response) -> str | None:
    """OpenADR fingerprint of the VEN's TLS server certificate, if the push went over TLS."""
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return fingerprint(der) if der else None
