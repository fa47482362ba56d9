"""Scoping beyond single devices: aggregators, the proxy mode, paging and LogEvents."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from lxml import etree

from derms.adapters.base import AdapterContext
from derms.adapters.ieee2030_5 import Ieee2030_5Settings, create_adapter
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from tests.adapters.ieee2030_5.sep2_harness import T0, Certs, Harness

NS = {"s": "urn:ieee:std:2030.5:ns"}


async def test_aggregator_sees_exactly_its_assigned_devices(harness: Harness) -> None:
    manager = harness.adapter.manager
    agg = manager.register_out_of_band(harness.lfdi("agg"), "default", is_aggregator=True)
    mine = [
        manager.register_out_of_band(harness.lfdi(f"site-{i}"), "default", aggregator_lfdi=agg.lfdi)
        for i in range(3)
    ]
    other = manager.register_out_of_band(harness.lfdi("dev-b"), "default")
    async with harness.client("agg") as client:
        listed = etree.fromstring((await client.get("/edev?l=10")).content)
        hrefs = {e.get("href") for e in listed.findall("s:EndDevice", NS)}
        assert hrefs == {f"/edev/{e.id}" for e in [agg, *mine]}
        assert (await client.get(f"/edev/{mine[1].id}/reg")).status_code == 200
        assert (await client.get(f"/edev/{other.id}")).status_code == 404
        # an aggregator registers a new device in band; it joins its scope
        new = harness.lfdi("site-new")
        from derms.adapters.ieee2030_5.identity import sfdi_from_lfdi

        body = (
            f'<EndDevice xmlns="urn:ieee:std:2030.5:ns"><sFDI>{sfdi_from_lfdi(new)}</sFDI>'
            f"<changedTime>0</changedTime><lFDI>{new}</lFDI></EndDevice>"
        )
        created = await client.post("/edev", content=body)
        assert created.status_code == 201
        assert (await client.get(created.headers["location"])).status_code == 200
    async with harness.client("site-0") as client:
        listed = etree.fromstring((await client.get("/edev?l=10")).content)
        assert listed.get("all") == "1"
        assert (await client.get(f"/edev/{agg.id}")).status_code == 404


async def test_list_paging_start_limit_and_after(harness: Harness) -> None:
    manager = harness.adapter.manager
    edev = manager.register_out_of_band(harness.lfdi("dev-a"), "default")
    programs = [manager.create_program("default", f"p{i}", 10 + i, frozenset({edev.id})) for i in range(5)]
    body = (
        '<LogEvent xmlns="urn:ieee:std:2030.5:ns"><createdDateTime>{t}</createdDateTime><extendedData>0</extendedData>'
        "<functionSet>0</functionSet><logEventCode>{c}</logEventCode><logEventID>1</logEventID>"
        "<logEventPEN>40732</logEventPEN><profileID>2</profileID></LogEvent>"
    )
    async with harness.client("dev-a") as client:
        one = etree.fromstring((await client.get(f"/edev/{edev.id}/derp")).content)
        assert (one.get("all"), one.get("results")) == ("5", "1")  # default limit is one item
        page = etree.fromstring((await client.get(f"/edev/{edev.id}/derp?s=2&l=2")).content)
        got = [p.findtext("s:description", namespaces=NS) for p in page.findall("s:DERProgram", NS)]
        assert got == [programs[2].description, programs[3].description]
        assert (await client.get(f"/edev/{edev.id}/derp?l=-1")).status_code == 422
        for t, code in ((100, 1), (200, 2), (300, 3)):
            assert (
                await client.post(f"/edev/{edev.id}/lel", content=body.format(t=t, c=code))
            ).status_code == 201
        after = etree.fromstring((await client.get(f"/edev/{edev.id}/lel?a=200&l=10")).content)
        assert [e.findtext("s:logEventCode", namespaces=NS) for e in after.findall("s:LogEvent", NS)] == [
            "2",
            "3",
        ]


@pytest.fixture
async def proxied(certs: Certs) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    clock = ManualClock(T0)
    adapter = create_adapter(
        AdapterContext(bus=MemoryBus(clock), clock=clock, protocol="ieee2030_5"),
        Ieee2030_5Settings(port=0, proxy_header="X-Client-Cert"),
    )
    await adapter.start()
    try:
        async with httpx.AsyncClient(base_url=adapter.url) as client:
            yield client, adapter
    finally:
        await adapter.stop()


async def test_proxy_mode_takes_the_certificate_from_the_header(
    proxied: tuple[httpx.AsyncClient, object], certs: Certs
) -> None:
    from urllib.parse import quote

    client, adapter = proxied
    issued = certs.device("dev-a")[2]
    adapter.manager.register_out_of_band(issued.lfdi, "default")  # type: ignore[attr-defined]
    assert (await client.get("/dcap")).status_code == 403
    header = {"X-Client-Cert": quote(issued.cert_pem.decode())}
    listed = etree.fromstring((await client.get("/edev?l=5", headers=header)).content)
    assert listed.get("all") == "1"
    assert (await client.get("/dcap", headers={"X-Client-Cert": "garbage"})).status_code == 403
    # the header is ignored when it does not come from a configured proxy host
    from derms.adapters.ieee2030_5.app import create_app

    elsewhere = create_app(adapter.manager, proxy_header="X-Client-Cert", proxy_hosts=frozenset({"10.0.0.7"}))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=elsewhere), base_url="http://x") as direct:
        assert (await direct.get("/edev?l=5", headers=header)).status_code == 403
