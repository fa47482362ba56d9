"""OpenADR 2.0b: time from event creation to acknowledged receipt by N polling VENs.

Each simulated VEN registers (oadrCreatePartyRegistration), then polls (oadrPoll) every
``poll_s`` seconds with a random phase; on an oadrDistributeEvent it answers with
oadrCreatedEvent optIn. We time from ``Vtn.create_event`` to the last VEN's acknowledgement
(median and p95 over VENs, median of the per-repeat maxima) for two transports:

* ``http``: real simple-HTTP over loopback to the uvicorn VTN (one shared client pool);
* ``wire``: the same XML bytes through ``Vtn.handle`` without sockets (protocol cost only),
  the baseline for the ratio.

Prints JSON. ``--quick`` runs small fleets (for the test suite).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx

from derms.adapters.openadr.oadr20b import codec
from derms.adapters.openadr.oadr20b.model import EventResponse, Registration
from derms.adapters.openadr.oadr20b.server import HttpServer, make_app
from derms.adapters.openadr.oadr20b.vocabulary import OptType
from derms.adapters.openadr.oadr20b.vtn import Vtn
from derms.bridge.openadr import OpenAdrTranslator
from derms.core.clock import SystemClock
from derms.core.controls import LoadShed
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint

Send = Callable[[str, bytes], Awaitable[bytes]]


async def register(send: Send, name: str) -> str:
    reg = Registration(name, "2.0b", "simpleHttp", False, False, True)
    data = codec.serialize(codec.envelope(codec.create_party_registration("r", reg)))
    for attempt in range(5):
        try:
            reply = codec.parse_payload(await send("EiRegisterParty", data))
            return reply.element.findtext("ei:venID", namespaces=codec.NS) or ""
        except httpx.HTTPError:
            await asyncio.sleep(0.5 * (attempt + 1))  # a real VEN retries registration
    raise RuntimeError(f"{name} could not register")


async def ven_loop(
    send: Send,
    ven_id: str,
    poll_s: float,
    stop: asyncio.Event,
    acked: dict[str, float],
    n: int,
    done: asyncio.Event,
    errors: list[int],
    vtn_dirty: Callable[[str], None],
) -> None:
    await asyncio.sleep(random.uniform(0, poll_s))
    poll = codec.serialize(codec.envelope(codec.poll(ven_id)))
    while not stop.is_set():
        try:
            reply = codec.parse_payload(await send("OadrPoll", poll))
        except httpx.HTTPError:
            errors[0] += 1  # a real VEN retries at its next poll
            await asyncio.sleep(poll_s)
            continue
        if reply.name == "oadrDistributeEvent":
            responses = [
                EventResponse(
                    e.event_id, e.modification_number, OptType.OPT_IN, request_id=reply.request_id() or ""
                )
                for e in (codec.decode_event(n) for n in reply.element.findall("oadr:oadrEvent", codec.NS))
            ]
            ack = codec.created_event(200, "OK", reply.request_id() or "", responses, ven_id)
            try:
                await send("EiEvent", codec.serialize(codec.envelope(ack)))
            except httpx.HTTPError:
                errors[0] += 1  # the VTN re-sends the event until it is acknowledged
                vtn_dirty(ven_id)
                await asyncio.sleep(poll_s)
                continue
            acked[ven_id] = time.perf_counter()
            if len(acked) >= n:
                done.set()
        await asyncio.sleep(poll_s)


async def one_run(
    n: int, transport: str, poll_s: float, repeat: int
) -> list[tuple[float, float, float, float, float]]:
    clock = SystemClock()
    vtn = Vtn("BENCH_VTN", clock, poll_freq=timedelta(seconds=poll_s))
    server = None
    http = None
    if transport == "http":
        server = HttpServer(make_app(vtn))
        await server.start()
        http = httpx.AsyncClient(limits=httpx.Limits(max_connections=64), timeout=60)
        base = f"{server.url}/OpenADR2/Simple/2.0b"

        async def send(service: str, data: bytes) -> bytes:
            assert http is not None
            return (await http.post(f"{base}/{service}", content=data)).content
    else:

        async def send(service: str, data: bytes) -> bytes:
            return await vtn.handle(service, data)

    ven_ids = []
    for start in range(0, n, 200):
        ven_ids += await asyncio.gather(
            *(register(send, f"ven-{i}") for i in range(start, min(n, start + 200)))
        )
    translator = OpenAdrTranslator("http://bench/mc")
    der = Der("d", "s", DerKind.CI_LOAD, Capabilities(w_max_consume=1e5), "openadr", "all", "t")
    maxima = []
    try:
        for r in range(repeat):
            stop = asyncio.Event()
            acked: dict[str, float] = {}
            done = asyncio.Event()
            errors = [0]

            def vtn_dirty(ven_id: str) -> None:
                vtn.vens[ven_id].events_dirty = True

            tasks = [
                asyncio.create_task(ven_loop(send, v, poll_s, stop, acked, n, done, errors, vtn_dirty))
                for v in ven_ids
            ]
            await asyncio.sleep(poll_s * 1.5)  # every VEN polling in steady state
            now = clock.now()
            sp = Setpoint("d", LoadShed(level=2), now + timedelta(minutes=5), now + timedelta(minutes=35))
            event = translator.translate(der, sp, f"ev-{r}").payload
            event = type(event)(
                **{**{f: getattr(event, f) for f in event.__dataclass_fields__}, "target": codec.Target()}
            )
            t0 = time.perf_counter()
            vtn.create_event(event)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), min(30 * poll_s + n / 20, 900.0))
            stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            latencies = sorted(v - t0 for v in acked.values()) or [float("nan")]
            maxima.append(
                (
                    latencies[-1],
                    statistics.median(latencies),
                    latencies[int(0.95 * (len(latencies) - 1))],
                    float(errors[0]),
                    len(acked) / n,
                )
            )
            vtn.events.clear()
    finally:
        if http is not None:
            await http.aclose()
        if server is not None:
            await server.stop()
    return maxima


def summarise(runs: list[tuple[float, float, float, float, float]]) -> dict[str, float]:
    """Medians over repeats. ``acked_fraction`` < 1 means the deadline passed first and the
    ``*_s`` figures describe only the VENs that did acknowledge."""
    return {
        "acked_fraction": statistics.median(r[4] for r in runs),
        "all_acked_s": statistics.median(r[0] for r in runs),
        "median_ack_s": statistics.median(r[1] for r in runs),
        "p95_ack_s": statistics.median(r[2] for r in runs),
        "transport_errors": statistics.median(r[3] for r in runs),
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    random.seed(20305)
    # 2.0b VENs typically poll every 10 s to a few minutes; the fleet's request rate is n / poll_s
    plan = [(20, 0.5), (50, 1.0)] if args.quick else [(1_000, 10.0), (10_000, 60.0)]
    repeat = 1 if args.quick else args.repeat
    results = []
    for n, poll_s in plan:
        wire = summarise(await one_run(n, "wire", poll_s, repeat))
        http = summarise(await one_run(n, "http", poll_s, repeat))
        row = {
            "vens": n,
            "poll_s": poll_s,
            "http": http,
            "wire": wire,
            "ratio_http_to_wire_all_acked": http["all_acked_s"] / wire["all_acked_s"],
        }
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)  # progress for long runs
    print(
        json.dumps({"benchmark": "openadr20b_event_to_ack", "repeats": repeat, "results": results}, indent=2)
    )


if __name__ == "__main__":
    asyncio.run(main())
