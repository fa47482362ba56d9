"""OpenADR 2.0b: time from event creation to acknowledged receipt by N polling VENs.

The VTN (``Vtn`` behind the uvicorn ``HttpServer`` the adapter uses, plain HTTP, default
asyncio loop) runs in this process. The VENs run in ``--workers`` separate processes, each a
raw asyncio HTTP/1.1 client: every VEN registers (``oadrCreatePartyRegistration``), then polls
(``oadrPoll``, pre-built body) every ``poll_s`` seconds on a fixed timer with a random phase,
one TCP connection per poll cycle kept alive for the ``oadrCreatedEvent`` that answers an
``oadrDistributeEvent`` (a VEN polling every 10-60 s outlives the server's keep-alive).

Times are taken in the VTN process: from ``Vtn.create_event`` to the VTN's processing of
each VEN's ``oadrCreatedEvent`` (the listener's ``event_response``). The lower bound is one
poll period for the last VEN and half of one for the median; the rest is queueing. Also
reported: the achieved poll rate against ``vens / poll_s``, the VTN's and the load
generator's CPU time, and the load average.

Prints JSON. ``--quick`` runs one small fleet in seconds (used by the test suite).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any

from derms.adapters.openadr.oadr20b import codec
from derms.adapters.openadr.oadr20b.model import Event, EventResponse, Registration, Target
from derms.adapters.openadr.oadr20b.push import PushDelivery
from derms.adapters.openadr.oadr20b.server import PATH, HttpServer, make_app
from derms.adapters.openadr.oadr20b.templates import Template
from derms.adapters.openadr.oadr20b.vocabulary import OptType, Status
from derms.adapters.openadr.oadr20b.vtn import VenRecord, Vtn
from derms.adapters.openadr.persistence import VtnStore
from derms.bridge.openadr import OpenAdrTranslator
from derms.core.clock import SystemClock
from derms.core.controls import LoadShed
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.store.db import make_engine, upgrade

# ---------------------------------------------------------------------------- VEN workers


class HttpError(Exception):
    pass


_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)
_DESCRIPTOR = f"{codec.qname('ei:eiEvent')}/{codec.qname('ei:eventDescriptor')}/"
_EVENT_ID = _DESCRIPTOR + codec.qname("ei:eventID")
_MOD = _DESCRIPTOR + codec.qname("ei:modificationNumber")
_EVENT = codec.qname("oadr:oadrEvent")


async def post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, service: str, body: bytes
) -> bytes:
    """One HTTP/1.1 POST on an open keep-alive connection; the reply body."""
    writer.write(
        f"POST {PATH}/{service} HTTP/1.1\r\nHost: vtn\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    head = await reader.readuntil(b"\r\n\r\n")
    length = _LENGTH.search(head)
    data = await reader.readexactly(int(length.group(1)) if length else 0)
    if not head.startswith(b"HTTP/1.1 200"):
        raise HttpError(head.split(b"\r\n", 1)[0].decode())
    return data


# oadrCreatedEvent optIn for one event: a template like the VTN's, filled per reply
_ACK = Template.of(
    5,
    lambda request_id, response_request_id, event_id, mod, ven_id: codec.created_event(
        Status.OK,
        "OK",
        request_id,
        [EventResponse(event_id, mod, OptType.OPT_IN, request_id=response_request_id)],
        ven_id,
    ),
)


def acknowledgement(reply: bytes, ven_id: str) -> bytes:
    """Parse an oadrDistributeEvent as a VEN must (secure parser) and opt in to its events."""
    incoming = codec.parse_payload(reply)
    events = incoming.element.findall(_EVENT)
    request_id = incoming.request_id() or ""
    if len(events) == 1:
        event = events[0]
        return _ACK.fill(
            request_id, request_id, event.findtext(_EVENT_ID) or "", event.findtext(_MOD) or "", ven_id
        )
    responses = [
        EventResponse(e.event_id, e.modification_number, OptType.OPT_IN, request_id=request_id)
        for e in map(codec.decode_event, events)
    ]
    return codec.serialize(
        codec.envelope(codec.created_event(Status.OK, "OK", request_id, responses, ven_id))
    )


async def register(host: str, port: int, name: str, push_to: str | None = None) -> str:
    reg = Registration(name, "2.0b", "simpleHttp", False, False, push_to is None, push_to)
    body = codec.serialize(codec.envelope(codec.create_party_registration("r", reg)))
    for attempt in range(10):
        try:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                reply = codec.parse_payload(await post(reader, writer, "EiRegisterParty", body))
            finally:
                writer.close()
            return reply.element.findtext("ei:venID", namespaces=codec.NS) or ""
        except (OSError, asyncio.IncompleteReadError, HttpError):
            await asyncio.sleep(0.2 * (attempt + 1))  # a real VEN retries registration
    raise RuntimeError(f"{name} could not register")


async def ven_loop(
    host: str,
    port: int,
    ven_id: str,
    poll_s: float,
    stop: asyncio.Event,
    stats: Counter[str],
    samples: dict[str, list[float]],
) -> None:
    loop = asyncio.get_running_loop()
    poll = codec.serialize(codec.envelope(codec.poll(ven_id)))
    due = loop.time() + random.uniform(0, poll_s)
    while not stop.is_set():
        await asyncio.sleep(max(0.0, due - loop.time()))
        samples["timer_lag_s"].append(loop.time() - due)  # is the load generator keeping up?
        due += poll_s  # a fixed timer, as a VEN's poll scheduler
        try:
            sent = loop.time()
            reader, writer = await asyncio.open_connection(host, port)
            try:
                reply = await post(reader, writer, "OadrPoll", poll)
                samples["poll_rtt_s"].append(loop.time() - sent)  # connect + request + reply
                stats["polls"] += 1
                if b"oadrDistributeEvent" in reply:
                    await post(reader, writer, "EiEvent", acknowledgement(reply, ven_id))
                    stats["acks"] += 1
            finally:
                writer.close()
        except (OSError, asyncio.IncompleteReadError, HttpError):
            stats["errors"] += 1  # retried at the next poll; the VTN re-sends until acknowledged


async def push_endpoint(
    ven_ids: dict[str, str], stats: Counter[str], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """The push VENs' HTTP server (one per worker, ``/<n>/OpenADR2/...`` per VEN): opt in to
    each pushed ``oadrDistributeEvent`` with the ``oadrCreatedEvent`` as the HTTP reply."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = _LENGTH.search(head)
            body = await reader.readexactly(int(length.group(1)) if length else 0)
            ven_id = ven_ids[head.split(b" ", 2)[1].split(b"/", 2)[1].decode()]
            reply = acknowledgement(body, ven_id)
            stats["pushes"] += 1
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
                + f"Content-Length: {len(reply)}\r\n\r\n".encode()
                + reply
            )
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the VTN closed the connection
    finally:
        writer.close()


