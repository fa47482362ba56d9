"""A running CSMS (the OCPP adapter on a free port) on an in-memory bus that records every message."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from derms.adapters.base import AdapterContext
from derms.adapters.ocpp import OcppAdapter, OcppSettings
from derms.bus import MemoryBus
from derms.core.clock import SystemClock
from tests.adapters.ocpp.csms_rig import PASSWORDS, Seen


@pytest.fixture
async def csms() -> AsyncIterator[tuple[OcppAdapter, Seen]]:
    bus = MemoryBus()
    seen = Seen()
    await bus.subscribe(">", seen)
    adapter = OcppAdapter(
        AdapterContext(bus=bus, clock=SystemClock(), protocol="ocpp"),
        OcppSettings(port=0, passwords=PASSWORDS, response_timeout_s=5),
    )
    await adapter.start()
    yield adapter, seen
    await adapter.stop()
    await bus.close()
