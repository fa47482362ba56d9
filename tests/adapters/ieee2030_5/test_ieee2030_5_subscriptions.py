"""Subscription/Notification: the server pushes changed DERControl lists over mTLS, with retry."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import Response
from lxml import etree

from derms.adapters.ieee2030_5.schema import ActivePower, DERControlBase
from derms.adapters.ieee2030_5.server import TlsServer
from derms.adapters.ieee2030_5.tls import server_context
from derms.core.der import Capabilities, Der, DerKind
from tests.adapters.ieee2030_5.sep2_harness import Harness, assert_valid

NS = {"s": "urn:ieee:std:2030.5:ns"}


async def test_subscriber_is_notified_and_failed_deliveries_are_retried(harness: Harness) -> None:
    received: list[bytes] = []
    failures = {"left": 2}
    listener = FastAPI()

    @listener.post("/notify")
    async def notify(request: Request) -> Response:
        if failures["left"]:
            failures["left"] -= 1
            return Response(status_code=503)
        received.append(await request.body())
        return Response(status_code=201)

    # The device's own notification listener, over mTLS with its device certificate.
    cert, key, _ = harness.certs.device("dev-a")
    device_server = TlsServer(listener, server_context(cert, key, harness.certs.ca))
    await device_server.start()
    try:
        der = Der(
            "der-a",
            "s",
            DerKind.PV_INVERTER,
            Capabilities(w_max=5000),
            "ieee2030_5",
            harness.lfdi("dev-a"),
            "default",
        )
        await harness.adapter.register_device(der)
        edev = harness.adapter.repo.end_device_by_der("der-a")
        program = harness.adapter.manager.create_program("default", "doe", 1, frozenset({edev.id}))
        resource = f"/edev/{edev.id}/derp/{program.id}/derc"
        body = (
            f'<Subscription xmlns="urn:ieee:std:2030.5:ns"><subscribedResource>{resource}</subscribedResource>'
            f"<encoding>0</encoding><level>+S1</level><limit>5</limit>"
            f"<notificationURI>https://localhost:{device_server.port}/notify</notificationURI></Subscription>"
        )
        async with harness.client("dev-a") as client:
            created = await client.post(f"/edev/{edev.id}/sub", content=body)
            assert created.status_code == 201
            assert (await client.get(created.headers["location"])).status_code == 200
            foreign = body.replace(resource, "/mup")
            assert (await client.post(f"/edev/{edev.id}/sub", content=foreign)).status_code == 400
        await harness.adapter.manager.create_control(
            program.id,
            DERControlBase(opModExpLimW=ActivePower(value=2, multiplier=3)),
            harness.adapter.manager.now(),
            300,
        )
        assert harness.adapter.notifier is not None
        await asyncio.wait_for(harness.adapter.notifier.drain(), 30)
        assert len(received) == 1
        assert_valid(harness.xsd, received[0])
        doc = etree.fromstring(received[0])
        assert doc.findtext("s:subscribedResource", namespaces=NS) == resource
        assert doc.find("s:Resource/s:DERControl", NS) is not None
        assert harness.adapter.notifier.delivered[-1][2] == 3  # two 503s, then delivered
        async with harness.client("dev-a") as client:
            assert (await client.delete(created.headers["location"])).status_code == 204
    finally:
        if harness.adapter.notifier is not None:
            await harness.adapter.notifier.close()  # close idle TLS connections before the listener stops
        await device_server.stop()


async def test_event_start_is_pushed_to_active_list_subscribers(harness: Harness) -> None:
    """Scheduled → Active happens with time alone; subscribers of ActiveDERControlList hear of it."""
    received: list[bytes] = []
    listener = FastAPI()

    @listener.post("/notify")
    async def notify(request: Request) -> Response:
        received.append(await request.body())
        return Response(status_code=201)

    cert, key, _ = harness.certs.device("dev-a")
    device_server = TlsServer(listener, server_context(cert, key, harness.certs.ca))
    await device_server.start()
    try:
        der = Der(
            "der-a",
            "s",
            DerKind.PV_INVERTER,
            Capabilities(w_max=5000),
            "ieee2030_5",
            harness.lfdi("dev-a"),
            "default",
        )
        await harness.adapter.register_device(der)
        edev = harness.adapter.repo.end_device_by_der("der-a")
        manager = harness.adapter.manager
        program = manager.create_program("default", "doe", 1, frozenset({edev.id}))
        await manager.create_control(
            program.id,
            DERControlBase(opModExpLimW=ActivePower(value=2, multiplier=3)),
            manager.now() + 60,
            300,
        )
        resource = f"/edev/{edev.id}/derp/{program.id}/actderc"
        body = (
            f'<Subscription xmlns="urn:ieee:std:2030.5:ns"><subscribedResource>{resource}</subscribedResource>'
            f"<encoding>0</encoding><level>+S1</level><limit>5</limit>"
            f"<notificationURI>https://localhost:{device_server.port}/notify</notificationURI></Subscription>"
        )
        async with harness.client("dev-a") as client:
            assert (await client.post(f"/edev/{edev.id}/sub", content=body)).status_code == 201
        harness.clock.advance(61)
        for _ in range(200):  # the adapter looks at the clock once a second
            if received:
                break
            await asyncio.sleep(0.1)
        assert harness.adapter.notifier is not None
        await harness.adapter.notifier.drain()
        doc = etree.fromstring(received[0])
        assert doc.find("s:Resource", NS).get("all") == "1"  # type: ignore[union-attr]
        assert doc.findtext("s:Resource/s:DERControl/s:EventStatus/s:currentStatus", namespaces=NS) == "1"
        assert_valid(harness.xsd, received[0])
    finally:
        if harness.adapter.notifier is not None:
            await harness.adapter.notifier.close()
        await device_server.stop()