async def worker(host: str, port: int, first: int, count: int, poll_s: float, seed: int, push: bool) -> None:
    """A load-generator process: register ``count`` VENs, poll (or serve pushes) until stdin closes."""
    random.seed(seed)
    gate = asyncio.Semaphore(32)
    stats: Counter[str] = Counter()
    by_path: dict[str, str] = {}
    push_server = None
    if push:
        push_server = await asyncio.start_server(
            lambda r, w: push_endpoint(by_path, stats, r, w), "127.0.0.1", 0
        )
    push_port = push_server.sockets[0].getsockname()[1] if push_server is not None else 0

    async def one(i: int) -> str:
        async with gate:
            ven_id = await register(
                host, port, f"ven-{i}", f"http://127.0.0.1:{push_port}/{i}" if push else None
            )
            by_path[str(i)] = ven_id
            return ven_id

    ven_ids = await asyncio.gather(*(one(i) for i in range(first, first + count)))
    cpu_start = _cpu_s()
    print(json.dumps({"registered": len(ven_ids)}), flush=True)
    stop = asyncio.Event()
    samples: dict[str, list[float]] = {"timer_lag_s": [], "poll_rtt_s": []}
    tasks = []
    if not push:
        tasks = [asyncio.create_task(ven_loop(host, port, v, poll_s, stop, stats, samples)) for v in ven_ids]
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # the parent closes stdin to stop us
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if push_server is not None:
        push_server.close()
    print(json.dumps({**stats, "cpu_s": _cpu_s() - cpu_start, **samples}), flush=True)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------- VTN side


class AckClock:
    """VTN listener: when each VEN's acknowledgement of the event was processed."""

    def __init__(self) -> None:
        self.acked: dict[str, float] = {}
        self.done = asyncio.Event()
        self.expected = 0

    async def ven_registered(self, ven: VenRecord) -> None:
        pass

    async def ven_cancelled(self, ven: VenRecord) -> None:
        pass

    async def event_response(self, ven: VenRecord, event: Event, opt_type: OptType) -> None:
        self.acked.setdefault(ven.ven_id, time.perf_counter())
        if len(self.acked) >= self.expected:
            self.done.set()

    async def report_values(self, ven: VenRecord, points: list[Any]) -> None:
        pass


class CountingVtn(Vtn):
    """The VTN, counting requests per service (the achieved poll rate)."""

    requests: Counter[str]

    async def handle(self, service: str, data: bytes, peer_fingerprint: str | None = None) -> bytes:
        self.requests[service] += 1
        return await super().handle(service, data, peer_fingerprint)


def bench_event(event_id: str) -> Event:
    """A SIMPLE level-2 shed for every VEN, as the bridge builds it from a LoadShed setpoint."""
    now = SystemClock().now()
    der = Der("d", "s", DerKind.CI_LOAD, Capabilities(w_max_consume=1e5), "openadr", "all", "t")
    sp = Setpoint("d", LoadShed(level=2), now + timedelta(minutes=5), now + timedelta(minutes=35))
    event = OpenAdrTranslator("http://bench/mc").translate(der, sp, event_id).payload
    return replace(event, target=Target())


