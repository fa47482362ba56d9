"""3.0.1 webhook delivery against real HTTP receivers on loopback sockets: retries with
back-off and jitter on the injected clock, Retry-After, bounded attempts and time, ordering
per subscription, nothing else held up, a clean stop."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from structlog.testing import capture_logs

from derms.adapters.openadr.oadr3.app import BASE_PATH, build
from derms.adapters.openadr.oadr3.auth import Client
from derms.adapters.openadr.oadr3.vtn import Vtn3
from derms.adapters.openadr.oadr3.webhooks import RetryPolicy, Webhook, retry_after
from derms.adapters.openadr.oadr20b.server import HttpServer
from derms.core.clock import Clock, ManualClock, ScaledClock
from tests.adapters.openadr.openadr_samples import T0

CLIENTS = [Client("bl", "bl-s", "BL"), Client("a", "a-s", "VEN", "ven-a")]


class Receiver:
    """A webhook endpoint: answers from ``script`` (status, headers) in turn, then 200; with
    ``hang`` it never answers until released."""

    def __init__(
        self, clock: Clock, script: list[tuple[int, dict[str, str]]] | None = None, hang: bool = False
    ) -> None:
        self.clock = clock
        self.script = script or []
        self.hang = hang
        self.release = asyncio.Event()
        self.calls: list[tuple[datetime, int, dict]] = []
        """(clock time, status answered, notification) per POST."""
        self.server = HttpServer(Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]))

    async def hook(self, request: Request) -> Response:
        note = await request.json()
        if self.hang:
            self.calls.append((self.clock.now(), 0, note))
            await self.release.wait()
            return Response(status_code=200)
        status, headers = self.script.pop(0) if self.script else (200, {})
        self.calls.append((self.clock.now(), status, note))
        return Response(status_code=status, headers=headers)

    @property
    def url(self) -> str:
        return f"{self.server.url}/hook"


@asynccontextmanager
async def running(
    clock: Clock, policy: RetryPolicy, *receivers: Receiver
) -> AsyncIterator[tuple[httpx.AsyncClient, Vtn3, dict[str, dict[str, str]], str]]:
    app, vtn, _ = build(CLIENTS, clock, retry=policy)
    vtn.webhooks.rng = random.Random(7)
    for r in receivers:
        await r.server.start()
    await vtn.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=f"http://vtn{BASE_PATH}"
        ) as http:
            tokens = {}
            for cid, secret in (("bl", "bl-s"), ("a", "a-s")):
                form = {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret}
                token = (await http.post("/auth/token", data=form)).json()["access_token"]
                tokens[cid] = {"Authorization": f"Bearer {token}"}
            program = (await http.post("/programs", json={"programName": "p"}, headers=tokens["bl"])).json()
            await http.post("/vens", json={"venName": "ven-a"}, headers=tokens["a"])
            yield http, vtn, tokens, program["id"]
    finally:
        await vtn.stop()
        for r in receivers:
            r.release.set()
            await r.server.stop()


async def subscribe(http: httpx.AsyncClient, tokens: dict, program_id: str, url: str) -> None:
    sub = {
        "clientName": "ven-a",
        "programID": program_id,
        "objectOperations": [{"objects": ["EVENT"], "operations": ["CREATE"], "callbackUrl": url}],
    }
    assert (await http.post("/subscriptions", json=sub, headers=tokens["a"])).status_code == 201


async def post_event(http: httpx.AsyncClient, tokens: dict, program_id: str, name: str) -> None:
    event = {
        "programID": program_id,
        "eventName": name,
        "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}],
    }
    assert (await http.post("/events", json=event, headers=tokens["bl"])).status_code == 201


async def until(check: Callable[[], bool], limit_s: float = 5.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_retries_with_backoff_and_retry_after_then_delivers_in_order() -> None:
    clock = ManualClock(T0)
    flaky = Receiver(clock, [(503, {}), (503, {"Retry-After": "30"}), (429, {}), (502, {})])
    policy = RetryPolicy(attempts=6, first_delay_s=1.0, factor=2.0)
    async with running(clock, policy, flaky) as (http, vtn, t, program_id):
        await subscribe(http, t, program_id, flaky.url)
        await post_event(http, t, program_id, "first")
        await post_event(http, t, program_id, "second")
        await until(lambda: vtn.webhooks.stats.delivered == 2)
    names = [(note["object"]["eventName"], status) for _, status, note in flaky.calls]
    assert names == [
        ("first", 503),
        ("first", 503),
        ("first", 429),
        ("first", 502),
        ("first", 200),
        ("second", 200),
    ]
    gaps = [(flaky.calls[n + 1][0] - flaky.calls[n][0]).total_seconds() for n in range(4)]
    # equal jitter: after try n the wait is in [base/2, base], base = 1, 2, 4, 8 s; Retry-After 30 s wins
    assert 0.5 <= gaps[0] <= 1.0
    assert gaps[1] == 30.0
    assert 2.0 <= gaps[2] <= 4.0
    assert 4.0 <= gaps[3] <= 8.0
    assert vtn.webhooks.stats.retries == 4 and vtn.webhooks.stats.given_up == 0


async def test_a_dead_subscriber_is_bounded_and_holds_up_nobody() -> None:
    clock = ManualClock(T0)
    dead = Receiver(clock, hang=True)
    healthy = Receiver(clock)
    policy = RetryPolicy(attempts=3, first_delay_s=1.0, timeout_s=0.6)
    refused = f"http://127.0.0.1:{closed_port()}/hook"
    async with running(clock, policy, dead, healthy) as (http, vtn, t, program_id):
        dead_url = dead.url
        for url in (dead_url, refused, healthy.url):
            await subscribe(http, t, program_id, url)
        with capture_logs() as logs:
            started = time.monotonic()
            await post_event(http, t, program_id, "e1")
            answered = time.monotonic() - started
            await until(lambda: len(healthy.calls) == 1)
            # the healthy subscriber had its notification before the dead one's first timeout
            assert time.monotonic() - started < policy.timeout_s
            await until(lambda: vtn.webhooks.stats.given_up == 2)
    assert answered < policy.timeout_s
    assert len(dead.calls) == 3  # bounded: three tries, then given up
    assert vtn.webhooks.stats.retries == 4 and vtn.webhooks.stats.delivered == 1
    given_up = [e for e in logs if e["event"] == "openadr3.webhook.given_up"]
    assert sorted((e["url"], e["attempts"]) for e in given_up) == sorted([(dead_url, 3), (refused, 3)])
    assert {e["reason"].split(":")[0] for e in given_up} == {"ReadTimeout", "ConnectError"}
    assert all(e["log_level"] == "warning" and e["object_type"] == "EVENT" for e in given_up)


async def test_refusals_and_long_retry_after_give_up_at_once() -> None:
    clock = ManualClock(T0)
    later = format_datetime(T0 + timedelta(hours=2), usegmt=True)
    receiver = Receiver(clock, [(401, {}), (429, {"Retry-After": later}), (200, {})])
    policy = RetryPolicy(attempts=5, give_up_after_s=3600.0)
    async with running(clock, policy, receiver) as (http, vtn, t, program_id):
        await subscribe(http, t, program_id, receiver.url)
        for name in ("refused", "too-late", "fine"):
            await post_event(http, t, program_id, name)
        await until(lambda: vtn.webhooks.stats.delivered == 1)
    assert [(note["object"]["eventName"], s) for _, s, note in receiver.calls] == [
        ("refused", 401),
        ("too-late", 429),
        ("fine", 200),
    ]
    assert vtn.webhooks.stats.given_up == 2 and vtn.webhooks.stats.retries == 0
    assert clock.now() == T0  # nobody waited two hours


async def test_stop_cancels_deliveries_in_flight() -> None:
    clock = ManualClock(T0)
    dead = Receiver(clock, hang=True)
    async with running(clock, RetryPolicy(timeout_s=30.0), dead) as (http, vtn, t, program_id):
        await subscribe(http, t, program_id, dead.url)
        for name in ("a", "b", "c"):
            await post_event(http, t, program_id, name)
        await until(lambda: len(dead.calls) == 1)
        started = time.monotonic()
        await vtn.stop()
        assert time.monotonic() - started < 1.0
    assert vtn.webhooks.stats.dropped == 3 and vtn.webhooks.pending() == []
    assert not [t for t in asyncio.all_tasks() if "_drain" in repr(t.get_coro())]


async def test_deleting_a_subscription_stops_its_retries() -> None:
    clock = ScaledClock(T0, speed=1200.0)  # the 600 s wait takes 0.5 s
    down = Receiver(clock, [(503, {"Retry-After": "600"})] * 10)
    async with running(clock, RetryPolicy(attempts=10), down) as (http, vtn, t, program_id):
        await subscribe(http, t, program_id, down.url)
        [sub] = (await http.get("/subscriptions", headers=t["a"])).json()
        await post_event(http, t, program_id, "a")
        await until(lambda: len(down.calls) == 1)
        assert (await http.delete(f"/subscriptions/{sub['id']}", headers=t["a"])).status_code == 200
        assert vtn.webhooks.pending() == []
        await asyncio.sleep(0.8)
        assert not [t for t in asyncio.all_tasks() if "_drain" in repr(t.get_coro())]
    assert len(down.calls) == 1  # no retry after the deletion
    assert vtn.webhooks.stats.dropped == 1 and vtn.webhooks.stats.given_up == 0


def test_queue_overflow_drops_the_oldest_waiting() -> None:
    _, vtn, _ = build(CLIENTS, ManualClock(T0), retry=RetryPolicy(max_queued=2))
    for n in range(3):
        vtn.webhooks.enqueue(Webhook("s", "http://127.0.0.1:9/x", None, {"n": n}))
    assert [h.notification["n"] for h in vtn.webhooks.pending()] == [1, 2]
    assert vtn.webhooks.stats.dropped == 1


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), ("Wed, 15 Jul 2026 12:01:30 GMT", 90.0), ("Wed, 15 Jul 2026 11:00:00 GMT", 0.0)],
)
def test_retry_after_forms(header: str, seconds: float) -> None:
    assert retry_after(header, T0) == seconds


def test_retry_after_unreadable() -> None:
    assert retry_after(None, T0) is None and retry_after("soon", T0) is None and retry_after("-5", T0) is None
