"""Test helpers for the 2030.5 server: PKI files, the running server, XSD-validating clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from lxml import etree

from derms.adapters.ieee2030_5 import Ieee2030_5Adapter
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
        await self.adapter.telemetry.flush()
        await self.bus.drain()
        return [m.data for m in self.messages if m.subject.startswith(subject_prefix)]