def _median_p95(values: list[float]) -> list[float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return [round(statistics.median(ordered), 4), round(ordered[int(0.95 * (len(ordered) - 1))], 4)]


async def run(n: int, poll_s: float, workers: int, sqlite: bool, push: bool) -> dict[str, Any]:
    ack_clock = AckClock()
    ack_clock.expected = n
    store = None
    if sqlite:  # the adapter's write-through persistence on the platform database
        engine = make_engine(f"sqlite:///{tempfile.mkdtemp(prefix='oadr-bench-')}/derms.sqlite")
        upgrade(engine)
        store = VtnStore(engine)
    vtn = CountingVtn(
        "BENCH_VTN", SystemClock(), poll_freq=timedelta(seconds=poll_s), listener=ack_clock, store=store
    )
    vtn.requests = Counter()
    server = HttpServer(make_app(vtn))
    await server.start()
    procs = []
    pusher: PushDelivery | None = None
    share = [n // workers + (1 if w < n % workers else 0) for w in range(workers)]
    try:
        first = 0
        for w, count in enumerate(share):
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--worker",
                    json.dumps([server.config.host, server.port, first, count, poll_s, 20305 + w, push]),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )
            first += count
        started = time.perf_counter()
        for p in procs:
            assert p.stdout is not None
            json.loads(await p.stdout.readline())
        registration_s = time.perf_counter() - started
        if push:
            pusher = PushDelivery(vtn)
            pusher.start()
        await asyncio.sleep(1.0 if push else poll_s * 1.5)  # every VEN polling in steady state
        requests_before, window_start, cpu_start = sum(vtn.requests.values()), time.perf_counter(), _cpu_s()
        polls_before = vtn.requests["OadrPoll"]
        t0 = time.perf_counter()
        vtn.create_event(bench_event("ev-bench"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ack_clock.done.wait(), 5 * poll_s + 60)
        window_s = time.perf_counter() - window_start
        poll_rate = (vtn.requests["OadrPoll"] - polls_before) / window_s
        vtn_cpu = _cpu_s() - cpu_start
        requests = sum(vtn.requests.values()) - requests_before
        load = os.getloadavg()
    finally:
        client: Counter[str] = Counter()
        client_cpu = 0.0
        lag: list[float] = []
        rtt: list[float] = []
        for p in procs:
            assert p.stdin is not None and p.stdout is not None
            p.stdin.close()
            for line in (await p.stdout.read()).splitlines():
                row = json.loads(line)
                client_cpu += row.pop("cpu_s", 0.0)
                lag += row.pop("timer_lag_s", [])
                rtt += row.pop("poll_rtt_s", [])
                client.update(row)
            await p.wait()
        if pusher is not None:
            await pusher.stop()
        await server.stop()
    latencies = sorted(t - t0 for t in ack_clock.acked.values()) or [float("nan")]
    return {
        "vens": n,
        "poll_s": poll_s,
        "mode": "push" if push else "poll",
        "expected_poll_rate_per_s": 0.0 if push else n / poll_s,
        "achieved_poll_rate_per_s": round(poll_rate, 1),
        "acked_fraction": len(ack_clock.acked) / n,
        "median_ack_s": round(statistics.median(latencies), 3),
        "p95_ack_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
        "max_ack_s": round(latencies[-1], 3),
        "start_and_register_s": round(registration_s, 1),
        "transport_errors": client["errors"],
        "window_s": round(window_s, 1),
        "vtn_cpu_s": round(vtn_cpu, 2),
        "vtn_cpu_us_per_request": round(1e6 * vtn_cpu / max(requests, 1)),
        "ven_workers": workers,
        "ven_workers_cpu_s": round(client_cpu, 2),
        "ven_timer_lag_median_p95_s": _median_p95(lag),
        "ven_poll_rtt_median_p95_s": _median_p95(rtt),
        "store": "sqlite" if sqlite else None,
        "loadavg_1_5_15": [round(x, 2) for x in load],
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="50 VENs polling every second")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="VEN load-generator processes")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--only", type=int, help="run only the fleet of this size")
    ap.add_argument("--sqlite", action="store_true", help="VTN state written through to SQLite")
    ap.add_argument("--push", action="store_true", help="VENs registered for the push model, not polling")
    args = ap.parse_args()
    if args.worker:
        await worker(*json.loads(args.worker))
        return
    # 2.0b VENs poll every 10 s to a few minutes; the fleet's request rate is vens / poll_s
    plan = [(50, 1.0)] if args.quick else [(1_000, 10.0), (10_000, 60.0)]
    if args.only:
        plan = [p for p in plan if p[0] == args.only]
    results = []
    for n, poll_s in plan:
        runs = [
            await run(n, poll_s, 1 if args.quick else args.workers, args.sqlite, args.push)
            for _ in range(args.repeat)
        ]
        row = runs[0] if len(runs) == 1 else {**runs[0], "repeats": runs}
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)  # progress for long runs
    print(json.dumps({"benchmark": "openadr20b_event_to_ack", "results": results}, indent=2))


if __name__ == "__main__":
    try:  # the load generator must stay cheap (uvloop); the VTN keeps the default asyncio loop
        import uvloop
    except ImportError:
        uvloop = None
    if uvloop is not None and "--worker" in sys.argv:
        uvloop.run(main())
    else:
        asyncio.run(main())
