"""toadr3 (an OpenADR 3.0.1 client we did not write) against our 3.0.1 VTN, with a webhook.

toadr3 gets an OAuth2 client-credentials token, reads programs and events, creates a
subscription whose webhook our VTN calls when the operator creates an event, and posts a
report. A VEN without a VEN object sees nothing; malformed JSON gets a problem and changes
nothing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
import toadr3
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from toadr3.models import Interval, ObjectOperation, Report, ReportData, Subscription, ValuesMap

from derms.adapters.openadr.oadr3.app import BASE_PATH, build
from derms.adapters.openadr.oadr3.auth import Client
from derms.adapters.openadr.oadr20b.server import HttpServer
from derms.core.clock import SystemClock

pytestmark = pytest.mark.interop

CLIENTS = [
    Client("utility", "bl-secret", "BL"),
    Client("ven-a-client", "a-secret", "VEN", "ven-a"),
    Client("ven-b-client", "b-secret", "VEN", "ven-b"),
]


async def token(http: httpx.AsyncClient, base: str, client_id: str, secret: str) -> dict[str, str]:
    r = await http.post(
        f"{base}/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def toadr(base: str, client_id: str, secret: str) -> toadr3.ToadrClient:
    config = toadr3.OAuthConfig(
        token_url=f"{base}/auth/token",
        grant_type="client_credentials",
        claims={"scope": "read_all write_reports write_subscriptions"},
        client_id=client_id,
        client_secret=secret,
    )
    return toadr3.ToadrClient(base, config)


async def test_toadr3_client_with_webhook():
    clock = SystemClock()
    app, vtn, _ = build(CLIENTS, clock)
    server = HttpServer(app)
    received: list[tuple[str | None, dict]] = []

    async def hook(request: Request) -> Response:
        received.append((request.headers.get("authorization"), await request.json()))
        return Response(status_code=200)

    receiver = HttpServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
    await server.start()
    await receiver.start()
    await vtn.start()
    base = f"{server.url}{BASE_PATH}"
    try:
        async with httpx.AsyncClient() as http:
            bl = await token(http, base, "utility", "bl-secret")
            r = await http.post(f"{base}/programs", json={"programName": "cni-shed"}, headers=bl)
            assert r.status_code == 201
            program_id = r.json()["id"]
            a = await token(http, base, "ven-a-client", "a-secret")
            r = await http.post(f"{base}/vens", json={"venName": "ven-a"}, headers=a)
            assert r.status_code == 201, r.text
            # a VEN may not register under another VEN's name, nor write events
            assert (await http.post(f"{base}/vens", json={"venName": "ven-b"}, headers=a)).status_code == 403
            ev = {
                "programID": program_id,
                "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}],
            }
            assert (await http.post(f"{base}/events", json=ev, headers=a)).status_code == 403

            async with toadr(base, "ven-a-client", "a-secret") as client:
                programs = await client.get_programs()
                assert [p.program_name for p in programs] == ["cni-shed"]
                sub = await client.post_subscription(
                    Subscription(
                        client_name="ven-a",
                        programID=program_id,
                        object_operations=[
                            ObjectOperation(
                                objects=["EVENT"],
                                operations=["POST", "PUT"],  # toadr3 speaks the 3.0.0 verbs
                                callback_url=f"{receiver.url}/hook",
                                bearer_token="hook-secret",
                            )
                        ],
                    )
                )
                assert sub.id
                event = {
                    "programID": program_id,
                    "eventName": "shed-1",
                    "priority": 1,
                    "targets": [{"type": "VEN_NAME", "values": ["ven-a"]}],
                    "payloadDescriptors": [{"payloadType": "IMPORT_CAPACITY_LIMIT", "units": "KW"}],
                    "intervalPeriod": {
                        "start": datetime(2026, 7, 15, 17, tzinfo=UTC).isoformat(),
                        "duration": "PT1H",
                    },
                    "intervals": [
                        {"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [80.5]}]}
                    ],
                }
                r = await http.post(f"{base}/events", json=event, headers=bl)
                assert r.status_code == 201
                event_id = r.json()["id"]
                for _ in range(200):
                    if received:
                        break
                    await asyncio.sleep(0.02)
                auth, note = received[0]
                assert auth == "Bearer hook-secret"
                assert note["objectType"] == "EVENT" and note["operation"] == "POST"
                assert toadr3.models.Event.model_validate(note["object"]).id == event_id
                events = await client.get_events(program_id=program_id)
                assert [e.id for e in events] == [event_id]
                assert events[0].intervals[0].payloads[0].values == [80.5]
                report = await client.post_report(
                    Report(
                        programID=program_id,
                        eventID=event_id,
                        client_name="ven-a",
                        report_name="delivered",
                        resources=[
                            ReportData(
                                resource_name="load-1",
                                intervals=[Interval(id=0, payloads=[ValuesMap(type="USAGE", values=[61.0])])],
                            )
                        ],
                    )
                )
                assert report.id
            r = await http.get(f"{base}/reports", params={"eventID": event_id}, headers=bl)
            assert [x["resources"][0]["intervals"][0]["payloads"][0]["values"] for x in r.json()] == [[61.0]]

            # an unregistered VEN (no VEN object) gets nothing
            async with toadr(base, "ven-b-client", "b-secret") as other:
                assert await other.get_events() == []
                assert await other.get_programs() == []
            b = await token(http, base, "ven-b-client", "b-secret")
            assert (await http.get(f"{base}/events/{event_id}", headers=b)).status_code == 404
            # malformed JSON → problem response, nothing changes
            before = {k: dict(v) for k, v in vtn.objects.items()}
            r = await http.post(
                f"{base}/events",
                content=b'{"programID": ',
                headers={**bl, "content-type": "application/json"},
            )
            assert r.status_code == 400 and r.json()["status"] == 400 and r.json()["title"] == "Bad Request"
            r = await http.post(
                f"{base}/events", json={"programID": program_id, "intervals": "x"}, headers=bl
            )
            assert r.status_code == 400
            assert {k: dict(v) for k, v in vtn.objects.items()} == before
            assert (
                await http.get(f"{base}/events", headers={"Authorization": "Bearer nope"})
            ).status_code == 403
    finally:
        await vtn.stop()
        await receiver.stop()
        await server.stop()
